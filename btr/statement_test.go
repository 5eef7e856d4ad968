package btr

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

func sampleStatements() (*Output, *Accusation, *Rebuttal, *ProofOfMisbehaviour, *ProofOfMisbehaviour, *Exclusion) {
	r1 := testKey("r1")
	good := signedOutput(r1, 7, correctDigest(testRecipe, inputOf(7)))
	bad := signedOutput(r1, 7, wrongDigest(inputOf(7), "bad"))
	acc := &Accusation{Task: good.Task, Accused: KeyOf(r1), Kind: Omission, AnswerBy: t0.Add(time.Second).UnixMicro()}
	acc.Sign(testKey("judge"))
	reb := &Rebuttal{Accusation: acc, Output: good}
	commission := &ProofOfMisbehaviour{Kind: Commission, A: bad, Correct: good.Digest}
	equivocation := &ProofOfMisbehaviour{Kind: Equivocation, A: good, B: bad}
	x := &Exclusion{Chain: testChain(), Culprit: KeyOf(r1), Kind: Commission, Current: 7, Evidence: commission.Encode()}
	x.Sign(testKey("judge"))
	return good, acc, reb, commission, equivocation, x
}

func TestStatementsRoundTrip(t *testing.T) {
	o, a, r, pc, pe, x := sampleStatements()
	if got, err := DecodeOutput(o.Encode()); err != nil || !bytes.Equal(got.Encode(), o.Encode()) {
		t.Errorf("output: %v", err)
	}
	if got, err := DecodeAccusation(a.Encode()); err != nil || !bytes.Equal(got.Encode(), a.Encode()) {
		t.Errorf("accusation: %v", err)
	}
	if got, err := DecodeRebuttal(r.Encode()); err != nil || !bytes.Equal(got.Encode(), r.Encode()) {
		t.Errorf("rebuttal: %v", err)
	}
	for _, p := range []*ProofOfMisbehaviour{pc, pe} {
		if got, err := DecodeProof(p.Encode()); err != nil || !bytes.Equal(got.Encode(), p.Encode()) {
			t.Errorf("%s proof: %v", p.Kind, err)
		}
	}
	got, err := DecodeExclusion(x.Encode())
	if err != nil || !bytes.Equal(got.Encode(), x.Encode()) {
		t.Fatalf("exclusion: %v", err)
	}
	if err := got.Check(KeyOf(testKey("judge")), &digestReexecutor{}); err != nil {
		t.Errorf("decoded exclusion: %v", err)
	}
	if got.SwitchAt(DefaultParams()) != 7+uint64(DefaultParams().SwitchLead()) {
		t.Errorf("switch segment %d", got.SwitchAt(DefaultParams()))
	}
}

// Every statement is refused once one byte of it changes (the signatures
// cover everything but themselves; a changed signature fails too).
func TestStatementsTamperedAreRefused(t *testing.T) {
	o, a, r, pc, pe, _ := sampleStatements()
	decoders := map[string]struct {
		data   []byte
		decode func([]byte) error
	}{
		"output":     {o.Encode(), func(b []byte) error { _, err := DecodeOutput(b); return err }},
		"accusation": {a.Encode(), func(b []byte) error { _, err := DecodeAccusation(b); return err }},
		"rebuttal":   {r.Encode(), func(b []byte) error { _, err := DecodeRebuttal(b); return err }},
		"equivocation": {pe.Encode(), func(b []byte) error {
			_, err := DecodeProof(b)
			return err
		}},
		"commission": {pc.Encode(), func(b []byte) error {
			p, err := DecodeProof(b)
			if err == nil && p.Correct == pc.Correct {
				err = p.Check(&digestReexecutor{})
			}
			if err == nil && p.Correct != pc.Correct {
				err = errors.New("changed the informative digest only") // Check recomputes it
			}
			return err
		}},
	}
	for name, d := range decoders {
		for i := range d.data {
			b := bytes.Clone(d.data)
			b[i] ^= 0x01
			if d.decode(b) == nil {
				t.Errorf("%s: flipping byte %d of %d left it valid", name, i, len(b))
			}
		}
		if d.decode(d.data[:len(d.data)-1]) == nil {
			t.Errorf("%s: truncated, still valid", name)
		}
		if d.decode(append(bytes.Clone(d.data), 0)) == nil {
			t.Errorf("%s: trailing byte, still valid", name)
		}
	}
}

// A third party checks a proof without trusting its builder: a forged
// commission proof against an honest output, an "equivocation" of two
// replicas, or of two tasks, is refused.
func TestProofCheckRefusesFalseProofs(t *testing.T) {
	honest := signedOutput(testKey("r0"), 3, correctDigest(testRecipe, inputOf(3)))
	re := &digestReexecutor{}
	cases := map[string]*ProofOfMisbehaviour{
		"commission against a correct output": {Kind: Commission, A: honest, Correct: wrongDigest(inputOf(3), "bad")},
		"equivocation by two replicas": {Kind: Equivocation, A: honest,
			B: signedOutput(testKey("r1"), 3, wrongDigest(inputOf(3), "bad"))},
		"equivocation over two segments": {Kind: Equivocation, A: honest,
			B: signedOutput(testKey("r0"), 4, wrongDigest(inputOf(4), "bad"))},
		"equivocation with one digest": {Kind: Equivocation, A: honest, B: signedOutput(testKey("r0"), 3, honest.Digest)},
		"omission is not provable":     {Kind: Omission, A: honest},
	}
	for name, p := range cases {
		if err := p.Check(re); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := signedOutput(testKey("r0"), 3, wrongDigest(inputOf(3), "bad"))
	if err := (&ProofOfMisbehaviour{Kind: Commission, A: bad}).Check(nil); err == nil || !strings.Contains(err.Error(), "re-executor") {
		t.Errorf("a commission proof checked without re-executing: %v", err)
	}
	failing := reexecFunc(func(string, content.Hash) (content.Hash, error) {
		return content.Hash{}, errors.New("source segment not found")
	})
	if err := (&ProofOfMisbehaviour{Kind: Commission, A: bad}).Check(failing); err == nil {
		t.Errorf("a commission proof accepted when re-execution failed")
	}
}

type reexecFunc func(string, content.Hash) (content.Hash, error)

func (f reexecFunc) Run(recipe string, input content.Hash) (content.Hash, error) {
	return f(recipe, input)
}

func TestRebuttalTimeliness(t *testing.T) {
	_, a, r, _, _, _ := sampleStatements()
	if err := r.CheckInTime(a.AnswerBy); err != nil {
		t.Errorf("at the answer deadline: %v", err)
	}
	if err := r.CheckInTime(a.AnswerBy + 1); err == nil {
		t.Errorf("after the answer deadline: accepted")
	}
	other := &Rebuttal{Accusation: a, Output: signedOutput(testKey("r0"), 7, correctDigest(testRecipe, inputOf(7)))}
	if err := other.Check(); err == nil {
		t.Errorf("a rebuttal by someone other than the accused: accepted")
	}
	wrongTask := &Rebuttal{Accusation: a, Output: signedOutput(testKey("r1"), 8, correctDigest(testRecipe, inputOf(8)))}
	if err := wrongTask.Check(); err == nil {
		t.Errorf("a rebuttal for another segment: accepted")
	}
}

// An exclusion is checked against the chain's judge and its evidence:
// signed by anyone else, or carrying evidence against someone else, it is
// refused.
func TestExclusionCheck(t *testing.T) {
	_, a, _, pc, _, x := sampleStatements()
	judge := KeyOf(testKey("judge"))
	re := &digestReexecutor{}
	forged := *x
	forged.Sign(testKey("r0"))
	if err := forged.Check(judge, re); err == nil {
		t.Errorf("an exclusion signed by a replica: accepted")
	}
	framed := *x
	framed.Culprit = KeyOf(testKey("r0"))
	framed.Sign(testKey("judge"))
	if err := framed.Check(judge, re); err == nil {
		t.Errorf("an exclusion of r0 on evidence against r1: accepted")
	}
	omission := &Exclusion{Chain: testChain(), Culprit: a.Accused, Kind: Omission, Current: 7, Evidence: a.Encode()}
	omission.Sign(testKey("judge"))
	if err := omission.Check(judge, nil); err != nil {
		t.Errorf("an omission exclusion on the judge's accusation: %v", err)
	}
	asCommission := &Exclusion{Chain: testChain(), Culprit: a.Accused, Kind: Commission, Current: 7, Evidence: a.Encode()}
	asCommission.Sign(testKey("judge"))
	if err := asCommission.Check(judge, re); err == nil {
		t.Errorf("a commission exclusion carrying an accusation: accepted")
	}
	_ = pc
}

func TestNewCoreRefusesBadPlans(t *testing.T) {
	_, sb := newCast(1, 1)
	good := Config{Chain: testChain(), Recipe: testRecipe, Standby: sb, Params: DefaultParams(), Judge: testKey("judge")}
	if _, err := NewCore(good); err != nil {
		t.Fatal(err)
	}
	dup := good
	dup.Standby = Standby{Active: sb.Active, Spares: []NodeKey{sb.Active[0]}}
	judgeIsReplica := good
	judgeIsReplica.Judge = testKey("r0")
	noWindow := good
	noWindow.Params.AnswerWindow = noWindow.Params.NetworkDelay
	noRecipe := good
	noRecipe.Recipe = ""
	for name, cfg := range map[string]Config{"duplicate replica": dup, "judge is a replica": judgeIsReplica, "answer window below a round trip": noWindow, "no recipe": noRecipe} {
		if _, err := NewCore(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStandbyAndParents(t *testing.T) {
	k := func(n string) NodeKey { return KeyOf(testKey(n)) }
	sb := Standby{Active: []NodeKey{k("a"), k("b"), k("c")}, Spares: []NodeKey{k("x"), k("y")}}
	ex := func(names ...string) func(NodeKey) bool {
		return func(n NodeKey) bool {
			for _, name := range names {
				if n == k(name) {
					return true
				}
			}
			return false
		}
	}
	eq := func(got []NodeKey, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != k(want[i]) {
				return false
			}
		}
		return true
	}
	if got := sb.Assign(ex()); !eq(got, "a", "b", "c") {
		t.Errorf("no exclusion: %v", got)
	}
	if got := sb.Assign(ex("b")); !eq(got, "a", "x", "c") {
		t.Errorf("b out: %v", got)
	}
	if got := sb.Assign(ex("b", "x")); !eq(got, "a", "y", "c") {
		t.Errorf("b and x out: %v", got)
	}
	if got := sb.Assign(ex("a", "b", "c")); !eq(got, "x", "y") {
		t.Errorf("spares exhausted: %v", got)
	}
	// origin → r1 → r2 → e1; e1's backup parent is r3.
	pp := ParentPlan{
		Parent: map[NodeKey]NodeKey{k("r1"): k("origin"), k("r2"): k("r1"), k("r3"): k("origin"), k("e1"): k("r2")},
		Backup: map[NodeKey]NodeKey{k("e1"): k("r3")},
	}
	for _, c := range []struct {
		excluded []string
		want     string
	}{{nil, "r2"}, {[]string{"r2"}, "r3"}, {[]string{"r2", "r3"}, "r1"}, {[]string{"r2", "r3", "r1"}, "origin"}} {
		if got, ok := pp.ParentOf(k("e1"), ex(c.excluded...)); !ok || got != k(c.want) {
			t.Errorf("excluded %v: parent %v, want %s", c.excluded, got, c.want)
		}
	}
	if _, ok := pp.ParentOf(k("origin"), ex()); ok {
		t.Errorf("the root has a parent")
	}
}

func TestBound(t *testing.T) {
	p := DefaultParams()
	// τ = 2·50 + 600 + 20 = 720 ms; timing, the slowest path:
	// (3−1)·1000 + 720 + 2·10 + 150 = 2890 ms; Δ = 1 + ⌈(90+200+50+20)/1000⌉ = 2.
	if got := p.DetectionTimeout(); got != 720*time.Millisecond {
		t.Errorf("detection timeout %v", got)
	}
	if got := p.SwitchLead(); got != 2 {
		t.Errorf("switch lead %d", got)
	}
	// The workers' timing path is 2890 ms; the relays' is slower (their
	// children see a miss only a segment plus twice the path latency after
	// it, L = 3·(30+10) = 120 ms): (3−1)·1000 + 1000 + 2·120 + 2·10 + 50 +
	// 150 = 3460 ms, so R = 3460 ms + Δ·T = 5.46 s.
	if got := p.Detection()[Timing]; got != 2890*time.Millisecond {
		t.Errorf("worker timing detection %v", got)
	}
	if got := p.RelayDetection()[Timing]; got != 3460*time.Millisecond {
		t.Errorf("relay timing detection %v", got)
	}
	if got := p.Bound(); got != 3460*time.Millisecond+2*time.Second {
		t.Errorf("R = %v", got)
	}
	// R grows with every term and does not depend on anything else.
	slower := p
	slower.Reexec = 3 * time.Second
	if slower.Bound() <= p.Bound() {
		t.Errorf("a slower re-execution did not raise R")
	}
	deeper := p
	deeper.TreeDepth = 40
	if deeper.SwitchLead() <= p.SwitchLead() {
		t.Errorf("a deeper tree did not raise the switch lead")
	}
}

func TestLadderDigest(t *testing.T) {
	a, b := []byte("rendition 0"), []byte("rendition 1")
	d := LadderDigest([][]byte{a, b})
	for name, other := range map[string][][]byte{
		"swapped": {b, a}, "one missing": {a}, "joined": {append(append([]byte{}, a...), b...)}, "changed": {a, []byte("rendition 2")},
	} {
		if LadderDigest(other) == d {
			t.Errorf("%s: same digest", name)
		}
	}
	if LadderDigest([][]byte{a, b}) != d {
		t.Error("not deterministic")
	}
}

// A node replaying the log: a forged exclusion changes nothing, a repeated
// one keeps its first switch segment, a relay's exclusion moves its child
// to the backup parent from the switch segment on.
func TestViewReplaysTheLog(t *testing.T) {
	k := func(n string) NodeKey { return KeyOf(testKey(n)) }
	judge := testKey("judge")
	p := DefaultParams()
	sb := Standby{Active: []NodeKey{k("r0"), k("r1")}, Spares: []NodeKey{k("s0")}}
	pp := ParentPlan{
		Parent: map[NodeKey]NodeKey{k("relay1"): k("origin"), k("relay2"): k("origin"), k("edge1"): k("relay1")},
		Backup: map[NodeKey]NodeKey{k("edge1"): k("relay2")},
	}
	v, err := NewView(testChain(), KeyOf(judge), sb, pp, p)
	if err != nil {
		t.Fatal(err)
	}
	acc := &Accusation{Task: Task{Chain: testChain(), Segment: 10, Recipe: testRecipe, Input: inputOf(10)}, Accused: k("relay1"), Kind: Omission, AnswerBy: 1}
	acc.Sign(judge)
	x := &Exclusion{Chain: testChain(), Culprit: k("relay1"), Kind: Omission, Current: 10, Evidence: acc.Encode()}
	x.Sign(judge)

	forged := *x
	forged.Sign(testKey("r0"))
	if err := v.Apply(&forged, nil); err == nil {
		t.Fatal("a forged exclusion applied")
	}
	if got, _ := v.ParentOf(k("edge1"), 100); got != k("relay1") {
		t.Fatalf("a refused exclusion changed the view")
	}
	if err := v.Apply(x, nil); err != nil {
		t.Fatal(err)
	}
	later := *x
	later.Current = 20
	later.Sign(judge)
	if err := v.Apply(&later, nil); err != nil {
		t.Fatal(err)
	}
	s := 10 + uint64(p.SwitchLead())
	if got, _ := v.ParentOf(k("edge1"), s-1); got != k("relay1") {
		t.Errorf("switched before s* = %d", s)
	}
	if got, _ := v.ParentOf(k("edge1"), s); got != k("relay2") {
		t.Errorf("not switched to the backup parent at s* = %d (a repeated exclusion moved it?)", s)
	}
	if got := v.Replicas(s); len(got) != 2 || got[0] != k("r0") || got[1] != k("r1") {
		t.Errorf("a relay's exclusion changed the replicas: %v", got)
	}
}

// A judge whose re-execution disagrees with an agreement of the replicas
// is the one that is wrong (its ffmpeg is not the recipe's): it proves
// nothing and changes nothing.
func TestReexecutionAgainstAgreementIsRefused(t *testing.T) {
	people, sb := newCast(1, 1)
	core, err := NewCore(Config{Chain: testChain(), Recipe: testRecipe, Standby: sb, Params: DefaultParams(), Judge: testKey("judge")})
	if err != nil {
		t.Fatal(err)
	}
	ok := correctDigest(testRecipe, inputOf(0))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(core.Open(0, inputOf(0), t0))
	must(core.Output(signedOutput(people.keys["r0"], 0, ok), t0.Add(100*time.Millisecond)))
	core.Tick(t0.Add(720 * time.Millisecond)) // r1 accused, re-execution asked
	must(core.Output(signedOutput(people.keys["r1"], 0, ok), t0.Add(800*time.Millisecond)))
	core.Decisions()
	if err := core.Reexecuted(0, wrongDigest(inputOf(0), "bad"), t0.Add(900*time.Millisecond)); err == nil {
		t.Fatal("a re-execution against the replicas' agreement was taken")
	}
	if d := core.Decisions(); len(d) != 0 {
		t.Fatalf("decisions after a refused re-execution: %v", d)
	}
	if _, out := core.Excluded(KeyOf(people.keys["r0"])); out {
		t.Fatal("an agreeing replica was excluded")
	}
}
