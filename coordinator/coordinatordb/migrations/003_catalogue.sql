-- The catalogue and bans the coordinator rebuilds its lookup index from at
-- start. Manifests and content keys are base64 text, so one schema fits
-- both dialects. IF NOT EXISTS: databases created before this migration
-- made these tables at start-up (Go code, since removed), with this shape.

CREATE TABLE IF NOT EXISTS coord_videos (
	video       TEXT PRIMARY KEY,
	manifest    TEXT NOT NULL,
	content_key TEXT NOT NULL,
	origin      TEXT NOT NULL,
	updated_ms  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS coord_bans (
	node_id TEXT PRIMARY KEY,
	reason  TEXT NOT NULL,
	at_ms   BIGINT NOT NULL
);
