package fanout_test

import (
	"container/heap"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
)

// The relay fault suite (relays under BTR, docs/LIVE.md): seeded runs in
// logical time of one chain's substream trees (the origin, four level-1
// relays, two level-2 relays, four edges; five substreams of one index of
// two renditions, real signed entries and Merkle-proven shards), with f = 1
// or 2 faulty relays of random kinds (commission: altered shards;
// omission: a stall; timing: every push late by more than the children's
// slack; equivocation: different signed pushes to different children) and
// onsets, and honest nodes drawing every delay up to its bound (honest but
// slow). Children watch their parents (fanout.ParentWatch), accuse and
// prove; the relays' judge (btr.RelayJudge) decides; every node switches at
// the exclusion's segment by btr.ParentPlan.ParentOf. Asserted every run:
// every fault that manifests is detected and its culprit excluded, every
// commission with a proof an independent checker accepts; no honest node
// is ever accused or struck; recovery ≤ R (btr.Params.Bound, with the
// relay terms); no node uses a configuration it does not hold; zero wrong
// bytes kept by any edge; every segment after the last switch reaches
// every edge on every substream, and none is missing outside a fault's
// recovery window.

const (
	relayRunsPerF  = 50
	relayRunSegs   = 30
	relaySubs      = 5
	relayOnsetFrom = 2
	relayOnsetTo   = 12
)

type relayFault int

const (
	rfHonest relayFault = iota
	rfCommission
	rfOmission
	rfTiming
	rfEquivocation
)

func (k relayFault) String() string {
	return [...]string{"honest", "commission", "omission", "timing", "equivocation"}[k]
}

// The chain every run relays: packaged once (packaging is not under test).
type relayFixture struct {
	g       *content.LiveGenesis
	entries []*content.LiveEntry
	segs    []fanout.Segment
	re      *fanout.RelayReexecutor // the independent checker's: the origin's shards
}

func newRelayFixture(t *testing.T) *relayFixture {
	pub := fanouttest.NewPublisher(2, 77)
	fx := &relayFixture{g: pub.Genesis, re: fanout.NewRelayReexecutor()}
	for range relayRunSegs {
		e, seg := pub.NextSized(256)
		fx.entries = append(fx.entries, e)
		fx.segs = append(fx.segs, seg)
		for j := range relaySubs {
			if err := fx.re.Add(fx.g, seg.Entry, j, []int{j}, seg.Shards); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fx
}

// shardsOf is substream j's shards of segment s.
func (fx *relayFixture) shardsOf(s uint64, j int) []*content.ShardMessage {
	var out []*content.ShardMessage
	for _, sh := range fx.segs[s].Shards {
		if sh.Index == j {
			out = append(out, sh)
		}
	}
	return out
}

type rEvent struct {
	at    time.Duration
	order int
	run   func()
}

type rQueue []*rEvent

func (q rQueue) Len() int { return len(q) }
func (q rQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].order < q[j].order
}
func (q rQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *rQueue) Push(x any)   { *q = append(*q, x.(*rEvent)) }
func (q *rQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type rNode struct {
	name  string
	key   ed25519.PrivateKey
	id    btr.NodeKey
	edge  bool
	depth []int // per substream: hops below the origin in the primary tree
	watch *fanout.ParentWatch
	kind  relayFault
	onset uint64
	holds map[btr.NodeKey]uint64 // the exclusions this node holds
	got   map[[2]uint64]bool     // (seq, substream) kept
	wrong int                    // shards kept whose bytes are not the publisher's
}

type relayRun struct {
	t     *testing.T
	fx    *relayFixture
	rng   *rand.Rand
	p     btr.Params
	q     rQueue
	order int
	now   time.Duration
	end   time.Duration // the last tick: R after the last segment
	epoch time.Time

	origin *rNode
	nodes  []*rNode // relays then edges
	byKey  map[btr.NodeKey]*rNode
	plans  []btr.ParentPlan
	judge  *btr.RelayJudge

	manifest map[btr.NodeKey]uint64 // first segment a faulty relay spoiled
	excluded map[btr.NodeKey]btr.Decision
	proofs   int
	falseAcc []string
	stale    []string // a node used a configuration it did not hold
}

func (r *relayRun) at(d time.Duration, f func()) {
	r.order++
	heap.Push(&r.q, &rEvent{at: r.now + d, order: r.order, run: f})
}

func (r *relayRun) wall() time.Time { return r.epoch.Add(r.now) }

// avail is A_s: segments are published every T from T on.
func (r *relayRun) avail(s uint64) time.Duration { return time.Duration(s+1) * r.p.Segment }

func (r *relayRun) draw(max time.Duration) time.Duration {
	return time.Duration(r.rng.Int64N(int64(max) + 1))
}

// parentOf is child's parent of substream j for segment s in n's view.
func (r *relayRun) parentOf(view *rNode, child btr.NodeKey, j int, s uint64) (btr.NodeKey, bool) {
	return r.plans[j].ParentOf(child, func(k btr.NodeKey) bool { at, ok := view.holds[k]; return ok && at <= s })
}

// childrenOf are n's children of substream j for segment s, in n's view.
func (r *relayRun) childrenOf(n *rNode, j int, s uint64) []*rNode {
	var out []*rNode
	for _, c := range r.nodes {
		if p, ok := r.parentOf(n, c.id, j, s); ok && p == n.id {
			out = append(out, c)
		}
	}
	return out
}

// checkConfig records a node deciding segment s without an exclusion whose
// switch is at or before s (it would use the wrong parent or children).
func (r *relayRun) checkConfig(n *rNode, s uint64) {
	for culprit, d := range r.excluded {
		if d.SwitchAt <= s {
			if _, ok := n.holds[culprit]; !ok {
				r.stale = append(r.stale, fmt.Sprintf("%s decided segment %d without the exclusion of %s (switch %d)", n.name, s, r.byKey[culprit].name, d.SwitchAt))
			}
		}
	}
}

// forward is n, holding the verified push of (s, j), passing it on.
func (r *relayRun) forward(n *rNode, s uint64, j int) {
	r.checkConfig(n, s)
	kids := r.childrenOf(n, j, s)
	good := r.fx.shardsOf(s, j)
	for i, c := range kids {
		shards, delay := good, r.draw(r.p.HopDelay)
		// The fault manifests on the first segment it spoils for a child
		// (an equivocation needs a second child to send another push).
		if n.kind != rfHonest && s >= n.onset && (n.kind != rfEquivocation || i > 0) {
			if _, seen := r.manifest[n.id]; !seen {
				r.manifest[n.id] = s
			}
		}
		if n.kind != rfHonest && s >= n.onset {
			switch n.kind {
			case rfOmission:
				continue
			case rfCommission:
				shards = corrupt(good)
			case rfTiming:
				delay += r.p.RelayTimeout(r.p.TreeDepth) + 100*time.Millisecond + r.draw(300*time.Millisecond)
			case rfEquivocation:
				if i > 0 {
					shards = good[:1] // a signed push without the substream's second rendition
				}
			}
		}
		r.at(delay, func() { r.receive(c, n, s, j, shards) })
	}
}

func corrupt(shards []*content.ShardMessage) []*content.ShardMessage {
	out := make([]*content.ShardMessage, len(shards))
	for i, sh := range shards {
		bad := *sh
		bad.Data = slices.Clone(sh.Data)
		bad.Data[len(bad.Data)/2] ^= 0x01
		out[i] = &bad
	}
	return out
}

// receive is child c getting parent's push of (s, j).
func (r *relayRun) receive(c, parent *rNode, s uint64, j int, shards []*content.ShardMessage) {
	if p, ok := r.parentOf(c, c.id, j, s); !ok || p != parent.id {
		return // not its parent for s (CheckSender refuses it)
	}
	if c.got[[2]uint64{s, uint64(j)}] {
		return
	}
	if err := fanout.CheckRelayPush(r.fx.g, r.fx.entries[s], shards, []int{j}); err != nil {
		// Refused: prove it with the parent's signed push, and excuse
		// the segment to c's own children (c cannot pass it on).
		stmt := btr.SignPush(parent.key, btr.RelayTask(r.fx.g.ID(), s, j, r.fx.segs[s].Entry), shards)
		proof := &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: stmt}
		r.excuse(c, s, j)
		r.at(r.draw(r.p.NetworkDelay), func() {
			// The judge re-digests with the origin's shards; the
			// independent checker below does the same from the proof's
			// bytes alone.
			raw := proof.Encode()
			got, err := btr.DecodeProof(raw)
			if err != nil {
				r.t.Fatalf("a commission proof does not decode: %v", err)
			}
			if err := r.judge.Commission(got, r.fx.re, r.wall()); err == nil {
				r.proofs++
			}
			r.drain()
		})
		return
	}
	r.keep(c, s, j, shards)
}

func (r *relayRun) keep(c *rNode, s uint64, j int, shards []*content.ShardMessage) {
	if c.got[[2]uint64{s, uint64(j)}] {
		return
	}
	c.got[[2]uint64{s, uint64(j)}] = true
	good := r.fx.shardsOf(s, j)
	for i := range shards {
		if string(shards[i].Data) != string(good[i].Data) {
			c.wrong++
		}
	}
	c.watch.Received(j, s, r.wall())
	if !c.edge {
		r.forward(c, s, j)
	}
}

// excuse tells n's children of (s, j) that n was starved of it.
func (r *relayRun) excuse(n *rNode, s uint64, j int) {
	if n.edge {
		return
	}
	for _, c := range r.childrenOf(n, j, s) {
		r.at(r.draw(r.p.HopDelay), func() { c.watch.Excuse(j, s) })
	}
}

// tick runs every node's watch and the judge, every G.
func (r *relayRun) tick() {
	for _, n := range r.nodes {
		for _, m := range n.watch.Tick(r.wall()) {
			if m.Seq >= relayRunSegs {
				n.watch.Stop(m.Substream) // the chain ended (sealed): nothing more is due
				continue
			}
			parent, ok := r.parentOf(n, n.id, m.Substream, m.Seq)
			if !ok {
				continue
			}
			r.excuse(n, m.Seq, m.Substream)
			a := &btr.Accusation{Task: btr.RelayTask(r.fx.g.ID(), m.Seq, m.Substream, r.fx.segs[m.Seq].Entry), Accused: parent, Kind: btr.Omission, AnswerBy: 0}
			a.Sign(n.key)
			r.at(r.draw(r.p.NetworkDelay), func() {
				if err := r.judge.Accuse(a, r.wall()); err != nil {
					r.t.Fatalf("%s's accusation of %s refused: %v", n.name, r.name(parent), err)
				}
				r.drain()
			})
		}
	}
	r.judge.Tick(r.wall())
	r.drain()
	if r.now < r.end {
		r.at(r.p.TickPeriod, r.tick)
	}
}

func (r *relayRun) name(k btr.NodeKey) string {
	if n := r.byKey[k]; n != nil {
		return n.name
	}
	return "origin"
}

// drain acts on the judge's decisions.
func (r *relayRun) drain() {
	for _, d := range r.judge.Decisions() {
		switch d.Kind {
		case btr.Accuse:
			accused := r.byKey[d.Accusation.Accused]
			if accused == nil || accused.kind == rfHonest {
				r.falseAcc = append(r.falseAcc, fmt.Sprintf("%s accused for segment %d", r.name(d.Accusation.Accused), d.Accusation.Segment))
			}
			if accused != nil && accused.kind != rfOmission {
				r.answer(accused, d.Accusation)
			}
		case btr.Clear:
			// The judge hands the push to the accuser (the accused's
			// child for that segment in the judge's view).
			o := d.Rebuttal.Output
			j, _ := btr.RelaySubstream(o.Task)
			for _, c := range r.nodes {
				if p, ok := r.judge.ParentOf(c.id, j, o.Segment); ok && p == o.Replica {
					shards := r.fx.shardsOf(o.Segment, j)
					r.at(r.draw(r.p.NetworkDelay), func() { r.keep(c, o.Segment, j, shards) })
				}
			}
		case btr.Exclude:
			x := d.Exclusion
			if err := x.Check(r.judge.Judge(), r.fx.re); err != nil {
				r.t.Fatalf("the judge's exclusion of %s does not check: %v", r.name(x.Culprit), err)
			}
			if n := r.byKey[x.Culprit]; n == nil || n.kind == rfHonest {
				r.falseAcc = append(r.falseAcc, fmt.Sprintf("%s excluded (%s)", r.name(x.Culprit), x.Kind))
			}
			r.excluded[x.Culprit] = d
			raw := x.Encode()
			for _, n := range append([]*rNode{r.origin}, r.nodes...) {
				r.at(r.draw(r.p.Propagation()), func() {
					got, err := btr.DecodeExclusion(raw)
					if err != nil {
						r.t.Fatal(err)
					}
					if err := got.Check(r.judge.Judge(), nil); err != nil {
						r.t.Fatalf("%s refused the exclusion: %v", n.name, err)
					}
					if _, ok := n.holds[got.Culprit]; !ok {
						n.holds[got.Culprit] = got.SwitchAt(r.p)
					}
				})
			}
		}
	}
}

// answer is an accused relay answering the judge: with its signed push if
// it holds the segment, else with its own accusation of its parent (it
// was starved). A timing-faulty relay answers too: it holds the push.
func (r *relayRun) answer(n *rNode, judged *btr.Accusation) {
	j, _ := btr.RelaySubstream(judged.Task)
	s := judged.Segment
	r.at(r.draw(r.p.NetworkDelay), func() {
		if n.got[[2]uint64{s, uint64(j)}] {
			shards := r.fx.shardsOf(s, j)
			if n.kind == rfCommission && s >= n.onset {
				shards = corrupt(shards)
			}
			reb := &btr.Rebuttal{Accusation: judged, Output: btr.SignPush(n.key, judged.Task, shards)}
			r.at(r.draw(r.p.NetworkDelay), func() {
				_ = r.judge.Rebut(reb, r.wall()) // a late one is refused: the case stands
				r.drain()
			})
			return
		}
		parent, ok := r.parentOf(n, n.id, j, s)
		if !ok {
			return
		}
		a := &btr.Accusation{Task: judged.Task, Accused: parent, Kind: btr.Omission}
		a.Sign(n.key)
		r.at(r.draw(r.p.NetworkDelay), func() {
			if err := r.judge.Accuse(a, r.wall()); err != nil {
				r.t.Fatalf("%s's upstream accusation refused: %v", n.name, err)
			}
			r.drain()
		})
	})
}

func newRelayRun(t *testing.T, fx *relayFixture, seed uint64, f int) *relayRun {
	rng := rand.New(rand.NewPCG(seed, 0x7e1a))
	r := &relayRun{t: t, fx: fx, rng: rng, p: btr.DefaultParams(), epoch: time.Unix(1_780_000_000, 0),
		byKey: map[btr.NodeKey]*rNode{}, manifest: map[btr.NodeKey]uint64{}, excluded: map[btr.NodeKey]btr.Decision{}}
	mk := func(name string, edge bool) *rNode {
		_, key, _ := ed25519.GenerateKey(nil)
		n := &rNode{name: name, key: key, id: btr.KeyOf(key), edge: edge, depth: make([]int, relaySubs),
			holds: map[btr.NodeKey]uint64{}, got: map[[2]uint64]bool{}}
		r.byKey[n.id] = n
		return n
	}
	r.origin = mk("origin", false)
	delete(r.byKey, r.origin.id)
	var l1, l2, edges []*rNode
	for i := range 4 {
		l1 = append(l1, mk(fmt.Sprintf("r%d", i+1), false))
	}
	for i := range 2 {
		l2 = append(l2, mk(fmt.Sprintf("r%d", i+5), false))
	}
	for i := range 4 {
		edges = append(edges, mk(fmt.Sprintf("e%d", i+1), true))
	}
	r.nodes = slices.Concat(l1, l2, edges)
	// Per substream: two level-1 relays a, b; a level-2 relay c under a;
	// each edge under a, b or c; backups by the disjoint-parent rule (a
	// relay of the tree outside the parent's subtree, else the origin).
	for j := range relaySubs {
		plan := btr.ParentPlan{Parent: map[btr.NodeKey]btr.NodeKey{}, Backup: map[btr.NodeKey]btr.NodeKey{}}
		perm := rng.Perm(4)
		a, b, c := l1[perm[0]], l1[perm[1]], l2[rng.IntN(2)]
		plan.Parent[a.id], plan.Parent[b.id], plan.Parent[c.id] = r.origin.id, r.origin.id, a.id
		plan.Backup[c.id] = b.id
		a.depth[j], b.depth[j], c.depth[j] = 1, 1, 2
		for _, e := range edges {
			switch p := []*rNode{a, b, c}[rng.IntN(3)]; p {
			case a, c:
				plan.Parent[e.id], plan.Backup[e.id], e.depth[j] = p.id, b.id, p.depth[j]+1
			default:
				plan.Parent[e.id], plan.Backup[e.id], e.depth[j] = b.id, a.id, 2
			}
		}
		r.plans = append(r.plans, plan)
	}
	for _, n := range r.nodes {
		// One watch per node, at its deepest place (the slack only grows).
		n.watch = fanout.NewParentWatch(r.p.Segment, r.p.RelayTimeout(max(slices.Max(n.depth), 1)))
	}
	var err error
	_, jkey, _ := ed25519.GenerateKey(nil)
	r.judge, err = btr.NewRelayJudge(btr.RelayConfig{Chain: fx.g.ID(), Params: r.p, Plans: r.plans, Judge: jkey})
	if err != nil {
		t.Fatal(err)
	}
	// f faulty relays.
	relays := slices.Concat(l1, l2)
	for _, i := range rng.Perm(len(relays))[:f] {
		relays[i].kind = relayFault(1 + rng.IntN(4))
		relays[i].onset = relayOnsetFrom + uint64(rng.IntN(relayOnsetTo-relayOnsetFrom+1))
	}
	return r
}

// publish is the origin pushing segment s to its children.
func (r *relayRun) publish(s uint64) {
	r.judge.Open(s)
	for j := range relaySubs {
		r.forward(r.origin, s, j)
	}
}

func (r *relayRun) run() {
	for s := range uint64(relayRunSegs) {
		r.at(r.avail(s), func() { r.publish(s) })
	}
	r.end = r.avail(relayRunSegs) + r.p.Bound()
	r.at(r.p.TickPeriod, r.tick)
	for r.q.Len() > 0 {
		e := heap.Pop(&r.q).(*rEvent)
		r.now = e.at
		e.run()
	}
}

type relayStats struct {
	runs, injected, manifested, detected, proofs int
	byKind                                       map[relayFault]int
	maxRecovery                                  map[relayFault]time.Duration
}

func TestRelayFaultSuite(t *testing.T) {
	fx := newRelayFixture(t)
	st := relayStats{byKind: map[relayFault]int{}, maxRecovery: map[relayFault]time.Duration{}}
	bound := btr.DefaultParams().Bound()
	for _, f := range []int{1, 2} {
		for i := range relayRunsPerF {
			seed := uint64(f*1000 + i)
			r := newRelayRun(t, fx, seed, f)
			r.run()
			st.runs++
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("f=%d seed %d: %s", f, seed, fmt.Sprintf(format, args...))
			}
			if len(r.falseAcc) > 0 {
				fail("honest nodes accused: %v", r.falseAcc)
			}
			if len(r.stale) > 0 {
				fail("stale configurations: %v", r.stale[:min(3, len(r.stale))])
			}
			var lastSwitch uint64
			for _, n := range r.nodes {
				if n.kind == rfHonest {
					continue
				}
				st.injected++
				first, manifested := r.manifest[n.id]
				d, excluded := r.excluded[n.id]
				if !manifested {
					continue
				}
				st.manifested++
				st.byKind[n.kind]++
				if !excluded {
					fail("%s fault of %s from segment %d (spoiled %d) not detected", n.kind, n.name, n.onset, first)
				}
				st.detected++
				if d.Proof != nil {
					if err := d.Proof.Check(fx.re); err != nil {
						fail("the commission proof against %s does not check: %v", n.name, err)
					}
				}
				rec := r.avail(d.SwitchAt) - r.avail(first)
				if rec > bound {
					fail("%s fault of %s: recovery %v > R = %v (spoiled %d, switch %d)", n.kind, n.name, rec, bound, first, d.SwitchAt)
				}
				st.maxRecovery[n.kind] = max(st.maxRecovery[n.kind], rec)
				lastSwitch = max(lastSwitch, d.SwitchAt)
			}
			st.proofs += r.proofs
			// Edges: no wrong byte; everything after the last switch;
			// nothing missing outside a fault's recovery window.
			for _, e := range r.nodes {
				if !e.edge {
					continue
				}
				if e.wrong > 0 {
					fail("%s kept %d wrong shards", e.name, e.wrong)
				}
				for s := range uint64(relayRunSegs) {
					for j := range relaySubs {
						if e.got[[2]uint64{s, uint64(j)}] {
							continue
						}
						if s >= lastSwitch {
							fail("%s never got segment %d substream %d (after the last switch %d)", e.name, s, j, lastSwitch)
						}
						covered := false
						for k, d := range r.excluded {
							if first, ok := r.manifest[k]; ok && s >= first && s < d.SwitchAt {
								covered = true
							}
						}
						if !covered {
							fail("%s missed segment %d substream %d outside any fault's recovery", e.name, s, j)
						}
					}
				}
			}
		}
	}
	t.Logf("%d runs: %d faulty relays, %d manifested (%v), %d detected, %d commission proofs; R = %v, max recovery %v",
		st.runs, st.injected, st.manifested, st.byKind, st.detected, st.proofs, bound, st.maxRecovery)
	if st.manifested < st.runs {
		t.Fatalf("only %d faults manifested in %d runs: the suite tests too little", st.manifested, st.runs)
	}
	for k := rfCommission; k <= rfEquivocation; k++ {
		if st.byKind[k] == 0 {
			t.Fatalf("no %s fault manifested", k)
		}
	}
}
