package edge

import (
	"container/list"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// Fault makes an edge misbehave when serving others, for testing honest
// viewers (and the demo's --byzantine flag). Its own stored data is never
// altered.
type Fault int

const (
	Honest     Fault = iota
	FlipBits         // flips one bit of the shard data
	Truncate         // cuts the shard data short
	WrongIndex       // serves another shard's bytes labelled as the index asked for
	SlowDrip         // sends a few bytes, then stalls until the request context ends
)

var faultNames = [...]string{"honest", "flip-bits", "truncate", "wrong-index", "slow-drip"}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// ParseFault reads a fault's String form.
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if n == s {
			return Fault(i), nil
		}
	}
	return Honest, fmt.Errorf("fault %q: want one of %v", s, faultNames)
}

// DefaultWatchedTTL is how long shards kept from the local player's watching stay.
const DefaultWatchedTTL = 7 * 24 * time.Hour

// Config wires an edge together.
type Config struct {
	Dir         string // cache directory (shards + manifests), survives restarts
	Identity    identity.Identity
	Coordinator string // the primary coordinator's base URL
	// Coordinators lists every coordinator of the deployment (they share
	// one durable store); Coordinator is added first if missing. The edge
	// registers and heartbeats its inventory with each, so any of them
	// answers lookups with it; it follows placement, fetches manifests and
	// settles with the primary only. Empty: just Coordinator.
	Coordinators []string
	Advertise    string
	Region       string
	DiskCapBytes int64 // default wire.DefaultDiskCapBytes (1.5 GB)
	// UploadCapBytes is bytes/s of shard bodies sent to others, default
	// wire.DefaultUploadCapBytes (10 Mbit/s); negative means unlimited
	// (benchmarks).
	UploadCapBytes int64
	WatchedTTL     time.Duration // default 7*24h: shards kept from the local player's watching expire after this
	// PrefetchOriginDelay is how long a directed shard that no edge holds
	// waits for one before the origin supplies it (default 10s; negative:
	// use the origin at once). Edges that watched a segment regenerate any
	// shard of it, so waiting usually turns an origin byte into an edge byte.
	PrefetchOriginDelay time.Duration
	// FreeSpace reports the bytes the cache's filesystem can still take
	// (default: statfs of Dir; tests inject a full disk). The advertised
	// disk cap is DiskCapBytes bounded by it (see diskspace.go); a negative
	// answer means unknown.
	FreeSpace func() (int64, error)
	Fault     Fault            // misbehaviour when serving others
	Now       func() time.Time // default time.Now
	// LiveParentTimeout is the slack over a chain's segment cadence before
	// a live parent's push is overdue (fanout.ParentMonitor); ≤ 0 is one
	// segment duration.
	LiveParentTimeout time.Duration
	Log               *slog.Logger
	Registry          *prometheus.Registry
	HTTPClient        *http.Client

	// Token is the edge's API token (from binding the edge to an account,
	// wire.PathBindEdge), sent as a bearer token on coordinator calls;
	// settlement needs it.
	Token string
	// CoordinatorKey and CoordinatorKeys are keys order limits may be
	// signed with, beyond those the edge learns when it registers: every
	// coordinator names its limit-signing key in wire.RegisterResponse, and
	// a limit is accepted if any learnt or configured key verifies it.
	// Limits nothing verifies are refused before they are kept (see
	// orders.go); the key is never taken from a limit. Optional: configure
	// one to pin a coordinator key, or for limits from a coordinator this
	// edge does not register with.
	CoordinatorKey  ed25519.PublicKey
	CoordinatorKeys []ed25519.PublicKey
	// SettleInterval is how often due orders are settled (default 30s);
	// everything unsettled is also settled on shutdown.
	SettleInterval time.Duration
}

// DefaultPrefetchOriginDelay is Config.PrefetchOriginDelay's default.
const DefaultPrefetchOriginDelay = 10 * time.Second

// Edge is a running cache node.
type Edge struct {
	cfg Config
	// hotNodeID is cfg.Identity.ID as ServeHot's header value (no copy
	// per response).
	hotNodeID []byte
	log       *slog.Logger
	hc        *http.Client
	cc        *wire.CoordinatorClient // the primary coordinator
	// coordinators are clients of every coordinator, the primary first;
	// index c is also the inventory's pending-delta index.
	coordinators []*wire.CoordinatorClient
	metrics      *metrics
	handler      http.Handler
	upload       *uploadBucket // nil when unlimited
	burst        int           // bytes written per limiter reservation

	mu        sync.Mutex
	inv       *inventory                            // guarded by mu
	manifests map[content.VideoID]*content.Manifest // guarded by mu; verified manifests on disk

	// A memory cache of recently served shard files, so hot shards skip
	// the open/read/close of the disk path. Guarded by mu.
	hotOrder *list.List // of content.ShardRef, front = most recent
	hotBytes int64
	hotCap   int64

	work    *workQueue
	serving idleGate // requests in flight, so prefetching waits for idle moments

	regen regenCache // segments rebuilt from k held shards (see regen.go)
	// firstNoEdge records when a directed shard was first found with no
	// edge to fetch it from; the origin is used only after originDelay.
	firstNoEdge sync.Map // content.ShardRef -> time.Time

	bytesServed atomic.Int64

	live *edgeLive // live pushes and their window (live.go)

	ordersMu      sync.Mutex
	orders        *orderBook    // guarded by ordersMu
	settleRng     *rand.Rand    // batch ids; guarded by ordersMu
	ordersChanged chan struct{} // wakes ordersLoop to persist the book
}

// uploadBurstBytes is the token bucket's depth: about one shard of a 2 s
// 720p segment at k=8, so a shard goes out in one write when tokens allow.
const uploadBurstBytes = 128 << 10

// hotCacheBytes bounds the memory cache of served shards.
const hotCacheBytes = 64 << 20

// New opens (creating if needed) the cache directory and re-verifies every
// stored shard against its manifest, dropping and logging bad ones. It does
// not touch the network.
func New(cfg Config) (*Edge, error) {
	if cfg.Dir == "" {
		return nil, errors.New("edge: no cache directory given")
	}
	if cfg.Identity.Key == nil {
		return nil, errors.New("edge: no node identity")
	}
	if cfg.DiskCapBytes == 0 {
		cfg.DiskCapBytes = wire.DefaultDiskCapBytes
	}
	if cfg.DiskCapBytes < 0 {
		return nil, fmt.Errorf("edge: disk cap %d bytes is negative", cfg.DiskCapBytes)
	}
	if cfg.UploadCapBytes == 0 {
		cfg.UploadCapBytes = wire.DefaultUploadCapBytes
	}
	if cfg.WatchedTTL == 0 {
		cfg.WatchedTTL = DefaultWatchedTTL
	}
	if cfg.PrefetchOriginDelay == 0 {
		cfg.PrefetchOriginDelay = DefaultPrefetchOriginDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = httpserve.NewRegistry()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.NewHTTPClient()
	}
	if cfg.FreeSpace == nil {
		dir := cfg.Dir
		cfg.FreeSpace = func() (int64, error) { return freeSpace(dir) }
	}
	if cfg.SettleInterval <= 0 {
		cfg.SettleInterval = DefaultSettleInterval
	}
	var coordKeys []ed25519.PublicKey
	for _, k := range append([]ed25519.PublicKey{cfg.CoordinatorKey}, cfg.CoordinatorKeys...) {
		if k == nil {
			continue
		}
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("edge: coordinator key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		coordKeys = append(coordKeys, k)
	}
	cfg.Coordinators = wire.CoordinatorURLs(cfg.Coordinator, cfg.Coordinators)
	if cfg.Coordinator == "" && len(cfg.Coordinators) > 0 {
		cfg.Coordinator = cfg.Coordinators[0]
	}
	e := &Edge{
		cfg:       cfg,
		log:       cfg.Log.With("role", "edge", "node", shortID(cfg.Identity.ID)),
		hc:        cfg.HTTPClient,
		inv:       newInventory(cfg.DiskCapBytes, len(cfg.Coordinators)),
		manifests: make(map[content.VideoID]*content.Manifest),
		work:      newWorkQueue(maxQueuedJobs),
		hotOrder:  list.New(),
		hotCap:    min(hotCacheBytes, cfg.DiskCapBytes/4),
		hotNodeID: []byte(cfg.Identity.ID),

		orders:        newOrderBook(cfg.Identity.ID, coordKeys...),
		settleRng:     rand.New(rand.NewSource(time.Now().UnixNano())),
		ordersChanged: make(chan struct{}, 1),
	}
	// One signer for every coordinator: the edge's node requests
	// (register, heartbeat, leave) are signed with its identity.
	signer := wire.NewNodeSigner(cfg.Identity.Key, nil)
	for _, u := range cfg.Coordinators {
		cc := wire.NewCoordinatorClient(u, cfg.HTTPClient).AsNode(signer)
		cc.Token = cfg.Token
		e.coordinators = append(e.coordinators, cc)
	}
	if len(e.coordinators) == 0 {
		e.coordinators = []*wire.CoordinatorClient{wire.NewCoordinatorClient("", cfg.HTTPClient)} // Run refuses to start
	}
	e.cc = e.coordinators[0]
	live, err := newEdgeLive(e)
	if err != nil {
		return nil, err
	}
	e.live = live
	if cfg.UploadCapBytes > 0 {
		e.burst = int(min(uploadBurstBytes, cfg.UploadCapBytes))
		e.upload = newUploadBucket(cfg.UploadCapBytes, e.burst, time.Now())
	}
	e.metrics = newMetrics(cfg.Registry, e.Stored, e.unsettled, e.advertisedDiskCap)
	if err := e.load(); err != nil {
		return nil, err
	}
	if err := e.loadOrders(); err != nil {
		return nil, err
	}
	e.refreshDiskCap()
	mux := httpserve.NewMux(cfg.Registry)
	mux.HandleFunc("GET "+wire.PathShard, e.serveShard)
	mux.HandleFunc("POST "+wire.PathOrders, e.servePostOrder)
	mux.HandleFunc("POST "+wire.PathLivePush, e.servePush)
	e.handler = mux
	return e, nil
}

func shortID(id wire.NodeID) string {
	if len(id) > 8 {
		return string(id[:8])
	}
	return string(id)
}

// Handler serves wire.PathShard, wire.PathOrders, wire.PathLivePush, /healthz and /metrics.
func (e *Edge) Handler() http.Handler { return e.handler }

// ID is the edge's node id.
func (e *Edge) ID() wire.NodeID { return e.cfg.Identity.ID }

// SetAdvertise sets the advertised base URL once the server is listening.
// Call it before Run.
func (e *Edge) SetAdvertise(url string) { e.cfg.Advertise = url }

// BytesServed is every shard body byte sent to others.
func (e *Edge) BytesServed() int64 { return e.bytesServed.Load() }

// Stored reports how many shards and bytes the cache holds.
func (e *Edge) Stored() (shards int, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.inv.held), e.inv.used
}

// Keep hands over verified shards the local player watched; they are
// stored (after verifying again) with WatchedTTL, in the background. It
// never blocks playback: if the queue is full the shards are not kept.
func (e *Edge) Keep(seg content.SegmentRef, shards []content.ShardMessage) {
	msgs := make([][]byte, 0, len(shards))
	for i := range shards {
		msgs = append(msgs, shards[i].Encode()) // copies: the player may reuse its buffers
	}
	if !e.work.push(job{kind: jobKeep, seg: seg, msgs: msgs}) {
		e.metrics.queueFull.Inc()
	}
}

// dirs of the cache layout:
//
//	manifests/<video>                  verified signed manifest
//	shards/<video>/<r>-<s>-<i>.shard   ShardMessage bytes of an assigned shard
//	shards/<video>/<r>-<s>-<i>.watched one kept from local watching (mtime = when kept)
//	tmp/                               writes in progress, swept on start
func (e *Edge) path(parts ...string) string {
	return filepath.Join(append([]string{e.cfg.Dir}, parts...)...)
}

func shardFile(k content.ShardRef, assigned bool) string {
	ext := ".watched"
	if assigned {
		ext = ".shard"
	}
	return filepath.Join("shards", k.Video.String(), fmt.Sprintf("%d-%d-%d%s", k.Rendition, k.Segment, k.Shard, ext))
}

// writeTemp writes data to a fresh file under tmp/ and returns its path.
// Not fsynced: a file torn by a crash fails re-verification on start and is
// dropped, which costs one re-fetch.
func (e *Edge) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(e.path("tmp"), "w-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", explainWrite(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", explainWrite(err)
	}
	return f.Name(), nil
}

func explainWrite(err error) error {
	return fmt.Errorf("write to the edge cache: %w (is the disk full? lower the cache's disk cap or free space)", err)
}
