// Package coordinatordb is the coordinator's durable state (accounts, points ledger, settlements of proofs of delivery, reputation, audits) over SQLite or PostgreSQL.
//
// # Backends
//
// Open(ctx, "sqlite:PATH") opens an embedded SQLite file (modernc.org/sqlite:
// WAL, synchronous=FULL, busy_timeout, one connection, BEGIN IMMEDIATE);
// Open(ctx, "postgres://...") opens PostgreSQL through pgx's database/sql
// driver. Both run one portable schema (migrations/NNN_name.sql, with
// per-dialect NNN_name.<dialect>.sql where they differ) recorded in
// schema_migrations; migrating is idempotent and serialised across
// processes. Several processes may share one database: every race
// (a batch settled twice, a serial in two batches, two unlocks, a balance
// spent twice) is decided by a unique constraint or a conditional UPDATE
// inside a transaction, never by an in-process lock.
//
// # Ledger
//
// Points live in a double-entry, append-only ledger: ledger_transactions
// and ledger_entries are never updated or deleted (triggers refuse it), the
// entries of each transaction sum to zero, and balances caches SUM(amount)
// per account in the same transaction. The system account @mint pays edges
// Config.PointsPerMB per settled 1,000,000 bytes (so its balance is minus
// the points in circulation); unlocks pay @revenue. CheckLedger proves the
// invariants.
//
// # Settlement
//
// An edge submits a wire.SettlementBatch of (OrderLimit, best Order) pairs.
// Settle checks each pair (CheckPair for the stateless rules, then unknown
// video, entitlement, serial reuse and playback budget in the transaction),
// counts rejections per Reason, writes flow rows, and credits the edge's
// account, all in one transaction keyed by the batch id; a repeated id
// returns the stored result. A disqualified edge's earnings are frozen
// (recorded with the reason, not credited).
//
// The playback rule is a byte budget per (viewer key, video):
// PlaybackBudget(manifest) = 1.5 × the largest rendition's ciphertext
// bytes + 4 MiB. The budget is stored with the video's price (PutVideo); a
// pair that would push the settled total past it is rejected as
// beyond_playback_rate. It is a budget, not a rate, because settlement
// arrives in batches long after delivery, where elapsed-time rules would
// depend on when an edge chose to settle; a viewer that rewatches gets a
// fresh budget with a fresh viewer key.
//
// # Order granularity
//
// Viewers sign one Order per received shard, cumulative; an edge settles
// only the largest Order per limit, so the coordinator verifies two ed25519
// signatures (limit and order) per limit, whatever its size. With one limit
// per (edge, viewer, video) and shard-sized orders, verification costs a few
// signatures per viewer-session rather than per byte.
//
// # Reputation and audits
//
// Reputation is a pure beta model (ApplyAudit, ApplyUptime, ApplyBadShard)
// with forgetting factor 0.999 and disqualification below 0.96, persisted
// per edge with the reason and time. Audits store challenges with Storj's
// containment: a timeout re-asks the same challenge up to MaxAuditAttempts
// times in all before it counts as a failure (NextAudit).
package coordinatordb
