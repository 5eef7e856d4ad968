-- live_btr_log is each chain's BTR channel log (docs/LIVE.md, "BTR"): the
-- judge's accusations and exclusions, in the order the coordinator checked
-- and recorded them. statement is the signed encoding (base64); culprit the
-- accused or excluded worker's node id. Append-only.
CREATE TABLE live_btr_log (
	chain     TEXT NOT NULL REFERENCES live_chains(chain),
	seq       BIGINT NOT NULL,
	kind      TEXT NOT NULL,
	culprit   TEXT NOT NULL,
	statement TEXT NOT NULL,
	at_ms     BIGINT NOT NULL,
	PRIMARY KEY (chain, seq)
);

CREATE TRIGGER live_btr_log_no_update BEFORE UPDATE ON live_btr_log
BEGIN SELECT RAISE(ABORT, 'live_btr_log is append-only'); END;
CREATE TRIGGER live_btr_log_no_delete BEFORE DELETE ON live_btr_log
BEGIN SELECT RAISE(ABORT, 'live_btr_log is append-only'); END;
