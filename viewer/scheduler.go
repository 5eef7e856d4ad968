package viewer

import (
	"math/rand"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Scheduling constants. Durations are wall-clock (already divided by the
// playback speed), so the same rules hold for a demo that compresses time.
const (
	// minShardTimeout is the floor of the per-shard request timeout: below it
	// an honest source on a loaded machine would be mistaken for a slow one.
	minShardTimeout = 150 * time.Millisecond
	// minOriginTimeout is the floor of an origin request's timeout: the origin
	// is the last resort, so giving up on it early only repeats the request.
	minOriginTimeout = 2 * time.Second
	// maxOriginFailures bounds how many origin requests may fail for one
	// segment before the fetch gives up (the origin is the last resort).
	maxOriginFailures = 8
	// freshRequestRTTs is how many round trips a shard request may need
	// before it counts as late: a fresh connection costs one for the
	// handshake and one for the request, and the third is margin for the
	// transfer and jitter. The timeout floor is this many times the
	// session's round-trip estimate, so a long-RTT network (150 ms: a
	// fresh request needs 300 ms) does not time out every edge at
	// minShardTimeout and send every startup shard to the origin.
	freshRequestRTTs = 3
	// startupHedge is the default of Config.StartupHedge on round trips up
	// to ~83 ms (beyond, hedgeDelay waits freshRequestRTTs round trips): how
	// long a startup segment waits on edges before the origin races them for the
	// missing shards (a hedged request). Edges that answer within it keep
	// the origin out of every play's first segments, which would otherwise
	// cost ~2/15 of a short video's bytes; beyond it, startup time matters
	// more than offload. docs/PERFORMANCE.md "Startup under emulated RTT"
	// measures the trade-off at 0, 50 and 150 ms round trips.
	startupHedge = 250 * time.Millisecond
)

// candidate is a source the scheduler may ask for shards of this segment.
type candidate struct {
	Node   wire.NodeID
	Addr   string
	Shards []int // indices held; ignored for origins, which hold every shard
	Origin bool
}

// actionKind says what the driver must do.
type actionKind int

const (
	actRequest actionKind = iota // start GET shard Shard from Node (at Addr), give up at Timeout
	actCancel                    // abort the request for Shard from Node
	actBan                       // ban Node for the session (it sent a bad shard)
)

func (k actionKind) String() string {
	switch k {
	case actRequest:
		return "request"
	case actCancel:
		return "cancel"
	case actBan:
		return "ban"
	}
	return "?"
}

// action is one instruction from the scheduler to its driver.
type action struct {
	Kind    actionKind
	Node    wire.NodeID
	Addr    string
	Shard   int
	Origin  bool
	Timeout time.Time // for actRequest: the instant the request counts as failed
	// TimedOut marks an actCancel of a request that exceeded its timeout
	// (the driver demotes the source), as opposed to long-tail cancellation.
	TimedOut bool
}

// requestKey names an in-flight request: one shard from one source.
type requestKey struct {
	Node  wire.NodeID
	Shard int
}

type request struct {
	origin  bool
	timeout time.Time
}

// inflightRequest is one entry of segmentFetch.inflight.
type inflightRequest struct {
	key requestKey
	request
}

// verifiedShard is a shard that passed verification and its source.
type verifiedShard struct {
	shard int
	node  wire.NodeID
}

// segmentFetch is the sans-IO any-k-of-n scheduler for one segment. It is fed
// events (sources known, shard verified or bad, request failed, clock ticks)
// and answers with actions. Invariants: at most one request per edge per
// segment (so k shards come from k distinct edges and a single liar can spoil
// at most one); no shard index is requested twice at once; once k verified
// shards have arrived every other request is cancelled and nothing new starts.
type segmentFetch struct {
	k, nMax  int
	deadline time.Time     // playback instant of the segment
	segDur   time.Duration // wall-clock duration of one segment
	startup  bool          // first segments of a play: edges first, the origin hedges after hedgeDelay
	hedge    time.Duration // how long a startup fetch waits on edges alone (0: hedgeDelay's default)
	rtt      time.Duration // the session's round-trip estimate (0: unknown); raises timeout floors
	started  time.Time     // when the fetch first planned (zero until then)
	rng      *rand.Rand

	edges   []candidate // coordinator rank order, banned ones removed
	origins []candidate
	// edgeAsked[i] records that edges[i] is in asked, and openEdge is the
	// first edge not known to be asked: plan tops up from there, so a
	// segment's fetch does not rescan (and compare node ids of) the
	// edges it already asked on every arrival. asked stays the truth;
	// these only skip what it already holds.
	edgeAsked []bool
	openEdge  int
	// acts backs the actions each call returns (valid until the next call
	// on f: drivers apply them at once), so a fetch allocates none.
	acts []action

	// The per-segment sets are short slices searched linearly (at most
	// one request per edge, about k + 4 in flight, k verified): cheaper
	// than maps at these sizes, and nothing depends on their order
	// except where the actions are sorted.
	banned   map[wire.NodeID]bool // shared with the session; the scheduler adds to it
	asked    []wire.NodeID        // edges already asked for this segment
	inflight []inflightRequest    // at most one per key
	verified []verifiedShard      // in arrival order

	originFailures int
	failed         bool
}

// newSegmentFetch makes a scheduler for one segment with k data shards of
// nMax. banned is the session's ban set (may be nil).
func newSegmentFetch(k, nMax int, deadline time.Time, segDur time.Duration, startup bool, banned map[wire.NodeID]bool, rng *rand.Rand) *segmentFetch {
	if banned == nil {
		banned = map[wire.NodeID]bool{}
	}
	// Room for the usual sizes up front (k verified, k plus a few spares
	// asked and in flight), so a fetch does not regrow them.
	return &segmentFetch{
		k: k, nMax: nMax, deadline: deadline, segDur: segDur, startup: startup, rng: rng,
		banned:   banned,
		asked:    make([]wire.NodeID, 0, k+4),
		inflight: make([]inflightRequest, 0, k+4),
		verified: make([]verifiedShard, 0, k),
	}
}

// shardSet is a set of shard indices 0..maxShardIndex (a segment has at
// most content.MaxTotalShards = 256 shards).
type shardSet [4]uint64

// maxShardIndex bounds the indices a shardSet holds.
const maxShardIndex = 255

func (m *shardSet) add(i int)      { m[i>>6] |= 1 << (uint(i) & 63) }
func (m *shardSet) has(i int) bool { return m[i>>6]&(1<<(uint(i)&63)) != 0 }

// busySet is the set of shard indices verified or being fetched: plan
// keeps it as it adds requests instead of rescanning both lists per shard.
func (f *segmentFetch) busySet() shardSet {
	var m shardSet
	for _, v := range f.verified {
		if v.shard >= 0 && v.shard <= maxShardIndex {
			m.add(v.shard)
		}
	}
	for _, r := range f.inflight {
		if r.key.Shard >= 0 && r.key.Shard <= maxShardIndex {
			m.add(r.key.Shard)
		}
	}
	return m
}

// findInflight is the index of key in f.inflight, or -1.
func (f *segmentFetch) findInflight(key requestKey) int {
	for i := range f.inflight {
		if f.inflight[i].key == key {
			return i
		}
	}
	return -1
}

// removeInflight deletes f.inflight[i].
func (f *segmentFetch) removeInflight(i int) {
	f.inflight = slices.Delete(f.inflight, i, i+1)
}

// addInflight records a request for key (replacing one with the same key).
func (f *segmentFetch) addInflight(key requestKey, req request) {
	if i := f.findInflight(key); i >= 0 {
		f.inflight[i].request = req
		return
	}
	f.inflight = append(f.inflight, inflightRequest{key, req})
}

// isVerified reports whether shard passed verification.
func (f *segmentFetch) isVerified(shard int) bool {
	for _, v := range f.verified {
		if v.shard == shard {
			return true
		}
	}
	return false
}

// verifiedBy is the source that delivered verified shard, or "".
func (f *segmentFetch) verifiedBy(shard int) wire.NodeID {
	for _, v := range f.verified {
		if v.shard == shard {
			return v.node
		}
	}
	return ""
}

// Done reports whether k verified shards have arrived.
func (f *segmentFetch) Done() bool { return len(f.verified) >= f.k }

// Failed reports whether the fetch gave up: no source left can supply the
// missing shards.
func (f *segmentFetch) Failed() bool { return f.failed }

// Verified returns the indices of the verified shards in arrival order.
func (f *segmentFetch) Verified() []int {
	out := make([]int, len(f.verified))
	for i, v := range f.verified {
		out[i] = v.shard
	}
	return out
}

// InFlight is the number of outstanding requests.
func (f *segmentFetch) InFlight() int { return len(f.inflight) }

// Every call that returns actions returns them in f's own buffer, valid
// until the next call on f: the driver applies them at once (copy one to
// keep it).
//
// Sources replaces the known sources (edges in coordinator rank order, then
// origins) and schedules requests.
func (f *segmentFetch) Sources(now time.Time, edges, origins []candidate) []action {
	f.edges = slices.Grow(f.edges[:0], len(edges))
	for _, e := range edges {
		if !f.banned[e.Node] && !e.Origin {
			f.edges = append(f.edges, e)
		}
	}
	f.edgeAsked = slices.Grow(f.edgeAsked[:0], len(f.edges))[:len(f.edges)]
	clear(f.edgeAsked)
	f.openEdge = 0
	f.origins = f.origins[:0]
	for _, o := range origins {
		if !f.banned[o.Node] {
			o.Origin = true
			f.origins = append(f.origins, o)
		}
	}
	return f.done(f.plan(now, f.acts[:0]))
}

// done keeps acts' memory for the next call and returns them.
func (f *segmentFetch) done(acts []action) []action {
	f.acts = acts
	return acts
}

// ShardVerified records that the shard from node passed verification.
func (f *segmentFetch) ShardVerified(now time.Time, node wire.NodeID, shard int) []action {
	i := f.findInflight(requestKey{node, shard})
	if i < 0 {
		return nil // cancelled or timed out before it arrived: not counted
	}
	f.removeInflight(i)
	if f.Done() || f.isVerified(shard) {
		return nil
	}
	f.verified = append(f.verified, verifiedShard{shard, node})
	return f.done(f.plan(now, f.acts[:0]))
}

// ShardBad records that node sent a shard failing verification: the node is
// banned for the session and replaced.
func (f *segmentFetch) ShardBad(now time.Time, node wire.NodeID, shard int) []action {
	if i := f.findInflight(requestKey{node, shard}); i >= 0 {
		f.removeInflight(i)
	}
	acts := append(f.acts[:0], action{Kind: actBan, Node: node, Shard: shard})
	f.banned[node] = true
	// Cancel anything else in flight from the liar (origins may have several).
	f.inflight = slices.DeleteFunc(f.inflight, func(r inflightRequest) bool {
		if r.key.Node != node {
			return false
		}
		acts = append(acts, action{Kind: actCancel, Node: r.key.Node, Shard: r.key.Shard})
		return true
	})
	sortActions(acts[1:])
	return f.done(f.plan(now, acts))
}

// RequestFailed records that a request ended without a shard (connection
// reset, 404, timeout). The source is not banned, only replaced.
func (f *segmentFetch) RequestFailed(now time.Time, node wire.NodeID, shard int) []action {
	i := f.findInflight(requestKey{node, shard})
	if i < 0 {
		return nil
	}
	req := f.inflight[i].request
	f.removeInflight(i)
	if req.origin {
		f.originFailures++
	}
	return f.done(f.plan(now, f.acts[:0]))
}

// Tick advances the clock: requests past their timeout fail and are replaced,
// and δ grows as the deadline nears.
func (f *segmentFetch) Tick(now time.Time) []action {
	acts := f.acts[:0]
	f.inflight = slices.DeleteFunc(f.inflight, func(r inflightRequest) bool {
		if now.Before(r.timeout) {
			return false
		}
		if r.origin {
			f.originFailures++
		}
		acts = append(acts, action{Kind: actCancel, Node: r.key.Node, Shard: r.key.Shard, TimedOut: true})
		return true
	})
	sortActions(acts)
	return f.done(f.plan(now, acts))
}

// NextWake is when the driver should call Tick next (the earliest request
// timeout or deadline threshold), or the zero time if nothing is pending.
func (f *segmentFetch) NextWake(now time.Time) time.Time {
	if f.Done() || f.failed {
		return time.Time{}
	}
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, r := range f.inflight {
		consider(r.timeout)
	}
	if f.startup && !f.started.IsZero() {
		consider(f.started.Add(f.hedgeDelay()))
	}
	consider(f.deadline.Add(-2 * f.segDur))
	consider(f.deadline.Add(-f.segDur))
	consider(f.deadline)
	return next
}

// delta is the number of spare requests beyond those still needed: one with
// plenty of time, more as the deadline nears.
func (f *segmentFetch) delta(now time.Time) int {
	if f.startup {
		// A startup segment has no playback slack to measure, but the
		// origin hedges it after hedgeDelay: two spares are enough, and
		// more would draw in edges this session already saw lagging.
		return 2
	}
	left := f.deadline.Sub(now)
	switch {
	case left > 2*f.segDur:
		return 1
	case left > f.segDur:
		return 2
	default:
		return 4
	}
}

// hedgeDelay is how long a startup fetch waits on edges before the origin
// races them: the configured hedge, else startupHedge or, on a long round
// trip, freshRequestRTTs round trips: before that no edge can have answered
// a request on a fresh connection, so hedging earlier only spends origin
// bytes (measured: docs/PERFORMANCE.md "Startup under emulated RTT").
func (f *segmentFetch) hedgeDelay() time.Duration {
	if f.hedge > 0 {
		return f.hedge
	}
	return max(startupHedge, freshRequestRTTs*f.rtt)
}

// shardTimeout is the per-request timeout: a request may use up to half the
// time left before the deadline, within [floor, max(floor, one segment)],
// where floor is minShardTimeout or freshRequestRTTs round trips if longer.
func (f *segmentFetch) shardTimeout(now time.Time) time.Duration {
	floor := max(minShardTimeout, freshRequestRTTs*f.rtt)
	t := f.deadline.Sub(now) / 2
	t = min(t, max(f.segDur, floor))
	return max(t, floor)
}

// plan cancels everything once done, else tops up requests to need + δ.
// It appends its actions to acts.
func (f *segmentFetch) plan(now time.Time, acts []action) []action {
	if f.failed {
		return acts
	}
	if f.started.IsZero() {
		f.started = now
	}
	if f.Done() {
		from := len(acts)
		for _, r := range f.inflight {
			acts = append(acts, action{Kind: actCancel, Node: r.key.Node, Shard: r.key.Shard})
		}
		f.inflight = f.inflight[:0]
		sortActions(acts[from:])
		return acts
	}
	need := f.k - len(f.verified)
	delta := f.delta(now)
	target := need + delta
	timeout := now.Add(f.shardTimeout(now))
	originTimeout := now.Add(max(f.shardTimeout(now), minOriginTimeout, 2*f.segDur))
	busy := f.busySet()

	// Late: the origin must be able to cover what is missing. A startup
	// segment has no playback slack yet (its deadline is "now"), so it is
	// late only once edges had hedgeDelay to answer.
	late := f.deadline.Sub(now) <= f.segDur
	if f.startup {
		late = now.Sub(f.started) >= f.hedgeDelay()
	}
	{
		// Edges first, in rank order, one shard per edge per segment.
		for i := f.openEdge; i < len(f.edges); i++ {
			if len(f.inflight) >= target {
				break
			}
			if f.edgeAsked[i] {
				if i == f.openEdge {
					f.openEdge++
				}
				continue
			}
			e := &f.edges[i]
			if slices.Contains(f.asked, e.Node) {
				f.edgeAsked[i] = true
				if i == f.openEdge {
					f.openEdge++
				}
				continue
			}
			if f.banned[e.Node] {
				continue
			}
			shard, ok := f.pickEdgeShard(e, &busy)
			if !ok {
				continue
			}
			f.asked = append(f.asked, e.Node)
			f.edgeAsked[i] = true
			if i == f.openEdge {
				f.openEdge++
			}
			f.addInflight(requestKey{e.Node, shard}, request{timeout: timeout})
			busy.add(shard)
			acts = append(acts, action{Kind: actRequest, Node: e.Node, Addr: e.Addr, Shard: shard, Timeout: timeout})
		}
	}
	// The origin fills in when the play is starting or late (then it alone
	// must be able to cover what is missing, racing the edges), or when the
	// edges cannot supply the missing shards from distinct sources.
	originTarget := 0
	switch {
	case late:
		originTarget = need
	case len(f.inflight) < need:
		// Edges cannot cover k: the origin (reliable, so no spares) fills
		// exactly the gap.
		originTarget = need - len(f.inflight)
	}
	for _, o := range f.origins {
		if originTarget == 0 || f.originFailures >= maxOriginFailures {
			break
		}
		if f.banned[o.Node] {
			continue
		}
		inflight := 0
		for _, r := range f.inflight {
			if r.origin && r.key.Node == o.Node {
				inflight++
			}
		}
		if !late {
			inflight = 0 // originTarget already counts what is in flight
		}
		// Data shards first: the origin serves them as byte ranges.
		for i := 0; i < min(f.nMax, maxShardIndex+1) && inflight < originTarget; i++ {
			if busy.has(i) {
				continue
			}
			f.addInflight(requestKey{o.Node, i}, request{origin: true, timeout: originTimeout})
			busy.add(i)
			acts = append(acts, action{Kind: actRequest, Node: o.Node, Addr: o.Addr, Shard: i, Origin: true, Timeout: originTimeout})
			inflight++
		}
		break // one origin at a time; the others stand by in case it is banned
	}
	if len(f.inflight) == 0 && !f.Done() {
		f.failed = true
	}
	return acts
}

// pickEdgeShard picks a shard index edge e holds that is neither verified nor
// in flight, choosing at random among them so that concurrent viewers spread
// over the shards.
// busy is f.busySet(), kept by the caller.
func (f *segmentFetch) pickEdgeShard(e *candidate, busy *shardSet) (int, bool) {
	var buf [32]int // on the stack for the usual few shards per edge
	free := buf[:0]
	var seen shardSet
	for _, i := range e.Shards {
		if i >= 0 && i < min(f.nMax, maxShardIndex+1) && !busy.has(i) && !seen.has(i) {
			seen.add(i)
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return 0, false
	}
	if f.rng == nil {
		return free[0], true
	}
	return free[f.rng.Intn(len(free))], true
}

// The simulator (package sim) drives this scheduler over a simulated clock
// and network, so it runs the same decisions as a real play. These names
// export it without changing it: a SegmentFetch is a segmentFetch.
type (
	// SegmentFetch is the any-k-of-n scheduler of one segment.
	SegmentFetch = segmentFetch
	// Candidate is a source offered to it (edges in rank order, origins).
	Candidate = candidate
	// Action is one instruction it hands its driver.
	Action = action
	// ActionKind says what an Action asks for.
	ActionKind = actionKind
)

// The kinds of Action.
const (
	ActRequest = actRequest // start a request for Action.Shard from Action.Node; it fails at Action.Timeout
	ActCancel  = actCancel  // abort that request
	ActBan     = actBan     // ban Action.Node for the session: it sent a bad shard
)

// Scheduling constants the simulator's player follows, as the real player does.
const (
	StartupSegments = startupSegments // the first segments of a play are fetched as startup segments
	BufferSegments  = bufferSegments  // the fetcher stays at most this many segments ahead of playback
	LookupWindow    = lookupWindow    // segments one lookup covers
)

// NewSegmentFetch makes a scheduler for one segment (see newSegmentFetch).
func NewSegmentFetch(k, nMax int, deadline time.Time, segDur time.Duration, startup bool, banned map[wire.NodeID]bool, rng *rand.Rand) *SegmentFetch {
	return newSegmentFetch(k, nMax, deadline, segDur, startup, banned, rng)
}

// Reset makes f the scheduler newSegmentFetch would return for another
// segment, keeping only its buffers' memory, so a driver that fetches one
// segment after another (the simulator's 10^5 players) allocates none per
// segment. Nothing of the previous segment survives: Verified's result is
// the caller's; the actions f returned are valid until the next call on f,
// as always.
func (f *segmentFetch) Reset(k, nMax int, deadline time.Time, segDur time.Duration, startup bool, banned map[wire.NodeID]bool, rng *rand.Rand) {
	if banned == nil {
		banned = map[wire.NodeID]bool{}
	}
	*f = segmentFetch{
		k: k, nMax: nMax, deadline: deadline, segDur: segDur, startup: startup, rng: rng,
		banned:    banned,
		edges:     clear0(f.edges),
		origins:   clear0(f.origins),
		asked:     slices.Grow(clear0(f.asked), k+4),
		inflight:  slices.Grow(clear0(f.inflight), k+4),
		verified:  slices.Grow(clear0(f.verified), k),
		edgeAsked: f.edgeAsked[:0],
		acts:      clear0(f.acts),
	}
}

// clear0 empties s, zeroing what it held so the old segment's strings
// and shard lists are not kept alive by the buffer.
func clear0[S ~[]E, E any](s S) S {
	clear(s)
	return s[:0]
}

func sortActions(acts []action) {
	slices.SortFunc(acts, func(a, b action) int {
		if a.Node != b.Node {
			if a.Node < b.Node {
				return -1
			}
			return 1
		}
		return a.Shard - b.Shard
	})
}
