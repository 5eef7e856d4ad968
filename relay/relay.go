// Package relay is the live fan-out role (swarmcast relay): a platform
// node that registers with the coordinator as wire.RoleRelay, takes its
// places in the channels' substream trees from heartbeat answers
// (wire.LiveSet), accepts each segment's push from its assigned parent,
// verifies the entry and every shard (fanout.Receiver), forwards them to
// its children (fanout.Sender) and serves the recent window on the VoD
// shard route to players (no orders: relays are the platform's).
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// Config configures a relay.
type Config struct {
	Coordinator string // base URL, e.g. http://127.0.0.1:7000
	Identity    identity.Identity
	// Advertise is the base URL parents and players reach this relay at
	// (SetAdvertise sets it once the listener is bound).
	Advertise string
	Region    string
	// UploadCapBytes is the upload bandwidth offered, bytes per second
	// (the trees' capacity); PricePerGB what it costs, points per GB.
	UploadCapBytes int64
	PricePerGB     float64
	// WindowSegments kept per chain; ≤ 0 is fanout.DefaultWindowSegments.
	WindowSegments int
	// QueueSegments per child; ≤ 0 is fanout.DefaultQueueSegments.
	QueueSegments int
	HTTP          *http.Client // nil: wire.NewHTTPClient()
	Registry      *prometheus.Registry
	Log           *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Fault makes the relay misbehave on purpose (fault-injection runs);
	// the zero value is honest.
	Fault Fault
	// OnFault, if set, is called for each segment the injected fault
	// spoiled while the relay had children (fault-injection runs record the
	// fault's onset with it).
	OnFault func(chain content.VideoID, seq uint64, kind FaultKind)
	// ParentTimeout is the slack over the segment cadence before a
	// parent's push is overdue (fanout.ParentMonitor); ≤ 0 is one segment.
	ParentTimeout time.Duration
}

// Relay is one relay node.
type Relay struct {
	cfg    Config
	log    *slog.Logger
	signer *wire.NodeSigner
	coord  *wire.CoordinatorClient
	recv   *fanout.Receiver
	sender *fanout.Sender
	watch  *fanout.ParentMonitor
	m      *metrics
	reg    *prometheus.Registry

	faultOnce sync.Once // logs the first injected fault

	mu        sync.Mutex
	advertise string
	// lastPush is when each (chain, substream) last got a push from its
	// parent; quiet marks those already reported quiet.
	lastPush map[substreamKey]time.Time
	quiet    map[substreamKey]bool
	rtt      map[wire.NodeID]float64 // ms, the last round trip measured to each peer
	// accused are the newest signed accusations of overdue parents, oldest
	// first (at most maxAccusationsKept).
	accused []fanout.Accused
	// answered are the judge's accusations of this relay already answered
	// (by signature), with when (judge.go).
	answered map[string]time.Time
}

// maxAccusationsKept bounds Relay.Accusations.
const maxAccusationsKept = 64

type substreamKey struct {
	chain     content.VideoID
	substream int
}

// New makes a relay; Handler serves it, Run keeps it in the network.
func New(cfg Config) (*Relay, error) {
	if cfg.Coordinator == "" {
		return nil, errors.New("relay: no coordinator URL given (set --coordinator URL)")
	}
	if cfg.Identity.Key == nil {
		return nil, errors.New("relay: no node identity")
	}
	if cfg.UploadCapBytes <= 0 {
		return nil, errors.New("relay: the upload cap must be more than 0 (set --upload-cap, e.g. 100Mbit)")
	}
	if cfg.PricePerGB < 0 {
		return nil, errors.New("relay: the price cannot be negative (set --price, points per GB, e.g. 0.5)")
	}
	if err := cfg.Fault.validate(); err != nil {
		return nil, err
	}
	if cfg.HTTP == nil {
		cfg.HTTP = wire.NewHTTPClient()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = httpserve.NewRegistry()
	}
	r := &Relay{cfg: cfg, log: cfg.Log, reg: cfg.Registry, advertise: cfg.Advertise,
		lastPush: map[substreamKey]time.Time{}, quiet: map[substreamKey]bool{}, rtt: map[wire.NodeID]float64{}, answered: map[string]time.Time{}}
	r.signer = wire.NewNodeSigner(cfg.Identity.Key, cfg.Now)
	r.coord = wire.NewCoordinatorClient(cfg.Coordinator, cfg.HTTP).AsNode(r.signer)
	var err error
	r.recv, err = fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: r.coord, Window: fanout.NewWindow(cfg.WindowSegments, 0), Log: cfg.Log, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	r.watch = fanout.NewParentMonitor(cfg.Identity.Key, r.coord, r.recv.Window(), cfg.ParentTimeout)
	r.m = newMetrics(cfg.Registry, r.heldSegments, func() float64 { return float64(len(r.sender.Children())) })
	r.sender, err = fanout.NewSender(fanout.SenderConfig{
		Signer: r.signer, StatementKey: cfg.Identity.Key, HTTP: cfg.HTTP, QueueSegments: cfg.QueueSegments, Log: cfg.Log,
		Hooks: fanout.SenderHooks{
			Pushed: func(_ wire.NodeID, n int, delay time.Duration) {
				r.m.pushesOut.WithLabelValues("ok").Inc()
				r.m.pushBytesOut.Add(float64(n))
				r.m.forwardDelay.Observe(delay.Seconds())
			},
			Failed:  func(wire.NodeID, error) { r.m.pushesOut.WithLabelValues("error").Inc() },
			Dropped: func(wire.NodeID, content.VideoID, uint64) { r.m.queueDrops.Inc() },
		},
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ID is the relay's node id.
func (r *Relay) ID() wire.NodeID { return r.cfg.Identity.ID }

// SetAdvertise sets the URL registered with the coordinator (before Run).
func (r *Relay) SetAdvertise(u string) {
	r.mu.Lock()
	r.advertise = u
	r.mu.Unlock()
}

// Window is the relay's window of verified live shards.
func (r *Relay) Window() *fanout.Window { return r.recv.Window() }

// Routes are the relay's current routes.
func (r *Relay) Routes() []wire.LiveRoute { return r.recv.Routes() }

// Proofs are the commission proofs the relay holds against parents whose
// pushes failed verification (their own signed push statements).
func (r *Relay) Proofs() []*btr.ProofOfMisbehaviour { return r.recv.Proofs() }

// Forks are the fork proofs the relay caught.
func (r *Relay) Forks() []content.ForkProof { return r.recv.Forks() }

func (r *Relay) heldSegments() float64 {
	w := r.recv.Window()
	n := 0
	for _, c := range w.Chains() {
		n += len(w.HeldSegments(c))
	}
	return float64(n)
}

// Handler serves the push route, the shard route, /healthz and /metrics.
func (r *Relay) Handler() http.Handler {
	mux := httpserve.NewMux(r.reg)
	mux.HandleFunc("POST "+wire.PathLivePush, r.servePush)
	mux.HandleFunc("GET "+wire.PathShard, r.serveShard)
	return mux
}

// servePush takes a push from a parent and forwards it to the children.
func (r *Relay) servePush(w http.ResponseWriter, req *http.Request) {
	got, err := r.recv.HandlePush(w, req)
	if err != nil {
		result := pushResult(err)
		r.m.pushesIn.WithLabelValues(result).Inc()
		if result == "rejected" {
			r.m.verifyFailures.Inc()
		}
		r.log.Debug("refused a live push", "err", err)
		return
	}
	r.m.pushesIn.WithLabelValues("ok").Inc()
	size := 0
	for _, sh := range got.Segment.Shards {
		size += len(sh.Data)
	}
	r.m.pushBytesIn.Add(float64(size))
	r.notePush(got)
	r.watch.Received(r.recv.Routes(), got, r.cfg.Now())
	var target time.Duration
	if c := r.recv.Window().Chain(got.Segment.Chain); c != nil {
		target = time.Duration(c.Genesis().TargetDuration) * time.Microsecond
	}
	if did, _ := r.cfg.Fault.forward(r.sender, got.Segment, target); did != FaultNone {
		if r.cfg.OnFault != nil && len(r.sender.Children()) > 0 {
			r.cfg.OnFault(got.Segment.Chain, got.Segment.Seq, did)
		}
		r.faultOnce.Do(func() {
			r.log.Warn("injected fault: misbehaving on purpose from this segment on", "fault", did, "chain", got.Segment.Chain, "seq", got.Segment.Seq)
		})
	}
}

// pushResult is the pushes_in_total label of a refusal.
func pushResult(err error) string {
	switch {
	case errors.Is(err, fanout.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, fanout.ErrBadPush):
		return "bad"
	case errors.Is(err, fanout.ErrNotParent):
		return "not_parent"
	case errors.Is(err, fanout.ErrRejected):
		return "rejected"
	case errors.Is(err, fanout.ErrFork):
		return "fork"
	case errors.Is(err, fanout.ErrStale):
		return "stale"
	}
	return "unavailable"
}

// notePush records which substreams' parent just pushed.
func (r *Relay) notePush(got fanout.Received) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, route := range r.recv.Routes() {
		if route.Chain != got.Segment.Chain || route.Parent != got.Sender {
			continue
		}
		for _, sh := range got.Segment.Shards {
			if slices.Contains(route.Indices, sh.Index) {
				k := substreamKey{route.Chain, route.Substream}
				r.lastPush[k] = now
				if r.quiet[k] {
					r.log.Info("a quiet parent pushes again", "chain", route.Chain, "substream", route.Substream, "parent", route.Parent)
				}
				delete(r.quiet, k)
				break
			}
		}
	}
}

// serveShard serves a shard of the window (relays are the platform's: no
// order limits, no receipts).
func (r *Relay) serveShard(w http.ResponseWriter, req *http.Request) {
	ref, err := wire.ParseShardRef(req)
	if err != nil {
		r.m.shardRequests.WithLabelValues("400").Inc()
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	st, ok := r.recv.Window().Shard(ref)
	if !ok {
		r.m.shardRequests.WithLabelValues("404").Inc()
		wire.WriteError(w, http.StatusNotFound, "shard %d of chain %s rendition %d segment %d is not in this relay's window (it keeps the last %d segments of the chains it relays)", ref.Shard, ref.Video, ref.Rendition, ref.Segment, r.recv.Window().Segments())
		return
	}
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeShard)
	h.Set(wire.HeaderNode, string(r.cfg.Identity.ID))
	h.Set("Content-Length", strconv.Itoa(len(st.Encoded)))
	r.m.shardRequests.WithLabelValues("200").Inc()
	n, _ := w.Write(st.Encoded)
	r.m.servedBytes.Add(float64(n))
}

// Run registers with the coordinator, heartbeats (reporting round trips
// to its children), applies live sets, and watches parents; when ctx ends
// it leaves the network, stops forwarding and returns nil.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	adv := r.advertise
	r.mu.Unlock()
	if adv == "" {
		return errors.New("relay: no advertised URL: set Config.Advertise (or SetAdvertise) to the address parents reach this relay at")
	}
	defer r.sender.Close()
	var wg sync.WaitGroup
	wctx, cancel := context.WithCancel(ctx)
	wg.Go(func() { r.watchLoop(wctx) })
	wg.Go(func() { r.judgeLoop(wctx) })
	s := &wire.NodeSession{
		Client: r.coord,
		Register: wire.RegisterRequest{NodeID: r.cfg.Identity.ID, Role: wire.RoleRelay, Addr: adv, Region: r.cfg.Region,
			UploadCapBytes: r.cfg.UploadCapBytes, PricePerGB: r.cfg.PricePerGB},
		LeaveTimeout: wire.DefaultLeaveTimeout,
		Log:          r.log,
		OnRegistered: func(context.Context, wire.RegisterResponse) error {
			r.recv.Reregistered() // a restarted coordinator numbers live sets from 1 again
			return nil
		},
		NextHeartbeat: func(bool) wire.HeartbeatRequest {
			return wire.HeartbeatRequest{PeerRTTMS: r.RTTs(), ServedBytes: 0}
		},
		OnHeartbeat: func(_ context.Context, res wire.HeartbeatResult) error {
			switch {
			case res.Err != nil:
				r.m.heartbeats.WithLabelValues("error").Inc()
			case res.Response.Unknown:
				r.m.heartbeats.WithLabelValues("unknown").Inc()
			default:
				r.m.heartbeats.WithLabelValues("ok").Inc()
				r.applyLive(res.Response.Live)
			}
			return nil
		},
	}
	err := s.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// applyLive takes a newer live set: the receiver's parents and the
// sender's children.
func (r *Relay) applyLive(set *wire.LiveSet) {
	if !r.recv.SetLive(set) {
		return
	}
	r.sender.SetRoutes(set.Routes)
	r.log.Info("live routes", "version", set.Version, "routes", len(set.Routes))
}

// RTTs are the round trips last measured to each child and parent, ms.
func (r *Relay) RTTs() map[wire.NodeID]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rtt) == 0 {
		return nil
	}
	out := make(map[wire.NodeID]float64, len(r.rtt))
	for k, v := range r.rtt {
		out[k] = v
	}
	return out
}

// watchInterval is how often the relay checks its parents and measures
// its children.
const watchInterval = time.Second

// cadenceInterval is how often the relay's parent monitor looks for
// overdue pushes (G, the watch's tick, in the bound R).
const cadenceInterval = 100 * time.Millisecond

// watchLoop measures peers' round trips and reports quiet parents
// until ctx ends.
func (r *Relay) watchLoop(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	cadence := time.NewTicker(cadenceInterval)
	defer cadence.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cadence.C:
			r.checkParents(ctx)
			continue
		case <-t.C:
		}
		r.checkQuiet()
		r.measurePeers(ctx)
	}
}

// checkParents names the pushes overdue now, each with this relay's
// signed accusation of the substream's parent (relays under BTR: kept for
// the relays' judge, counted and logged).
func (r *Relay) checkParents(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, a := range r.watch.Check(ctx, r.recv.Routes(), r.cfg.Now()) {
		r.m.parentMisses.Inc()
		r.log.Warn("live parent overdue: its push did not arrive by the segment cadence plus the slack; accusing it", "chain", a.Chain, "substream", a.Miss.Substream, "seq", a.Miss.Seq, "parent", a.Parent, "due", a.Miss.Due, "signed", a.Accusation != nil)
		if a.Accusation != nil {
			// To the relays' judge (the coordinator): it upholds the
			// accusation only if the accused is this relay's parent there.
			if err := r.coord.PostRelayStatement(ctx, a.Chain, a.Accusation.Encode()); err != nil {
				r.log.Warn("live parent overdue: the relays' judge refused or missed the accusation", "chain", a.Chain, "parent", a.Parent, "seq", a.Miss.Seq, "err", err)
			}
		}
		r.mu.Lock()
		r.accused = append(r.accused, a)
		if len(r.accused) > maxAccusationsKept {
			r.accused = slices.Delete(r.accused, 0, len(r.accused)-maxAccusationsKept)
		}
		r.mu.Unlock()
	}
}

// Accusations are the newest overdue pushes this relay named, oldest first.
func (r *Relay) Accusations() []fanout.Accused {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accused)
}

// checkQuiet logs (once) each substream whose parent sent nothing for 3
// segment durations while its chain is live; the relay keeps serving its
// window (the coordinator replaces a parent that left).
func (r *Relay) checkQuiet() {
	now := r.cfg.Now()
	routes := r.recv.Routes()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, route := range routes {
		if route.Parent == "" {
			continue
		}
		k := substreamKey{route.Chain, route.Substream}
		last, ok := r.lastPush[k]
		c := r.recv.Window().Chain(route.Chain)
		if !ok || c == nil || c.Sealed() || r.quiet[k] {
			continue
		}
		limit := 3 * time.Duration(c.Genesis().TargetDuration) * time.Microsecond
		if now.Sub(last) > limit {
			r.quiet[k] = true
			r.m.parentQuiet.Inc()
			r.log.Warn("live parent went quiet: nothing pushed for 3 segment durations; serving the window held", "chain", route.Chain, "substream", route.Substream, "parent", route.Parent, "since", now.Sub(last).Round(time.Millisecond))
		}
	}
}

// measurePeers times one /healthz round trip to each child, and to each
// parent whose address the route names.
func (r *Relay) measurePeers(ctx context.Context) {
	seen := map[wire.NodeID]string{}
	for _, route := range r.recv.Routes() {
		for _, c := range route.Children {
			seen[c.NodeID] = c.Addr
		}
		if route.Parent != "" && route.ParentAddr != "" {
			seen[route.Parent] = route.ParentAddr
		}
	}
	for id, addr := range seen {
		ms, err := r.ping(ctx, addr)
		r.mu.Lock()
		if err == nil {
			r.rtt[id] = ms
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	for id := range r.rtt {
		if _, ok := seen[id]; !ok {
			delete(r.rtt, id)
		}
	}
	r.mu.Unlock()
}

func (r *Relay) ping(ctx context.Context, addr string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+wire.PathHealth, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}
