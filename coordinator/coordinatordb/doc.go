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
// Every amount is bounded (rules.go) so that no balance or sum can
// overflow int64: at most MaxSupply (2^53-1) points circulate (the mint
// refuses to go below -MaxSupply, ErrSupplyExhausted), one grant moves at
// most MaxGrantPoints (10^9), a price is at most MaxGrantPoints, one order
// at most MaxOrderBytes (2^40), a playback budget at most 2^53 bytes, and
// PointsPerMB at most MaxPointsPerMB. Every balance therefore stays in
// [-MaxSupply, MaxSupply], exact in float64 JSON clients too.
//
// # Settlement
//
// An edge submits a wire.SettlementBatch of (OrderLimit, best Order) pairs.
// Settle first checks the edge is payable (EdgePayable), then each pair
// (CheckPair for the stateless rules, then unknown video, a viewer key
// bound to an account, self-dealing, entitlement, serial reuse and the
// playback budget in the transaction), counts rejections per Reason,
// writes flow rows, and credits the edge's account, all in one transaction
// keyed by the batch id. The same id with the same content returns the
// stored result; with other content it is a *BatchIDReusedError (409). A
// disqualified edge's earnings are frozen (recorded with the reason, not
// credited).
//
// Points pay only for real service to someone else:
//
//   - Self-dealing: a pair whose viewer key is bound to the account that
//     runs the edge is rejected as self_dealing (the coordinator issues no
//     limit for it either). A key bound to no account is never paid for.
//   - Budget per viewer ACCOUNT: PlaybackBudget(manifest) = 1.5 × the
//     largest rendition's ciphertext bytes + 4 MiB, stored with the video's
//     price (PutVideo), is charged per (viewer account, video) over all the
//     account's keys and all edges, for good: fresh keys and re-watches get
//     no fresh budget (a re-watch past it is served, unpaid). A pair that
//     would pass it is rejected as beyond_playback_rate. It is a budget,
//     not a rate, because settlement arrives in batches long after delivery,
//     where elapsed-time rules would depend on when an edge chose to settle.
//   - Alive and audited edges only (EdgePayable): the limit must be
//     coordinator-signed, and limits are issued only for edges a lookup
//     listed to that viewer (registered, heartbeating, unbanned then), so it
//     proves the edge was alive within the limit's life; and the edge must
//     have passed at least one storage audit and have none in containment.
//     Otherwise Settle returns *NotPayableError and writes nothing; the
//     endpoint answers 503 with Retry-After and the edge resends the batch.
//     Audits pick min(4, N) of the N alive edges holding shards every 30 s,
//     edges that have not passed one since the coordinator started first
//     (state.pickAudits), so a new edge is audited in its first round with
//     shards, unless more than 4 new edges arrived at once (then within
//     ⌈new/4⌉ rounds); its earnings wait on the edge until then.
//
// The collusion bound. An edge owner E colluding with a viewer account V ≠ E
// (V signs orders for bytes never sent) earns, per V and per video, at most
// PointsFor(PlaybackBudget, PointsPerMB) points in total over all of V's
// keys and all of E's edges: with the default 10 points per MB, 15 points
// per MB of the top rendition plus about 42 points (the 4 MiB slack). For a paid
// video V first pays the price to @revenue, so the collusion gains that
// bound minus the price; with its own keys alone E earns nothing. What an
// attacker can still multiply is accounts: sign-ups are the sybil cost
// (and a phantom edge earns nothing until it answers audits with the real
// bytes, that is until it really stores them). TestSelfDealingAndSybilKeys
// (package coordinator) asserts the bound exactly.
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
// CheckPair, ValidateBatch, PointsFor, PlaybackBudget (and the bounds
// MaxSupply, MaxGrantPoints, MaxOrderBytes, MaxPlaybackBudgetBytes), ApplyAudit,
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
