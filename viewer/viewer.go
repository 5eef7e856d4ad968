package viewer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// Config wires a viewer to its coordinator.
type Config struct {
	Coordinator string // base URL of the coordinator, e.g. http://127.0.0.1:7000
	Identity    identity.Identity
	// Token is a login session token (wire.PathLogin; an edge API token may
	// only settle, so it will not do here), sent
	// as a bearer token on every coordinator call. With a Token, the viewer
	// binds Identity's key to the account on first use, so the coordinator
	// issues it order limits and keys for the account's entitled videos.
	Token      string
	Region     string
	HTTPClient *http.Client
	Seed       int64            // seeds the scheduler's *rand.Rand
	Now        func() time.Time // default time.Now
	Log        *slog.Logger
	// Registry receives the viewer's swarmcast_viewer_* metrics; Handler
	// serves it at /metrics. A player hosted in another node (the edge's
	// built-in player) passes its host's registry, so one scrape shows
	// both. Default httpserve.NewRegistry().
	Registry *prometheus.Registry
	// WebOrigins are the origins (scheme://host[:port]) of web pages
	// allowed to read the gateway across origins (CORS), besides the
	// Coordinator's, which is always allowed: the coordinator's video
	// page plays through this gateway. A coordinator behind a proxy is
	// named here by its public origin. Each must pass wire.WebOrigin.
	WebOrigins []string
	// OnSegment, if set, receives the verified shards of each segment of a
	// video the viewer rebuilt (the edge's built-in player hands them to
	// edge.Keep so it caches what it watched). Live segments are not
	// handed over: edges get those pushed down the chain's trees.
	OnSegment func(seg content.SegmentRef, shards []content.ShardMessage)
	// StartupHedge is how long the first segments of a play wait on edges
	// before the origin races them. 0 is the measured default: 250 ms, or
	// three round trips of the session's quickest lookup when longer (an
	// edge on a fresh connection needs two). A shorter hedge spends origin
	// bytes and, in the measurements, bought no faster startup; see
	// docs/PERFORMANCE.md "Startup under emulated RTT".
	StartupHedge time.Duration
	// OnLiveServable, if set, is told when the gateway can first serve each
	// live segment it rebuilt (the latency figure's T_serve). It runs on
	// the fetch's goroutine: keep it quick.
	OnLiveServable func(LiveServable)
	// OnLivePartServable, if set, is told when the gateway verified each
	// part of a low-latency chain (LivePartServable; called from the part
	// follower: it must not block).
	OnLivePartServable func(LivePartServable)
	// OnLiveWatching, if set, is given the chains the gateway follows
	// whenever that set changes (the edge's built-in player hands it to
	// edge.SetLiveWatching, so the coordinator puts the edge in those
	// chains' trees). Called without the viewer's locks held.
	OnLiveWatching func(chains []content.VideoID)
}

// Lookup windows: how many segments one lookup covers and how long its
// answer is trusted (edges come and go within seconds).
const (
	lookupWindow = 8
	lookupMaxAge = 5 * time.Second
)

// Viewer plays videos from the swarm. It is safe for concurrent use. Close
// stops its background work (gateway readahead, evidence reports).
type Viewer struct {
	cfg   Config
	coord *wire.CoordinatorClient
	hc    *http.Client
	log   *slog.Logger
	met   *metrics

	ctx    context.Context // cancelled by Close; parent of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	pay       *payer
	bindOnce  sync.Once
	closeOnce sync.Once

	mu     sync.Mutex
	rng    *rand.Rand                    // seeds per-segment schedulers
	banned map[wire.NodeID]bool          // session bans: never asked again
	record map[wire.NodeID]*sourceRecord // this session's experience of each edge
	videos map[content.VideoID]*videoEntry
	cache  *segmentCache
	// lives are the chains the gateway follows; channels caches which
	// chain a channel id names (live.go).
	lives    map[content.VideoID]*liveChannel
	channels map[wire.ChannelID]channelResolution

	webOrigins map[string]struct{} // CORS allow list (Config.WebOrigins and the coordinator's), normalised
	// lookupRTT is the quickest lookup answer this session (0 before the
	// first): a round trip on a warm connection plus the coordinator's
	// work, the viewer's estimate of its network's round trip. The
	// minimum, like TCP's min-RTT filter, ignores queueing and load.
	lookupRTT time.Duration
}

// noteLookupRTT records one lookup's duration in lookupRTT.
func (v *Viewer) noteLookupRTT(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if d > 0 && (v.lookupRTT == 0 || d < v.lookupRTT) {
		v.lookupRTT = d
	}
}

// videoEntry is a verified manifest and its key, loaded once per video.
type videoEntry struct {
	ready chan struct{} // closed when loaded (or failed)
	err   error
	man   *content.Manifest
	key   content.ContentKey

	// live, for a chain, is its verified entries: the manifest the fetch
	// path checks shards against grows with every entry (manifest()).
	live *content.LiveChain

	mu      sync.Mutex
	windows map[int]*lookupResult // rendition → latest lookup
}

// manifest is the manifest shards verify against: the video's, or the
// current view of a live chain's held entries.
func (e *videoEntry) manifest() *content.Manifest {
	if e.live != nil {
		return e.live.Manifest()
	}
	return e.man
}

type lookupResult struct {
	at       time.Time
	from, to int // segments [from, to)
	resp     wire.LookupResponse
}

// knownOrigins are the origins of the latest lookup of a rendition (nil if
// none succeeded yet): every origin serves every shard, so they stand in
// when a lookup fails.
func (e *videoEntry) knownOrigins(rendition int) []candidate {
	e.mu.Lock()
	w := e.windows[rendition]
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	var out []candidate
	for _, o := range w.resp.Origins {
		out = append(out, candidate{Node: o.NodeID, Addr: o.Addr, Origin: true})
	}
	return out
}

// New makes a viewer. Nothing is fetched until Play, Segment or the gateway
// asks.
func New(cfg Config) (*Viewer, error) {
	if cfg.Coordinator == "" {
		return nil, errors.New("viewer: no coordinator URL given (want its base URL, e.g. http://HOST:PORT)")
	}
	webOrigins := map[string]struct{}{}
	for _, u := range append([]string{cfg.Coordinator}, cfg.WebOrigins...) {
		o, err := wire.WebOrigin(u)
		if err != nil {
			return nil, fmt.Errorf("viewer: %w", err)
		}
		webOrigins[o] = struct{}{}
	}
	if cfg.StartupHedge < 0 {
		return nil, fmt.Errorf("viewer: startup hedge %v is negative (want 0 for the default, or how long to wait on edges before asking the origin)", cfg.StartupHedge)
	}
	if cfg.Identity.Key == nil {
		cfg.Identity = identity.New()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.NewHTTPClient()
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
	ctx, cancel := context.WithCancel(context.Background())
	coord := wire.NewCoordinatorClient(cfg.Coordinator, cfg.HTTPClient)
	coord.Token = cfg.Token
	return &Viewer{
		cfg:      cfg,
		coord:    coord,
		hc:       cfg.HTTPClient,
		log:      cfg.Log.With("role", "viewer", "node", cfg.Identity.ID),
		met:      newMetrics(cfg.Registry),
		ctx:      ctx,
		cancel:   cancel,
		rng:      rand.New(rand.NewSource(cfg.Seed)),
		banned:   map[wire.NodeID]bool{},
		record:   map[wire.NodeID]*sourceRecord{},
		videos:   map[content.VideoID]*videoEntry{},
		cache:    newSegmentCache(32),
		lives:    map[content.VideoID]*liveChannel{},
		channels: map[wire.ChannelID]channelResolution{},
		pay:      newPayer(cfg.Identity.Key, cfg.Identity.ID),

		webOrigins: webOrigins,
	}, nil
}

// Close hands every edge its final order, stops background work and
// returns once every goroutine the viewer started has exited.
func (v *Viewer) Close() error {
	v.closeOnce.Do(func() {
		v.sendFinalOrders(context.Background())
		v.cancel()
		v.wg.Wait()
	})
	return nil
}

// bind binds the viewer's signing key to the token's account, once. A
// failure is logged, not fatal: free videos play without it, and the
// coordinator's refusal of a paid one says what is missing.
func (v *Viewer) bind(ctx context.Context) {
	if v.cfg.Token == "" {
		return
	}
	v.bindOnce.Do(func() {
		if err := v.coord.BindViewer(ctx, v.cfg.Identity.Key); err != nil {
			v.log.Warn("could not bind this player's key to the account; the coordinator may issue it no order limits", "err", err)
			return
		}
		v.log.Debug("bound this player's key to the account")
	})
}

// Banned lists the sources banned this session.
func (v *Viewer) Banned() []wire.NodeID {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]wire.NodeID, 0, len(v.banned))
	for n := range v.banned {
		out = append(out, n)
	}
	return out
}

// video loads (once) the verified manifest and key of a video.
func (v *Viewer) video(ctx context.Context, id content.VideoID) (*videoEntry, error) {
	v.mu.Lock()
	e, ok := v.videos[id]
	if !ok {
		e = &videoEntry{ready: make(chan struct{}), windows: map[int]*lookupResult{}}
		v.videos[id] = e
	}
	v.mu.Unlock()
	if !ok {
		// Binding the player key (two round trips), the manifest and the
		// key are independent, so they run side by side: on a 150 ms
		// round trip that is ~300 ms off every first play's startup
		// (docs/PERFORMANCE.md "Startup under emulated RTT"). The
		// lookups that follow need the binding (order limits are issued
		// to a bound key), so this waits for it.
		bound := make(chan struct{})
		go func() {
			defer close(bound)
			v.bind(ctx)
		}()
		e.man, e.key, e.err = v.loadVideo(ctx, id)
		<-bound
		close(e.ready)
		if e.err != nil {
			v.mu.Lock()
			delete(v.videos, id) // a failed load is retried next time
			v.mu.Unlock()
		}
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e, e.err
}

// errUnknownVideo marks a video the coordinator does not have.
var errUnknownVideo = errors.New("unknown video")

func (v *Viewer) loadVideo(ctx context.Context, id content.VideoID) (*content.Manifest, content.ContentKey, error) {
	var key content.ContentKey
	// The key is asked for alongside the manifest (one round trip instead
	// of two) and used only once the manifest has verified and names it.
	type keyAnswer struct {
		b   []byte
		err error
	}
	keyCh := make(chan keyAnswer, 1)
	go func() {
		b, err := v.coord.VideoKey(ctx, id)
		keyCh <- keyAnswer{b, err}
	}()
	raw, err := v.coord.VideoManifest(ctx, id)
	ka := <-keyCh // always received, so the goroutine has ended on every return
	if err != nil {
		if wire.IsNotFound(err) {
			return nil, key, fmt.Errorf("video %s: %w: %v", id, errUnknownVideo, err)
		}
		if wire.IsAuthError(err) {
			return nil, key, notEntitled(id, err)
		}
		return nil, key, fmt.Errorf("video %s: manifest: %w", id, err)
	}
	man, err := content.DecodeManifest(raw)
	if err != nil {
		return nil, key, fmt.Errorf("video %s: the coordinator's manifest fails verification: %w", id, err)
	}
	if man.ID() != id {
		return nil, key, fmt.Errorf("video %s: the coordinator sent the manifest of %s instead", id, man.ID())
	}
	kb, err := ka.b, ka.err
	if wire.IsAuthError(err) {
		return nil, key, notEntitled(id, err)
	}
	if err != nil {
		return nil, key, fmt.Errorf("video %s: content key: %w", id, err)
	}
	if len(kb) != len(key) {
		return nil, key, fmt.Errorf("video %s: content key of %d bytes, want %d", id, len(kb), len(key))
	}
	copy(key[:], kb)
	if key.ID() != man.KeyID {
		return nil, key, fmt.Errorf("video %s: the coordinator's key does not match the manifest's key id", id)
	}
	return man, key, nil
}

// sources returns the ranked edges and the origins for one segment, from the
// cached lookup window or a fresh lookup of the next window.
func (v *Viewer) sources(ctx context.Context, e *videoEntry, seg content.SegmentRef, fresh bool) (edges, origins []candidate, err error) {
	id, rendition, segment := seg.Video, seg.Rendition, seg.Segment
	now := v.cfg.Now()
	e.mu.Lock()
	w := e.windows[rendition]
	e.mu.Unlock()
	if fresh || w == nil || segment < w.from || segment >= w.to || now.Sub(w.at) > lookupMaxAge {
		total := len(e.manifest().Renditions[rendition].Segments)
		req := wire.LookupRequest{
			Video:     id,
			Rendition: rendition,
			From:      segment,
			Count:     min(lookupWindow, total-segment),
			ViewerID:  v.cfg.Identity.ID,
			Region:    v.cfg.Region,
			Exclude:   v.Banned(),
		}
		asked := v.cfg.Now()
		resp, err := v.coord.Lookup(ctx, req)
		if err == nil {
			v.noteLookupRTT(v.cfg.Now().Sub(asked))
		}
		if wire.IsAuthError(err) {
			return nil, nil, notEntitled(id, err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("lookup %s rendition %d segments %d..%d: %w", id, rendition, req.From, req.From+req.Count-1, err)
		}
		v.pay.addLimits(req.Video, resp.Limits, now)
		w = &lookupResult{at: now, from: req.From, to: req.From + req.Count, resp: resp}
		e.mu.Lock()
		e.windows[rendition] = w
		e.mu.Unlock()
	}
	// The segment's own origins (the coordinator's origin pool dispatch,
	// best first) replace the response-level list when present.
	originList := w.resp.Origins
	for _, s := range w.resp.Segments {
		if s.Segment != segment {
			continue
		}
		for _, src := range s.Sources {
			edges = append(edges, candidate{Node: src.NodeID, Addr: src.Addr, Shards: src.Shards})
		}
		if len(s.Origins) > 0 {
			originList = s.Origins
		}
	}
	for _, o := range originList {
		origins = append(origins, candidate{Node: o.NodeID, Addr: o.Addr, Origin: true})
	}
	// Keep the coordinator's rank, but move edges that mostly lag or fail
	// behind the others (a slow-drip edge stops taking a slot of every
	// segment; it is still asked when the others are not enough).
	v.mu.Lock()
	// Among demoted edges, the worst lag ratio goes last: an honest edge
	// that was often a δ spare can be demoted too, and must still rank
	// ahead of one that never delivers.
	slices.SortStableFunc(edges, func(a, b candidate) int {
		ra, rb := v.record[a.Node], v.record[b.Node]
		if d := boolInt(ra.demoted()) - boolInt(rb.demoted()); d != 0 || !ra.demoted() {
			return d
		}
		return cmp.Compare(ra.lagRatio(), rb.lagRatio())
	})
	v.mu.Unlock()
	return edges, origins, nil
}

// segmentResult is one rebuilt segment and where its bytes came from.
type segmentResult struct {
	ciphertext  []byte
	shards      []content.ShardMessage // the k verified shards used
	bytesBy     map[wire.NodeID]int64
	originBytes int64
	edgeBytes   int64
	badShards   int
	banned      []wire.NodeID
}

// shardResult is what a shard request goroutine reports.
type shardResult struct {
	key    requestKey
	origin bool
	msg    *content.ShardMessage
	// verified is msg's shard as content.AcceptShard accepted it, so the
	// rebuild joins it without hashing it again.
	verified content.VerifiedShard
	raw      []byte
	err      error  // transport failure: replace the source
	bad      string // non-empty: the bytes arrived but fail verification
	// receipt is the edge's valid receipt over the shard data received
	// (nil if missing or not matching): with a bad shard it makes the
	// report a transferable proof.
	receipt *wire.ServedShardReceipt
}

// maxShardMessage bounds the bytes read for one shard of a segment of size bytes.
func maxShardMessage(p content.Params, size int) int64 {
	return int64(content.ShardHeaderSize + 32*8 + 4 + p.ShardSize(size))
}

// urgency says when a segment is needed and how hard to hedge for it.
type urgency struct {
	deadline time.Time // when the player needs the segment
	// speed is the playback clock multiplier: a segment lasts its media
	// duration divided by speed on the wall clock (> 0).
	speed float64
	// startup hedges early (the first segments of a play, and retries).
	startup bool
}

// Retrying a segment. A play degrades (stalls) rather than fails while the
// origin is up: on a loaded machine a lookup, an origin request or every
// source of a round can fail at once, and a retry that follows at once
// meets the same overload. So retries back off (0, then retryBackoffMin
// doubling to retryBackoffMax) over up to segmentAttempts rounds, about 10 s
// in all, and a round whose lookup fails still asks the origins of the last
// lookup, which hold every shard.
const (
	segmentAttempts = 10
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 2 * time.Second
)

// fetchSegment rebuilds one segment of e's video, retrying from a fresh
// lookup (and the origin) if a round of sources cannot supply k shards.
func (v *Viewer) fetchSegment(ctx context.Context, e *videoEntry, seg content.SegmentRef, u urgency) (*segmentResult, error) {
	var lastErr error
	wait := time.Duration(0)
	for attempt := 0; attempt < segmentAttempts; attempt++ {
		if attempt > 0 {
			if err := sleepUntil(ctx, v.cfg.Now, v.cfg.Now().Add(wait)); err != nil {
				return nil, err
			}
			wait = min(max(2*wait, retryBackoffMin), retryBackoffMax)
		}
		edges, origins, err := v.sources(ctx, e, seg, attempt > 0)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil || errors.Is(err, ErrNotEntitled) {
				return nil, err
			}
			if edges, origins = nil, e.knownOrigins(seg.Rendition); len(origins) == 0 {
				continue
			}
			v.log.Debug("lookup failed; asking the origins of the last lookup", "segment", seg, "err", err)
		}
		try := u
		try.startup = u.startup || attempt > 0
		res, err := v.fetchOnce(ctx, e, seg, try, edges, origins)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, lastErr
}

// fetchOnce drives one segmentFetch: it runs the requests the scheduler
// asks for, verifies what arrives and feeds the outcomes back. Every request
// goroutine has exited when it returns.
func (v *Viewer) fetchOnce(ctx context.Context, e *videoEntry, ref content.SegmentRef, u urgency, edges, origins []candidate) (*segmentResult, error) {
	man := e.manifest()
	seg, err := man.CheckSegment(ref)
	if err != nil {
		return nil, err
	}
	segDur := time.Duration(float64(time.Duration(seg.Duration)*time.Microsecond) / u.speed)
	v.mu.Lock()
	seed := v.rng.Int63()
	rtt := v.lookupRTT
	banned := make(map[wire.NodeID]bool, len(v.banned))
	for n := range v.banned {
		banned[n] = true
	}
	v.mu.Unlock()
	sched := newSegmentFetch(man.Params.K, man.Params.NMax, u.deadline, segDur, u.startup, banned, rand.New(rand.NewSource(seed)))
	sched.hedge, sched.rtt = v.cfg.StartupHedge, rtt

	fctx, cancelAll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancelAll()
		wg.Wait()
	}()
	results := make(chan shardResult)
	cancels := map[requestKey]context.CancelFunc{}
	received := map[requestKey]shardResult{}
	res := &segmentResult{bytesBy: map[wire.NodeID]int64{}}
	limit := maxShardMessage(man.Params, int(seg.Size))

	apply := func(acts []action) {
		for _, a := range acts {
			key := requestKey{a.Node, a.Shard}
			switch a.Kind {
			case actRequest:
				if !a.Origin {
					v.noteEdge(a.Node, false)
				}
				rctx, cancel := context.WithCancel(fctx)
				cancels[key] = cancel
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := v.requestShard(rctx, man, ref.Shard(a.Shard), a, limit)
					select {
					case results <- r:
					case <-fctx.Done():
					}
				}()
			case actCancel:
				if cancel, ok := cancels[key]; ok {
					cancel()
					delete(cancels, key)
				}
				if !a.Origin {
					v.noteEdge(a.Node, true) // timed out, or the long tail: it lagged behind k others
				}
			case actBan:
				res.banned = append(res.banned, a.Node)
				v.mu.Lock()
				v.banned[a.Node] = true
				v.mu.Unlock()
				v.met.bans.Inc()
				v.log.Warn("banned a source that sent a bad shard", "source", a.Node, "shard", ref.Shard(a.Shard))
			}
		}
	}

	apply(sched.Sources(v.cfg.Now(), edges, origins))
	for !sched.Done() && !sched.Failed() {
		var timer <-chan time.Time
		var t *time.Timer
		if wake := sched.NextWake(v.cfg.Now()); !wake.IsZero() {
			t = time.NewTimer(wake.Sub(v.cfg.Now()))
			timer = t.C
		}
		select {
		case r := <-results:
			if cancel, ok := cancels[r.key]; ok {
				cancel()
				delete(cancels, r.key)
			}
			now := v.cfg.Now()
			switch {
			case r.bad != "":
				res.badShards++
				v.met.badShards.Inc()
				v.reportBadShard(ref.Shard(r.key.Shard), r)
				apply(sched.ShardBad(now, r.key.Node, r.key.Shard))
			case r.err != nil:
				v.log.Debug("shard request failed; replacing the source", "source", r.key.Node, "shard", r.key.Shard, "err", r.err)
				if !r.origin {
					v.noteEdge(r.key.Node, true)
				}
				apply(sched.RequestFailed(now, r.key.Node, r.key.Shard))
			default:
				received[r.key] = r
				apply(sched.ShardVerified(now, r.key.Node, r.key.Shard))
			}
		case <-timer:
			apply(sched.Tick(v.cfg.Now()))
		case <-ctx.Done():
			stopTimer(t)
			return nil, ctx.Err()
		}
		stopTimer(t)
	}
	if !sched.Done() {
		return nil, fmt.Errorf("video %s rendition %d segment %d: no source left can supply the %d missing shards (origins unreachable?)", ref.Video, ref.Rendition, ref.Segment, man.Params.K-len(sched.verified))
	}
	shards := make([]content.VerifiedShard, 0, man.Params.K)
	for _, idx := range sched.Verified() {
		node := sched.verifiedBy(idx)
		r := received[requestKey{node, idx}]
		shards = append(shards, r.verified)
		res.shards = append(res.shards, *r.msg)
		n := int64(len(r.msg.Data))
		res.bytesBy[node] += n
		if r.origin {
			res.originBytes += n
		} else {
			res.edgeBytes += n
		}
	}
	// Each shard was verified on arrival (requestShard); the join reuses
	// those verdicts, so the k shards are hashed once per play.
	ct, err := content.JoinVerified(man, ref.Rendition, ref.Segment, shards)
	if err != nil {
		return nil, fmt.Errorf("video %s rendition %d segment %d: rebuild from verified shards failed: %v", ref.Video, ref.Rendition, ref.Segment, err)
	}
	res.ciphertext = ct
	v.met.shardBytes.WithLabelValues("origin").Add(float64(res.originBytes))
	v.met.shardBytes.WithLabelValues("edge").Add(float64(res.edgeBytes))
	v.met.segments.Inc()
	if v.cfg.OnSegment != nil && e.live == nil {
		v.cfg.OnSegment(ref, res.shards)
	}
	return res, nil
}

// requestShard fetches and verifies one shard, ref, from the source a.
// Only a complete response whose bytes fail verification is evidence
// against the source; transport errors (reset, 404, cancellation) are not.
// limit bounds the response body (maxShardMessage).
func (v *Viewer) requestShard(ctx context.Context, man *content.Manifest, ref content.ShardRef, a action, limit int64) shardResult {
	r := shardResult{key: requestKey{a.Node, a.Shard}, origin: a.Origin}
	req := wire.ShardRequest{Base: a.Addr, Ref: ref, MaxBytes: limit}
	var serial wire.Serial
	paid := false
	if !a.Origin {
		req.Limit, req.Order, serial, paid = v.pay.forRequest(a.Node, ref.Video, a.Addr, v.cfg.Now())
		if req.Order != "" {
			v.met.ordersSent.Inc()
		}
	}
	resp, err := wire.GetShard(ctx, v.hc, req)
	if err != nil {
		var apiErr *wire.APIError
		if ctx.Err() == nil && !errors.As(err, &apiErr) && errors.Is(err, wire.ErrOversize) {
			r.raw, r.bad = resp.Body, err.Error()
			return r
		}
		r.err = err
		return r
	}
	raw := resp.Body
	r.raw = raw
	// The receipt first: it covers the raw bytes, so even bytes that do
	// not decode are provable against the edge that signed for them.
	if !a.Origin {
		receipt, err := wire.CheckShardReceipt(resp.Receipt, a.Node, ref, raw)
		switch {
		case err == nil:
			r.receipt = receipt
			v.met.receipts.WithLabelValues("valid").Inc()
		case resp.Receipt == "":
			v.met.receipts.WithLabelValues("missing").Inc()
		default:
			v.met.receipts.WithLabelValues("invalid").Inc()
			v.log.Debug("an edge's receipt does not match what it sent", "source", a.Node, "err", err)
		}
	}
	msg, err := content.DecodeShardMessage(raw)
	if err != nil {
		r.bad = err.Error()
		return r
	}
	if got := msg.Ref(); got != ref {
		r.bad = fmt.Sprintf("asked for %s/%d/%d shard %d, got %s/%d/%d shard %d", ref.Video, ref.Rendition, ref.Segment, ref.Shard, got.Video, got.Rendition, got.Segment, got.Shard)
		return r
	}
	verified, err := content.AcceptShard(man, ref.Rendition, ref.Segment, msg.Shard)
	if err != nil {
		r.bad = err.Error()
		return r
	}
	if paid {
		v.pay.credit(serial, int64(len(raw)))
	}
	r.msg, r.verified = msg, verified
	return r
}

// sourceRecord counts how an edge fared this session.
type sourceRecord struct {
	asked  int // shard requests sent to it
	lagged int // requests that failed, timed out, or were still running when k others had arrived
}

// demoted reports whether the edge lagged in most of at least two requests.
// An honest edge lags only as one of the δ spares; a slow one every time.
func (r *sourceRecord) demoted() bool {
	return r != nil && r.asked >= 2 && 2*r.lagged > r.asked
}

// lagRatio is the share of requests the edge lagged in (0 if never asked).
func (r *sourceRecord) lagRatio() float64 {
	if r == nil || r.asked == 0 {
		return 0
	}
	return float64(r.lagged) / float64(r.asked)
}

func (v *Viewer) noteEdge(node wire.NodeID, lagged bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.record[node]
	if r == nil {
		r = &sourceRecord{}
		v.record[node] = r
	}
	if lagged {
		r.lagged++
	} else {
		r.asked++
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reportBadShard sends the exact bytes received for ref to the coordinator
// in the background (the play must not wait for it).
func (v *Viewer) reportBadShard(ref content.ShardRef, r shardResult) {
	rep := wire.BadShardReport{
		Reporter:  v.cfg.Identity.ID,
		Node:      r.key.Node,
		Video:     ref.Video,
		Rendition: ref.Rendition,
		Segment:   ref.Segment,
		Shard:     ref.Shard,
		Reason:    r.bad,
		Evidence:  r.raw,
		Receipt:   r.receipt,
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		ctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
		defer cancel()
		if err := v.coord.ReportBadShard(ctx, rep); err != nil {
			v.log.Warn("could not report a bad shard to the coordinator", "source", rep.Node, "err", err)
		}
	}()
}

// Segment returns the verified ciphertext of one segment, rebuilt from any k
// shards. deadline is when the caller needs it (the scheduler asks more
// sources, then the origin, as it nears).
func (v *Viewer) Segment(ctx context.Context, video content.VideoID, rendition, segment int, deadline time.Time) ([]byte, error) {
	e, err := v.video(ctx, video)
	if err != nil {
		return nil, err
	}
	if _, err := e.man.Segment(rendition, segment); err != nil {
		return nil, fmt.Errorf("video %s: %w", video, err)
	}
	res, err := v.fetchSegment(ctx, e, content.SegmentRef{Video: video, Rendition: rendition, Segment: segment}, urgency{deadline: deadline, speed: 1})
	if err != nil {
		return nil, err
	}
	return res.ciphertext, nil
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
