package accounting

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"math/rand"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// DB is what accounting keeps durably. *coordinatordb.DB implements it (over
// SQLite or PostgreSQL); the methods are grouped as in that package's files.
type DB interface {
	// accounts.go: accounts, edge and viewer-key bindings, API tokens.
	CreateAccount(ctx context.Context, username, password string, now time.Time) (coordinatordb.Account, error)
	Account(ctx context.Context, id int64) (coordinatordb.Account, error)
	AccountByName(ctx context.Context, username string) (coordinatordb.Account, error)
	SetRole(ctx context.Context, id int64, role coordinatordb.Role) error
	CreateAPIToken(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) (string, error)
	APITokenEdge(ctx context.Context, token string) (coordinatordb.Account, wire.NodeID, error)
	RevokeAPITokens(ctx context.Context, accountID int64) (int64, error)
	EdgeAccount(ctx context.Context, node wire.NodeID) (coordinatordb.Account, error)
	AccountEdge(ctx context.Context, accountID int64) (wire.NodeID, error)
	BindViewerKey(ctx context.Context, accountID int64, viewer wire.NodeID, now time.Time) error
	ViewerAccount(ctx context.Context, viewer wire.NodeID) (coordinatordb.Account, error)

	// sessions.go: password login (constant work; throttling is ours), session tokens.
	Login(ctx context.Context, username, password string, now time.Time) (coordinatordb.Session, error)
	SessionAccount(ctx context.Context, token string, now time.Time) (coordinatordb.Account, error)
	Logout(ctx context.Context, token string) error

	// ledger.go: the points ledger.
	Balance(ctx context.Context, accountID int64) (int64, error)
	Grant(ctx context.Context, accountID, points int64, memo string, now time.Time) error
	Entries(ctx context.Context, accountID int64, limit int) ([]coordinatordb.Entry, error)

	// entitlements.go: prices, playback budgets, unlocks.
	PutVideo(ctx context.Context, v coordinatordb.VideoTerms, now time.Time) error
	Video(ctx context.Context, id content.VideoID) (coordinatordb.VideoTerms, error)
	Unlock(ctx context.Context, accountID int64, video content.VideoID, now time.Time) (coordinatordb.UnlockResult, error)
	Entitled(ctx context.Context, accountID int64, video content.VideoID) (bool, error)
	AccountEntitlements(ctx context.Context, accountID int64) ([]content.VideoID, error)

	// settle.go and flows.go: proofs of delivery turned into points.
	Settle(ctx context.Context, b *wire.SettlementBatch, now time.Time) (coordinatordb.BatchResult, error)
	EdgeEarnings(ctx context.Context, edge wire.NodeID) (credited, frozen int64, err error)
	RejectionCounts(ctx context.Context) (map[coordinatordb.Reason]int64, error)
	FlowsToViewer(ctx context.Context, viewer wire.NodeID, since, until time.Time) ([]coordinatordb.Flow, error)
	FlowsFromEdge(ctx context.Context, edge wire.NodeID, since, until time.Time) ([]coordinatordb.Flow, error)

	// reputation.go and audits.go.
	EdgeReputation(ctx context.Context, node wire.NodeID) (coordinatordb.EdgeStatus, error)
	RecordUptime(ctx context.Context, node wire.NodeID, up bool, now time.Time) (coordinatordb.EdgeStatus, error)
	RecordBadShard(ctx context.Context, node wire.NodeID, reason string, now time.Time) (coordinatordb.EdgeStatus, error)
	DisqualifiedEdges(ctx context.Context) ([]coordinatordb.EdgeStatus, error)
	CreateAudit(ctx context.Context, c coordinatordb.Challenge, now time.Time) (coordinatordb.Audit, error)
	RecordAuditOutcome(ctx context.Context, id int64, outcome coordinatordb.AuditOutcome, now time.Time) (coordinatordb.Audit, coordinatordb.EdgeStatus, error)
	AuditTally(ctx context.Context, edge wire.NodeID) (coordinatordb.AuditTally, error)

	// btrpay.go: BTR workers' bindings and transcoding credits (workers.go).
	BindWorker(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) error
	AccountWork(ctx context.Context, accountID int64) ([]coordinatordb.WorkerEarning, []coordinatordb.WorkForfeit, error)

	// catalogue.go: bans and their lifting (bans.go).
	BanOf(ctx context.Context, node wire.NodeID) (coordinatordb.Ban, error)
	LiftBan(ctx context.Context, node wire.NodeID, by, note string, now time.Time) (coordinatordb.LiftedBan, error)
}

var _ DB = (*coordinatordb.DB)(nil)

// Network is what accounting asks of the control plane (the coordinator's
// registry and catalogue). Implementations must be safe for concurrent use.
type Network interface {
	// Manifest is a catalogued video's verified manifest.
	Manifest(video content.VideoID) (*content.Manifest, bool)
	// PickAudits chooses up to n challenges at now (see AuditTarget),
	// edges for which audited is false first: an edge is paid only after
	// its first passed audit, so a new edge should not wait for chance.
	PickAudits(now time.Time, rng *rand.Rand, n int, audited func(wire.NodeID) bool) []AuditTarget
	// AliveOrigins lists the shard-server base URLs of alive origins.
	AliveOrigins(now time.Time) []string
	// EdgeLiveness maps every registered, unbanned edge to whether it is
	// alive at now.
	EdgeLiveness(now time.Time) map[wire.NodeID]bool
	// Ban persists a ban and removes the node from lookups and placement;
	// Banned reports whether it already is.
	Ban(ctx context.Context, node wire.NodeID, reason string) error
	Banned(node wire.NodeID) bool
	// Unban lets a node whose ban was lifted in the store (DB.LiftBan) back
	// into lookups and placement at once (soft state only).
	Unban(node wire.NodeID)
}

// AuditTarget is one challenge chosen for a round and the base URL of the
// edge's shard server to ask it at.
type AuditTarget struct {
	Addr      string
	Challenge coordinatordb.Challenge
}

// Config configures a Service. Zero values take the defaults.
type Config struct {
	// Identity signs order limits. Its public key must be among the
	// store's coordinatordb.Config.CoordinatorKeys for settlement to
	// accept them. Zero: a fresh key (tests).
	Identity identity.Identity
	// DefaultPrice is the price in points of a newly published video
	// (0 = free); admins change it per video.
	DefaultPrice int64
	// LimitMaxBytes caps one order limit (one viewer, one edge, one
	// video); default 64 MiB, and never more than the video's playback budget.
	LimitMaxBytes int64
	// LimitTTL is an order limit's lifetime; default 15 min. A cached limit
	// is reused until LimitTTL/5 before it expires.
	LimitTTL time.Duration
	// AuditInterval is the audit chore's period; default 30 s; negative
	// disables the loop (tests drive AuditRound directly).
	AuditInterval time.Duration
	// AuditEdgesPerRound is how many random alive edges each audit round
	// challenges; default 4.
	AuditEdgesPerRound int
	// AuditTimeout bounds one audit fetch; default 15 s (Storj's minimum).
	AuditTimeout time.Duration
	// UptimeInterval is how often every edge's up/down is recorded in its
	// uptime reputation; default 10 min.
	UptimeInterval time.Duration
	// HTTPClient fetches audit shards; default wire.NewHTTPClient().
	HTTPClient *http.Client
	// LoginThrottle slows password guessing per client and per username
	// (in memory); the zero value is the documented defaults.
	LoginThrottle LoginThrottle
	// OnSettled, if set, is told the bytes of delivery accepted by each
	// settled (not replayed) batch, as they are committed: the proven
	// figure of the coordinator's load overview. It must not block.
	OnSettled func(edge wire.NodeID, acceptedBytes int64)
	Seed      int64            // seeds the audit chore's choices
	Now       func() time.Time // default time.Now
	Log       *slog.Logger
	Registry  prometheus.Registerer // metrics; required (the coordinator's registry)
}

func (c Config) withDefaults() Config {
	if c.Identity.Key == nil {
		c.Identity = identity.New()
	}
	if c.LimitMaxBytes <= 0 {
		c.LimitMaxBytes = 64 << 20
	}
	if c.LimitTTL <= 0 {
		c.LimitTTL = 15 * time.Minute
	}
	if c.AuditInterval == 0 {
		c.AuditInterval = 30 * time.Second
	}
	if c.AuditEdgesPerRound <= 0 {
		c.AuditEdgesPerRound = 4
	}
	if c.AuditTimeout <= 0 {
		c.AuditTimeout = 15 * time.Second
	}
	if c.UptimeInterval <= 0 {
		c.UptimeInterval = 10 * time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = wire.NewHTTPClient()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Service is the coordinator's accounting subsystem: accounts and
// sessions, the points ledger and entitlements, order limits, settlement
// of proofs of delivery, flows, audits (proof of storage), uptime and
// reputation. Its endpoints are Routes; its chores run in Run. It holds no
// soft state of the network (what it needs of the registry and catalogue
// it asks through Network), only its accounts' running players' gateways. Methods are safe for concurrent use.
type Service struct {
	cfg     Config
	db      DB
	net     Network
	log     *slog.Logger
	metrics *metrics
	csrfKey []byte // HMAC key deriving a session's CSRF token
	logins  *loginGuard
	limits  *limitCache
	audit   *AuditChore
	uptime  uptimeRecorder
	players *playerGateways // running players' gateways: account soft state (players.go)
}

// New builds the accounting service over db, asking net about the network.
func New(cfg Config, db DB, net Network) *Service {
	cfg = cfg.withDefaults()
	m := newMetrics(cfg.Registry)
	// The CSRF key derives from the coordinator's identity, so tokens
	// handed out at login stay valid across restarts.
	k := sha256.Sum256(append([]byte("swarmcast csrf v1\x00"), cfg.Identity.Key.Seed()...))
	dk := sha256.Sum256(append([]byte("swarmcast device v1\x00"), cfg.Identity.Key.Seed()...))
	s := &Service{
		cfg: cfg, db: db, net: net, log: cfg.Log, metrics: m,
		csrfKey: k[:],
		logins:  newLoginGuard(cfg.LoginThrottle, dk[:]),
		limits:  newLimitCache(),
		players: newPlayerGateways(),
	}
	s.audit = newAuditChore(s, rand.New(rand.NewSource(cfg.Seed)).Int63())
	return s
}

// Identity is the key order limits are signed with.
func (s *Service) Identity() identity.Identity { return s.cfg.Identity }

// Run runs the audit chore every AuditInterval until ctx is done (at once
// if the interval is negative).
func (s *Service) Run(ctx context.Context) {
	if s.cfg.AuditInterval < 0 {
		return
	}
	s.audit.Run(ctx, s.cfg.AuditInterval)
}

// AuditRound runs one audit round now (tests drive the chore with it).
func (s *Service) AuditRound(ctx context.Context) []AuditResult { return s.audit.Round(ctx) }

// AuditBytes is what audits have cost so far: bytes fetched from edges and
// from origins. Compare with the bytes edges served to judge the overhead.
func (s *Service) AuditBytes() (fromEdges, fromOrigins int64) {
	return s.audit.edgeBytes.Load(), s.audit.originBytes.Load()
}

// Swept is told of each liveness sweep and the edges it dropped: it
// records uptime every UptimeInterval and drops expired cached limits.
func (s *Service) Swept(now time.Time, droppedEdges []wire.NodeID) {
	s.recordUptime(now, droppedEdges)
	s.audit.forget(droppedEdges)
	s.limits.prune(now)
	s.players.prune(now)
}

// Disqualified lists disqualified edges and why; the control plane bans
// them at start (a ban written before a crash could be missing).
func (s *Service) Disqualified(ctx context.Context) (map[wire.NodeID]string, error) {
	dq, err := s.db.DisqualifiedEdges(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[wire.NodeID]string, len(dq))
	for _, st := range dq {
		out[st.Node] = st.DisqualifyReason
	}
	return out, nil
}

// ProvenBadShard disqualifies an edge at once on a transferable proof
// that it served a bad shard (wire.ProveBadShard); the caller bans it.
func (s *Service) ProvenBadShard(ctx context.Context, node wire.NodeID, detail string) error {
	if _, err := s.db.RecordBadShard(ctx, node, detail, s.cfg.Now()); err != nil {
		return err
	}
	s.metrics.disqualified.WithLabelValues("bad_shard_proof").Inc()
	return nil
}

// uptimeRecorder batches uptime observations between records.
type uptimeRecorder struct {
	mu   sync.Mutex
	last time.Time
	gone map[wire.NodeID]bool // edges swept since the last record: down
}
