package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/coordinator/playback"
	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// reissueRounds is how many placement rounds pass before fetch directives
// for assigned shards an edge still does not hold are sent again (its
// earlier fetch may have failed).
const reissueRounds = 5

// ReissueRounds is reissueRounds, for the simulator (package sim), which
// replays the coordinator's placement rounds.
const ReissueRounds = reissueRounds

// Config configures a Coordinator. Zero values take the defaults.
type Config struct {
	HeartbeatInterval time.Duration    // default 2s; told to nodes in RegisterResponse; an edge silent for 3 intervals leaves lookups
	PlacementInterval time.Duration    // default 2s; how often placement recomputes directives
	DemandHalfLife    time.Duration    // default 60s; decay of per-segment demand
	Seed              int64            // seeds the placement/ranking *rand.Rand
	Now               func() time.Time // default time.Now; tests inject
	Log               *slog.Logger
	Registry          *prometheus.Registry // if nil, httpserve.NewRegistry()

	// PlacementMinViewers is how many distinct viewers must ask for a
	// segment before placement replicates it (Placer.MinViewers); 0 takes
	// DefaultPlacementMinViewers, 1 replicates on any demand.
	PlacementMinViewers int
	// PredictLead is how far ahead of a viewer's lookup placement fills
	// caches with predicted demand (DemandTracker.SetPrediction): the
	// segments within PredictLead of media past the lookup's window. 0
	// takes DefaultPredictLead(PlacementInterval) (17 s); negative turns
	// prediction off (placement then follows measured demand alone).
	PredictLead time.Duration

	// Store holds everything durable: the catalogue and bans this package
	// rebuilds its index from, and what the accounting subsystem keeps
	// (accounts, points, settlements, reputation, audits). Required: open
	// one with coordinatordb.Open (tests and the demo use SQLite in a
	// temporary directory).
	Store Store
	// Accounting configures the accounting subsystem (identity, prices,
	// limits, audits, uptime, login throttle; see accounting.Config). Its
	// Seed, Now, Log and Registry are the coordinator's own and are set by
	// New.
	Accounting accounting.Config
	// Live configures the live-channel subsystem (coordinator/live); its
	// Now, Log and Registry are the coordinator's own and are set by New.
	Live live.Config
	// Playback configures the HTTP playback fallback (its origin client
	// and header timeout); Now, Log and Registry are set by New.
	Playback playback.Config

	// OriginPerServerRate turns on the AVARDO origin pool (see OriginPool):
	// how many segment requests per second one origin serves, where the
	// measured rate is segments asked for in lookups. 0 leaves the pool
	// off: lookups list every alive origin for every segment, as before.
	OriginPerServerRate float64
	// OriginHysteresis is the pool's release band in [0, 1); default 0.1.
	OriginHysteresis float64

	// PricePerGB prices origin egress in USD per 10^9 bytes, for the
	// metering figure "money saved" (edge egress at this price); default
	// DefaultPricePerGB. Negative is refused by New.
	PricePerGB float64
	// OverviewBucket and OverviewWindow shape the admin load overview:
	// bucket width (default 10 s) and how much history it keeps (default
	// 1 h). Each closed bucket is pushed to admin event streams.
	OverviewBucket time.Duration
	OverviewWindow time.Duration

	// OriginKeys, RelayKeys and WorkerKeys are the node ids (public keys)
	// allowed to register as origins, relays and BTR workers, besides those
	// allowed at run time through wire.PathNodeKeys (kept in the store;
	// nodekeys.go). Nobody else may: an origin publishes the catalogue and
	// its content keys, a relay receives live pushes and sits in the trees,
	// a worker's signed outputs decide what is packaged.
	OriginKeys []wire.NodeID
	RelayKeys  []wire.NodeID
	WorkerKeys []wire.NodeID
}

// DefaultPricePerGB is Config.PricePerGB's default: a typical CDN egress
// price in USD per 10^9 bytes.
const DefaultPricePerGB = 0.02

// Store is the durable store a coordinator runs on: its catalogue and bans
// plus everything the accounting subsystem keeps. *coordinatordb.DB
// implements it.
type Store interface {
	accounting.DB
	live.DB
	PutCatalogueVideo(ctx context.Context, v coordinatordb.CatalogueVideo, now time.Time) error
	CatalogueVideos(ctx context.Context) ([]coordinatordb.CatalogueVideo, error)
	PutBan(ctx context.Context, node wire.NodeID, reason string, now time.Time) error
	Bans(ctx context.Context) ([]coordinatordb.Ban, error)
	AllowNodeKey(ctx context.Context, role wire.Role, node wire.NodeID, now time.Time) error
	RevokeNodeKey(ctx context.Context, role wire.Role, node wire.NodeID) (bool, error)
	NodeKeyAllowed(ctx context.Context, role wire.Role, node wire.NodeID) (bool, error)
	NodeKeys(ctx context.Context) ([]coordinatordb.NodeKey, error)
	// The admin tables (admin.go): by key range, never over the ledger.
	AccountsPage(ctx context.Context, after int64, limit int) ([]coordinatordb.AccountRow, error)
	ReputationsBetween(ctx context.Context, first, last wire.NodeID) (map[wire.NodeID]coordinatordb.EdgeStatus, error)
	AccountViewerKeys(ctx context.Context, accountID int64) ([]wire.NodeID, error)
	DefaultEdgeStatus(node wire.NodeID) coordinatordb.EdgeStatus
}

var _ Store = (*coordinatordb.DB)(nil)

// accountingService is what the control plane asks of the accounting
// subsystem (*accounting.Service): order limits for a lookup, the key
// route's rule, the play-report route's rule, a publish's terms, a proven
// bad shard's disqualification, who is disqualified at start, news of each
// liveness sweep, and whether a request comes from an admin (the control
// plane's own admin routes).
type accountingService interface {
	AuthorizeAdmin(r *http.Request) error
	OrderLimits(ctx context.Context, viewer wire.NodeID, video content.VideoID, edges []wire.NodeID, keys accounting.EdgeKeys, out []*accounting.IssuedLimit) ([]*accounting.IssuedLimit, error)
	AppendBinaryOrderLimits(ctx context.Context, b []byte, viewer wire.NodeID, video content.VideoID, edges []wire.NodeID, keys accounting.EdgeKeys, at []uint32, out []*accounting.IssuedLimit) ([]byte, []*accounting.IssuedLimit, error)
	AuthorizeKey(r *http.Request, video content.VideoID) error
	AuthorizePlayReport(r *http.Request, viewer wire.NodeID) error
	VideoPublished(ctx context.Context, m *content.Manifest) error
	ProvenBadShard(ctx context.Context, node wire.NodeID, detail string) error
	Disqualified(ctx context.Context) (map[wire.NodeID]string, error)
	Swept(now time.Time, droppedEdges []wire.NodeID)
}

// Coordinator is the control plane of one Swarmcast network: registry and
// liveness, inventory, catalogue, lookups, placement and the origin pool,
// all soft state rebuilt from heartbeats, plus the accounting subsystem it
// owns. Its methods are safe for concurrent use.
type Coordinator struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *metrics

	// mu guards st and rng. Lookups take the read lock; every other change
	// (registration, heartbeats, publishing, placement) the write lock.
	mu  sync.RWMutex
	st  *state
	rng *rand.Rand // per-node salts

	demandMu sync.Mutex
	demand   *DemandTracker
	// demandIntake queues lookups' demand while demandMu is busy, so a
	// lookup never waits for a placement round's fold (lookupdemand.go).
	demandIntake demandIntake
	// videoDemand is each video's decayed lookup rate summed over its
	// segments, as of the last placement round (guarded by demandMu; the
	// admin video table reads it). Replaced, never mutated.
	videoDemand map[content.VideoID]float64

	// placeMu serialises placement rounds (Run's ticker and callers of
	// Place, such as tests triggering a round); it guards placer and nests
	// outside mu and demandMu.
	// banGen counts bans and unbans applied here (guarded by mu), so a
	// store snapshot older than one of them is not applied (syncBans).
	banGen uint64

	placeMu sync.Mutex
	placer  *Placer
	rounds  int // placement rounds run, guarded by mu

	lookupSeed uint64
	lookupSeq  atomic.Uint64
	lookups    atomic.Int64
	badReports atomic.Int64

	playMu sync.Mutex
	plays  PlayAggregates
	// videoUsage sums play reports per catalogued video (guarded by
	// playMu; bounded by the catalogue, as reports name catalogued videos).
	videoUsage map[content.VideoID]*videoUsage

	// The admin load overview (admin.go): overview is the sans-IO core,
	// guarded by overviewMu; events fans closed buckets out to admin
	// event streams.
	overviewMu     sync.Mutex
	overview       *LoadOverview
	overviewPushed int64 // overview.Closed() at the last PublishOverview
	// fallbackEgress, when set, is the HTTP playback fallback's cumulative
	// count of ciphertext bytes relayed from origins to browsers (wire it
	// to the fallback's counter where the fallback is built); fallbackSeen
	// is its value at the last sample (sampleFallback). Guarded by
	// overviewMu.
	fallbackEgress func() int64
	fallbackSeen   int64
	events         *eventHub

	scratch sync.Pool // *lookupScratch

	// Node-request authentication (nodeauth.go): signatures accepted
	// within the freshness window, the admitted node keys per role
	// (nodekeys.go; the cached part guarded by keysMu, which nests outside
	// mu), and the slots bounding publish bodies read at once.
	replays      replayCache
	keysMu       sync.RWMutex
	keys         admittedKeys
	publishSlots chan struct{}

	// The accounting subsystem: acct is the narrow view the control plane
	// uses; accounting the service itself, for its routes and chores.
	acct       accountingService
	accounting *accounting.Service

	// live is the live-channel subsystem (coordinator/live).
	live *live.Service

	// web is the web app: pages for viewers and admins (coordinator/web).
	web *web.App
	// The HTTP playback fallback (/watch), for browsers without a player.
	playback *playback.Service

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
	res lookupResult
	buf []byte
	// binary asks for the wire.ContentTypeLookupBinary answer, not JSON.
	binary bool
	// renderJSON and renderBinary render res into buf (allocated once per
	// scratch).
	renderJSON, renderBinary func(*lookupResult)
	// nodes is the last result's node table (distinct nodes in order of
	// first appearance) and marks each one's position in it.
	nodes []*node
	marks nodeMarks
	// edges are the distinct edges of the last result, when limits are
	// wanted, edgeAt their positions in nodes and edgeSlots their node
	// slots (which key the limit cache).
	edges     []wire.NodeID
	edgeAt    []uint32
	edgeSlots accounting.EdgeKeys
	limits    []*accounting.IssuedLimit // edges' limits (aligned; nil: none)
	// prefetch marks an edge's own placement lookup: it is not viewer
	// demand, and counting it would let placement feed on itself.
	prefetch bool
	// pool is the pool this scratch belongs to (Close puts it back).
	pool *sync.Pool
}

// Close puts sc back in its pool: fasthttp closes it (a user value of
// ServeHotLookup's request) once the answer in sc.buf has been written.
func (sc *lookupScratch) Close() error {
	sc.pool.Put(sc)
	return nil
}

// New builds a coordinator and loads its durable state from cfg.Store.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Store == nil {
		return nil, errors.New("coordinator: no store: open one with coordinatordb.Open (SQLite file or PostgreSQL)")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.PlacementInterval <= 0 {
		cfg.PlacementInterval = 2 * time.Second
	}
	if cfg.DemandHalfLife <= 0 {
		cfg.DemandHalfLife = 60 * time.Second
	}
	if cfg.PlacementMinViewers <= 0 {
		cfg.PlacementMinViewers = DefaultPlacementMinViewers
	}
	if cfg.PredictLead == 0 {
		cfg.PredictLead = DefaultPredictLead(cfg.PlacementInterval)
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
	if cfg.OriginHysteresis == 0 {
		cfg.OriginHysteresis = 0.1
	}
	switch {
	case cfg.PricePerGB == 0:
		cfg.PricePerGB = DefaultPricePerGB
	case cfg.PricePerGB < 0 || math.IsNaN(cfg.PricePerGB) || math.IsInf(cfg.PricePerGB, 0):
		return nil, fmt.Errorf("coordinator: price per GB %v: want a finite price of 0 or more", cfg.PricePerGB)
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	placer := NewPlacer(rng.Int63())
	placer.MinViewers = cfg.PlacementMinViewers
	c := &Coordinator{
		cfg:        cfg,
		store:      cfg.Store,
		log:        cfg.Log.With("role", "coordinator"),
		st:         newState(cfg.HeartbeatInterval),
		rng:        rng,
		demand:     NewDemandTracker(cfg.DemandHalfLife, cfg.Now()),
		placer:     placer,
		lookupSeed: rng.Uint64(),

		publishSlots: make(chan struct{}, maxConcurrentPublishes),

		videoUsage: make(map[content.VideoID]*videoUsage),
		overview:   NewLoadOverview(cfg.OverviewBucket, cfg.OverviewWindow, cfg.Now()),
		events:     newEventHub(maxEventSubscribers),
	}
	keys, err := newAdmittedKeys(cfg)
	if err != nil {
		return nil, err
	}
	c.keys = keys
	acfg := cfg.Accounting
	acfg.Seed, acfg.Now, acfg.Log, acfg.Registry = rng.Int63(), cfg.Now, c.log, cfg.Registry
	acfg.OnSettled = c.recordSettled
	acct := accounting.New(acfg, cfg.Store, (*network)(c))
	c.acct, c.accounting = acct, acct
	lcfg := cfg.Live
	lcfg.Now, lcfg.Log, lcfg.Registry = cfg.Now, c.log, cfg.Registry
	lv, err := live.New(context.Background(), lcfg, cfg.Store, acct, (*liveNetwork)(c))
	if err != nil {
		return nil, err
	}
	c.live = lv
	c.web = web.New(web.Config{Accounts: acct, Catalogue: (*webCatalogue)(c), Admin: (*webAdmin)(c), Now: cfg.Now, Log: c.log})
	pcfg := cfg.Playback
	pcfg.Now, pcfg.Log, pcfg.Registry = cfg.Now, c.log, cfg.Registry
	c.playback = playback.New(pcfg, (*network)(c), acct)
	c.fallbackEgress = c.playback.OriginEgressBytes
	if cfg.OriginPerServerRate != 0 {
		pool, err := NewOriginPool(OriginPoolConfig{PerServerRate: cfg.OriginPerServerRate, Hysteresis: cfg.OriginHysteresis}, cfg.Now())
		if err != nil {
			return nil, err
		}
		c.pool, c.poolStale = pool, true
	}
	c.scratch.New = func() any {
		sc := &lookupScratch{pool: &c.scratch}
		sc.renderJSON = func(res *lookupResult) { sc.buf = res.appendJSON(sc.buf[:0]) }
		sc.renderBinary = func(res *lookupResult) { sc.buf = res.appendBinary(sc.buf[:0], sc.nodes, &sc.marks) }
		return sc
	}
	if cfg.PredictLead > 0 {
		c.demand.SetPrediction(c.predictionDepth)
	}
	if err := c.load(context.Background()); err != nil {
		return nil, err
	}
	c.metrics = newMetrics(cfg.Registry, c)
	return c, nil
}

// predictionDepth is a rendition's PredictionDepth from its catalogued
// manifest (none for an unknown one). The demand tracker calls it from Fold
// with demandMu held: demandMu → mu is the only nesting of the two (lookups
// release mu before they take demandMu).
func (c *Coordinator) predictionDepth(video content.VideoID, rendition int) PredictionDepth {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v := c.st.videos[video]
	if v == nil || rendition < 0 || rendition >= len(v.segs) {
		return PredictionDepth{}
	}
	return PredictionDepthFor(c.cfg.PredictLead, time.Duration(v.m.TargetDuration)*time.Microsecond, len(v.segs[rendition]))
}

// Playback is the coordinator's HTTP playback fallback; an overview reads
// its origin egress through playback.EgressSource.
func (c *Coordinator) Playback() *playback.Service { return c.playback }

// Live is the coordinator's live-channel subsystem.
func (c *Coordinator) Live() *live.Service { return c.live }

// Accounting is the coordinator's accounting subsystem (accounts, points,
// settlement, audits); tests and tools drive its chores through it.
func (c *Coordinator) Accounting() *accounting.Service { return c.accounting }

// load restores the catalogue and bans. Nodes are not restored: their next
// heartbeat answers Unknown, so they re-register with a full inventory.
func (c *Coordinator) load(ctx context.Context) error {
	videos, err := c.store.CatalogueVideos(ctx)
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
	bans, err := c.storedBans(ctx)
	if err != nil {
		return err
	}
	for node, reason := range bans {
		c.st.ban(node, reason)
	}
	return nil
}

// storedBans is every ban the store holds: the ban rows, and the
// disqualified edges (disqualification is the accounting verdict; a ban
// written before a crash could be missing, so its list counts as well).
func (c *Coordinator) storedBans(ctx context.Context) (map[wire.NodeID]string, error) {
	bans, err := c.store.Bans(ctx)
	if err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	dq, err := c.acct.Disqualified(ctx)
	if err != nil {
		return nil, fmt.Errorf("load disqualified edges: %w", err)
	}
	out := make(map[wire.NodeID]string, len(bans)+len(dq))
	for node, reason := range dq {
		out[node] = "disqualified: " + reason
	}
	for _, b := range bans {
		out[b.Node] = b.Reason
	}
	return out, nil
}

// syncBans makes the in-memory bans the store's, so a ban or an unban made
// through another coordinator on the same database takes effect here by
// the next sweep. A ban or unban applied here while the store was read
// (banGen moved) wins: the snapshot is dropped and the next sweep retries.
func (c *Coordinator) syncBans(ctx context.Context) {
	c.mu.RLock()
	gen := c.banGen
	c.mu.RUnlock()
	want, err := c.storedBans(ctx)
	if err != nil {
		c.log.Warn("sweep: reload bans", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.banGen != gen {
		return
	}
	for node, reason := range want {
		if c.st.ban(node, reason) {
			c.log.Info("node banned through another coordinator", "node", node, "reason", reason)
		}
	}
	for node := range c.st.banned {
		if _, ok := want[node]; !ok {
			c.st.unban(node)
			c.log.Info("node unbanned through another coordinator", "node", node)
		}
	}
}

// Run does the periodic chores (liveness sweep, placement, closing load
// buckets for the admin overview, the accounting subsystem's audits and
// the live subsystem's tree rebuilds) until ctx is done; admin event
// streams end with it. It returns after the audit and tree chores'
// goroutines, its only other goroutines, have exited.
func (c *Coordinator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.accounting.Run(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.live.RunTrees(ctx) // live tree rebuilds, off the heartbeat path
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.live.RunRelayJudges(ctx) // the relays' judges' answer windows
	}()
	defer wg.Wait()
	sweep := time.NewTicker(c.cfg.HeartbeatInterval)
	defer sweep.Stop()
	place := time.NewTicker(c.cfg.PlacementInterval)
	defer place.Stop()
	// Admin event streams end when Run does (their handlers return).
	defer c.events.close()
	closeBucket := time.NewTimer(c.untilBucketCloses())
	defer closeBucket.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			c.Sweep()
		case <-place.C:
			c.Place()
		case <-closeBucket.C:
			c.PublishOverview()
			closeBucket.Reset(c.untilBucketCloses())
		}
	}
}

// Sweep drops nodes silent for more than 3 heartbeat intervals from the
// registry (lookups already skip them once they are that late; sweeping
// makes their next heartbeat answer Unknown), and brings the bans and the
// admitted node keys in line with the store's.
func (c *Coordinator) Sweep() {
	now := c.cfg.Now()
	c.mu.Lock()
	gone := c.st.sweep(now)
	c.mu.Unlock()
	var droppedEdges []wire.NodeID
	for _, n := range gone {
		c.live.NodeDown(n.id)
		c.log.Info("node missed heartbeats, dropped", "node", n.id, "role", n.role, "last_seen", n.lastSeen)
		if n.role == wire.RoleEdge && !n.banned {
			droppedEdges = append(droppedEdges, n.id)
		}
	}
	c.acct.Swept(now, droppedEdges)
	c.syncBans(context.Background())
	c.syncNodeKeys(context.Background())
	c.live.SettleDue(context.Background())
}

// Place runs one placement round: fold demand, plan, queue directives. It
// is safe to call while Run runs (rounds take turns).
func (c *Coordinator) Place() {
	c.placeMu.Lock()
	defer c.placeMu.Unlock()
	now := c.cfg.Now()
	c.demandMu.Lock()
	c.applyQueuedDemandLocked() // lookups' records queued while demandMu was busy
	c.demand.Fold(now)
	demand := c.demand.Demand()
	perVideo := make(map[content.VideoID]float64)
	measured := demand
	if c.cfg.PredictLead > 0 {
		measured = make([]SegmentDemand, 0, len(demand))
		for _, d := range demand {
			if !d.Predicted {
				measured = append(measured, d)
			}
		}
	}
	for _, d := range measured {
		perVideo[d.Key.Video] += d.Rate
	}
	c.videoDemand = perVideo
	c.demandMu.Unlock()
	if c.pool != nil {
		// The origin pool weighs origins by what viewers asked for.
		c.poolMu.Lock()
		c.poolDemand = measured
		c.poolMu.Unlock()
	}

	c.mu.RLock()
	var st PlacementState
	nodes := make(map[wire.NodeID]*node)
	// edgeAt is each snapshot edge's place in st.Edges, by node slot (-1:
	// not in the snapshot).
	edgeAt := make([]int32, c.st.slots)
	for i := range edgeAt {
		edgeAt[i] = -1
	}
	for _, n := range c.st.nodes {
		if n.role != wire.RoleEdge || !c.st.alive(n, now) {
			continue
		}
		nodes[n.id] = n
		edgeAt[n.slot] = int32(len(st.Edges))
		st.Edges = append(st.Edges, PlacementEdge{
			ID: n.id, Region: n.region, DiskCapBytes: n.diskCap, UploadCapBytes: n.uploadCap,
			Assigned: maps.Clone(n.assigned),
		})
	}
	for _, d := range demand {
		v, seg := c.st.catalogued(d.Key)
		if seg == nil {
			continue
		}
		// What edges hold is given for the segments with demand only, from
		// the segment's holder list: the placer reads holdings of those
		// alone, so the plan is the one the whole inventories would give,
		// at a cost that follows demand rather than 10^8 held shards. A
		// segment with more than maxPlacementSupply holders gives the first
		// maxPlacementSupply of its list: each one is a map entry of ~100 B
		// per round, and 10^4–10^5 of them for each popular segment at 10^5
		// edges took the coordinator's RSS from 7 to 15 GB (and the round's
		// read lock, which lookups queue behind, grew with them).
		supply := seg.holders[:min(len(seg.holders), maxPlacementSupply)]
		for _, h := range supply {
			if i := edgeAt[h.node]; i >= 0 {
				e := &st.Edges[i]
				if e.Held == nil {
					e.Held = make(map[content.SegmentRef]ShardMask)
				}
				e.Held[d.Key] = c.st.shardsOf(h.shards)
			}
		}
		size := v.m.Renditions[d.Key.Rendition].Segments[d.Key.Segment].Size
		st.Segments = append(st.Segments, PlacementSegment{
			Key: d.Key, Rate: d.Rate, ByRegion: d.ByRegion,
			ShardBytes: int64(v.m.Params.ShardSize(int(size))), K: v.m.Params.K, NMax: v.m.Params.NMax,
			Viewers: d.Viewers, Predicted: d.Predicted,
		})
	}
	c.mu.RUnlock()

	plan := c.placer.Plan(now, st)
	targets := make(map[wire.NodeID]map[content.SegmentRef]ShardMask)
	for _, a := range plan {
		if targets[a.Edge] == nil {
			targets[a.Edge] = make(map[content.SegmentRef]ShardMask)
		}
		targets[a.Edge][a.Segment] = a.Shards
	}

	fetches, drops := c.applyPlan(nodes, targets)
	c.metrics.directives.WithLabelValues(wire.ActionFetch).Add(float64(fetches))
	c.metrics.directives.WithLabelValues(wire.ActionDrop).Add(float64(drops))
	if fetches+drops > 0 {
		c.log.Debug("placement", "segments", len(st.Segments), "edges", len(st.Edges), "fetch_shards", fetches, "drop_shards", drops)
	}
}

// placeStepWork bounds the map entries (an edge's old assignment plus its
// target) one hold of the write lock applies in a placement round: lookups
// queue behind the write lock, and a round's whole plan (~10^5 entries
// when every segment has demand, 5–15 ms) applied in one hold was a stall
// of every lookup in flight (issue 14's p99; PERFORMANCE.md, C16). 1,024
// entries take ~0.1 ms.
const placeStepWork = 1024

// applyPlan queues the fetches and drops that take each edge from its
// current assignment to its target (nil: none), in steps of at most
// placeStepWork entries per hold of the write lock. nodes is the round's
// snapshot of alive edges: an edge not in it (re-registered, died or
// banned since) gets no target; an edge gone from the registry between
// steps is skipped. Each edge's assignment changes under one hold, so a
// heartbeat between steps sees an edge's old or new directives, never a
// mix; edges of one round may answer heartbeats a step apart.
func (c *Coordinator) applyPlan(nodes map[wire.NodeID]*node, targets map[wire.NodeID]map[content.SegmentRef]ShardMask) (fetches, drops int) {
	c.mu.Lock()
	c.rounds++
	reissue := c.rounds%reissueRounds == 0
	edges := make([]*node, 0, len(c.st.nodes))
	for _, n := range c.st.nodes {
		if n.role == wire.RoleEdge {
			edges = append(edges, n)
		}
	}
	work := 0
	for _, n := range edges {
		if work >= placeStepWork {
			c.mu.Unlock()
			work = 0
			c.mu.Lock()
		}
		if c.st.nodes[n.id] != n {
			continue // removed or re-registered since the step began
		}
		target := targets[n.id]
		if nodes[n.id] != n {
			target = nil // re-registered, died or banned since the snapshot
		}
		if target == nil && len(n.assigned) == 0 {
			continue
		}
		if target == nil {
			target = make(map[content.SegmentRef]ShardMask)
		}
		work += 1 + len(n.assigned) + len(target)
		f, d := c.st.assign(n, target, reissue)
		fetches += f
		drops += d
	}
	c.mu.Unlock()
	return fetches, drops
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
	sc.prefetch, sc.binary = false, false // the scratch may come from a prefetch or binary HTTP lookup
	var resp wire.LookupResponse
	err := c.lookup(&req, sc, func(res *lookupResult) { resp = res.response() })
	if err != nil {
		if status, _ := wire.StatusOf(err); status == http.StatusNotFound {
			if live, ok, lerr := c.liveLookup(context.Background(), &req); ok {
				return live, lerr
			}
		}
		return resp, err
	}
	if len(sc.edges) == 0 {
		return resp, nil
	}
	sc.limits, err = c.acct.OrderLimits(context.Background(), req.ViewerID, req.Video, sc.edges, sc.edgeSlots, sc.limits)
	if err != nil {
		c.log.Warn("lookup: order limits", "viewer", req.ViewerID, "err", err)
	}
	for _, l := range sc.limits {
		if l != nil {
			resp.Limits = append(resp.Limits, l.Limit)
		}
	}
	clear(sc.limits)
	return resp, nil
}

// lookup runs one lookup into sc.res, hands it to render while the read
// lock still holds (results point into the index), and counts its demand.
func (c *Coordinator) lookup(req *wire.LookupRequest, sc *lookupScratch, render func(*lookupResult)) error {
	now := c.cfg.Now()
	slot := int(c.lookupSeq.Add(1) % rankSlotCount)
	tiebreak := rankSeed(c.lookupSeed, slot)
	c.mu.RLock()
	err := c.st.lookup(req, now, tiebreak, slot, &sc.res)
	sc.edges = sc.edges[:0]
	// Demand is predicted past the lookup's window unless the viewer's
	// player is a registered, unbanned edge: what it fetches it keeps and
	// regenerates, so placement fills the next caches from it, not from
	// the origin. (Registered, not alive: a loaded edge that missed a
	// heartbeat still keeps what its player fetches; a dead one is swept.)
	predict := false
	if err == nil && !sc.prefetch && c.cfg.PredictLead > 0 {
		predict = true
		if req.ViewerID != "" {
			n := c.st.nodes[req.ViewerID]
			predict = n == nil || n.role != wire.RoleEdge || n.banned
		}
	}
	if err == nil {
		if c.pool != nil {
			c.routeOrigins(req, now, tiebreak, &sc.res)
		}
		if sc.binary || req.ViewerID != "" {
			sc.marks.next(c.st.slots)
			sc.nodes = sc.res.nodeTable(sc.nodes, &sc.marks)
		}
		render(&sc.res)
		if req.ViewerID != "" {
			sc.edges, sc.edgeAt, sc.edgeSlots = collectEdges(sc.nodes, sc.edges, sc.edgeAt, sc.edgeSlots)
		}
		clear(sc.nodes) // drop node pointers so pooled scratch pins nothing
		sc.nodes = sc.nodes[:0]
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
		// Never waits for a placement round's fold (lookupdemand.go).
		c.recordDemand(demandRecord{
			video: req.Video, rendition: req.Rendition, from: req.From, to: req.From + segments,
			region: req.Region, viewer: req.ViewerID, playhead: predict && segments > 0,
		}, uint64(slot))
	}
	return nil
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
