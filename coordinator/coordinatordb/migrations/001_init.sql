-- Portable schema: {{ID}} becomes an auto-increment primary key in each
-- dialect; everything else is SQL both SQLite and PostgreSQL accept. Times
-- are unix milliseconds; binary ids are lowercase hex text.

CREATE TABLE accounts (
	id            {{ID}},
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	role          TEXT NOT NULL,
	created_ms    BIGINT NOT NULL
);

CREATE TABLE sessions (
	token_sha256 TEXT PRIMARY KEY,
	account_id   BIGINT NOT NULL REFERENCES accounts(id),
	created_ms   BIGINT NOT NULL,
	expires_ms   BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE edge_bindings (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id),
	node_id    TEXT NOT NULL UNIQUE,
	bound_ms   BIGINT NOT NULL
);

CREATE TABLE api_tokens (
	token_sha256 TEXT PRIMARY KEY,
	account_id   BIGINT NOT NULL REFERENCES edge_bindings(account_id),
	created_ms   BIGINT NOT NULL
);

CREATE TABLE viewer_keys (
	viewer     TEXT PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	bound_ms   BIGINT NOT NULL
);

CREATE TABLE login_failures (
	id         {{ID}},
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	at_ms      BIGINT NOT NULL
);
CREATE INDEX login_failures_account ON login_failures(account_id, at_ms);

CREATE TABLE ledger_transactions (
	id         {{ID}},
	kind       TEXT NOT NULL,
	memo       TEXT NOT NULL,
	created_ms BIGINT NOT NULL
);

CREATE TABLE ledger_entries (
	id         {{ID}},
	tx_id      BIGINT NOT NULL REFERENCES ledger_transactions(id),
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	amount     BIGINT NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries(account_id);
CREATE INDEX ledger_entries_tx ON ledger_entries(tx_id);

-- balances caches SUM(ledger_entries.amount) per account; it is updated in
-- the same transaction as the entries and CheckLedger proves it agrees.
CREATE TABLE balances (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id),
	points     BIGINT NOT NULL
);

CREATE TABLE videos (
	video                 TEXT PRIMARY KEY,
	price                 BIGINT NOT NULL,
	playback_budget_bytes BIGINT NOT NULL,
	updated_ms            BIGINT NOT NULL
);

CREATE TABLE entitlements (
	account_id BIGINT NOT NULL REFERENCES accounts(id),
	video      TEXT NOT NULL,
	paid       BIGINT NOT NULL,
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (account_id, video)
);

CREATE TABLE settlement_batches (
	batch_id        TEXT PRIMARY KEY,
	edge            TEXT NOT NULL,
	settled_ms      BIGINT NOT NULL,
	pairs           BIGINT NOT NULL,
	accepted        BIGINT NOT NULL,
	accepted_bytes  BIGINT NOT NULL,
	credited_points BIGINT NOT NULL,
	frozen_points   BIGINT NOT NULL,
	frozen_reason   TEXT NOT NULL
);
CREATE INDEX settlement_batches_edge ON settlement_batches(edge, settled_ms);

CREATE TABLE batch_rejections (
	batch_id TEXT NOT NULL REFERENCES settlement_batches(batch_id),
	reason   TEXT NOT NULL,
	count    BIGINT NOT NULL,
	PRIMARY KEY (batch_id, reason)
);

CREATE TABLE settled_serials (
	serial   TEXT PRIMARY KEY,
	batch_id TEXT NOT NULL,
	edge     TEXT NOT NULL,
	viewer   TEXT NOT NULL,
	video    TEXT NOT NULL,
	amount   BIGINT NOT NULL,
	status   TEXT NOT NULL
);

CREATE TABLE viewer_video_usage (
	viewer TEXT NOT NULL,
	video  TEXT NOT NULL,
	bytes  BIGINT NOT NULL,
	PRIMARY KEY (viewer, video)
);

CREATE TABLE flows (
	edge      TEXT NOT NULL,
	viewer    TEXT NOT NULL,
	video     TEXT NOT NULL,
	bucket_ms BIGINT NOT NULL,
	bytes     BIGINT NOT NULL,
	PRIMARY KEY (edge, viewer, video, bucket_ms)
);
CREATE INDEX flows_viewer ON flows(viewer, bucket_ms);

CREATE TABLE reputations (
	node_id         TEXT PRIMARY KEY,
	audit_alpha     DOUBLE PRECISION NOT NULL,
	audit_beta      DOUBLE PRECISION NOT NULL,
	uptime_alpha    DOUBLE PRECISION NOT NULL,
	uptime_beta     DOUBLE PRECISION NOT NULL,
	audits          BIGINT NOT NULL,
	disqualified_ms BIGINT NOT NULL,
	dq_reason       TEXT NOT NULL,
	updated_ms      BIGINT NOT NULL
);

CREATE TABLE audits (
	id          {{ID}},
	edge        TEXT NOT NULL,
	video       TEXT NOT NULL,
	rendition   INTEGER NOT NULL,
	segment     INTEGER NOT NULL,
	shard       INTEGER NOT NULL,
	byte_offset BIGINT NOT NULL,
	length      BIGINT NOT NULL,
	issued_ms   BIGINT NOT NULL,
	attempts    INTEGER NOT NULL,
	state       TEXT NOT NULL,
	updated_ms  BIGINT NOT NULL
);
CREATE INDEX audits_state ON audits(state, edge);

INSERT INTO accounts (username, password_hash, role, created_ms) VALUES ('@mint', '!', 'system', 0);
INSERT INTO accounts (username, password_hash, role, created_ms) VALUES ('@revenue', '!', 'system', 0);
INSERT INTO balances (account_id, points) SELECT id, 0 FROM accounts WHERE role = 'system';
