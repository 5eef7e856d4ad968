-- The playback budget is per viewer ACCOUNT and video, summed over all the
-- account's viewer keys: fresh keys no longer buy fresh budgets. Existing
-- per-key usage is carried over (an account already past its budget settles
-- nothing more for that video).
CREATE TABLE account_video_usage (
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	video      TEXT NOT NULL,
	bytes      BIGINT NOT NULL,
	PRIMARY KEY (account_id, video)
);
INSERT INTO account_video_usage (account_id, video, bytes)
	SELECT k.account_id, u.video, SUM(u.bytes) FROM viewer_video_usage u JOIN viewer_keys k ON k.viewer = u.viewer
	GROUP BY k.account_id, u.video;
DROP TABLE viewer_video_usage;

-- A batch id names one batch forever: the SHA-256 of the batch's canonical
-- JSON tells a replay (same content: the stored result) from a reuse (other
-- content: refused). '' for batches settled before this migration.
ALTER TABLE settlement_batches ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT '';
