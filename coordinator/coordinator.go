package coordinator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// reissueRounds is how many placement rounds pass before fetch directives
// for assigned shards an edge still does not hold are sent again (its
// earlier fetch may have failed).
const reissueRounds = 5

// Config configures a Coordinator. Zero values take the defaults.
type Config struct {
	HeartbeatInterval time.Duration    // default 2s; told to nodes in RegisterResponse; an edge silent for 3 intervals leaves lookups
	PlacementInterval time.Duration    // default 2s; how often placement recomputes directives
	DemandHalfLife    time.Duration    // default 60s; decay of per-segment demand
	Seed              int64            // seeds the placement/ranking *rand.Rand
	Now               func() time.Time // default time.Now; tests inject
	Log               *slog.Logger
	Registry          *prometheus.Registry // if nil, httpserve.NewRegistry()

	// DB holds durable state (catalogue, keys, bans); nil means in memory.
	DB DB
	// AuthorizeKey decides whether the request may have video's content
	// key when Store is nil. nil lets everyone. With a Store, the key goes
	// only to authenticated accounts entitled to the video.
	AuthorizeKey func(r *http.Request, video string) error

	// Store holds accounts, points, settlements, reputation and audits,
	// and (through coordinatordb.Catalogue) the catalogue and bans, so they
	// survive a restart; it must also implement coordinatordb.Catalogue
	// (*coordinatordb.DB does). nil means no accounts and no points: the
	// coordinator behaves as before (keys per AuthorizeKey, no limits in
	// lookups, no audits). With a Store, DB defaults to NewStoreDB.
	Store coordinatordb.Store
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
	// UptimeInterval is how often the liveness sweep records every edge's
	// up/down in the store's uptime reputation; default 10 min.
	UptimeInterval time.Duration
	// HTTPClient fetches audit shards; default wire.NewHTTPClient().
	HTTPClient *http.Client

	// OriginPerServerRate turns on the AVARDO origin pool (see OriginPool):
	// how many segment requests per second one origin serves, where the
	// measured rate is segments asked for in lookups. 0 leaves the pool
	// off: lookups list every alive origin for every segment, as before.
	OriginPerServerRate float64
	// OriginHysteresis is the pool's release band in [0, 1); default 0.1.
	OriginHysteresis float64
}

// Coordinator is the control plane of one Swarmcast network. Its methods
// are safe for concurrent use.
type Coordinator struct {
	cfg     Config
	db      DB
	log     *slog.Logger
	metrics *metrics

	// mu guards st and rng. Lookups take the read lock; every other change
	// (registration, heartbeats, publishing, placement) the write lock.
	mu  sync.RWMutex
	st  *state
	rng *rand.Rand // per-node salts

	demandMu sync.Mutex
	demand   *DemandTracker

	placer *Placer // only Run's goroutine uses it
	rounds int     // placement rounds run, guarded by mu

	lookupSeed uint64
	lookupSeq  atomic.Uint64
	lookups    atomic.Int64
	badReports atomic.Int64

	playMu sync.Mutex
	plays  PlayAggregates

	scratch sync.Pool // *lookupScratch

	// Accounts, points and proofs (nil store: all disabled).
	store   coordinatordb.Store
	cat     coordinatordb.Catalogue
	csrfKey []byte // HMAC key deriving a session's CSRF token
	limits  *limitCache
	audit   *AuditChore

	uptimeMu   sync.Mutex
	lastUptime time.Time
	uptimeGone map[wire.NodeID]bool // edges swept since the last uptime record

	// Origin pool (nil pool: off). poolMu nests inside mu.
	poolMu     sync.Mutex
	pool       *OriginPool
	poolVideos int             // catalogue size the pool was built with
	poolDemand []SegmentDemand // demand as of the last placement round
	poolStale  bool            // rebuild before the next dispatch
	poolRoute  []int           // scratch for OriginPool.Route
}

// PlayAggregates sums the play reports received.
type PlayAggregates struct {
	Plays          int64
	Completed      int64
	Stalls         int64
	StallMS        float64
	PlayedMS       float64
	StartupMSTotal float64
	BadShards      int64
	EdgeBytes      int64 // bytes viewers got from edges
	OriginBytes    int64 // bytes viewers got from origins (or unknown sources)
}

type lookupScratch struct {
	res    lookupResult
	buf    []byte
	render func(*lookupResult) // renders res into buf, allocated once per scratch
	edges  []wire.NodeID       // distinct edges of the last result, when limits are wanted
	seen   map[wire.NodeID]struct{}
	// prefetch marks an edge's own placement lookup: it is not viewer
	// demand, and counting it would let placement feed on itself.
	prefetch bool
}

// New builds a coordinator and loads its durable state from cfg.DB.
func New(cfg Config) (*Coordinator, error) {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.PlacementInterval <= 0 {
		cfg.PlacementInterval = 2 * time.Second
	}
	if cfg.DemandHalfLife <= 0 {
		cfg.DemandHalfLife = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = httpserve.NewRegistry()
	}
	var cat coordinatordb.Catalogue
	if cfg.Store != nil {
		var ok bool
		if cat, ok = cfg.Store.(coordinatordb.Catalogue); !ok {
			return nil, fmt.Errorf("coordinator: Store %T does not implement coordinatordb.Catalogue", cfg.Store)
		}
		if cfg.Identity.Key == nil {
			cfg.Identity = identity.New()
		}
		if cfg.DB == nil {
			sdb, err := NewStoreDB(context.Background(), cat, cfg.Now)
			if err != nil {
				return nil, err
			}
			cfg.DB = sdb
		}
	}
	if cfg.DB == nil {
		cfg.DB = NewMemDB()
	}
	if cfg.LimitMaxBytes <= 0 {
		cfg.LimitMaxBytes = 64 << 20
	}
	if cfg.LimitTTL <= 0 {
		cfg.LimitTTL = 15 * time.Minute
	}
	if cfg.AuditInterval == 0 {
		cfg.AuditInterval = 30 * time.Second
	}
	if cfg.AuditEdgesPerRound <= 0 {
		cfg.AuditEdgesPerRound = 4
	}
	if cfg.AuditTimeout <= 0 {
		cfg.AuditTimeout = 15 * time.Second
	}
	if cfg.UptimeInterval <= 0 {
		cfg.UptimeInterval = 10 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.NewHTTPClient()
	}
	if cfg.OriginHysteresis == 0 {
		cfg.OriginHysteresis = 0.1
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	c := &Coordinator{
		cfg:        cfg,
		db:         cfg.DB,
		log:        cfg.Log.With("role", "coordinator"),
		st:         newState(cfg.HeartbeatInterval),
		rng:        rng,
		demand:     NewDemandTracker(cfg.DemandHalfLife, cfg.Now()),
		placer:     NewPlacer(rng.Int63()),
		lookupSeed: rng.Uint64(),
		store:      cfg.Store,
		cat:        cat,
	}
	if cfg.Store != nil {
		// The CSRF key derives from the coordinator's identity, so tokens
		// handed out at login stay valid across restarts.
		k := sha256.Sum256(append([]byte("swarmcast csrf v1\x00"), cfg.Identity.Key.Seed()...))
		c.csrfKey = k[:]
		c.limits = newLimitCache()
		c.audit = newAuditChore(c, rng.Int63())
	}
	if cfg.OriginPerServerRate != 0 {
		pool, err := NewOriginPool(OriginPoolConfig{PerServerRate: cfg.OriginPerServerRate, Hysteresis: cfg.OriginHysteresis}, cfg.Now())
		if err != nil {
			return nil, err
		}
		c.pool, c.poolStale = pool, true
	}
	c.scratch.New = func() any {
		sc := new(lookupScratch)
		sc.render = func(res *lookupResult) { sc.buf = res.appendJSON(sc.buf[:0]) }
		return sc
	}
	if err := c.load(context.Background()); err != nil {
		return nil, err
	}
	var err error
	if c.metrics, err = newMetrics(cfg.Registry, c); err != nil {
		return nil, err
	}
	if c.pool != nil {
		if err := cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "swarmcast_coordinator_origin_pool_active_origins",
			Help: "Origins the AVARDO origin pool keeps on (its stack depth).",
		}, func() float64 { _, n := c.OriginPoolActive(); return float64(n) })); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// load restores the catalogue and bans. Nodes are not restored: their next
// heartbeat answers Unknown, so they re-register with a full inventory.
func (c *Coordinator) load(ctx context.Context) error {
	videos, err := c.db.Videos(ctx)
	if err != nil {
		return fmt.Errorf("load catalogue: %w", err)
	}
	for _, rec := range videos {
		m, err := content.DecodeManifest(rec.Manifest)
		if err != nil {
			return fmt.Errorf("load catalogue: video %s: %w", rec.ID, err)
		}
		c.st.addVideo(rec, m)
	}
	bans, err := c.db.Bans(ctx)
	if err != nil {
		return fmt.Errorf("load bans: %w", err)
	}
	for _, b := range bans {
		c.st.ban(b.Node, b.Reason)
	}
	if c.store != nil {
		// Disqualification is the store's verdict; a ban written before a
		// crash could be missing, so the store's list is applied as well.
		dq, err := c.store.DisqualifiedEdges(ctx)
		if err != nil {
			return fmt.Errorf("load disqualified edges: %w", err)
		}
		for _, s := range dq {
			c.st.ban(s.Node, "disqualified: "+s.DisqualifyReason)
		}
	}
	return nil
}

// Run does the periodic chores (liveness sweep, placement and, with a
// Store, audits) until ctx is done. It returns after the audit chore's
// goroutine, its only other goroutine, has exited.
func (c *Coordinator) Run(ctx context.Context) error {
	if c.audit != nil && c.cfg.AuditInterval > 0 {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.audit.Run(ctx, c.cfg.AuditInterval)
		}()
		defer wg.Wait()
	}
	sweep := time.NewTicker(c.cfg.HeartbeatInterval)
	defer sweep.Stop()
	place := time.NewTicker(c.cfg.PlacementInterval)
	defer place.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			c.Sweep()
		case <-place.C:
			c.Place()
		}
	}
}

// Sweep drops nodes silent for more than 3 heartbeat intervals from the
// registry. (Lookups already skip them once they are that late; sweeping
// makes their next heartbeat answer Unknown.)
func (c *Coordinator) Sweep() {
	now := c.cfg.Now()
	c.mu.Lock()
	gone := c.st.sweep(now)
	c.mu.Unlock()
	for _, n := range gone {
		c.log.Info("node missed heartbeats, dropped", "node", n.id, "role", n.role, "last_seen", n.lastSeen)
		if err := c.db.DeleteNode(context.Background(), n.id); err != nil {
			c.log.Warn("sweep: delete node record", "node", n.id, "err", err)
		}
	}
	if c.store != nil {
		c.recordUptime(now, gone)
		c.limits.prune(now)
	}
}

// Place runs one placement round: fold demand, plan, queue directives.
func (c *Coordinator) Place() {
	now := c.cfg.Now()
	c.demandMu.Lock()
	c.demand.Fold(now)
	demand := c.demand.Demand()
	c.demandMu.Unlock()
	if c.pool != nil {
		c.poolMu.Lock()
		c.poolDemand = demand
		c.poolMu.Unlock()
	}

	c.mu.RLock()
	var st PlacementState
	nodes := make(map[wire.NodeID]*node)
	for _, n := range c.st.nodes {
		if n.role != wire.RoleEdge || !c.st.alive(n, now) {
			continue
		}
		nodes[n.id] = n
		st.Edges = append(st.Edges, PlacementEdge{
			ID: n.id, Region: n.region, DiskCapBytes: n.diskCap, UploadCapBytes: n.uploadCap,
			Held: maps.Clone(n.inventory), Assigned: maps.Clone(n.assigned),
		})
	}
	for _, d := range demand {
		v := c.st.videos[d.Key.Video]
		if v == nil || d.Key.Rendition >= len(v.m.Renditions) || d.Key.Segment >= len(v.m.Renditions[d.Key.Rendition].Segments) {
			continue
		}
		size := v.m.Renditions[d.Key.Rendition].Segments[d.Key.Segment].Size
		st.Segments = append(st.Segments, PlacementSegment{
			Key: d.Key, Rate: d.Rate, ByRegion: d.ByRegion,
			ShardBytes: int64(v.m.Params.ShardSize(int(size))), K: v.m.Params.K, NMax: v.m.Params.NMax,
		})
	}
	c.mu.RUnlock()

	plan := c.placer.Plan(now, st)
	targets := make(map[wire.NodeID]map[SegmentKey]ShardMask)
	for _, a := range plan {
		if targets[a.Edge] == nil {
			targets[a.Edge] = make(map[SegmentKey]ShardMask)
		}
		targets[a.Edge][a.Segment] = a.Shards
	}

	c.mu.Lock()
	var fetches, drops int
	c.rounds++
	reissue := c.rounds%reissueRounds == 0
	for _, n := range c.st.nodes {
		if n.role != wire.RoleEdge {
			continue
		}
		target := targets[n.id]
		if nodes[n.id] != n {
			target = nil // re-registered, died or banned since the snapshot
		}
		if target == nil && len(n.assigned) == 0 {
			continue
		}
		if target == nil {
			target = make(map[SegmentKey]ShardMask)
		}
		f, d := c.st.assign(n, target, reissue)
		fetches += f
		drops += d
	}
	c.mu.Unlock()
	c.metrics.directives.WithLabelValues(wire.ActionFetch).Add(float64(fetches))
	c.metrics.directives.WithLabelValues(wire.ActionDrop).Add(float64(drops))
	if fetches+drops > 0 {
		c.log.Debug("placement", "segments", len(st.Segments), "edges", len(st.Edges), "fetch_shards", fetches, "drop_shards", drops)
	}
}

// Stats is the network-wide summary.
func (c *Coordinator) Stats() wire.Stats {
	now := c.cfg.Now()
	c.mu.RLock()
	s := wire.Stats{
		Nodes:       len(c.st.nodes),
		AliveEdges:  c.st.aliveEdges(now),
		Videos:      len(c.st.videos),
		BannedNodes: len(c.st.banned),
	}
	c.mu.RUnlock()
	s.Lookups = c.lookups.Load()
	s.BadShards = c.badReports.Load()
	c.playMu.Lock()
	s.PlaysReported = c.plays.Plays
	c.playMu.Unlock()
	return s
}

// Plays returns the play-report aggregates.
func (c *Coordinator) Plays() PlayAggregates {
	c.playMu.Lock()
	defer c.playMu.Unlock()
	return c.plays
}

// Lookup ranks sources for a window of segments, as the HTTP route does,
// for in-process callers (simulator, benchmarks).
func (c *Coordinator) Lookup(req wire.LookupRequest) (wire.LookupResponse, error) {
	sc := c.scratch.Get().(*lookupScratch)
	defer c.scratch.Put(sc)
	var resp wire.LookupResponse
	err := c.lookup(&req, sc, func(res *lookupResult) { resp = res.response() })
	if err != nil {
		return resp, err
	}
	limits, err := c.orderLimits(context.Background(), req.ViewerID, req.Video, sc.edges)
	if err != nil {
		c.log.Warn("lookup: order limits", "viewer", req.ViewerID, "err", err)
	}
	for _, l := range limits {
		resp.Limits = append(resp.Limits, l.limit)
	}
	return resp, nil
}

// lookup runs one lookup into sc.res, hands it to render while the read
// lock still holds (results point into the index), and counts its demand.
func (c *Coordinator) lookup(req *wire.LookupRequest, sc *lookupScratch, render func(*lookupResult)) error {
	now := c.cfg.Now()
	tiebreak := splitmix64(c.lookupSeed + c.lookupSeq.Add(1))
	c.mu.RLock()
	err := c.st.lookup(req, now, tiebreak, &sc.res)
	sc.edges = sc.edges[:0]
	if err == nil {
		if c.pool != nil {
			c.routeOrigins(req, now, tiebreak, &sc.res)
		}
		render(&sc.res)
		if c.store != nil && req.ViewerID != "" {
			if sc.seen == nil {
				sc.seen = make(map[wire.NodeID]struct{})
			}
			sc.edges = sc.res.collectEdges(sc.edges, sc.seen)
		}
	}
	c.mu.RUnlock()
	segments := len(sc.res.segments)
	sc.res.reset()
	if err != nil {
		return err
	}
	c.lookups.Add(1)
	c.metrics.lookups.Inc()
	if !sc.prefetch {
		c.demandMu.Lock()
		c.demand.Record(req.Video, req.Rendition, req.From, req.From+segments, req.Region)
		c.demandMu.Unlock()
	}
	return nil
}

// statusOf maps an error to an HTTP status and message.
func statusOf(err error) (int, string) {
	var re *requestError
	if errors.As(err, &re) {
		return re.status, re.msg
	}
	return http.StatusInternalServerError, err.Error()
}

func (s *state) aliveEdges(now time.Time) int {
	n := 0
	for _, nd := range s.nodes {
		if nd.role == wire.RoleEdge && s.alive(nd, now) {
			n++
		}
	}
	return n
}
