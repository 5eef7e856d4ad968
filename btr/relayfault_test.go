package btr

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// The relays' fault-injection suite: seeded runs of the relays' judge
// (RelayJudge) over f = 1 and f = 2 in logical time, in the style of
// fault_test.go. For relays, f is the most Byzantine nodes in a channel's
// trees — relays that stall (omission), forward past their bound (timing),
// corrupt a shard (commission), send different pushes to different children
// (equivocation), and children (edges or relays) that accuse honest parents
// of pushes they got — together, so at most f of any relay's children lie
// (RelayConfig.F = f). Besides them, a run may kill one honest relay (a
// crash: it leaves, the trees are rebuilt without it; not a Byzantine
// fault, so it may be excluded for omission — its children cannot tell —
// but it is never what a fault is measured against).
//
// Each run: two-level trees per substream as coordinator/live builds them
// (origin → first-level relays → second-level relays → edges, each child
// with a backup parent, btr.ParentPlan), segment s published at A_s = s·T,
// every hop within HopDelay (drawn up to it: honest but slow), children
// watching the cadence with ParentWatch's deadline (fanout) at their depth's
// RelayTimeout and accusing overdue parents, accused relays answering with
// their signed push within W when they hold one, rebuilds (SetPlans) when a
// relay leaves (after a heartbeat timeout) or once an excluded relay's
// switch segment is published, each taking effect at the agreed segment
// (the judge's newest + Δ; an exclusion's s*). Asserted per run: every
// manifested fault detected as its kind and its culprit excluded; every
// commission proof accepted by an independent verifier (and a forged one
// against an honest push refused); no honest relay excluded — rerouted ones
// included — and no honest child's accusation of an honest parent that
// pushed to it in time; recovery (the first segment the culprit spoils →
// its switch segment, from which its children are served by their backups,
// checked) ≤ R; no wrong push accepted; no edge misses segments for longer
// than R.

const (
	relayRunsPerF = 60
	relayRunSegs  = 36
	relayOnsetMax = 14
	relaySubs     = 2
	relayEdges    = 10
)

var traceRelaySim = os.Getenv("RELAYSIM_TRACE") != ""

type relaySim int

const (
	rsHonest relaySim = iota
	rsStall
	rsSlow
	rsCorrupt
	rsEquivocate
	rsLie
)

func (k relaySim) String() string {
	return [...]string{"honest", "stall", "slow", "corrupt", "equivocate", "lie"}[k]
}

// wantKind is the exclusion kind each manifested fault must get.
var wantKind = map[relaySim]FaultKind{rsStall: Omission, rsSlow: Timing, rsCorrupt: Commission, rsEquivocate: Commission}

// relayTruth re-executes relaying: the correct push digest of (segment,
// substream) is a function of the task alone (the entry fixes every shard).
type relayTruth struct{}

func (relayTruth) Run(recipe string, input content.Hash) (content.Hash, error) {
	return sha256.Sum256(append([]byte("push "+recipe+" "), input[:]...)), nil
}

func correctPush(t Task) content.Hash { d, _ := relayTruth{}.Run(t.Recipe, t.Input); return d }
func wrongPush(t Task) content.Hash {
	return sha256.Sum256(append([]byte("bad push "+t.Recipe), t.Input[:]...))
}

func relaySimChain() content.VideoID {
	return content.VideoID(sha256.Sum256([]byte("btr relay suite chain")))
}

func relaySimTask(seg uint64, sub int) Task {
	return RelayTask(relaySimChain(), seg, sub, []byte("entry "+strconv.FormatUint(seg, 10)))
}

// relaySigned caches signed pushes across runs (keys are fixed by name).
var relaySigned = map[string]*Output{}

func signedPushOf(name string, seg uint64, sub int, d content.Hash) *Output {
	k := fmt.Sprint(name, seg, sub, d)
	if o, ok := relaySigned[k]; ok {
		return o
	}
	o := &Output{Task: relaySimTask(seg, sub), Digest: d}
	o.Sign(testKey(name))
	relaySigned[k] = o
	return o
}

type simNode struct {
	name  string
	key   NodeKey
	relay bool
	fault relaySim
	onset uint64
	depth map[int]int
	dead  bool
	// got: a verified push of (sub, seg) arrived (or was handed over by
	// the judge); sent: the digest this relay signed and pushed.
	got  map[[2]uint64]time.Time
	sent map[[2]uint64]content.Hash
	// pushedTo: which children this relay pushed (sub, seg) to, and when
	// the push reached each.
	pushedTo map[[2]uint64]map[string]time.Time
	watch    map[int]*simWatch
}

// simWatch is fanout.ParentWatch's deadline rule (anchored on the last
// on-time arrival) for one child and substream, restarted as
// fanout.ParentMonitor restarts it when a rebuild changes the child's
// parent (ParentWatch.Restart): the new parent answers for nothing before
// its first push, and that push is judged on the chain's cadence (the
// watch's previous anchor), not taken as an anchor when it is late.
type simWatch struct {
	timeout   time.Duration
	anchorSeq uint64
	anchorAt  time.Time
	started   bool
	next      uint64
	// After a restart: the anchor held before it, and the first segment
	// the new parent pushes (the new plan version's).
	seeded    bool
	seedSeq   uint64
	seedAt    time.Time
	startFrom uint64
	gen       int // bumped by a restart: the old tick chain ends
}

type planVersion struct {
	from  uint64
	plans []ParentPlan
}

type relayRun struct {
	t        *testing.T
	f        int
	rng      *rand.Rand
	p        Params
	judge    *RelayJudge
	judgeKey ed25519.PrivateKey
	queue    simQueue
	seq      int
	end      time.Time

	nodes    map[string]*simNode
	byKey    map[NodeKey]*simNode
	origin   NodeKey
	versions []planVersion
	switchAt map[string]uint64 // the exclusions, as every node applies them
	excluded map[string]Decision
	opened   uint64
	manifest map[string]uint64
	forged   *Output // an honest push, for the forged-proof check
	killed   string
	rerouted map[routeKey]uint64 // the sim's own route starts, to compare with the judge's
}

func (r *relayRun) at(t time.Time, fn func(time.Time)) {
	if t.After(r.end) {
		return
	}
	r.seq++
	heap.Push(&r.queue, &simEvent{at: t, order: r.seq, run: fn})
}

func (r *relayRun) uniform(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	if r.rng.IntN(5) == 0 {
		return max // honest but as slow as the bound allows
	}
	return time.Duration(r.rng.Int64N(int64(max) + 1))
}

func (r *relayRun) avail(s uint64) time.Time { return t0.Add(time.Duration(s) * r.p.Segment) }

// excludedAt is the configuration of segment seg as every node derives it.
func (r *relayRun) excludedAt(seg uint64) func(NodeKey) bool {
	return func(k NodeKey) bool {
		n := r.byKey[k]
		if n == nil {
			return false
		}
		s, ok := r.switchAt[n.name]
		return ok && s <= seg
	}
}

// parentFor is child's parent for segment seg: the plan version in force
// for seg, with the exclusions switched by then.
func (r *relayRun) parentFor(child NodeKey, sub int, seg uint64) (NodeKey, bool) {
	var plans []ParentPlan
	for _, v := range r.versions {
		if v.from <= seg {
			plans = v.plans
		}
	}
	return plans[sub].ParentOf(child, r.excludedAt(seg))
}

func (r *relayRun) childrenFor(parent NodeKey, sub int, seg uint64) []*simNode {
	var out []*simNode
	for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
		n := r.nodes[name]
		if p, ok := r.parentFor(n.key, sub, seg); ok && p == parent && n.key != parent {
			out = append(out, n)
		}
	}
	return out
}

type relayStats struct {
	runs, injected, detected, proofs, rebuilds, rerouted, lies, killed, accusations int
	byKind                                                                          map[relaySim]int
	maxRecovery                                                                     map[relaySim]time.Duration
}

func TestRelayFaultInjection(t *testing.T) {
	st := &relayStats{byKind: map[relaySim]int{}, maxRecovery: map[relaySim]time.Duration{}}
	for _, f := range []int{1, 2} {
		for seed := range uint64(relayRunsPerF) {
			t.Run(fmt.Sprintf("f=%d/seed=%d", f, seed), func(t *testing.T) { runRelayFaults(t, f, seed, st) })
		}
	}
	if st.runs < 100 || st.detected != st.injected {
		t.Errorf("%d runs, %d of %d manifested relay faults detected", st.runs, st.detected, st.injected)
	}
	for _, k := range []relaySim{rsStall, rsSlow, rsCorrupt, rsEquivocate} {
		if st.byKind[k] == 0 {
			t.Errorf("no %s fault manifested in the suite", k)
		}
	}
	if st.rerouted == 0 || st.killed == 0 || st.lies == 0 {
		t.Errorf("the suite never rerouted a relay (%d), killed one (%d) or had a child lie (%d)", st.rerouted, st.killed, st.lies)
	}
	t.Logf("%d runs: %d relay faults manifested %v, %d detected, %d commission proofs checked; %d relays killed, %d rebuilds, %d routes moved, %d lies, %d accusations; R = %v; max recovery by kind: %v",
		st.runs, st.injected, st.byKind, st.detected, st.proofs, st.killed, st.rebuilds, st.rerouted, st.lies, st.accusations, relaySuiteParams().Bound(), st.maxRecovery)
}

// relaySuiteParams are coordinator/live's relayParams for 1 s segments:
// the defaults with an answer window of one segment.
func relaySuiteParams() Params {
	p := DefaultParams()
	p.AnswerWindow = p.Segment
	return p
}

// relayShape is a fixed tree and fault placement (TestRelayFaultShapes)
// instead of a random one; a run's seed still draws every delay.
type relayShape struct {
	name string
	// faults: relay index → kind and onset; kill: a relay index killed at
	// killAt (−1: none).
	faults map[int]relaySim
	onsets map[int]uint64
	kill   int
	killAt uint64
}

// The shapes' trees, the same in both substreams: relay0 and relay1
// under the origin; relay2 and relay3 under relay0 (backup relay1),
// relay4 under relay1 (backup relay0); edges 0–5 under relay2 (backup
// relay3), 6–7 under relay3 (backup relay4), 8–9 under relay4 (backup
// relay2). relay3 has two children of its own (≤ F at f = 2) and backs
// relay2's six; relay0's children are relay2 and relay3.
func shapePlans(origin NodeKey, relays, edges []*simNode) []ParentPlan {
	plans := make([]ParentPlan, relaySubs)
	for sub := range plans {
		pl := ParentPlan{Parent: map[NodeKey]NodeKey{}, Backup: map[NodeKey]NodeKey{}}
		set := func(n *simNode, parent, backup NodeKey, depth int) {
			pl.Parent[n.key], pl.Backup[n.key], n.depth[sub] = parent, backup, depth
		}
		set(relays[0], origin, origin, 1)
		set(relays[1], origin, origin, 1)
		set(relays[2], relays[0].key, relays[1].key, 2)
		set(relays[3], relays[0].key, relays[1].key, 2)
		set(relays[4], relays[1].key, relays[0].key, 2)
		for i, e := range edges {
			switch {
			case i < 6:
				set(e, relays[2].key, relays[3].key, 3)
			case i < 8:
				set(e, relays[3].key, relays[4].key, 3)
			default:
				set(e, relays[4].key, relays[2].key, 3)
			}
		}
		plans[sub] = pl
	}
	return plans
}

func runRelayFaults(t *testing.T, f int, seed uint64, st *relayStats) {
	runRelayFaultsShaped(t, f, seed, st, nil)
}

func runRelayFaultsShaped(t *testing.T, f int, seed uint64, st *relayStats, shape *relayShape) {
	st.runs++
	rng := rand.New(rand.NewPCG(seed, 100+uint64(f)))
	p := relaySuiteParams()
	r := &relayRun{t: t, f: f, rng: rng, p: p, judgeKey: testKey("relay judge"), nodes: map[string]*simNode{}, byKey: map[NodeKey]*simNode{},
		switchAt: map[string]uint64{}, excluded: map[string]Decision{}, manifest: map[string]uint64{}, rerouted: map[routeKey]uint64{}}
	segs := uint64(relayRunSegs)
	r.end = r.avail(segs).Add(2 * p.Bound())
	r.origin = KeyOf(testKey("origin"))
	add := func(name string, relay bool) *simNode {
		n := &simNode{name: name, key: KeyOf(testKey(name)), relay: relay, depth: map[int]int{}, got: map[[2]uint64]time.Time{},
			sent: map[[2]uint64]content.Hash{}, pushedTo: map[[2]uint64]map[string]time.Time{}, watch: map[int]*simWatch{}}
		r.nodes[name], r.byKey[n.key] = n, n
		return n
	}
	nRelays := 5 + rng.IntN(3)
	if shape != nil {
		nRelays = 5
	}
	var relays, edges []*simNode
	for i := range nRelays {
		relays = append(relays, add(fmt.Sprintf("relay%d", i), true))
	}
	for i := range relayEdges {
		edges = append(edges, add(fmt.Sprintf("edge%d", i), false))
	}
	// The trees: per substream two first-level relays under the origin
	// (backup: the origin), the rest under them (backup: the other one),
	// the edges spread over the second level (backup: the next one).
	plans := make([]ParentPlan, relaySubs)
	for sub := range plans {
		pl := ParentPlan{Parent: map[NodeKey]NodeKey{}, Backup: map[NodeKey]NodeKey{}}
		perm := rng.Perm(nRelays)
		l1, l2 := []*simNode{relays[perm[0]], relays[perm[1]]}, []*simNode{}
		for _, i := range perm[2:] {
			l2 = append(l2, relays[i])
		}
		for _, n := range l1 {
			pl.Parent[n.key], pl.Backup[n.key] = r.origin, r.origin
			n.depth[sub] = 1
		}
		for i, n := range l2 {
			pl.Parent[n.key], pl.Backup[n.key] = l1[i%2].key, l1[(i+1)%2].key
			n.depth[sub] = 2
		}
		for i, e := range edges {
			off := rng.IntN(len(l2))
			pl.Parent[e.key] = l2[(i+off)%len(l2)].key
			pl.Backup[e.key] = l2[(i+off+1)%len(l2)].key
			e.depth[sub] = 3
		}
		plans[sub] = pl
	}
	if shape != nil {
		plans = shapePlans(r.origin, relays, edges)
	}
	r.versions = []planVersion{{from: 0, plans: plans}}
	var err error
	r.judge, err = NewRelayJudge(RelayConfig{Chain: relaySimChain(), Params: p, Plans: plans, Judge: r.judgeKey, F: f})
	if err != nil {
		t.Fatal(err)
	}

	// Up to f Byzantine nodes: relays of each kind in turn, or a lying
	// child (an edge or a relay); and, in most runs, one honest relay
	// killed mid-stream.
	nByz := 1 + rng.IntN(f)
	pool := append(slices.Clone(relays), edges[:3]...)
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	if shape != nil {
		nByz = 0
		for i, k := range shape.faults {
			relays[i].fault, relays[i].onset = k, shape.onsets[i]
		}
		if shape.kill >= 0 {
			n := relays[shape.kill]
			r.killed = n.name
			st.killed++
			kill := r.avail(shape.killAt).Add(r.uniform(p.Segment))
			r.at(kill, func(time.Time) { n.dead = true })
			r.at(kill.Add(time.Second+r.uniform(2*time.Second)), func(now time.Time) { r.rebuild(n, now, st) })
		}
	}
	for i := range nByz {
		n := pool[i]
		n.fault = relaySim(1 + (int(seed)+i)%5)
		if !n.relay {
			n.fault = rsLie
		}
		n.onset = 2 + uint64(rng.IntN(relayOnsetMax))
	}
	if shape == nil && rng.IntN(4) != 0 {
		for _, n := range relays {
			if n.fault == rsHonest {
				r.killed = n.name
				st.killed++
				kill := r.avail(3 + uint64(rng.IntN(relayOnsetMax))).Add(r.uniform(p.Segment))
				r.at(kill, func(now time.Time) {
					n.dead = true
					if traceRelaySim {
						t.Logf("%v %s killed", now.Sub(t0), n.name)
					}
				})
				// The coordinator notices the leave within 1–3 s (a
				// missed heartbeat) and rebuilds without it.
				r.at(kill.Add(time.Second+r.uniform(2*time.Second)), func(now time.Time) { r.rebuild(n, now, st) })
				break
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
		n := r.nodes[name]
		for sub := range relaySubs {
			n.watch[sub] = &simWatch{timeout: p.RelayTimeout(n.depth[sub])}
		}
	}
	for s := range segs {
		r.at(r.avail(s), func(now time.Time) {
			r.opened = s
			r.judge.Open(s)
			for sub := range relaySubs {
				for _, c := range r.childrenFor(r.origin, sub, s) {
					r.push(nil, c, s, sub, correctPush(relaySimTask(s, sub)), now.Add(r.uniform(p.HopDelay)))
				}
			}
			// Lying children accuse their parent of pushes they got.
			for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
				n := r.nodes[name]
				if n.fault != rsLie || s < n.onset || rng.IntN(2) == 0 {
					continue
				}
				sub := rng.IntN(relaySubs)
				r.at(now.Add(p.RelayTimeout(3)+r.uniform(p.Segment/2)), func(now time.Time) {
					if _, got := n.got[[2]uint64{uint64(sub), s}]; got && !n.dead {
						st.lies++
						r.accuse(n, sub, s, now, st)
					}
				})
			}
		})
	}
	// The judge's driver ticks within G of every instant a case can
	// change: an answer deadline passing, or a decision (an upstream case
	// settled). Ticking every G in between changes nothing and costs the
	// suite most of its time under -race.
	for r.queue.Len() > 0 {
		e := heap.Pop(&r.queue).(*simEvent)
		e.run(e.at)
		r.decide(e.at, st)
	}
	r.check(segs, st)
}

// push delivers (sub, seg) with digest d from parent (nil: the origin) to
// child at instant at.
func (r *relayRun) push(parent, child *simNode, seg uint64, sub int, d content.Hash, at time.Time) {
	k := [2]uint64{uint64(sub), seg}
	if parent != nil {
		if parent.pushedTo[k] == nil {
			parent.pushedTo[k] = map[string]time.Time{}
		}
		parent.pushedTo[k][child.name] = at
	}
	r.at(at, func(now time.Time) {
		if child.dead {
			return
		}
		task := relaySimTask(seg, sub)
		if d != correctPush(task) {
			// The child's check refuses the shards; it proves the parent's
			// commission with the parent's signed push.
			proof := &ProofOfMisbehaviour{Kind: Commission, A: signedPushOf(parent.name, seg, sub, d)}
			if err := proof.Check(relayTruth{}); err != nil {
				r.t.Errorf("an independent verifier refused %s's proof against %s: %v", child.name, parent.name, err)
			}
			r.at(now.Add(r.uniform(r.p.NetworkDelay)), func(now time.Time) {
				if err := r.judge.Commission(proof, relayTruth{}, now); err != nil {
					r.t.Errorf("the judge refused %s's commission proof against %s: %v", child.name, parent.name, err)
				}
			})
			return
		}
		r.receive(child, seg, sub, now)
	})
}

// receive records a verified push and has a relay forward it as its
// behaviour dictates.
func (r *relayRun) receive(n *simNode, seg uint64, sub int, now time.Time) {
	k := [2]uint64{uint64(sub), seg}
	if _, dup := n.got[k]; dup {
		return
	}
	n.got[k] = now
	w := n.watch[sub]
	if !w.started && seg >= w.startFrom {
		r.startWatch(n, sub, seg, now)
	} else if w.started && seg >= w.anchorSeq && !now.After(r.due(w, seg)) {
		w.anchorSeq, w.anchorAt = seg, now
	}
	if !n.relay || n.dead {
		return
	}
	if _, sent := n.sent[k]; sent {
		return
	}
	kids := r.childrenFor(n.key, sub, seg)
	if len(kids) == 0 {
		return
	}
	task := relaySimTask(seg, sub)
	good, bad := correctPush(task), wrongPush(task)
	kind := n.fault
	if kind == rsLie || seg < n.onset {
		kind = rsHonest
	}
	onTime := !now.After(r.avail(seg).Add(r.p.RelayTimeout(n.depth[sub])))
	if kind != rsHonest {
		if _, ok := r.manifest[n.name]; !ok && (kind != rsSlow || onTime) {
			// The first segment it spoils: it held the push (in time, for
			// a slow one: earlier lateness was its parent's) and had
			// children to pass it to.
			r.manifest[n.name] = seg
		}
	}
	switch kind {
	case rsHonest:
		n.sent[k] = good
		for _, c := range kids {
			r.push(n, c, seg, sub, good, now.Add(r.uniform(r.p.HopDelay)))
		}
		if r.forged == nil {
			r.forged = signedPushOf(n.name, seg, sub, good)
		}
	case rsStall:
	case rsSlow:
		// Past the bound: two segments late (swarmcast relay --fault slow).
		n.sent[k] = good
		for _, c := range kids {
			r.push(n, c, seg, sub, good, now.Add(2*r.p.Segment+r.uniform(r.p.HopDelay)))
		}
	case rsCorrupt:
		n.sent[k] = bad
		for _, c := range kids {
			r.push(n, c, seg, sub, bad, now.Add(r.uniform(r.p.HopDelay)))
		}
	case rsEquivocate:
		n.sent[k] = good
		victim := r.rng.IntN(len(kids))
		for i, c := range kids {
			d := good
			if i == victim {
				d = bad
			}
			r.push(n, c, seg, sub, d, now.Add(r.uniform(r.p.HopDelay)))
		}
	}
}

func (r *relayRun) due(w *simWatch, seg uint64) time.Time {
	return r.dueFrom(w, w.anchorSeq, w.anchorAt, seg)
}

func (r *relayRun) dueFrom(w *simWatch, aSeq uint64, aAt time.Time, seg uint64) time.Time {
	return aAt.Add((time.Duration(seg)-time.Duration(aSeq))*r.p.Segment + w.timeout)
}

// startWatch is ParentWatch's start of a substream's watch at the push of
// seg at now (its startAnchor): anchored there if that push is on time
// against the anchor held before a restart, else on that anchor.
func (r *relayRun) startWatch(n *simNode, sub int, seg uint64, now time.Time) {
	w := n.watch[sub]
	bSeq, bAt := seg, now
	if w.seeded && now.After(r.dueFrom(w, w.seedSeq, w.seedAt, seg)) {
		bSeq, bAt = w.seedSeq, w.seedAt
	}
	w.started, w.seeded, w.anchorSeq, w.anchorAt, w.next = true, false, bSeq, bAt, seg+1
	for !r.due(w, w.next).After(now) {
		w.next++ // due before the first push came: not the new parent's
	}
	gen := w.gen
	r.at(r.due(w, w.next).Add(time.Microsecond+r.uniform(r.p.TickPeriod)), func(now time.Time) {
		if w.gen == gen {
			r.watchTick(n, sub, now)
		}
	})
}

// restartWatches restarts the watch of every child whose parent the plans
// of a new version change (its routes arrive within a heartbeat): the
// new parent's pushes count from the version's first segment on.
func (r *relayRun) restartWatches(old, plans []ParentPlan, from uint64, now time.Time) {
	for sub := range plans {
		for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
			n := r.nodes[name]
			if old[sub].Parent[n.key] == plans[sub].Parent[n.key] {
				continue
			}
			r.at(now.Add(r.uniform(time.Second)), func(time.Time) {
				w := n.watch[sub]
				if w.started {
					w.seeded, w.seedSeq, w.seedAt = true, w.anchorSeq, w.anchorAt
				}
				w.started, w.startFrom = false, from
				w.gen++
			})
		}
	}
}

// watchTick is ParentWatch.Tick: names every push overdue, then waits for
// the next deadline (each child's driver ticks within G).
func (r *relayRun) watchTick(n *simNode, sub int, now time.Time) {
	w := n.watch[sub]
	if n.dead || !w.started {
		return
	}
	for w.next < uint64(relayRunSegs) {
		k := [2]uint64{uint64(sub), w.next}
		if _, got := n.got[k]; got {
			w.next++
			continue
		}
		if !now.After(r.due(w, w.next)) {
			break
		}
		if n.fault == rsHonest {
			// An honest child names an honest parent only if that parent
			// did not push to it within the bound: it was starved.
			if p, ok := r.parentFor(n.key, sub, w.next); ok && p != r.origin {
				pn := r.byKey[p]
				if at, pushed := pn.pushedTo[k][n.name]; pn.fault == rsHonest && !pn.dead && pushed && !at.After(r.due(w, w.next)) {
					r.t.Errorf("honest %s named honest %s for segment %d of substream %d, pushed at %v, due %v", n.name, pn.name, w.next, sub, at.Sub(t0), r.due(w, w.next).Sub(t0))
				}
			}
		}
		r.accuse(n, sub, w.next, now, nil)
		w.next++
	}
	if w.next < uint64(relayRunSegs) {
		gen := w.gen
		r.at(r.due(w, w.next).Add(time.Microsecond+r.uniform(r.p.TickPeriod)), func(now time.Time) {
			if w.gen == gen {
				r.watchTick(n, sub, now)
			}
		})
	}
}

// accuse posts n's signed accusation of its parent for (sub, seg).
func (r *relayRun) accuse(n *simNode, sub int, seg uint64, now time.Time, st *relayStats) {
	p, ok := r.parentFor(n.key, sub, seg)
	if !ok || p == r.origin {
		return
	}
	a := &Accusation{Task: relaySimTask(seg, sub), Accused: p, Kind: Omission}
	a.Sign(testKey(n.name))
	r.at(now.Add(r.uniform(r.p.NetworkDelay)), func(now time.Time) {
		// Refusals are expected (a parent of a route that started later);
		// what matters is what the judge decides.
		err := r.judge.Accuse(a, now)
		if traceRelaySim {
			r.t.Logf("%v %s accuses %s of %d/%d: %v", now.Sub(t0), n.name, r.byKey[p].name, seg, sub, err)
		}
	})
}

// rebuild is the coordinator's tree build without a relay that left: its
// children get new parents (their backup, or another first-level relay),
// taking effect at the judge's newest + Δ.
func (r *relayRun) rebuild(gone *simNode, now time.Time, st *relayStats) {
	st.rebuilds++
	if traceRelaySim {
		r.t.Logf("%v rebuild without %s at opened %d", now.Sub(t0), gone.name, r.opened)
	}
	old := r.versions[len(r.versions)-1].plans
	out := r.excludedAt(r.opened)
	plans := make([]ParentPlan, len(old))
	from := r.opened + uint64(r.p.SwitchLead())
	for sub, op := range old {
		np := ParentPlan{Parent: maps.Clone(op.Parent), Backup: maps.Clone(op.Backup)}
		delete(np.Parent, gone.key)
		delete(np.Backup, gone.key)
		for _, child := range slices.SortedFunc(maps.Keys(op.Parent), compareKeys) {
			if child == gone.key {
				continue
			}
			was, _ := op.ParentOf(child, out)
			if op.Parent[child] == gone.key {
				np.Parent[child], _ = op.ParentOf(child, func(k NodeKey) bool { return k == gone.key || out(k) })
				if r.byKey[child].depth[sub] == 2 && r.rng.IntN(2) == 0 {
					// Another first-level relay than the backup.
					for _, c := range slices.SortedFunc(maps.Keys(op.Parent), compareKeys) {
						if op.Parent[c] == r.origin && c != gone.key && !out(c) {
							np.Parent[child] = c
						}
					}
				}
			}
			if np.Backup[child] == np.Parent[child] || op.Backup[child] == gone.key {
				np.Backup[child] = r.origin
			}
			if is, _ := np.ParentOf(child, out); is != was {
				r.rerouted[routeKey{child, sub}] = from
				st.rerouted++
			}
		}
		plans[sub] = np
	}
	r.versions = append(r.versions, planVersion{from: from, plans: plans})
	r.restartWatches(old, plans, from, now)
	if err := r.judge.SetPlans(plans); err != nil {
		r.t.Fatal(err)
	}
	for k, from := range r.rerouted {
		if got := r.judge.RouteFrom(k.child, k.sub); got < from {
			r.t.Errorf("%s's route in substream %d starts at %d for the judge, %d for the trees", r.byKey[k.child].name, k.sub, got, from)
		}
	}
}

// decide acts on the judge's decisions.
func (r *relayRun) decide(now time.Time, st *relayStats) {
	ds := r.judge.Decisions()
	if len(ds) > 0 {
		r.at(now.Add(time.Microsecond+r.uniform(r.p.TickPeriod)), r.judge.Tick)
	}
	for _, d := range ds {
		if traceRelaySim {
			who := ""
			if d.Accusation != nil {
				who = r.byKey[d.Accusation.Accused].name + " seg " + fmt.Sprint(d.Accusation.Segment)
			}
			if d.Exclusion != nil {
				who = r.byKey[d.Exclusion.Culprit].name
			}
			r.t.Logf("%v decision %v %s", now.Sub(t0), d.Kind, who)
		}
		switch d.Kind {
		case Accuse:
			st.accusations++
			accused := r.byKey[d.Accusation.Accused]
			sub, _ := RelaySubstream(d.Accusation.Task)
			k := [2]uint64{uint64(sub), d.Accusation.Segment}
			judged := d.Accusation
			r.at(time.UnixMicro(judged.AnswerBy).Add(time.Microsecond+r.uniform(r.p.TickPeriod)), r.judge.Tick)
			r.at(now.Add(r.uniform(r.p.AnswerWindow)), func(now time.Time) {
				dg, held := accused.sent[k]
				if accused.dead || !held {
					return // stalled, starved or gone: nothing to answer with
				}
				_ = r.judge.Rebut(&Rebuttal{Accusation: judged, Output: signedPushOf(accused.name, judged.Segment, sub, dg)}, now)
			})
		case Clear:
			// The judge hands the push to the accuser, who fetches the
			// shards from the accused and passes them on.
			accuser := r.byKey[d.Accuser]
			sub, _ := RelaySubstream(d.Rebuttal.Output.Task)
			seg, dg := d.Rebuttal.Output.Segment, d.Rebuttal.Output.Digest
			if dg == correctPush(relaySimTask(seg, sub)) {
				r.at(now.Add(r.uniform(r.p.HopDelay)), func(now time.Time) {
					if !accuser.dead {
						r.receive(accuser, seg, sub, now)
					}
				})
			}
		case Exclude:
			x := d.Exclusion
			culprit := r.byKey[x.Culprit]
			if err := x.Check(r.judge.Judge(), relayTruth{}); err != nil {
				r.t.Errorf("the exclusion of %s does not check: %v", culprit.name, err)
			}
			r.excluded[culprit.name] = d
			r.switchAt[culprit.name] = d.SwitchAt
			// Once s* is published the trees are rebuilt without it.
			r.at(r.avail(d.SwitchAt).Add(r.uniform(r.p.Segment/2)), func(now time.Time) {
				old := r.versions[len(r.versions)-1].plans
				plans := make([]ParentPlan, len(old))
				out := r.excludedAt(d.SwitchAt)
				for sub, op := range old {
					np := ParentPlan{Parent: map[NodeKey]NodeKey{}, Backup: maps.Clone(op.Backup)}
					for c := range op.Parent {
						if !out(c) {
							np.Parent[c], _ = op.ParentOf(c, out)
						}
					}
					delete(np.Backup, x.Culprit)
					for c, b := range np.Backup {
						if b == x.Culprit || b == np.Parent[c] {
							np.Backup[c] = r.origin
						}
					}
					plans[sub] = np
				}
				r.versions = append(r.versions, planVersion{from: d.SwitchAt, plans: plans})
				r.restartWatches(old, plans, d.SwitchAt, now)
				st.rebuilds++
				if err := r.judge.SetPlans(plans); err != nil {
					r.t.Fatal(err)
				}
			})
		}
	}
}

func (r *relayRun) check(segs uint64, st *relayStats) {
	t, p := r.t, r.p
	bound := p.Bound()
	for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
		n := r.nodes[name]
		d, excluded := r.excluded[name]
		m, manifested := r.manifest[name]
		switch {
		case n.fault == rsHonest || n.fault == rsLie:
			if excluded && name != r.killed {
				t.Errorf("honest %s (%s) excluded for %s at %d (switch %d); killed: %q", name, n.fault, d.Exclusion.Kind, d.Segment, d.SwitchAt, r.killed)
			}
		case manifested && !excluded:
			st.injected++
			t.Errorf("%s fault of %s (onset %d, manifest %d) was not detected", n.fault, name, n.onset, m)
		case manifested:
			st.injected++
			st.detected++
			st.byKind[n.fault]++
			if d.Exclusion.Kind != wantKind[n.fault] {
				t.Errorf("%s fault of %s excluded as %s, want %s", n.fault, name, d.Exclusion.Kind, wantKind[n.fault])
			}
			if d.Proof != nil {
				st.proofs++
			}
			if got := r.avail(d.SwitchAt).Sub(r.avail(m)); got > bound {
				t.Errorf("%s fault of %s: recovery %v > R = %v (manifest %d, switch %d)", n.fault, name, got, bound, m, d.SwitchAt)
			} else {
				st.maxRecovery[n.fault] = max(st.maxRecovery[n.fault], got)
			}
			// From s* on its former children are served by their backups.
			for sub := range relaySubs {
				for s := d.SwitchAt; s+1 < segs; s++ {
					for _, c := range r.childrenFor(n.key, sub, s) {
						t.Errorf("%s still %s's parent in substream %d at %d after its switch at %d", name, c.name, sub, s, d.SwitchAt)
					}
				}
			}
		case excluded:
			t.Errorf("%s (%s from %d) excluded as %s before its fault manifested", name, n.fault, n.onset, d.Exclusion.Kind)
		}
	}
	// No edge misses a substream's segments for longer than R: the
	// culprit's or the killed relay's children are served again by then.
	for _, name := range slices.Sorted(maps.Keys(r.nodes)) {
		n := r.nodes[name]
		if n.relay || n.dead {
			continue
		}
		for sub := range relaySubs {
			run := 0
			for s := range segs - 2 {
				if _, got := n.got[[2]uint64{uint64(sub), s}]; got {
					run = 0
					continue
				}
				run++
				if gap := time.Duration(run) * p.Segment; gap > bound {
					t.Errorf("%s missed segments %d..%d of substream %d: %v > R = %v", name, s+1-uint64(run), s, sub, gap, bound)
					break
				}
			}
		}
	}
	if r.forged != nil {
		forged := &ProofOfMisbehaviour{Kind: Commission, A: r.forged}
		if forged.Check(relayTruth{}) == nil {
			t.Error("a commission proof against an honest push was accepted")
		}
		if err := r.judge.Commission(forged, relayTruth{}, r.end); err == nil {
			t.Error("the judge took a commission proof against an honest push")
		}
	}
}

// TestRelayFaultShapes runs the shapes that broke recovery ≤ R in the demo
// (issue 12, B19: seed 4, f = 2, a slow relay excluded only once a second
// fault was): children moved under a relay already slow — by another
// relay's exclusion or by a crash's rebuild — whose watches restart on its
// late pushes; a slow relay whose child is the second faulty relay; faults
// with overlapping windows (the second onset 0–4 segments after the first).
// 100 runs in logical time, the same assertions as TestRelayFaultInjection.
func TestRelayFaultShapes(t *testing.T) {
	st := &relayStats{byKind: map[relaySim]int{}, maxRecovery: map[relaySim]time.Duration{}}
	const o = 6
	var shapes []relayShape
	for d := range uint64(5) {
		shapes = append(shapes,
			// relay2 stalls; its six edges move to relay3, slow since
			// o+d (before or after relay2's switch).
			relayShape{name: fmt.Sprintf("moved-by-exclusion/d=%d", d), faults: map[int]relaySim{2: rsStall, 3: rsSlow}, onsets: map[int]uint64{2: o, 3: o + d}, kill: -1},
			// relay3 slow; relay2 crashes d segments later and its edges
			// move to relay3 (f = 1: one Byzantine node).
			relayShape{name: fmt.Sprintf("moved-by-crash/d=%d", d), faults: map[int]relaySim{3: rsSlow}, onsets: map[int]uint64{3: o}, kill: 2, killAt: o + d},
			// relay0 slow, its child relay2 stalls or slows d later.
			relayShape{name: fmt.Sprintf("slow-parent-stall-child/d=%d", d), faults: map[int]relaySim{0: rsSlow, 2: rsStall}, onsets: map[int]uint64{0: o, 2: o + d}, kill: -1},
			relayShape{name: fmt.Sprintf("slow-parent-slow-child/d=%d", d), faults: map[int]relaySim{0: rsSlow, 3: rsSlow}, onsets: map[int]uint64{0: o, 3: o + d}, kill: -1},
		)
	}
	for _, sh := range shapes {
		f := len(sh.faults)
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/f=%d/seed=%d", sh.name, f, seed), func(t *testing.T) { runRelayFaultsShaped(t, f, 1000+seed, st, &sh) })
		}
	}
	if st.runs < 100 || st.detected != st.injected || st.byKind[rsSlow] == 0 {
		t.Errorf("%d runs, %d of %d manifested relay faults detected (%v)", st.runs, st.detected, st.injected, st.byKind)
	}
	t.Logf("%d shaped runs: %d relay faults manifested %v, %d detected; %d rebuilds, %d routes moved; R = %v; max recovery by kind: %v",
		st.runs, st.injected, st.byKind, st.detected, st.rebuilds, st.rerouted, relaySuiteParams().Bound(), st.maxRecovery)
}
