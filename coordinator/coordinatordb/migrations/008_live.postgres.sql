-- Live channels (coordinator/live): channels with the hash of their stream
-- key, the accounts the admin allowed to broadcast, each broadcast's chain
-- (signed genesis and content key, base64) and its signed entries, the
-- recordings a channel's broadcasts were sealed into, and fork proofs.
-- Entries are append-only (triggers below): a chain's history never changes.

CREATE TABLE live_broadcasters (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id),
	allowed_ms BIGINT NOT NULL
);

CREATE TABLE live_channels (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	owner      BIGINT NOT NULL REFERENCES accounts(id),
	key_hash   TEXT NOT NULL UNIQUE,
	segment_ms BIGINT NOT NULL,
	state      TEXT NOT NULL,
	error      TEXT NOT NULL,
	chain      TEXT NOT NULL, -- the current or last broadcast's chain id, '' before the first
	created_ms BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
);

CREATE TABLE live_recordings (
	channel TEXT NOT NULL REFERENCES live_channels(id),
	video   TEXT NOT NULL,
	at_ms   BIGINT NOT NULL,
	PRIMARY KEY (channel, video)
);

CREATE TABLE live_chains (
	chain       TEXT PRIMARY KEY,
	channel     TEXT NOT NULL REFERENCES live_channels(id),
	origin      TEXT NOT NULL,
	genesis     TEXT NOT NULL,
	content_key TEXT NOT NULL,
	sealed      BIGINT NOT NULL,
	started_ms  BIGINT NOT NULL
);

CREATE TABLE live_entries (
	chain TEXT NOT NULL REFERENCES live_chains(chain),
	seq   BIGINT NOT NULL,
	entry TEXT NOT NULL,
	PRIMARY KEY (chain, seq)
);

CREATE TABLE live_forks (
	chain   TEXT NOT NULL REFERENCES live_chains(chain),
	seq     BIGINT NOT NULL,
	entry_a TEXT NOT NULL,
	entry_b TEXT NOT NULL,
	at_ms   BIGINT NOT NULL,
	PRIMARY KEY (chain, seq)
);

-- ledger_append_only (002) raises '<table> is append-only' for any table.
CREATE TRIGGER live_entries_append_only BEFORE UPDATE OR DELETE ON live_entries
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
