package coordinatordb

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Store is the coordinator's durable state, grouped by concern. *DB
// implements it over SQLite or PostgreSQL; all times are passed in so the
// callers' clocks (and fake clocks in tests) rule.
type Store interface {
	Accounts
	Sessions
	Ledger
	Videos
	Settlement
	Flows
	Reputation
	Audits
	Close() error
}

// Accounts: sign-up, roles, edge and viewer-key bindings, API tokens.
type Accounts interface {
	CreateAccount(ctx context.Context, username, password string, now time.Time) (Account, error)
	Account(ctx context.Context, id int64) (Account, error)
	AccountByName(ctx context.Context, username string) (Account, error)
	SetRole(ctx context.Context, id int64, role Role) error
	BindEdge(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) error
	CreateAPIToken(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) (string, error)
	APITokenEdge(ctx context.Context, token string) (Account, wire.NodeID, error)
	RevokeAPIToken(ctx context.Context, token string) error
	EdgeAccount(ctx context.Context, node wire.NodeID) (Account, error)
	BindViewerKey(ctx context.Context, accountID int64, viewer wire.NodeID, now time.Time) error
}

// Sessions: password login with lockout, session tokens.
type Sessions interface {
	Login(ctx context.Context, username, password string, now time.Time) (Session, error)
	SessionAccount(ctx context.Context, token string, now time.Time) (Account, error)
	Logout(ctx context.Context, token string) error
	PruneExpired(ctx context.Context, now time.Time) (int64, error)
}

// Ledger: the double-entry, append-only points ledger.
type Ledger interface {
	Balance(ctx context.Context, accountID int64) (int64, error)
	Grant(ctx context.Context, accountID, points int64, memo string, now time.Time) error
	Entries(ctx context.Context, accountID int64, limit int) ([]Entry, error)
	CheckLedger(ctx context.Context) error
	MintAccountID() int64
	RevenueAccountID() int64
}

// Videos: prices, playback budgets, unlocks and entitlements.
type Videos interface {
	PutVideo(ctx context.Context, v VideoTerms, now time.Time) error
	Video(ctx context.Context, id content.VideoID) (VideoTerms, error)
	Unlock(ctx context.Context, accountID int64, video content.VideoID, now time.Time) (UnlockResult, error)
	Entitled(ctx context.Context, accountID int64, video content.VideoID) (bool, error)
}

// Settlement: proofs of delivery turned into points.
type Settlement interface {
	Settle(ctx context.Context, b *wire.SettlementBatch, now time.Time) (BatchResult, error)
	Batch(ctx context.Context, id string) (BatchResult, error)
	EdgeBatches(ctx context.Context, edge wire.NodeID, limit int) ([]BatchResult, error)
	EdgeEarnings(ctx context.Context, edge wire.NodeID) (credited, frozen int64, err error)
	RejectionCounts(ctx context.Context) (map[Reason]int64, error)
	ViewerUsage(ctx context.Context, viewer wire.NodeID, video string) (int64, error)
}

// Flows: who fed whom, from settled orders.
type Flows interface {
	FlowsToViewer(ctx context.Context, viewer wire.NodeID, since, until time.Time) ([]Flow, error)
	FlowsFromEdge(ctx context.Context, edge wire.NodeID, since, until time.Time) ([]Flow, error)
}

// Reputation: beta reputation and disqualification per edge.
type Reputation interface {
	EdgeReputation(ctx context.Context, node wire.NodeID) (EdgeStatus, error)
	RecordAudit(ctx context.Context, node wire.NodeID, success bool, now time.Time) (EdgeStatus, error)
	RecordUptime(ctx context.Context, node wire.NodeID, up bool, now time.Time) (EdgeStatus, error)
	RecordBadShard(ctx context.Context, node wire.NodeID, reason string, now time.Time) (EdgeStatus, error)
	DisqualifiedEdges(ctx context.Context) ([]EdgeStatus, error)
}

// Audits: challenge bookkeeping with containment.
type Audits interface {
	CreateAudit(ctx context.Context, c Challenge, now time.Time) (Audit, error)
	Audit(ctx context.Context, id int64) (Audit, error)
	OpenAudits(ctx context.Context, edge wire.NodeID, limit int) ([]Audit, error)
	RecordAuditOutcome(ctx context.Context, id int64, outcome AuditOutcome, now time.Time) (Audit, EdgeStatus, error)
}

var _ Store = (*DB)(nil)
