package btr

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// relayReexec answers the correct push digest of each relaying task.
type relayReexec map[content.Hash]content.Hash

func (r relayReexec) Run(_ string, input content.Hash) (content.Hash, error) { return r[input], nil }

type relayCast struct {
	keys    map[string]ed25519.PrivateKey
	judge   *RelayJudge
	chain   content.VideoID
	t0      time.Time
	entry   []byte
	correct content.Hash
}

// newRelayCast is origin → a → b → c in one substream (b's backup: the origin).
func newRelayCast(t *testing.T) *relayCast {
	t.Helper()
	rc := &relayCast{keys: map[string]ed25519.PrivateKey{}, chain: content.VideoID{0x12}, t0: time.Unix(1_780_000_000, 0), entry: []byte("entry 7"), correct: content.Hash{0xc0}}
	for _, n := range []string{"origin", "a", "b", "c", "judge", "outsider"} {
		_, k, _ := ed25519.GenerateKey(nil)
		rc.keys[n] = k
	}
	plan := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("a"), rc.k("c"): rc.k("b")},
		Backup: map[NodeKey]NodeKey{rc.k("b"): rc.k("origin"), rc.k("c"): rc.k("a")}}
	var err error
	rc.judge, err = NewRelayJudge(RelayConfig{Chain: rc.chain, Params: DefaultParams(), Plans: []ParentPlan{plan}, Judge: rc.keys["judge"]})
	if err != nil {
		t.Fatal(err)
	}
	rc.judge.Open(7)
	return rc
}

func (rc *relayCast) k(n string) NodeKey { return KeyOf(rc.keys[n]) }
func (rc *relayCast) task(seg uint64) Task {
	return RelayTask(rc.chain, seg, 0, append([]byte(nil), rc.entry...))
}
func (rc *relayCast) accuse(by, of string, seg uint64) *Accusation {
	a := &Accusation{Task: rc.task(seg), Accused: rc.k(of), Kind: Omission}
	a.Sign(rc.keys[by])
	return a
}
func (rc *relayCast) at(d time.Duration) time.Time { return rc.t0.Add(d) }

func decided(t *testing.T, j *RelayJudge, want ...DecisionKind) []Decision {
	t.Helper()
	got := j.Decisions()
	if len(got) != len(want) {
		t.Fatalf("decisions %v, want %v", kinds(got), want)
	}
	for i := range got {
		if got[i].Kind != want[i] {
			t.Fatalf("decisions %v, want %v", kinds(got), want)
		}
	}
	return got
}

func kinds(ds []Decision) []DecisionKind {
	var out []DecisionKind
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

// Only a child may accuse its parent, and only of a relaying task of the
// chain: everything else is refused with nothing decided.
func TestRelayJudgeRefusesOutsiders(t *testing.T) {
	rc := newRelayCast(t)
	other := rc.accuse("c", "b", 7)
	other.Chain = content.VideoID{0x99}
	other.Sign(rc.keys["c"])
	transcode := rc.accuse("c", "b", 7)
	transcode.Recipe = "ladder-v1"
	transcode.Sign(rc.keys["c"])
	forged := rc.accuse("c", "b", 7)
	forged.Accused = rc.k("a")
	for name, a := range map[string]*Accusation{
		"an outsider":           rc.accuse("outsider", "b", 7),
		"a grandchild":          rc.accuse("c", "a", 7),
		"a parent of its child": rc.accuse("b", "c", 7),
		"another chain":         other,
		"a transcoding task":    transcode,
		"a forged signature":    forged,
	} {
		if err := rc.judge.Accuse(a, rc.at(0)); err == nil {
			t.Errorf("%s's accusation accepted", name)
		}
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
}

// Unanswered: excluded for omission at the first tick past the answer
// window, with the judge's accusation as evidence and s* = Current + Δ;
// the child's parent is then its backup from s*.
func TestRelayJudgeOmission(t *testing.T) {
	rc := newRelayCast(t)
	if err := rc.judge.Accuse(rc.accuse("c", "b", 7), rc.at(0)); err != nil {
		t.Fatal(err)
	}
	d := decided(t, rc.judge, Accuse)[0]
	if d.Accusation.Accuser != rc.judge.Judge() || d.Accusation.Accused != rc.k("b") {
		t.Fatal("the judge did not countersign the accusation of b")
	}
	rc.judge.Tick(rc.at(DefaultParams().AnswerWindow))
	decided(t, rc.judge)
	rc.judge.Tick(rc.at(DefaultParams().AnswerWindow + time.Millisecond))
	x := decided(t, rc.judge, Exclude)[0]
	if x.Exclusion.Kind != Omission || x.Exclusion.Culprit != rc.k("b") || x.SwitchAt != 7+uint64(DefaultParams().SwitchLead()) {
		t.Fatalf("exclusion %+v", x.Exclusion)
	}
	if err := x.Exclusion.Check(rc.judge.Judge(), nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := rc.judge.ParentOf(rc.k("c"), 0, x.SwitchAt-1); p != rc.k("b") {
		t.Fatal("c switched before s*")
	}
	if p, _ := rc.judge.ParentOf(rc.k("c"), 0, x.SwitchAt); p != rc.k("a") {
		t.Fatal("c did not take its backup a at s*")
	}
}

// Answered in time with the signed push: cleared, a strike; the second
// strike within the window excludes for timing. A late answer is refused.
func TestRelayJudgeRebuttalAndTiming(t *testing.T) {
	rc := newRelayCast(t)
	w := DefaultParams().AnswerWindow
	for i, seg := range []uint64{7, 8} {
		rc.judge.Open(seg)
		base := time.Duration(i) * time.Second
		if err := rc.judge.Accuse(rc.accuse("c", "b", seg), rc.at(base)); err != nil {
			t.Fatal(err)
		}
		judged := decided(t, rc.judge, Accuse)[0].Accusation
		push := &Output{Task: rc.task(seg), Digest: rc.correct}
		push.Sign(rc.keys["b"])
		late := &Rebuttal{Accusation: judged, Output: push}
		if err := rc.judge.Rebut(late, rc.at(base+w+time.Millisecond)); err == nil {
			t.Fatal("a late rebuttal was accepted")
		}
		if err := rc.judge.Rebut(late, rc.at(base+w)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			decided(t, rc.judge, Clear)
			continue
		}
		x := decided(t, rc.judge, Clear, Exclude)[1]
		if x.Exclusion.Kind != Timing || x.Exclusion.Culprit != rc.k("b") {
			t.Fatalf("exclusion %+v", x.Exclusion)
		}
		if err := x.Exclusion.Check(rc.judge.Judge(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A starved parent answers by accusing its own parent: if that one is
// excluded the starved one is not; if that one answers, the starved one
// must pass the push on, and doing so is no strike.
func TestRelayJudgeStarvedParent(t *testing.T) {
	rc := newRelayCast(t)
	w := DefaultParams().AnswerWindow
	if err := rc.judge.Accuse(rc.accuse("c", "b", 7), rc.at(0)); err != nil {
		t.Fatal(err)
	}
	if err := rc.judge.Accuse(rc.accuse("b", "a", 7), rc.at(w/2)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse, Accuse)
	rc.judge.Tick(rc.at(2 * w))
	x := decided(t, rc.judge, Exclude)[0]
	if x.Exclusion.Culprit != rc.k("a") {
		t.Fatalf("excluded %s, want a", x.Exclusion.Culprit)
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
	if _, out := rc.judge.Excluded(rc.k("b")); out {
		t.Fatal("the starved b was excluded")
	}

	// a answers this time: b gets a fresh window and answers in it.
	rc = newRelayCast(t)
	rc.judge.Accuse(rc.accuse("c", "b", 7), rc.at(0))
	rc.judge.Accuse(rc.accuse("b", "a", 7), rc.at(w/2))
	judgedA := decided(t, rc.judge, Accuse, Accuse)[1].Accusation
	pa := &Output{Task: rc.task(7), Digest: rc.correct}
	pa.Sign(rc.keys["a"])
	if err := rc.judge.Rebut(&Rebuttal{Accusation: judgedA, Output: pa}, rc.at(w)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Clear)
	rc.judge.Tick(rc.at(w + time.Millisecond))
	judgedB := decided(t, rc.judge, Accuse)[0].Accusation
	pb := &Output{Task: rc.task(7), Digest: rc.correct}
	pb.Sign(rc.keys["b"])
	if err := rc.judge.Rebut(&Rebuttal{Accusation: judgedB, Output: pb}, rc.at(2*w)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Clear)
	// b's next accusation answered in time is its first strike, not its second.
	rc.judge.Open(8)
	rc.judge.Accuse(rc.accuse("c", "b", 8), rc.at(time.Second))
	j8 := decided(t, rc.judge, Accuse)[0].Accusation
	pb8 := &Output{Task: rc.task(8), Digest: rc.correct}
	pb8.Sign(rc.keys["b"])
	rc.judge.Rebut(&Rebuttal{Accusation: j8, Output: pb8}, rc.at(time.Second+w))
	decided(t, rc.judge, Clear)
}

// A signed push whose digest is not relaying's is a commission proof the
// judge checks by re-digesting; a proof against a correct push is refused;
// two different signed pushes for one task are an equivocation.
func TestRelayJudgeProofs(t *testing.T) {
	rc := newRelayCast(t)
	re := relayReexec{rc.task(7).Input: rc.correct}
	honest := &Output{Task: rc.task(7), Digest: rc.correct}
	honest.Sign(rc.keys["a"])
	if err := rc.judge.Commission(&ProofOfMisbehaviour{Kind: Commission, A: honest}, re, rc.at(0)); err == nil {
		t.Fatal("a proof against a correct push was accepted")
	}
	decided(t, rc.judge)
	bad := &Output{Task: rc.task(7), Digest: content.Hash{0xba}}
	bad.Sign(rc.keys["b"])
	if err := rc.judge.Commission(&ProofOfMisbehaviour{Kind: Commission, A: bad}, re, rc.at(0)); err != nil {
		t.Fatal(err)
	}
	x := decided(t, rc.judge, Exclude)[0]
	if err := x.Exclusion.Check(rc.judge.Judge(), re); err != nil || x.Exclusion.Kind != Commission {
		t.Fatalf("commission exclusion %v: %v", x.Exclusion.Kind, err)
	}
	other := &Output{Task: rc.task(7), Digest: content.Hash{0x0e}}
	other.Sign(rc.keys["a"])
	if err := rc.judge.Commission(&ProofOfMisbehaviour{Kind: Equivocation, A: honest, B: other}, nil, rc.at(0)); err != nil {
		t.Fatal(err)
	}
	if x := decided(t, rc.judge, Exclude)[0]; x.Exclusion.Culprit != rc.k("a") || x.Exclusion.Kind != Equivocation {
		t.Fatalf("equivocation exclusion %+v", x.Exclusion)
	}
}

// A rebuild hands the judge new trees (SetPlans) without forgetting a
// slow relay's strikes: one late-but-answered push before the rebuild and
// one after still exclude it for timing; a case the new trees void (the
// accused is no longer the accuser's parent) is dropped.
func TestRelayJudgeSetPlansKeepsStrikes(t *testing.T) {
	rc := newRelayCast(t)
	w := DefaultParams().AnswerWindow
	answer := func(seg uint64, base time.Duration) []Decision {
		t.Helper()
		rc.judge.Open(seg)
		if err := rc.judge.Accuse(rc.accuse("c", "b", seg), rc.at(base)); err != nil {
			t.Fatal(err)
		}
		judged := decided(t, rc.judge, Accuse)[0].Accusation
		push := &Output{Task: rc.task(seg), Digest: rc.correct}
		push.Sign(rc.keys["b"])
		if err := rc.judge.Rebut(&Rebuttal{Accusation: judged, Output: push}, rc.at(base+w)); err != nil {
			t.Fatal(err)
		}
		return rc.judge.Decisions()
	}
	if d := answer(7, 0); len(d) != 1 || d[0].Kind != Clear {
		t.Fatalf("first answered case: %+v", d)
	}
	// The rebuild: same parents, a new backup for c.
	rebuilt := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("a"), rc.k("c"): rc.k("b")},
		Backup: map[NodeKey]NodeKey{rc.k("b"): rc.k("origin"), rc.k("c"): rc.k("origin")}}
	if err := rc.judge.SetPlans([]ParentPlan{rebuilt}); err != nil {
		t.Fatal(err)
	}
	d := answer(8, time.Second)
	if len(d) != 2 || d[1].Kind != Exclude || d[1].Exclusion.Kind != Timing || d[1].Exclusion.Culprit != rc.k("b") {
		t.Fatalf("second strike after the rebuild: %+v, want b excluded for timing", d)
	}

	// A case voided by a rebuild: a accused by b, then b moves under the origin.
	rc.judge.Open(9)
	if err := rc.judge.Accuse(rc.accuse("b", "a", 9), rc.at(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse)
	moved := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("origin"), rc.k("c"): rc.k("a")}}
	if err := rc.judge.SetPlans([]ParentPlan{moved}); err != nil {
		t.Fatal(err)
	}
	rc.judge.Tick(rc.at(10 * time.Second))
	if d := rc.judge.Decisions(); len(d) != 0 {
		t.Fatalf("a voided case still decided: %+v", d)
	}
	if err := rc.judge.SetPlans(nil); err == nil {
		t.Fatal("empty plans taken")
	}
}

// A starved relay is excused whichever accusation reaches the judge first:
// here b accuses its parent a before b's child c accuses b (the upstream
// child notices first), and, in a tree where a has two relay children, b's
// accusation of a comes after its sibling's opened a's case. Either way
// a is excluded and b is not.
func TestRelayJudgeStarvedParentInAnyOrder(t *testing.T) {
	w := DefaultParams().AnswerWindow
	rc := newRelayCast(t)
	if err := rc.judge.Accuse(rc.accuse("b", "a", 7), rc.at(0)); err != nil {
		t.Fatal(err)
	}
	if err := rc.judge.Accuse(rc.accuse("c", "b", 7), rc.at(w/2)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse, Accuse)
	rc.judge.Tick(rc.at(2 * w))
	if x := decided(t, rc.judge, Exclude)[0]; x.Exclusion.Culprit != rc.k("a") {
		t.Fatalf("excluded %s, want a", x.Exclusion.Culprit)
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
	if _, out := rc.judge.Excluded(rc.k("b")); out {
		t.Fatal("b, which accused its parent first, was excluded for the parent's omission")
	}
	// With a already out, b's next starved push (before the switch) is
	// excused too, in either order.
	rc.judge.Accuse(rc.accuse("c", "b", 8), rc.at(time.Hour))
	rc.judge.Accuse(rc.accuse("b", "a", 8), rc.at(time.Hour))
	decided(t, rc.judge, Accuse)
	rc.judge.Tick(rc.at(2 * time.Hour))
	decided(t, rc.judge)
	if _, out := rc.judge.Excluded(rc.k("b")); out {
		t.Fatal("b was excluded for a push its excluded parent never sent")
	}

	// a with two relay children b and b2; b2 accuses a first.
	rc = newRelayCast(t)
	_, k2, _ := ed25519.GenerateKey(nil)
	rc.keys["b2"] = k2
	plan := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("a"), rc.k("b2"): rc.k("a"), rc.k("c"): rc.k("b")},
		Backup: map[NodeKey]NodeKey{rc.k("b"): rc.k("origin"), rc.k("b2"): rc.k("origin"), rc.k("c"): rc.k("b2")}}
	var err error
	if rc.judge, err = NewRelayJudge(RelayConfig{Chain: rc.chain, Params: DefaultParams(), Plans: []ParentPlan{plan}, Judge: rc.keys["judge"]}); err != nil {
		t.Fatal(err)
	}
	rc.judge.Open(7)
	for _, acc := range []struct{ by, of string }{{"c", "b"}, {"b2", "a"}, {"b", "a"}} {
		if err := rc.judge.Accuse(rc.accuse(acc.by, acc.of, 7), rc.at(0)); err != nil {
			t.Fatal(err)
		}
	}
	decided(t, rc.judge, Accuse, Accuse)
	rc.judge.Tick(rc.at(2 * w))
	if x := decided(t, rc.judge, Exclude)[0]; x.Exclusion.Culprit != rc.k("a") {
		t.Fatalf("excluded %s, want a", x.Exclusion.Culprit)
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
	if _, out := rc.judge.Excluded(rc.k("b")); out {
		t.Fatal("b, the second child of a to accuse it, was excluded for a's omission")
	}
}

// A rebuild that moves b (a's child) under the origin takes effect at
// Current + Δ: b's child c accusing b of the segments before that is
// excused (b had nothing to pass on), b may not accuse its new parent of
// them (a lie about a route it did not have yet), and from the route start
// on b answers for its pushes again.
func TestRelayJudgeReroutedRelayIsExcusedUntilItsRoute(t *testing.T) {
	rc := newRelayCast(t)
	rc.judge.Open(20)
	moved := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("origin"), rc.k("c"): rc.k("b")},
		Backup: map[NodeKey]NodeKey{rc.k("c"): rc.k("a")}}
	if err := rc.judge.SetPlans([]ParentPlan{moved}); err != nil {
		t.Fatal(err)
	}
	from := 20 + uint64(DefaultParams().SwitchLead())
	if got := rc.judge.RouteFrom(rc.k("b"), 0); got != from {
		t.Fatalf("b's route starts at %d, want %d", got, from)
	}
	if got := rc.judge.RouteFrom(rc.k("c"), 0); got != 0 {
		t.Fatalf("c did not move, but its route starts at %d", got)
	}
	for seg := uint64(20); seg < from; seg++ {
		if err := rc.judge.Accuse(rc.accuse("c", "b", seg), rc.at(0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.judge.Accuse(rc.accuse("b", "origin", 20), rc.at(0)); err == nil {
		t.Fatal("b accused its new parent of a segment before its route")
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
	if err := rc.judge.Accuse(rc.accuse("c", "b", from), rc.at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse)
	rc.judge.Tick(rc.at(2 * time.Hour))
	if x := decided(t, rc.judge, Exclude)[0]; x.Exclusion.Culprit != rc.k("b") || x.Exclusion.Kind != Omission {
		t.Fatalf("b unanswered on its own route: %+v, want excluded for omission", x.Exclusion)
	}
}

// The parent leaves and a rebuild drops its case: the child that accused
// it, accused in turn by its own child, is excused, not timed out. And a
// starved relay whose own accusation of its parent never reached the judge
// is not excluded while another child's case against that parent is open.
func TestRelayJudgeStarvedByADroppedOrAccusedParent(t *testing.T) {
	w := DefaultParams().AnswerWindow
	rc := newRelayCast(t)
	for _, acc := range []struct{ by, of string }{{"b", "a"}, {"c", "b"}} {
		if err := rc.judge.Accuse(rc.accuse(acc.by, acc.of, 7), rc.at(0)); err != nil {
			t.Fatal(err)
		}
	}
	decided(t, rc.judge, Accuse, Accuse)
	gone := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("b"): rc.k("origin"), rc.k("c"): rc.k("b")}}
	if err := rc.judge.SetPlans([]ParentPlan{gone}); err != nil {
		t.Fatal(err)
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)

	// a with children b and b2; b2 accuses a, c accuses b; b says nothing.
	rc = newRelayCast(t)
	_, k2, _ := ed25519.GenerateKey(nil)
	rc.keys["b2"] = k2
	plan := ParentPlan{Parent: map[NodeKey]NodeKey{rc.k("a"): rc.k("origin"), rc.k("b"): rc.k("a"), rc.k("b2"): rc.k("a"), rc.k("c"): rc.k("b")},
		Backup: map[NodeKey]NodeKey{rc.k("b"): rc.k("origin"), rc.k("b2"): rc.k("origin"), rc.k("c"): rc.k("b2")}}
	var err error
	if rc.judge, err = NewRelayJudge(RelayConfig{Chain: rc.chain, Params: DefaultParams(), Plans: []ParentPlan{plan}, Judge: rc.keys["judge"]}); err != nil {
		t.Fatal(err)
	}
	rc.judge.Open(7)
	if err := rc.judge.Accuse(rc.accuse("c", "b", 7), rc.at(0)); err != nil {
		t.Fatal(err)
	}
	if err := rc.judge.Accuse(rc.accuse("b2", "a", 7), rc.at(w/2)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse, Accuse)
	rc.judge.Tick(rc.at(w + time.Millisecond)) // b's window is over, a's not yet
	decided(t, rc.judge)
	rc.judge.Tick(rc.at(2 * w))
	if x := decided(t, rc.judge, Exclude); x[0].Exclusion.Culprit != rc.k("a") {
		t.Fatalf("excluded %s, want a", x[0].Exclusion.Culprit)
	}
	rc.judge.Tick(rc.at(time.Hour))
	decided(t, rc.judge)
	if _, out := rc.judge.Excluded(rc.k("b")); out {
		t.Fatal("b, starved by a, was excluded")
	}
}

// A judge made for a running chain (RoutesFrom) judges no push from before
// its trees: a child's accusation of an earlier segment is refused, and
// from RoutesFrom on cases run as usual.
func TestRelayJudgeRoutesFrom(t *testing.T) {
	rc := newRelayCast(t)
	plan := rc.judge.cfg.Plans
	var err error
	if rc.judge, err = NewRelayJudge(RelayConfig{Chain: rc.chain, Params: DefaultParams(), Plans: plan, Judge: rc.keys["judge"], RoutesFrom: 9}); err != nil {
		t.Fatal(err)
	}
	rc.judge.Open(9)
	if err := rc.judge.Accuse(rc.accuse("c", "b", 8), rc.at(0)); err == nil {
		t.Fatal("an accusation of a segment before the judge's trees was taken")
	}
	decided(t, rc.judge)
	if err := rc.judge.Accuse(rc.accuse("c", "b", 9), rc.at(0)); err != nil {
		t.Fatal(err)
	}
	decided(t, rc.judge, Accuse)
}
