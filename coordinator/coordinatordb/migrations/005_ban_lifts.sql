-- Lifted bans, kept for the record: which ban (reason, when), who lifted it
-- and when, and whether the edge was reinstated from disqualification with
-- a fresh reputation. A lift deletes the coord_bans row in the same
-- transaction; this table is never updated.

CREATE TABLE IF NOT EXISTS coord_ban_lifts (
	id            {{ID}},
	node_id       TEXT NOT NULL,
	ban_reason    TEXT NOT NULL,
	banned_ms     BIGINT NOT NULL,
	reinstated    BIGINT NOT NULL,
	dq_reason     TEXT NOT NULL,
	lifted_by     TEXT NOT NULL,
	note          TEXT NOT NULL,
	lifted_ms     BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS coord_ban_lifts_node ON coord_ban_lifts (node_id, lifted_ms);
