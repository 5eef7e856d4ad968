package viewer

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// The scheduler runs here in pure logical time: a tiny event loop plays the
// sources' behaviour (latency, lies, disappearance) against it, with no
// goroutines, sockets or sleeps.

type behaviour int

const (
	honest behaviour = iota
	slow             // answers long after any sensible timeout (a slow-drip edge)
	liar             // answers on time with a shard that fails verification
	vanish           // the connection drops after its latency (reset, 404)
)

type sourceSpec struct {
	name    string
	kind    behaviour
	latency time.Duration
	shards  []int // held indices (edges only)
	origin  bool
}

type scenario struct {
	name     string
	k, nMax  int
	deadline time.Duration // from t0
	startup  bool
	sources  []sourceSpec

	wantDone        bool
	wantBanned      []string
	wantEdgeShards  int           // verified shards from edges (-1: don't care)
	wantOriginReqs  [2]int        // inclusive range of requests sent to origins
	wantFinishAfter time.Duration // done no earlier than this
	wantFinishBy    time.Duration // done (or failed) no later than this
	wantTimedOut    []string      // sources whose request was cancelled on timeout
}

const segDur = 2 * time.Second

func edge(name string, kind behaviour, latency time.Duration, shards ...int) sourceSpec {
	return sourceSpec{name: name, kind: kind, latency: latency, shards: shards}
}

func origin(latency time.Duration) sourceSpec {
	return sourceSpec{name: "origin", kind: honest, latency: latency, origin: true}
}

var scenarios = []scenario{
	{
		name: "all honest: k+1 edges asked, the long tail cancelled, no origin",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("e1", honest, 100*time.Millisecond, 0), edge("e2", honest, 110*time.Millisecond, 1),
			edge("e3", honest, 120*time.Millisecond, 2), edge("e4", honest, 130*time.Millisecond, 3),
			edge("e5", honest, 500*time.Millisecond, 4), edge("e6", honest, 100*time.Millisecond, 5),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: 4, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 130 * time.Millisecond,
	},
	{
		name: "slow edges time out and are replaced by others",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("slow1", slow, time.Hour, 0), edge("slow2", slow, time.Hour, 1),
			edge("e3", honest, 100*time.Millisecond, 2), edge("e4", honest, 100*time.Millisecond, 3),
			edge("e5", honest, 100*time.Millisecond, 4), edge("e6", honest, 100*time.Millisecond, 5),
			edge("e7", honest, 100*time.Millisecond, 6),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: 4, wantOriginReqs: [2]int{0, 0},
		wantTimedOut:    []string{"slow1", "slow2"},
		wantFinishAfter: segDur, wantFinishBy: segDur + 200*time.Millisecond,
	},
	{
		name: "a lying edge is banned and replaced",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("liar", liar, 10*time.Millisecond, 0),
			edge("e2", honest, 100*time.Millisecond, 1), edge("e3", honest, 100*time.Millisecond, 2),
			edge("e4", honest, 100*time.Millisecond, 3), edge("e5", honest, 100*time.Millisecond, 4),
			edge("e6", honest, 100*time.Millisecond, 5),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantBanned: []string{"liar"}, wantEdgeShards: 4, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 110 * time.Millisecond,
	},
	{
		name: "several liars, one holding many shards, cannot spoil more than one request each",
		k:    3, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("liarA", liar, 10*time.Millisecond, 0, 1, 2, 3),
			edge("liarB", liar, 10*time.Millisecond, 4, 5),
			edge("e3", honest, 100*time.Millisecond, 6), edge("e4", honest, 100*time.Millisecond, 7),
			edge("e5", honest, 100*time.Millisecond, 8),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantBanned: []string{"liarA", "liarB"}, wantEdgeShards: 3, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 110 * time.Millisecond,
	},
	{
		name: "edges vanish mid-transfer and are replaced",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("gone1", vanish, 50*time.Millisecond, 0), edge("gone2", vanish, 60*time.Millisecond, 1),
			edge("e3", honest, 100*time.Millisecond, 2), edge("e4", honest, 100*time.Millisecond, 3),
			edge("e5", honest, 100*time.Millisecond, 4), edge("e6", honest, 100*time.Millisecond, 5),
			edge("e7", honest, 100*time.Millisecond, 6),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: 4, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 160 * time.Millisecond,
	},
	{
		name: "not enough edges: the origin fills the missing shards",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("e1", honest, 100*time.Millisecond, 0), edge("e2", honest, 100*time.Millisecond, 1),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: -1, wantOriginReqs: [2]int{2, 3},
		wantFinishBy: 100 * time.Millisecond,
	},
	{
		name: "edges holding the same shard count once: the origin covers the rest",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("e1", honest, 100*time.Millisecond, 0), edge("e2", honest, 100*time.Millisecond, 0),
			edge("e3", honest, 100*time.Millisecond, 0), edge("e4", honest, 100*time.Millisecond, 0),
			edge("e5", honest, 100*time.Millisecond, 1),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: -1, wantOriginReqs: [2]int{2, 3},
		wantFinishBy: 100 * time.Millisecond,
	},
	{
		name: "startup: edges that answer within the hedge keep the origin out",
		k:    4, nMax: 12, deadline: 0, startup: true,
		sources: []sourceSpec{
			edge("e1", honest, 10*time.Millisecond, 0), edge("e2", honest, 10*time.Millisecond, 1),
			edge("e3", honest, 10*time.Millisecond, 2), edge("e4", honest, 10*time.Millisecond, 3),
			edge("e5", honest, 10*time.Millisecond, 4),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: 4, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 10 * time.Millisecond,
	},
	{
		name: "startup: stalled edges, the origin hedges and startup stays short",
		k:    4, nMax: 12, deadline: 0, startup: true,
		sources: []sourceSpec{
			edge("slow1", slow, time.Hour, 0), edge("slow2", slow, time.Hour, 1),
			edge("slow3", slow, time.Hour, 2), edge("slow4", slow, time.Hour, 3),
			edge("slow5", slow, time.Hour, 4),
			origin(50 * time.Millisecond),
		},
		// Edge requests time out at minShardTimeout; with no edge left the
		// origin fills exactly what is missing.
		wantDone: true, wantEdgeShards: 0, wantOriginReqs: [2]int{4, 4},
		wantFinishBy: minShardTimeout + 50*time.Millisecond,
	},
	{
		name: "late segment: edges and the origin race with a wide δ",
		k:    4, nMax: 12, deadline: segDur / 2,
		sources: []sourceSpec{
			edge("slow1", slow, time.Hour, 0), edge("slow2", slow, time.Hour, 1),
			edge("slow3", slow, time.Hour, 2), edge("slow4", slow, time.Hour, 3),
			edge("slow5", slow, time.Hour, 4), edge("slow6", slow, time.Hour, 5),
			edge("slow7", slow, time.Hour, 6), edge("slow8", slow, time.Hour, 7),
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantEdgeShards: 0, wantOriginReqs: [2]int{4, 8},
		wantFinishBy: 50 * time.Millisecond,
	},
	{
		name: "slow edges, deadline approaching: the origin joins and the play is saved",
		k:    4, nMax: 12, deadline: 3 * segDur,
		sources: []sourceSpec{
			edge("slow1", slow, time.Hour, 0), edge("slow2", slow, time.Hour, 1),
			edge("slow3", slow, time.Hour, 2), edge("slow4", slow, time.Hour, 3),
			edge("slow5", slow, time.Hour, 4), edge("slow6", slow, time.Hour, 5),
			origin(50 * time.Millisecond),
		},
		// Timeouts at 2 s replace the first batch with the last two edges and
		// the origin (edges cannot cover k any more); at the latest, the
		// origin joins with one segment of slack left.
		wantDone: true, wantEdgeShards: 0, wantOriginReqs: [2]int{4, 12},
		wantFinishAfter: segDur, wantFinishBy: 2*segDur + 50*time.Millisecond,
	},
	{
		name: "no origin and too few honest edges: the fetch fails instead of hanging",
		k:    4, nMax: 12, deadline: 10 * segDur,
		sources: []sourceSpec{
			edge("e1", honest, 100*time.Millisecond, 0), edge("liar", liar, 10*time.Millisecond, 1),
			edge("gone", vanish, 10*time.Millisecond, 2),
		},
		wantDone: false, wantBanned: []string{"liar"}, wantEdgeShards: -1, wantOriginReqs: [2]int{0, 0},
		wantFinishBy: 100 * time.Millisecond,
	},
	{
		name: "a lying origin is banned too; a second origin takes over",
		k:    2, nMax: 6, deadline: 0, startup: true,
		sources: []sourceSpec{
			{name: "origin-bad", kind: liar, latency: 10 * time.Millisecond, origin: true},
			origin(50 * time.Millisecond),
		},
		wantDone: true, wantBanned: []string{"origin-bad"}, wantEdgeShards: 0, wantOriginReqs: [2]int{4, 4},
		wantFinishBy: 60 * time.Millisecond,
	},
}

// pending is a response the simulated network will deliver.
type pending struct {
	at   time.Time
	seq  int
	key  requestKey
	kind behaviour
}

type runResult struct {
	done, failed bool
	finish       time.Duration
	banned       []string
	edgeShards   int
	originReqs   int
	timedOut     []string
	trace        []string
}

func runScenario(t *testing.T, sc scenario) runResult {
	t.Helper()
	return runScenarioOn(t, sc, nil)
}

// runScenarioOn runs sc on reuse after a Reset (nil: a new scheduler).
func runScenarioOn(t *testing.T, sc scenario, reuse *segmentFetch) runResult {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	specs := map[wire.NodeID]sourceSpec{}
	var edges, origins []candidate
	for _, s := range sc.sources {
		id := wire.NodeID(s.name)
		specs[id] = s
		c := candidate{Node: id, Addr: "http://" + s.name, Shards: s.shards, Origin: s.origin}
		if s.origin {
			origins = append(origins, c)
		} else {
			edges = append(edges, c)
		}
	}
	f := reuse
	if f == nil {
		f = newSegmentFetch(sc.k, sc.nMax, t0.Add(sc.deadline), segDur, sc.startup, nil, rand.New(rand.NewSource(1)))
	} else {
		f.Reset(sc.k, sc.nMax, t0.Add(sc.deadline), segDur, sc.startup, nil, rand.New(rand.NewSource(1)))
	}
	var res runResult
	var queue []pending
	seq := 0
	askedEdges := map[wire.NodeID]int{}
	now := t0
	apply := func(acts []action) {
		for _, a := range acts {
			res.trace = append(res.trace, fmt.Sprintf("%6v %s %s/%d", now.Sub(t0), a.Kind, a.Node, a.Shard))
			switch a.Kind {
			case actRequest:
				if f.Done() {
					t.Fatalf("request after done: %+v", a)
				}
				spec := specs[a.Node]
				if spec.origin {
					res.originReqs++
				} else {
					askedEdges[a.Node]++
					if askedEdges[a.Node] > 1 {
						t.Fatalf("edge %s asked twice for one segment", a.Node)
					}
					if !slices.Contains(spec.shards, a.Shard) {
						t.Fatalf("edge %s asked for shard %d it does not hold", a.Node, a.Shard)
					}
				}
				if !a.Timeout.After(now) {
					t.Fatalf("request with timeout %v not after now %v", a.Timeout, now)
				}
				seq++
				queue = append(queue, pending{at: now.Add(spec.latency), seq: seq, key: requestKey{a.Node, a.Shard}, kind: spec.kind})
			case actCancel:
				before := len(queue)
				queue = slices.DeleteFunc(queue, func(p pending) bool { return p.key == requestKey{a.Node, a.Shard} })
				if before != len(queue) && !f.Done() {
					res.timedOut = append(res.timedOut, string(a.Node))
				}
			case actBan:
				res.banned = append(res.banned, string(a.Node))
			}
		}
		// Invariant: no shard index in flight twice.
		seen := map[int]bool{}
		for _, r := range f.inflight {
			if seen[r.key.Shard] {
				t.Fatalf("shard %d in flight twice: %v", r.key.Shard, f.inflight)
			}
			seen[r.key.Shard] = true
		}
	}
	apply(f.Sources(now, edges, origins))
	for steps := 0; !f.Done() && !f.Failed(); steps++ {
		if steps > 10000 {
			t.Fatal("scheduler did not converge")
		}
		sort.Slice(queue, func(i, j int) bool {
			if !queue[i].at.Equal(queue[j].at) {
				return queue[i].at.Before(queue[j].at)
			}
			return queue[i].seq < queue[j].seq
		})
		wake := f.NextWake(now)
		if len(queue) > 0 && (wake.IsZero() || !queue[0].at.After(wake)) {
			p := queue[0]
			queue = queue[1:]
			now = p.at
			switch p.kind {
			case honest:
				apply(f.ShardVerified(now, p.key.Node, p.key.Shard))
			case liar:
				apply(f.ShardBad(now, p.key.Node, p.key.Shard))
			case vanish:
				apply(f.RequestFailed(now, p.key.Node, p.key.Shard))
			case slow:
				apply(f.ShardVerified(now, p.key.Node, p.key.Shard))
			}
			continue
		}
		if wake.IsZero() {
			t.Fatalf("stuck: nothing pending and no wake-up\n%s", strings.Join(res.trace, "\n"))
		}
		now = wake
		apply(f.Tick(now))
	}
	res.done, res.failed = f.Done(), f.Failed()
	res.finish = now.Sub(t0)
	for _, idx := range f.Verified() {
		if !specs[f.verifiedBy(idx)].origin {
			res.edgeShards++
		}
	}
	if f.Done() {
		if got := len(f.Verified()); got != sc.k {
			t.Fatalf("done with %d verified shards, want k=%d", got, sc.k)
		}
		if f.InFlight() != 0 {
			t.Fatalf("done with %d requests still in flight (long tail not cancelled)", f.InFlight())
		}
		// k distinct shards from k distinct edges (origins may send several).
		byNode := map[wire.NodeID]int{}
		for _, idx := range f.Verified() {
			byNode[f.verifiedBy(idx)]++
		}
		for node, n := range byNode {
			if !specs[node].origin && n > 1 {
				t.Fatalf("edge %s supplied %d shards of one segment", node, n)
			}
		}
	}
	return res
}

func TestSchedulerScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			res := runScenario(t, sc)
			trace := strings.Join(res.trace, "\n")
			if res.done != sc.wantDone {
				t.Fatalf("done=%v failed=%v, want done=%v\n%s", res.done, res.failed, sc.wantDone, trace)
			}
			if !sc.wantDone && !res.failed {
				t.Fatalf("not done but not failed either\n%s", trace)
			}
			slices.Sort(res.banned)
			want := slices.Clone(sc.wantBanned)
			slices.Sort(want)
			if !slices.Equal(res.banned, want) {
				t.Errorf("banned %v, want %v\n%s", res.banned, want, trace)
			}
			if sc.wantEdgeShards >= 0 && res.edgeShards != sc.wantEdgeShards {
				t.Errorf("%d shards from edges, want %d\n%s", res.edgeShards, sc.wantEdgeShards, trace)
			}
			if res.originReqs < sc.wantOriginReqs[0] || res.originReqs > sc.wantOriginReqs[1] {
				t.Errorf("%d origin requests, want %d..%d\n%s", res.originReqs, sc.wantOriginReqs[0], sc.wantOriginReqs[1], trace)
			}
			if res.finish < sc.wantFinishAfter || res.finish > sc.wantFinishBy {
				t.Errorf("finished at %v, want in [%v, %v]\n%s", res.finish, sc.wantFinishAfter, sc.wantFinishBy, trace)
			}
			for _, name := range sc.wantTimedOut {
				if !slices.Contains(res.timedOut, name) {
					t.Errorf("%s was not timed out and replaced (timed out: %v)\n%s", name, res.timedOut, trace)
				}
			}
		})
	}
}

// TestSchedulerResetIsNew: a scheduler Reset after other segments (done,
// failed, with bans and timeouts) decides exactly as a new one: every
// scenario's trace of actions is the same on one reused scheduler as on
// fresh ones.
func TestSchedulerResetIsNew(t *testing.T) {
	var reused *segmentFetch
	for _, sc := range scenarios {
		fresh := runScenario(t, sc)
		if reused == nil {
			reused = newSegmentFetch(1, 1, time.Time{}, segDur, false, nil, nil)
			runScenarioOn(t, scenarios[len(scenarios)-1], reused) // dirty it first
		}
		got := runScenarioOn(t, sc, reused)
		if !slices.Equal(got.trace, fresh.trace) || got.done != fresh.done || got.failed != fresh.failed {
			t.Fatalf("%s: after Reset\n%s\nwant (a new scheduler)\n%s", sc.name, strings.Join(got.trace, "\n"), strings.Join(fresh.trace, "\n"))
		}
	}
}

// TestSchedulerDeltaGrows checks that spare requests grow as the deadline
// nears: 1 with plenty of time, 2 within two segments, 4 within one.
func TestSchedulerDeltaGrows(t *testing.T) {
	t0 := time.Unix(0, 0)
	f := newSegmentFetch(4, 32, t0.Add(10*segDur), segDur, false, nil, nil)
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {8*segDur - time.Millisecond, 1}, {8 * segDur, 2}, {9*segDur - time.Millisecond, 2}, {9 * segDur, 4}, {11 * segDur, 4}} {
		if got := f.delta(t0.Add(tc.at)); got != tc.want {
			t.Errorf("delta at %v = %d, want %d", tc.at, got, tc.want)
		}
	}
}

// TestSchedulerBannedSourcesNeverAsked checks that the session's bans carry
// into later segments.
func TestSchedulerBannedSourcesNeverAsked(t *testing.T) {
	t0 := time.Unix(0, 0)
	banned := map[wire.NodeID]bool{"bad": true}
	f := newSegmentFetch(2, 8, t0.Add(10*segDur), segDur, false, banned, nil)
	acts := f.Sources(t0, []candidate{{Node: "bad", Shards: []int{0}}, {Node: "a", Shards: []int{1}}, {Node: "b", Shards: []int{2}}, {Node: "c", Shards: []int{3}}}, nil)
	for _, a := range acts {
		if a.Node == "bad" {
			t.Fatalf("banned source asked: %+v", a)
		}
	}
	if len(acts) != 3 {
		t.Fatalf("got %d requests, want k+1=3: %+v", len(acts), acts)
	}
}

// TestSchedulerTimeoutFloorFollowsRTT checks that a startup request on a
// long round trip gets freshRequestRTTs round trips before it counts as
// late (a fresh connection needs two), instead of minShardTimeout, which
// would time every edge out at 150 ms RTT; and that a short RTT keeps the
// old floor. The hedge is set apart from it.
func TestSchedulerTimeoutFloorFollowsRTT(t *testing.T) {
	t0 := time.Unix(0, 0)
	edges := []candidate{{Node: "a", Shards: []int{0}}, {Node: "b", Shards: []int{1}}, {Node: "c", Shards: []int{2}}, {Node: "d", Shards: []int{3}}}
	for _, tc := range []struct {
		rtt  time.Duration
		want time.Duration
	}{{0, minShardTimeout}, {20 * time.Millisecond, minShardTimeout}, {150 * time.Millisecond, 450 * time.Millisecond}} {
		f := newSegmentFetch(2, 8, t0, segDur, true, nil, nil)
		f.rtt = tc.rtt
		acts := f.Sources(t0, edges, nil)
		if len(acts) == 0 {
			t.Fatalf("rtt %v: no requests", tc.rtt)
		}
		for _, a := range acts {
			if got := a.Timeout.Sub(t0); got != tc.want {
				t.Errorf("rtt %v: request for shard %d times out after %v, want %v", tc.rtt, a.Shard, got, tc.want)
			}
		}
		// Nothing times out before the floor: a tick just before it
		// cancels nothing.
		for _, a := range f.Tick(t0.Add(tc.want - time.Millisecond)) {
			if a.Kind == actCancel {
				t.Errorf("rtt %v: %+v before the timeout floor", tc.rtt, a)
			}
		}
	}
}

// TestSchedulerHedgeDefaultFollowsRTT checks that with no configured hedge
// a startup fetch asks the origin only after max(startupHedge,
// freshRequestRTTs round trips), and that a configured hedge is exact.
func TestSchedulerHedgeDefaultFollowsRTT(t *testing.T) {
	t0 := time.Unix(0, 0)
	// Enough edges that timed-out requests are replaced by other edges, so
	// only the hedge brings in the origin.
	var edges []candidate
	for i := range 24 {
		edges = append(edges, candidate{Node: wire.NodeID(fmt.Sprintf("e%d", i)), Shards: []int{i % 8}})
	}
	origins := []candidate{{Node: "o", Origin: true}}
	for _, tc := range []struct {
		rtt, hedge, want time.Duration
	}{
		{0, 0, startupHedge},
		{50 * time.Millisecond, 0, startupHedge},
		{150 * time.Millisecond, 0, 450 * time.Millisecond},
		{150 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond},
	} {
		f := newSegmentFetch(2, 8, t0, segDur, true, nil, rand.New(rand.NewSource(1)))
		f.rtt, f.hedge = tc.rtt, tc.hedge
		askedOrigin := func(acts []action) bool {
			for _, a := range acts {
				if a.Kind == actRequest && a.Origin {
					return true
				}
			}
			return false
		}
		if askedOrigin(f.Sources(t0, edges, origins)) {
			t.Fatalf("rtt %v hedge %v: origin asked at once", tc.rtt, tc.hedge)
		}
		if askedOrigin(f.Tick(t0.Add(tc.want - time.Millisecond))) {
			t.Errorf("rtt %v hedge %v: origin asked before %v", tc.rtt, tc.hedge, tc.want)
		}
		if !askedOrigin(f.Tick(t0.Add(tc.want))) {
			t.Errorf("rtt %v hedge %v: origin not asked at %v", tc.rtt, tc.hedge, tc.want)
		}
	}
}
