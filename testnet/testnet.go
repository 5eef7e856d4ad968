// Package testnet starts a whole Swarmcast network (coordinator, origins, edges with their players) in one process on 127.0.0.1, sized by counts.
//
// Like storj's testplanet, every node is the real role code talking real
// HTTP over loopback; only the process boundary is missing. The demo and the
// end-to-end tests both build on it.
package testnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/origin"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// Config sizes a network.
type Config struct {
	Dir     string // working directory for stores and caches (required)
	Edges   int    // edges, each with its own player
	Origins int    // default 1
	Videos  int    // catalogue size: the bundled sample packaged under this many titles (distinct keys, so distinct bytes); default 1
	// Titles names the first videos (default: the sample's title, then
	// numbered); it does not add videos beyond Videos.
	Titles []string
	Params content.Params

	HeartbeatInterval time.Duration // default 500ms: short so churn is noticed quickly in tests
	PlacementInterval time.Duration // default 1s
	EdgeDiskCap       int64         // default wire.DefaultDiskCapBytes
	EdgeUploadCap     int64         // bytes/s, default wire.DefaultUploadCapBytes
	// Fault, if set, chooses each edge's fault injection by index.
	Fault func(i int) edge.Fault
	Seed  int64
	Log   *slog.Logger
	// WorkerKeys are the BTR workers' node ids the coordinators allow to
	// register (coordinator.Config.WorkerKeys).
	WorkerKeys []wire.NodeID

	// Every edge runs under its own account on the coordinators' durable
	// store (signed up, edge bound, API token); its player uses the
	// account's session and signs orders, edges settle, and keys need
	// entitlement. Argon2 parameters are lowered for test speed.

	// GrantPoints is credited to each edge's account at start.
	GrantPoints int64
	// AuditInterval is the coordinator's audit period (default 10s; negative: off).
	AuditInterval time.Duration
	// SettleInterval is the edges' settlement period (default the edge's).
	SettleInterval time.Duration
	// OriginPerServerRate turns on the coordinator's AVARDO origin pool
	// (coordinator.Config.OriginPerServerRate); 0 leaves it off.
	OriginPerServerRate float64
	// OverviewBucket is the width of the coordinators' admin load buckets
	// (coordinator.Config.OverviewBucket); default the coordinator's.
	OverviewBucket time.Duration

	// Coordinators is how many coordinator instances share the store
	// (default 1), each with its own identity. Edges and origins talk to
	// all of them (the first is the primary); with more than one, edge i's
	// player uses coordinator i mod Coordinators, as a load balancer would
	// spread viewers.
	Coordinators int
	// DSN is the store every coordinator opens; default
	// SQLite in Dir. A postgres:// DSN puts them on PostgreSQL.
	DSN string

	// Live makes every origin take live broadcasts (live.go): HLS push on
	// its HTTP address and RTMP on a loopback listener of its own
	// (OriginNode.RTMP). LiveLadder is their ladder (default
	// DefaultLiveLadder), LiveResume how long a dropped publisher may take
	// to return (default the origin's).
	Live       bool
	LiveLadder []content.Rung
	LiveResume time.Duration
	// OnLiveServable, if set, is every edge player's
	// viewer.Config.OnLiveServable (the live latency figures); the edge
	// is told the chains its player serves either way.
	OnLiveServable func(viewer.LiveServable)
	// OnLivePartServable, if set, is every edge player's
	// viewer.Config.OnLivePartServable (low-latency channels' part figures).
	OnLivePartServable func(viewer.LivePartServable)
	// Relays is how many live relays start before the edges (Relays()).
	Relays int
	// RelayFaults[i], if set, is relay i's injected fault (relay.Config.
	// Fault, swarmcast relay --fault/--fault-from): relays under BTR.
	RelayFaults []relay.Fault
	// BTR, if set (with Live), starts BTR workers and has every origin
	// replicate its live transcodes on them (btr.go).
	BTR *BTRConfig
}

// Network is a running network. Close stops every node.
type Network struct {
	cfg            Config
	ctx            context.Context
	cancel         context.CancelFunc
	Coordinator    *coordinator.Coordinator // the primary
	CoordinatorURL string
	// Coordinators and CoordinatorURLs are every coordinator, primary first.
	Coordinators    []*coordinator.Coordinator
	CoordinatorURLs []string
	Origins         []*OriginNode
	Videos          []content.VideoID
	// Store is the primary coordinator's handle on the durable store.
	Store *coordinatordb.DB
	// Admin is a coordinator client logged in as the admin.
	Admin *wire.CoordinatorClient

	coordIDs  []identity.Identity // each coordinator's; they sign order limits
	originIDs []identity.Identity // each origin's, allowed by every coordinator
	stores    []*coordinatordb.DB // each coordinator's handle on the store; stores[0] is Store

	mu        sync.Mutex
	edges     []*EdgeNode              // every edge ever started, killed ones included
	relays    []*RelayNode             // Config.Relays, started with the network
	workers   []*WorkerNode            // Config.BTR's workers (btr.go)
	judges    map[int]*worker.Replicas // Config.BTR: each live origin's judges, by origin index
	records   map[int]*BTRRecord
	nextIndex int

	wg sync.WaitGroup // every node's Run goroutine
}

// OriginNode is one running origin.
type OriginNode struct {
	Origin *origin.Origin
	Server *httpserve.Server
	Store  *content.Store
	// Live is the origin's live ingest and RTMP its RTMP ingest base URL
	// (rtmp://127.0.0.1:PORT), with Config.Live only.
	Live *live.Ingest
	// BTR records the origin's replicated segments (Config.BTR only).
	BTR  *BTRRecord
	RTMP string

	index  int                // in Network.Origins and the origin identities
	cancel context.CancelFunc // stops Run and the RTMP listener
	done   sync.WaitGroup     // Run and the RTMP listener
}

// EdgeNode is one running edge with its built-in player.
type EdgeNode struct {
	Index    int
	Identity identity.Identity
	Edge     *edge.Edge
	Viewer   *viewer.Viewer
	Server   *httpserve.Server
	Fault    edge.Fault

	// Account is the coordinator client logged in as this edge's account;
	// its session token is the player's.
	Account *wire.CoordinatorClient

	transport *severableTransport
	cancel    context.CancelFunc
	done      chan struct{}
	killed    atomic.Bool
}

// Alive reports whether the edge has not been killed or stopped.
func (e *EdgeNode) Alive() bool { return !e.killed.Load() }

// Start brings up a coordinator, the origins with the catalogue, and the
// edges, and waits until every edge is registered.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	if cfg.Dir == "" {
		return nil, errors.New("testnet: Config.Dir is required")
	}
	if cfg.Origins <= 0 {
		cfg.Origins = 1
	}
	if cfg.Coordinators <= 0 {
		cfg.Coordinators = 1
	}
	if cfg.DSN == "" {
		cfg.DSN = "sqlite:" + filepath.Join(cfg.Dir, "coordinator.db")
	}
	if cfg.Videos <= 0 {
		cfg.Videos = 1
	}
	if cfg.Params == (content.Params{}) {
		cfg.Params = content.DefaultParams()
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 500 * time.Millisecond
	}
	if cfg.PlacementInterval <= 0 {
		cfg.PlacementInterval = time.Second
	}
	if cfg.EdgeDiskCap <= 0 {
		cfg.EdgeDiskCap = wire.DefaultDiskCapBytes
	}
	if cfg.EdgeUploadCap <= 0 {
		cfg.EdgeUploadCap = wire.DefaultUploadCapBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Network{cfg: cfg, ctx: ctx, cancel: cancel}
	if err := n.start(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Network) start() error {
	cfg := n.cfg
	// The origins' identities come first: every coordinator allows
	// exactly these keys to register and publish as origins.
	for range cfg.Origins {
		n.originIDs = append(n.originIDs, identity.New())
	}
	var originKeys []wire.NodeID
	for _, id := range n.originIDs {
		originKeys = append(originKeys, id.ID)
	}
	var coordKeys []ed25519.PublicKey
	for range cfg.Coordinators {
		id := identity.New()
		n.coordIDs = append(n.coordIDs, id)
		coordKeys = append(coordKeys, id.Key.Public().(ed25519.PublicKey))
	}
	for c := range cfg.Coordinators {
		name := "coordinator"
		if c > 0 {
			name = fmt.Sprintf("coordinator-%d", c)
		}
		ccfg := coordinator.Config{
			HeartbeatInterval:   cfg.HeartbeatInterval,
			PlacementInterval:   cfg.PlacementInterval,
			Seed:                cfg.Seed,
			Log:                 cfg.Log.With("node", name),
			OriginPerServerRate: cfg.OriginPerServerRate,
			OverviewBucket:      cfg.OverviewBucket,
			OriginKeys:          originKeys,
			WorkerKeys:          cfg.WorkerKeys,
			// Every account of the testnet logs in from 127.0.0.1.
			Accounting: accounting.Config{LoginThrottle: accounting.LoginThrottle{ClientBurst: 1 << 20}},
		}
		// Each coordinator opens the store itself, as separate
		// processes would.
		db, err := coordinatordb.OpenConfig(n.ctx, cfg.DSN, coordinatordb.Config{
			CoordinatorKeys: coordKeys,
			Password:        coordinatordb.PasswordParams{Time: 1, MemKiB: 8 * 1024, Threads: 1},
			Reputation:      coordinatordb.ReputationConfig{InitialAlpha: 1000},
		})
		if err != nil {
			return err
		}
		n.stores = append(n.stores, db)
		if c == 0 {
			n.Store = db
			if _, err := accounting.BootstrapAdmin(n.ctx, db, adminUser, adminPassword, time.Now()); err != nil {
				return err
			}
		}
		ccfg.Store, ccfg.Accounting.Identity = db, n.coordIDs[c]
		ccfg.Accounting.AuditInterval = cfg.AuditInterval
		if ccfg.Accounting.AuditInterval == 0 {
			ccfg.Accounting.AuditInterval = 10 * time.Second
		}
		coord, err := coordinator.New(ccfg)
		if err != nil {
			return err
		}
		srv, err := httpserve.ListenSplit(n.ctx, "127.0.0.1:0", "", coord.ServeHotLookup, coord.Handler(), cfg.Log)
		if err != nil {
			return err
		}
		n.Coordinators = append(n.Coordinators, coord)
		n.CoordinatorURLs = append(n.CoordinatorURLs, srv.Advertise)
		n.goRun(func() { _ = coord.Run(n.ctx) }, srv)
	}
	n.Coordinator, n.CoordinatorURL = n.Coordinators[0], n.CoordinatorURLs[0]
	var err error
	if n.Admin, err = n.login(adminUser, adminPassword); err != nil {
		return err
	}

	// One publisher store holds the catalogue; every origin serves it.
	store, err := content.OpenStore(filepath.Join(cfg.Dir, "publisher"))
	if err != nil {
		return err
	}
	hls := filepath.Join(cfg.Dir, "sample-hls")
	if err := sample.WriteHLS(hls); err != nil {
		return err
	}
	for i := 0; i < cfg.Videos; i++ {
		title := sample.Title
		if i > 0 {
			title = fmt.Sprintf("%s #%d", sample.Title, i+1)
		}
		if i < len(cfg.Titles) {
			title = cfg.Titles[i]
		}
		id, err := store.Ingest(n.ctx, hls, content.IngestOptions{Params: cfg.Params, Title: title})
		if err != nil {
			return fmt.Errorf("testnet: ingest catalogue: %w", err)
		}
		n.Videos = append(n.Videos, id)
	}
	_ = os.RemoveAll(hls)

	for i := 0; i < cfg.Origins; i++ {
		o, err := n.startOrigin(i, store)
		if err != nil {
			return err
		}
		n.Origins = append(n.Origins, o)
	}
	for i := range cfg.Relays {
		var fault relay.Fault
		if i < len(cfg.RelayFaults) {
			fault = cfg.RelayFaults[i]
		}
		r, err := n.addRelay(0.5+0.1*float64(i), fault)
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.relays = append(n.relays, r)
		n.mu.Unlock()
	}
	for i := 0; i < cfg.Edges; i++ {
		if _, err := n.AddEdge(); err != nil {
			return err
		}
	}
	return n.waitFor(func(s wire.Stats) bool { return s.AliveEdges >= cfg.Edges && s.Videos >= cfg.Videos })
}

// goRun runs a node's Run on the network's WaitGroup and closes its server
// when Run returns.
func (n *Network) goRun(run func(), srv *httpserve.Server) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		run()
		if srv != nil {
			_ = srv.Close()
			_ = srv.Wait()
		}
	}()
}

// startOrigin starts origin idx (its identity is the network's idx-th
// origin key) on store; Run and, with Config.Live, the RTMP listener run
// until the network closes or KillOrigin.
func (n *Network) startOrigin(idx int, store *content.Store) (*OriginNode, error) {
	ctx, cancel := context.WithCancel(n.ctx)
	var h lazyHandler
	var hot lazyHot
	srv, err := httpserve.ListenHot(ctx, "127.0.0.1:0", "", hot.serve, &h, n.cfg.Log)
	if err != nil {
		cancel()
		return nil, err
	}
	ocfg := origin.Config{
		Store:        store,
		Identity:     n.originIDs[idx],
		Coordinator:  n.CoordinatorURL,
		Coordinators: n.CoordinatorURLs,
		Advertise:    srv.Advertise,
		Log:          n.cfg.Log.With("node", "origin"),
		HTTPClient:   wire.NewHTTPClient(),
	}
	node := &OriginNode{Server: srv, Store: store, index: idx, cancel: cancel}
	if n.cfg.Live {
		var err error
		if node.Live, node.RTMP, err = n.startLiveIngest(ctx, idx, store, &node.done); err != nil {
			_ = srv.Close()
			cancel()
			return nil, err
		}
		ocfg.Live = node.Live
		n.mu.Lock()
		j := n.judges[idx]
		node.BTR = n.records[idx]
		n.mu.Unlock()
		if j != nil {
			ocfg.BTR = j
			j.SetForward(srv.Advertise)
		}
	}
	o, err := origin.New(ocfg)
	if err != nil {
		_ = srv.Close()
		cancel()
		node.done.Wait()
		return nil, err
	}
	node.Origin = o
	h.set(o.Handler())
	hot.set(o.ServeHot)
	node.done.Add(1)
	n.goRun(func() {
		defer node.done.Done()
		_ = o.Run(ctx)
	}, srv)
	return node, nil
}

// KillOrigin stops origin i as a crash would, as far as one process can:
// its listeners close at once (publishers and players are cut off), its
// live broadcasts are left unsealed on disk and nothing is reported to
// the coordinator about them. It waits until every goroutine of the origin
// returned.
func (n *Network) KillOrigin(i int) {
	o := n.Origins[i]
	_ = o.Server.Kill()
	o.cancel()
	o.done.Wait()
}

// RestartOrigin kills origin i (KillOrigin) and starts it again with the
// same identity and store, on new ports (RTMPIngestURL and HLSIngestURL
// name the new ones): a restarted origin process. It returns once the
// new origin is registered with the primary coordinator.
func (n *Network) RestartOrigin(i int) error {
	n.KillOrigin(i)
	o, err := n.startOrigin(i, n.Origins[i].Store)
	if err != nil {
		return err
	}
	n.Origins[i] = o
	id := n.originIDs[i].ID
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, err := wire.NewCoordinatorClient(n.CoordinatorURL, nil).Nodes(n.ctx)
		if err == nil && slices.ContainsFunc(nodes, func(ni wire.NodeInfo) bool { return ni.NodeID == id && ni.Addr == o.Server.Advertise }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testnet: restarted origin %s did not register at %s in 30 s (%v)", id, o.Server.Advertise, err)
		}
		select {
		case <-n.ctx.Done():
			return n.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AddEdge starts one more edge with its player (churn replaces killed
// edges this way).
func (n *Network) AddEdge() (*EdgeNode, error) {
	n.mu.Lock()
	i := n.nextIndex
	n.nextIndex++
	n.mu.Unlock()

	fault := edge.Honest
	if n.cfg.Fault != nil {
		fault = n.cfg.Fault(i)
	}
	id := identity.New()
	tr := &severableTransport{base: wire.NewHTTPClient().Transport}
	hc := &http.Client{Transport: tr}
	var h lazyHandler
	var hot lazyHot
	ctx, cancel := context.WithCancel(n.ctx)
	srv, err := httpserve.ListenHot(ctx, "127.0.0.1:0", "", hot.serve, &h, n.cfg.Log)
	if err != nil {
		cancel()
		return nil, err
	}
	log := n.cfg.Log.With("node", fmt.Sprintf("edge-%d", i))
	// One registry per node: the edge and its player share it (their
	// series are apart by prefix), and no two edges of the net collide.
	reg := httpserve.NewRegistry()
	var account *wire.CoordinatorClient
	var edgeToken string
	if account, edgeToken, err = n.setUpAccount(edgeAccountName(i), id); err != nil {
		cancel()
		_ = srv.Close()
		return nil, err
	}
	e, err := edge.New(edge.Config{
		Token:           edgeToken,
		CoordinatorKeys: nil, // none configured, as in the README: each edge learns its coordinators' keys when it registers
		Coordinators:    n.CoordinatorURLs,
		SettleInterval:  n.cfg.SettleInterval,
		Dir:             filepath.Join(n.cfg.Dir, fmt.Sprintf("edge-%d", i)),
		Identity:        id,
		Coordinator:     n.CoordinatorURL,
		Advertise:       srv.Advertise,
		Region:          "local",
		DiskCapBytes:    n.cfg.EdgeDiskCap,
		UploadCapBytes:  n.cfg.EdgeUploadCap,
		Fault:           fault,
		Log:             log,
		Registry:        reg,
		HTTPClient:      hc,
	})
	if err != nil {
		cancel()
		_ = srv.Close()
		return nil, err
	}
	h.set(e.Handler())
	hot.set(e.ServeHot)
	v, err := viewer.New(viewer.Config{
		Coordinator: n.CoordinatorURLs[i%len(n.CoordinatorURLs)],
		Token:       account.Token,
		Identity:    id,
		Region:      "local",
		HTTPClient:  hc,
		Seed:        n.cfg.Seed + int64(i)*7919,
		Log:         log.With("part", "player"),
		Registry:    reg,
		OnSegment:   e.Keep,

		OnLiveServable: func(s viewer.LiveServable) {
			e.NoteLiveWatched(s.Chain)
			if n.cfg.OnLiveServable != nil {
				n.cfg.OnLiveServable(s)
			}
		},
		OnLiveWatching:     e.SetLiveWatching,
		OnLivePartServable: n.cfg.OnLivePartServable,
	})
	if err != nil {
		cancel()
		_ = srv.Close()
		return nil, err
	}
	e.OnLivePush(v.LivePushLanded) // the built-in player starts a segment's fetch when its push lands here
	node := &EdgeNode{Index: i, Identity: id, Edge: e, Viewer: v, Server: srv, Fault: fault, Account: account,
		transport: tr, cancel: cancel, done: make(chan struct{})}
	n.mu.Lock()
	n.edges = append(n.edges, node)
	n.mu.Unlock()
	n.goRun(func() {
		defer close(node.done)
		_ = e.Run(ctx)
		_ = v.Close() // stops the gateway's readahead and pending reports
	}, srv)
	return node, nil
}

// The testnet's admin account.
const (
	adminUser     = "admin"
	adminPassword = "testnet-operator-secret"
)

// login returns a coordinator client carrying a session token.
func (n *Network) login(user, password string) (*wire.CoordinatorClient, error) {
	c := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	resp, err := c.Login(n.ctx, wire.Credentials{Username: user, Password: password})
	if err != nil {
		return nil, fmt.Errorf("testnet: login %s: %w", user, err)
	}
	c.Token = resp.Token
	return c, nil
}

// setUpAccount signs up an account for one edge, grants it points, binds
// the edge and returns the logged-in client and the edge's API token.
func (n *Network) setUpAccount(user string, node identity.Identity) (*wire.CoordinatorClient, string, error) {
	password := EdgeAccountPassword
	anon := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	if _, err := anon.Signup(n.ctx, wire.Credentials{Username: user, Password: password}); err != nil {
		return nil, "", fmt.Errorf("testnet: sign up %s: %w", user, err)
	}
	c, err := n.login(user, password)
	if err != nil {
		return nil, "", err
	}
	if n.cfg.GrantPoints > 0 {
		if err := n.Admin.Grant(n.ctx, wire.GrantRequest{Username: user, Points: n.cfg.GrantPoints, Memo: "testnet start"}); err != nil {
			return nil, "", fmt.Errorf("testnet: grant %s: %w", user, err)
		}
	}
	bound, err := c.BindEdge(n.ctx, wire.NewNodeSigner(node.Key, nil))
	if err != nil {
		return nil, "", fmt.Errorf("testnet: bind edge of %s: %w", user, err)
	}
	return c, bound.APIToken, nil
}

// Edges returns every edge started so far, killed ones included.
func (n *Network) Edges() []*EdgeNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*EdgeNode(nil), n.edges...)
}

// AliveEdges returns the edges not killed or stopped.
func (n *Network) AliveEdges() []*EdgeNode {
	var out []*EdgeNode
	for _, e := range n.Edges() {
		if e.Alive() {
			out = append(out, e)
		}
	}
	return out
}

// KillEdge stops an edge abruptly, like a crashed process or a pulled
// cable: its connections drop mid-transfer and it never says goodbye, so
// the coordinator only notices through missed heartbeats.
func (n *Network) KillEdge(e *EdgeNode) {
	if e.killed.Swap(true) {
		return
	}
	e.transport.sever()
	_ = e.Server.Kill()
	e.cancel()
	<-e.done
}

// StopEdge stops an edge gracefully (it sends Leave).
func (n *Network) StopEdge(e *EdgeNode) {
	if e.killed.Swap(true) {
		return
	}
	e.cancel()
	<-e.done
}

// OriginBytes is every byte all origins have sent, to players and edges.
func (n *Network) OriginBytes() int64 {
	var total int64
	for _, o := range n.Origins {
		total += o.Origin.BytesServed()
	}
	return total
}

// waitFor polls the coordinator's stats until cond holds (startup only).
func (n *Network) waitFor(cond func(wire.Stats) bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n.allCoordinators(cond) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testnet: network not ready after 30s: %+v", n.Coordinator.Stats())
		}
		select {
		case <-n.ctx.Done():
			return n.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// allCoordinators reports whether cond holds for every coordinator's stats.
func (n *Network) allCoordinators(cond func(wire.Stats) bool) bool {
	for _, c := range n.Coordinators {
		if !cond(c.Stats()) {
			return false
		}
	}
	return true
}

// WaitFor waits until cond holds for every coordinator's stats.
func (n *Network) WaitFor(cond func(wire.Stats) bool) error { return n.waitFor(cond) }

// StopEdges stops every alive edge gracefully, in parallel: each settles
// what it holds and leaves.
func (n *Network) StopEdges() {
	var wg sync.WaitGroup
	for _, e := range n.AliveEdges() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.StopEdge(e)
		}()
	}
	wg.Wait()
}

// Settled sums, over every edge ever started, the points credited and the
// bytes settled.
func (n *Network) Settled(ctx context.Context) (points, bytes int64, err error) {
	for _, e := range n.Edges() {
		c, _, err := n.Store.EdgeEarnings(ctx, e.Identity.ID)
		if err != nil {
			return 0, 0, err
		}
		points += c
		flows, err := n.Store.FlowsFromEdge(ctx, e.Identity.ID, time.Time{}, time.Now().Add(24*time.Hour))
		if err != nil {
			return 0, 0, err
		}
		for _, f := range flows {
			bytes += f.Bytes
		}
	}
	return points, bytes, nil
}

// Close stops every node and waits for all their goroutines. Edges stop
// first, while the coordinator can still hear them leave and settle.
func (n *Network) Close() {
	n.StopEdges()
	n.cancel()
	n.wg.Wait()
	for _, db := range n.stores {
		db.Close()
	}
}

// lazyHandler lets a server listen (and so learn its address) before the
// role that needs the address as its advertised URL exists.
type lazyHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lazyHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	wire.WriteError(w, http.StatusServiceUnavailable, "node starting")
}

// lazyHot is lazyHandler's hot route: nothing is taken until it is set.
type lazyHot struct{ h atomic.Pointer[httpserve.Hot] }

func (l *lazyHot) set(h httpserve.Hot) { l.h.Store(&h) }

func (l *lazyHot) serve(c *fasthttp.RequestCtx) bool {
	if h := l.h.Load(); h != nil {
		return (*h)(c)
	}
	return false
}

// severableTransport fails every request once severed, so a killed node
// cannot send a last heartbeat or leave.
type severableTransport struct {
	base    http.RoundTripper
	severed atomic.Bool
}

var errKilled = errors.New("testnet: node killed")

func (t *severableTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.severed.Load() {
		return nil, errKilled
	}
	return t.base.RoundTrip(r)
}

func (t *severableTransport) sever() {
	t.severed.Store(true)
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// NewPlayer starts a standalone player (not an edge's) under a new
// account named user, granted Config.GrantPoints, with cfg's fields as
// given (HTTPClient for an impaired link, StartupHedge, …) and the
// network's coordinator, session token, region and log filled in when
// empty. The caller closes it.
func (n *Network) NewPlayer(user string, cfg viewer.Config) (*viewer.Viewer, error) {
	password := "testnet-player-secret" // passes the policy: long, not common, not the username
	anon := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	if _, err := anon.Signup(n.ctx, wire.Credentials{Username: user, Password: password}); err != nil {
		return nil, fmt.Errorf("testnet: sign up %s: %w", user, err)
	}
	c, err := n.login(user, password)
	if err != nil {
		return nil, err
	}
	if n.cfg.GrantPoints > 0 {
		if err := n.Admin.Grant(n.ctx, wire.GrantRequest{Username: user, Points: n.cfg.GrantPoints, Memo: "testnet player"}); err != nil {
			return nil, fmt.Errorf("testnet: grant %s: %w", user, err)
		}
	}
	if cfg.Coordinator == "" {
		cfg.Coordinator = n.CoordinatorURL
	}
	if cfg.Token == "" {
		cfg.Token = c.Token
	}
	if cfg.Region == "" {
		cfg.Region = "local"
	}
	if cfg.Log == nil {
		cfg.Log = n.cfg.Log.With("node", user)
	}
	return viewer.New(cfg)
}

// StartForTest starts a network in t's temporary directory and closes it
// when t ends: the shape every test package over the network uses.
func StartForTest(t testing.TB, cfg Config) *Network {
	t.Helper()
	cfg.Dir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); cancel() })
	return n
}

// Log is the logger the network's nodes write to.
func (n *Network) Log() *slog.Logger { return n.cfg.Log }

// OriginIdentity is the key origin i signs with, for tests that act as it
// (an ingest authorised by the origin's own signature).
func (n *Network) OriginIdentity(i int) identity.Identity { return n.originIDs[i] }
