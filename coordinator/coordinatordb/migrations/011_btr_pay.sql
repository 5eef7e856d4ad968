-- BTR economics (docs/LIVE.md, "BTR: workers, payment, metering"):
-- worker_bindings binds a BTR worker's node key to the account it earns
-- for (the worker signed its consent); btr_agreements keeps the evidence
-- each credit rests on (the judge's signed btr.Agreement: f+1 replicas'
-- signed outputs with one digest), so anyone can re-check a payment;
-- btr_work_credits is one row per (chain, segment, worker) paid for an
-- agreed segment: unsettled until the chain ends or the row is older than
-- the hold, then settled into the ledger (tx_id) or, if the worker was
-- excluded first, forfeited (exclusion = hex SHA-256 of the exclusion
-- statement in the chain's channel log, kind its fault kind);
-- live_minutes meters what players fetched: per (chain, player key), the
-- media milliseconds of the segments the coordinator handed the player
-- sources for, each segment counted once (next_segment is the first not
-- yet counted).

CREATE TABLE worker_bindings (
	node_id    TEXT PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	bound_ms   BIGINT NOT NULL
);
CREATE INDEX worker_bindings_account ON worker_bindings(account_id);

CREATE TABLE btr_agreements (
	chain       TEXT NOT NULL REFERENCES live_chains(chain),
	segment     BIGINT NOT NULL,
	evidence    TEXT NOT NULL UNIQUE,
	statement   TEXT NOT NULL,
	at_ms       BIGINT NOT NULL,
	PRIMARY KEY (chain, segment)
);

CREATE TABLE btr_work_credits (
	chain       TEXT NOT NULL REFERENCES live_chains(chain),
	segment     BIGINT NOT NULL,
	worker      TEXT NOT NULL,
	account_id  BIGINT NOT NULL REFERENCES accounts(id),
	points      BIGINT NOT NULL,
	evidence    TEXT NOT NULL,
	state       TEXT NOT NULL,
	exclusion   TEXT NOT NULL,
	kind        TEXT NOT NULL,
	tx_id       BIGINT NOT NULL,
	credited_ms BIGINT NOT NULL,
	updated_ms  BIGINT NOT NULL,
	PRIMARY KEY (chain, segment, worker)
);
CREATE INDEX btr_work_credits_worker ON btr_work_credits(worker, state);
CREATE INDEX btr_work_credits_account ON btr_work_credits(account_id, state);
CREATE INDEX btr_work_credits_chain ON btr_work_credits(chain, state);

CREATE TABLE live_minutes (
	chain        TEXT NOT NULL REFERENCES live_chains(chain),
	viewer       TEXT NOT NULL,
	account_id   BIGINT NOT NULL REFERENCES accounts(id),
	watched_ms   BIGINT NOT NULL,
	segments     BIGINT NOT NULL,
	next_segment BIGINT NOT NULL,
	updated_ms   BIGINT NOT NULL,
	PRIMARY KEY (chain, viewer)
);
CREATE INDEX live_minutes_account ON live_minutes(account_id);
