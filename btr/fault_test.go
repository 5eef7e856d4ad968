package btr

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// The fault-injection suite: seeded runs of the judge's core over f = 1 and
// f = 2 in logical time, each with up to f faulty nodes (active replicas or
// spares that become active) of random kinds and onsets, and honest nodes
// whose every delay is drawn up to its bound (honest but slow). Each run
// asserts the BTR properties: every fault that manifests is detected and
// its culprit excluded; every commission yields a proof Check accepts (and a
// forged proof against an honest replica is rejected); recovery ≤ R; no
// honest node is ever accused; every accepted output is the correct one and
// no segment's output is missing for longer than R.

const (
	faultRunsPerF   = 60
	faultRunSegs    = 30
	faultOnsetRange = 12
)

type faultKindSim int

const (
	simHonest faultKindSim = iota
	simCommission
	simOmission
	simTiming
	simEquivocation
)

func (k faultKindSim) String() string {
	return [...]string{"honest", "commission", "omission", "timing", "equivocation"}[k]
}

type simEvent struct {
	at    time.Time
	order int // FIFO among equal instants
	run   func(now time.Time)
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].order < q[j].order
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type faultRun struct {
	t      *testing.T
	rng    *rand.Rand
	p      Params
	core   *Core
	people *cast
	re     *digestReexecutor
	queue  simQueue
	seq    int

	kind         map[string]faultKindSim
	onset        map[string]uint64
	manifest     map[string]uint64 // first segment a faulty node spoiled
	avail        map[uint64]time.Time
	accepted     map[uint64]time.Time
	excluded     map[string]Decision
	honestOutput *Output // for the forged-proof check
	// view is a node without ffmpeg (a relay) replaying the exclusions
	// from their bytes in the log: it must derive the judge's assignment.
	view *View
}

// signed caches the replicas' statements across runs (keys, segments and
// digests repeat): the suite's time under -race is in ed25519, and the
// judge still verifies every statement it is fed.
var signed = map[[3]string]*Output{}

func (r *faultRun) sign(name string, s uint64, d content.Hash) *Output {
	k := [3]string{name, fmt.Sprint(s), string(d[:])}
	if o, ok := signed[k]; ok {
		return o
	}
	o := signedOutput(r.people.keys[name], s, d)
	signed[k] = o
	return o
}

func (r *faultRun) at(t time.Time, fn func(time.Time)) {
	r.seq++
	heap.Push(&r.queue, &simEvent{at: t, order: r.seq, run: fn})
}

func (r *faultRun) uniform(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(r.rng.Int64N(int64(max) + 1))
}

// faultStats sums the suite's runs for its closing log line.
type faultStats struct {
	runs, injected, detected, proofs int
	maxRecovery                      map[faultKindSim]time.Duration
}

func TestFaultInjection(t *testing.T) {
	st := &faultStats{maxRecovery: map[faultKindSim]time.Duration{}}
	for _, f := range []int{1, 2} {
		for seed := range uint64(faultRunsPerF) {
			t.Run(fmt.Sprintf("f=%d/seed=%d", f, seed), func(t *testing.T) { runFaults(t, f, seed, st) })
		}
	}
	if st.runs < 100 || st.detected != st.injected {
		t.Errorf("%d runs, %d of %d manifested faults detected", st.runs, st.detected, st.injected)
	}
	t.Logf("%d runs: %d faults manifested, %d detected, %d commission proofs checked; R = %v; max recovery by kind: %v",
		st.runs, st.injected, st.detected, st.proofs, DefaultParams().Bound(), st.maxRecovery)
}

func runFaults(t *testing.T, f int, seed uint64, st *faultStats) {
	st.runs++
	rng := rand.New(rand.NewPCG(seed, uint64(f)))
	people, sb := newCast(f, f+1)
	p := DefaultParams()
	judge := testKey("judge")
	core, err := NewCore(Config{Chain: testChain(), Recipe: testRecipe, Standby: sb, Params: p, Judge: judge})
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRun{
		t: t, rng: rng, p: p, core: core, people: people, re: &digestReexecutor{},
		kind: map[string]faultKindSim{}, onset: map[string]uint64{}, manifest: map[string]uint64{},
		avail: map[uint64]time.Time{}, accepted: map[uint64]time.Time{}, excluded: map[string]Decision{},
	}
	if r.view, err = NewView(testChain(), KeyOf(judge), sb, ParentPlan{}, p); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, k := range append(append([]NodeKey{}, sb.Active...), sb.Spares...) {
		nodes = append(nodes, people.names[k])
		r.kind[people.names[k]] = simHonest
	}
	// 1..f faulty nodes, mostly among the active replicas; every kind is
	// drawn in turn so each run mixes them and the suite covers all.
	faulty := 1 + rng.IntN(f)
	perm := rng.Perm(len(nodes))
	if rng.IntN(4) != 0 { // keep the first pick active
		for i, j := range perm {
			if j < f+1 {
				perm[0], perm[i] = perm[i], perm[0]
				break
			}
		}
	}
	for i := range faulty {
		name := nodes[perm[i]]
		r.kind[name] = faultKindSim(1 + (int(seed)+i)%4)
		r.onset[name] = uint64(rng.IntN(faultOnsetRange))
	}

	bound := p.Bound()
	segs := uint64(faultRunSegs)
	for s := range segs {
		trueAvail := t0.Add(time.Duration(s) * p.Segment)
		// The origin's stamp is up to ε behind the true instant (its clock
		// lags the judge's); the judge learns of the input within δ.
		stamp := trueAvail.Add(-r.uniform(p.ClockSkew))
		r.avail[s] = trueAvail
		r.at(trueAvail.Add(r.uniform(p.NetworkDelay)), func(now time.Time) { r.open(s, stamp, trueAvail) })
	}
	end := t0.Add(time.Duration(segs)*p.Segment + 2*bound)
	for tick := t0; !tick.After(end); tick = tick.Add(p.TickPeriod) {
		r.at(tick, func(now time.Time) { core.Tick(now) })
	}
	for r.queue.Len() > 0 {
		e := heap.Pop(&r.queue).(*simEvent)
		e.run(e.at)
		r.decide(e.at)
	}

	// Every fault that manifested was detected, its culprit excluded within
	// R of the first segment it spoiled.
	for name, kind := range r.kind {
		if kind == simHonest {
			continue
		}
		m, manifested := r.manifest[name]
		d, excluded := r.excluded[name]
		switch {
		case manifested && !excluded:
			st.injected++
			t.Errorf("%s fault of %s (onset %d, manifest %d) was not detected", kind, name, r.onset[name], m)
		case !manifested && excluded:
			t.Errorf("%s excluded (%s) before its %s fault manifested", name, d.Exclusion.Kind, kind)
		case manifested:
			st.injected++
			st.detected++
			if d.Proof != nil && d.Proof.Kind == Commission {
				st.proofs++
			}
			recovered := t0.Add(time.Duration(d.SwitchAt) * p.Segment)
			if got := recovered.Sub(r.avail[m]); got > bound {
				t.Errorf("%s fault of %s: recovery %v > R = %v (manifest %d, switch %d)", kind, name, got, bound, m, d.SwitchAt)
			} else {
				st.maxRecovery[kind] = max(st.maxRecovery[kind], got)
			}
			// The derivation's premise: every node holds the exclusion
			// (propagation) and has switched before s*'s input exists.
			if ready := d.At.Add(p.Propagation() + p.SwitchDelay); ready.After(recovered) {
				t.Errorf("%s: exclusion signed at %v reaches every node at %v, after segment %d starts at %v", name, d.At.Sub(t0), ready.Sub(t0), d.SwitchAt, recovered.Sub(t0))
			}
			if kind == simCommission && (d.Proof == nil || d.Proof.Kind != Commission) {
				t.Errorf("commission by %s excluded as %s without a commission proof", name, d.Exclusion.Kind)
			}
			for s := d.SwitchAt; s < segs; s++ {
				for _, k := range core.Assigned(s) {
					if people.names[k] == name {
						t.Errorf("%s still assigned to segment %d after its switch at %d", name, s, d.SwitchAt)
					}
				}
			}
		}
	}
	for s := range segs + 10 {
		if got, want := r.view.Replicas(s), core.Assigned(s); !slices.Equal(got, want) {
			t.Errorf("segment %d: a node replaying the log assigns %v, the judge %v", s, got, want)
		}
	}
	for s := range segs {
		a, ok := r.accepted[s]
		if !ok {
			t.Errorf("segment %d never accepted", s)
		} else if a.Sub(r.avail[s]) > bound {
			t.Errorf("segment %d accepted %v after its input: missing longer than R = %v", s, a.Sub(r.avail[s]), bound)
		}
	}
	if r.honestOutput != nil {
		forged := &ProofOfMisbehaviour{Kind: Commission, A: r.honestOutput, Correct: wrongDigest(r.honestOutput.Input, "bad")}
		if forged.Check(r.re) == nil {
			t.Errorf("a commission proof against an honest output was accepted")
		}
	}
}

// open opens a segment at the judge and schedules each assigned replica's
// behaviour for it.
func (r *faultRun) open(s uint64, stamp, trueAvail time.Time) {
	if err := r.core.Open(s, inputOf(s), stamp); err != nil {
		r.t.Fatal(err)
	}
	p := r.p
	deadline := stamp.Add(p.DetectionTimeout())
	for _, k := range r.core.Assigned(s) {
		name := r.people.names[k]
		// Honest: input within δ, transcode within D, output within δ.
		arrive := trueAvail.Add(r.uniform(p.NetworkDelay) + r.uniform(p.ReplicaDeadline) + r.uniform(p.NetworkDelay))
		correct := r.sign(name, s, correctDigest(testRecipe, inputOf(s)))
		kind := r.kind[name]
		if kind != simHonest && s >= r.onset[name] {
			if _, ok := r.manifest[name]; !ok {
				r.manifest[name] = s
			}
		} else {
			kind = simHonest
		}
		send := func(at time.Time, o *Output) {
			r.at(at, func(now time.Time) {
				if err := r.core.Output(o, now); err != nil {
					r.t.Errorf("output by %s for %d refused: %v", name, s, err)
				}
			})
		}
		switch kind {
		case simHonest:
			if r.honestOutput == nil {
				r.honestOutput = correct
			}
			send(arrive, correct)
		case simCommission:
			send(arrive, r.sign(name, s, wrongDigest(inputOf(s), "bad")))
		case simOmission:
		case simTiming:
			// Late past the deadline: within the answer window (a strike) or
			// beyond it (an omission), drawn each segment.
			send(deadline.Add(time.Millisecond+r.uniform(2*p.AnswerWindow)), correct)
		case simEquivocation:
			send(arrive, correct)
			// The other digest went to another party, which forwards it.
			send(arrive.Add(r.uniform(p.Propagation())), r.sign(name, s, wrongDigest(inputOf(s), "bad2")))
		}
	}
}

// decide applies the core's decisions: re-executions finish within X,
// accusations and exclusions are checked against the truth.
func (r *faultRun) decide(now time.Time) {
	for _, d := range r.core.Decisions() {
		switch d.Kind {
		case Reexecute:
			task := d.Task
			r.at(now.Add(r.uniform(r.p.Reexec)), func(now time.Time) {
				dig, _ := r.re.Run(task.Recipe, task.Input)
				if err := r.core.Reexecuted(task.Segment, dig, now); err != nil {
					r.t.Error(err)
				}
			})
		case Accept:
			if d.Digest != correctDigest(testRecipe, inputOf(d.Segment)) {
				r.t.Errorf("segment %d accepted with a wrong digest", d.Segment)
			}
			if _, dup := r.accepted[d.Segment]; dup {
				r.t.Errorf("segment %d accepted twice", d.Segment)
			}
			r.accepted[d.Segment] = now
		case Accuse:
			name := r.people.names[d.Accusation.Accused]
			if r.kind[name] == simHonest || d.Accusation.Segment < r.onset[name] {
				r.t.Errorf("false accusation: %s (%s) accused at segment %d", name, r.kind[name], d.Accusation.Segment)
			}
		case Exclude:
			name := r.people.names[d.Exclusion.Culprit]
			if r.kind[name] == simHonest {
				r.t.Errorf("false exclusion of honest %s (%s)", name, d.Exclusion.Kind)
			}
			if err := d.Exclusion.Check(KeyOf(testKey("judge")), r.re); err != nil {
				r.t.Errorf("exclusion of %s does not check: %v", name, err)
			}
			if d.Proof != nil {
				if err := d.Proof.Check(r.re); err != nil {
					r.t.Errorf("proof against %s does not check: %v", name, err)
				}
			}
			r.excluded[name] = d
			logged, err := DecodeExclusion(d.Exclusion.Encode())
			if err == nil {
				err = r.view.Apply(logged, nil)
			}
			if err != nil {
				r.t.Errorf("a node replaying the log refused the exclusion of %s: %v", name, err)
			}
		}
	}
}

// The suite must cover every kind on both f: a sanity check on the draw
// itself (so a change to it cannot silently drop a kind).
func TestFaultInjectionCoversEveryKind(t *testing.T) {
	for _, f := range []int{1, 2} {
		seen := map[faultKindSim]int{}
		for seed := range uint64(faultRunsPerF) {
			for i := range 1 + rand.New(rand.NewPCG(seed, uint64(f))).IntN(f) {
				seen[faultKindSim(1+(int(seed)+i)%4)]++
			}
		}
		for k := simCommission; k <= simEquivocation; k++ {
			if seen[k] < 10 {
				t.Errorf("f=%d: %s drawn %d times over %d runs", f, k, seen[k], faultRunsPerF)
			}
		}
	}
}
