-- node_keys generalises origin_keys (004) to every role the operator admits
-- by key (wire.AllowListedRoles: origin, relay, worker): the node ids allowed
-- at run time through the admin route. Keys given on the command line are
-- configuration, not stored. A revocation deletes the row.

CREATE TABLE node_keys (
	role       TEXT NOT NULL,
	node_id    TEXT NOT NULL,
	allowed_ms BIGINT NOT NULL,
	PRIMARY KEY (role, node_id)
);

INSERT INTO node_keys (role, node_id, allowed_ms)
	SELECT 'origin', node_id, allowed_ms FROM origin_keys;

DROP TABLE origin_keys;
