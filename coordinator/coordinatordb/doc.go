// Package coordinatordb is the coordinator's durable state (catalogue and bans, accounts, points ledger, entitlements, settlements of proofs of delivery, flows, reputation, audits) over SQLite or PostgreSQL.
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
// # Order granularity and cost
//
// The coordinator verifies two ed25519 signatures per settled pair (limit
// and order) whatever the amount, so its cost scales with limits, not
// bytes. The chosen granularity: a viewer asks for one limit per edge per
// 32 MiB (MaxBytes), and signs a cumulative Order every 256 KiB received;
// the edge verifies each Order before sending more and settles only the
// largest. Per settled 10^9 bytes the coordinator verifies ≈ 60 signatures
// (≈ 9 ms of CPU on the 2-core CI machine, BenchmarkVerifyPerGB) and an edge
// ≈ 3,815 (≈ 0.6 s). Settle spreads signature checks of big batches over
// the CPUs before taking the write lock.
//
// # API
//
// *DB's methods are grouped by concern, one file each: accounts.go
// (accounts, edge and viewer-key bindings, API tokens), sessions.go
// (password login in constant work, session tokens), ledger.go (the points
// ledger), entitlements.go (video terms, unlocks, entitlements),
// settle.go (proofs of delivery turned into points), flows.go (who fed
// whom), reputation.go, audits.go and catalogue.go (signed manifests,
// content keys and bans). This package declares no interface of its own:
// each consumer declares the one it needs (coordinator.Store,
// accounting.DB) and *DB satisfies them. The pure rules callers may use
// directly: ValidateUsername, HashPassword, CheckPassword, ValidatePassword,
// CheckPair, ValidateBatch, PointsFor, PlaybackBudget, ApplyAudit,
// ApplyUptime, ApplyBadShard, NextAudit. The wire side (OrderLimit, Order,
// ServedShardReceipt, SettlementBatch and their Sign/Verify functions,
// ProveBadShard) lives in package wire.
//
// # Reputation and audits
//
// Reputation is a pure beta model (ApplyAudit, ApplyUptime, ApplyBadShard)
// with forgetting factor 0.999 and disqualification below 0.96, persisted
// per edge with the reason and time. Audits store challenges with Storj's
// containment: a timeout re-asks the same challenge up to MaxAuditAttempts
// times in all before it counts as a failure (NextAudit).
package coordinatordb
