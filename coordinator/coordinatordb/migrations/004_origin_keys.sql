-- Node keys the operator allows to register and publish as origins, added
-- at run time through the admin route (keys given on the command line are
-- configuration, not stored).

CREATE TABLE IF NOT EXISTS origin_keys (
	node_id    TEXT PRIMARY KEY,
	allowed_ms BIGINT NOT NULL
);
