package btr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// The judge's core runs here in logical time: each scenario is a script of
// timed events (segments opening, outputs arriving, ticks, re-executions)
// and, under each event, the exact decisions the core must take in answer
// ("> ..."); an event with no "> " lines must take none. Times are in ms
// from t0. Replicas r0..rf are active, s0.. are spares; "ok" is the correct
// digest of a segment, "bad"/"bad2" two wrong ones.
//
// Default parameters: T = 1 s, τ (detection timeout) = 2·50+600+20 = 720 ms,
// answer window W = 150 ms, switch lead Δ = 2 segments.

const testRecipe = "ladder-v1/360p"

var t0 = time.Unix(1_800_000_000, 0)

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("btr test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testChain() content.VideoID { return content.VideoID(sha256.Sum256([]byte("btr test chain"))) }

func inputOf(seg uint64) content.Hash {
	return sha256.Sum256([]byte("source segment " + strconv.FormatUint(seg, 10)))
}

// correctDigest stands for the deterministic transcode: what every correct
// replica (and the judge's re-execution) gets for a recipe and input.
func correctDigest(recipe string, input content.Hash) content.Hash {
	return sha256.Sum256(append([]byte("output of "+recipe+" on "), input[:]...))
}

func wrongDigest(input content.Hash, variant string) content.Hash {
	return sha256.Sum256(append([]byte("black frames "+variant), input[:]...))
}

// digestReexecutor re-executes by correctDigest, like the real recipe would.
type digestReexecutor struct{ runs int }

func (d *digestReexecutor) Run(recipe string, input content.Hash) (content.Hash, error) {
	d.runs++
	return correctDigest(recipe, input), nil
}

func signedOutput(key ed25519.PrivateKey, seg uint64, digest content.Hash) *Output {
	o := &Output{Task: Task{Chain: testChain(), Segment: seg, Recipe: testRecipe, Input: inputOf(seg)}, Digest: digest}
	o.Sign(key)
	return o
}

type cast struct {
	names map[NodeKey]string
	keys  map[string]ed25519.PrivateKey
}

func newCast(f, spares int) (*cast, Standby) {
	c := &cast{names: map[NodeKey]string{}, keys: map[string]ed25519.PrivateKey{}}
	var sb Standby
	add := func(name string) NodeKey {
		k := testKey(name)
		c.keys[name] = k
		c.names[KeyOf(k)] = name
		return KeyOf(k)
	}
	for i := 0; i <= f; i++ {
		sb.Active = append(sb.Active, add(fmt.Sprintf("r%d", i)))
	}
	for i := 0; i < spares; i++ {
		sb.Spares = append(sb.Spares, add(fmt.Sprintf("s%d", i)))
	}
	add("outsider")
	return c, sb
}

func (c *cast) format(d Decision) string {
	dig := func(seg uint64, h content.Hash) string {
		switch h {
		case correctDigest(testRecipe, inputOf(seg)):
			return "ok"
		case wrongDigest(inputOf(seg), "bad"):
			return "bad"
		case wrongDigest(inputOf(seg), "bad2"):
			return "bad2"
		}
		return fmt.Sprintf("%x", h[:4])
	}
	switch d.Kind {
	case Accept:
		var who []string
		for _, k := range d.Agreed {
			who = append(who, c.names[k])
		}
		s := fmt.Sprintf("accept %d %s by [%s]", d.Segment, dig(d.Segment, d.Digest), strings.Join(who, " "))
		if d.ByReexecution {
			s += " (reexecution)"
		}
		return s
	case Reexecute:
		return fmt.Sprintf("reexecute %d", d.Segment)
	case Accuse:
		return fmt.Sprintf("accuse %s %d %s", c.names[d.Accusation.Accused], d.Accusation.Segment, d.Accusation.Kind)
	case Clear:
		return fmt.Sprintf("clear %s %d", c.names[d.Accusation.Accused], d.Accusation.Segment)
	case Exclude:
		return fmt.Sprintf("exclude %s %s switch %d", c.names[d.Exclusion.Culprit], d.Exclusion.Kind, d.SwitchAt)
	case Overdue:
		var who []string
		for _, k := range d.Silent {
			who = append(who, c.names[k])
		}
		return fmt.Sprintf("overdue %d [%s]", d.Segment, strings.Join(who, " "))
	}
	return d.Kind.String()
}

type scriptScenario struct {
	name   string
	f      int
	spares int
	script string
}

var coreScenarios = []scriptScenario{
	{name: "all f+1 agree: accepted on the last output, before the deadline", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		450  out r1 0 ok
		> accept 0 ok by [r0 r1]
		2000 tick`},
	{name: "f=2 all agree", f: 2, spares: 1, script: `
		0    open 0
		100  out r2 0 ok
		200  out r0 0 ok
		300  out r1 0 ok
		> accept 0 ok by [r0 r1 r2]`},
	{name: "commission: digests differ, the re-execution decides, the liar is proven and excluded", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		310  out r1 0 bad
		> reexecute 0
		900  reexec 0
		> accept 0 ok by [r0] (reexecution)
		> exclude r1 commission switch 2
		1000 open 1
		1200 out r0 1 ok
		> accept 1 ok by [r0]
		2000 open 2
		     assigned 2 r0 s0
		2300 out s0 2 ok
		2310 out r0 2 ok
		> accept 2 ok by [r0 s0]`},
	{name: "commission by the first replica to answer: the proof names it, not the honest one", f: 1, spares: 1, script: `
		0    open 0
		100  out r1 0 bad
		300  out r0 0 ok
		> reexecute 0
		800  reexec 0
		> accept 0 ok by [r0] (reexecution)
		> exclude r1 commission switch 2`},
	{name: "f=2: two colluding replicas sign the same wrong digest; both are proven", f: 2, spares: 2, script: `
		0    open 0
		100  out r1 0 bad
		200  out r2 0 bad
		300  out r0 0 ok
		> reexecute 0
		900  reexec 0
		> accept 0 ok by [r0] (reexecution)
		> exclude r1 commission switch 2
		> exclude r2 commission switch 2
		2000 open 2
		     assigned 2 r0 s0 s1`},
	{name: "omission: accused at the deadline, excluded when the answer window closes; the replica left never decides alone (the excluded one may have been honest and slow), the re-execution does", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		719  tick
		720  tick
		> accuse r1 0 omission
		> reexecute 0
		870  tick
		871  tick
		> exclude r1 omission switch 2
		900  reexec 0
		> accept 0 ok by [r0] (reexecution)
		950  out r1 0 ok`},
	{name: "attack (B18): an honest replica the load made miss its window is excluded, and the liar left alone signs the next segment before the switch: its digest is never accepted, the re-execution decides and proves it", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		720  tick
		> accuse r1 0 omission
		> reexecute 0
		871  tick
		> exclude r1 omission switch 2
		900  reexec 0
		> accept 0 ok by [r0] (reexecution)
		1000 open 1
		1300 out r0 1 bad
		> reexecute 1
		1800 reexec 1
		> accept 1 ok by [] (reexecution)
		> exclude r0 commission switch 3`},
	{name: "load (B18): every replica misses the deadline at once: more than f are silent, so a correct one is among them; nobody is accused, the late outputs are no strikes, and a lone silent one next segment is accused", f: 1, spares: 1, script: `
		0    open 0
		720  tick
		> overdue 0 [r0 r1]
		> reexecute 0
		1000 open 1
		1100 out r0 0 ok
		1150 out r1 0 ok
		> accept 0 ok by [r0 r1]
		1300 out r0 1 ok
		1720 tick
		> accuse r1 1 omission
		> reexecute 1
		1800 out r1 1 ok
		> clear r1 1
		> accept 1 ok by [r0 r1]
		2000 open 2
		2300 out r0 2 ok
		2310 out r1 2 ok
		> accept 2 ok by [r0 r1]
		2400 reexec 0
		2500 reexec 1`},
	{name: "load (B18), f=2: two of three silent is not more than f, and are accused; three silent are overdue", f: 2, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		720  tick
		> accuse r1 0 omission
		> accuse r2 0 omission
		> reexecute 0
		760  out r1 0 ok
		> clear r1 0
		770  out r2 0 ok
		> clear r2 0
		> accept 0 ok by [r0 r1 r2]
		1000 open 1
		1720 tick
		> overdue 1 [r0 r1 r2]
		> reexecute 1`},
	{name: "load (B18): an output that reached the judge by the deadline but was handled after its tick (the judge's own lateness) clears the accusation with no strike", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		730  tick
		> accuse r1 0 omission
		> reexecute 0
		700  out r1 0 ok
		> clear r1 0
		> accept 0 ok by [r0 r1]
		1000 open 1
		1300 out r0 1 ok
		1730 tick
		> accuse r1 1 omission
		> reexecute 1
		1710 out r1 1 ok
		> clear r1 1
		> accept 1 ok by [r0 r1]
		2000 open 2
		2300 out r0 2 ok
		2310 out r1 2 ok
		> accept 2 ok by [r0 r1]`},
	{name: "a rebuttal in time clears the accusation, once", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		720  tick
		> accuse r1 0 omission
		> reexecute 0
		860  rebut r1 0 ok
		> clear r1 0
		> accept 0 ok by [r0 r1]
		1000 tick`},
	{name: "honest but slow within the bound is never accused", f: 1, spares: 1, script: `
		0    open 0
		1    out r0 0 ok
		719  out r1 0 ok
		> accept 0 ok by [r0 r1]
		1000 open 1
		1719 out r0 1 ok
		1719 out r1 1 ok
		> accept 1 ok by [r0 r1]
		5000 tick`},
	{name: "timing: late twice within the strike window, excluded on the second", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		800  out r1 0 ok
		> accuse r1 0 omission
		> reexecute 0
		> clear r1 0
		> accept 0 ok by [r0 r1]
		1000 open 1
		1300 out r0 1 ok
		1730 tick
		> accuse r1 1 omission
		> reexecute 1
		1800 out r1 1 ok
		> clear r1 1
		> exclude r1 timing switch 3
		> accept 1 ok by [r0]`},
	{name: "timing: lateness spread beyond the strike window is forgiven", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		800  out r1 0 ok
		> accuse r1 0 omission
		> reexecute 0
		> clear r1 0
		> accept 0 ok by [r0 r1]
		1000 open 1
		1300 out r0 1 ok
		1500 out r1 1 ok
		> accept 1 ok by [r0 r1]
		2000 open 2
		2300 out r0 2 ok
		2500 out r1 2 ok
		> accept 2 ok by [r0 r1]
		3000 open 3
		3300 out r0 3 ok
		3800 out r1 3 ok
		> accuse r1 3 omission
		> reexecute 3
		> clear r1 3
		> accept 3 ok by [r0 r1]`},
	{name: "equivocation: a second digest for one task, forwarded by another party, is a proof", f: 1, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		400  out r1 0 ok
		> accept 0 ok by [r0 r1]
		500  out r1 0 bad
		> exclude r1 equivocation switch 2`},
	{name: "a wrong digest answering an accusation is proven by the re-execution", f: 2, spares: 1, script: `
		0    open 0
		300  out r0 0 ok
		400  out r1 0 ok
		500  tick
		720  tick
		> accuse r2 0 omission
		> reexecute 0
		800  out r2 0 bad
		> clear r2 0
		850  reexec 0
		> accept 0 ok by [r0 r1] (reexecution)
		> exclude r2 commission switch 2`},
	{name: "refusals: an outsider, a forged signature, a wrong input, an unopened segment change nothing", f: 1, spares: 1, script: `
		0    open 0
		100  refuse outsider 0 ok
		100  refuse forged 0 ok
		100  refuse wronginput 0 ok
		100  refuse r0 5 ok
		300  out r0 0 ok
		400  out r1 0 ok
		> accept 0 ok by [r0 r1]`},
	{name: "two exclusions in a row: the spares take the slots in order", f: 2, spares: 2, script: `
		0    open 0
		100  out r0 0 ok
		200  out r1 0 bad
		> reexecute 0
		300  out r2 0 ok
		700  reexec 0
		> accept 0 ok by [r0 r2] (reexecution)
		> exclude r1 commission switch 2
		1000 open 1
		1100 out r0 1 ok
		1200 out r2 1 bad2
		> reexecute 1
		1400 reexec 1
		> accept 1 ok by [r0] (reexecution)
		> exclude r2 commission switch 3
		2000 open 2
		     assigned 2 r0 s0 r2
		3000 open 3
		     assigned 3 r0 s0 s1`},
}

func TestCoreScenarios(t *testing.T) {
	for _, sc := range coreScenarios {
		t.Run(sc.name, func(t *testing.T) { runScript(t, sc) })
	}
}

func runScript(t *testing.T, sc scriptScenario) {
	t.Helper()
	people, sb := newCast(sc.f, sc.spares)
	judgeKey := testKey("judge")
	core, err := NewCore(Config{Chain: testChain(), Recipe: testRecipe, Standby: sb, Params: DefaultParams(), Judge: judgeKey})
	if err != nil {
		t.Fatal(err)
	}
	re := &digestReexecutor{}
	accusations := map[string]*Accusation{} // "name seg" → the latest accusation
	var pending []string                    // decisions taken and not yet expected
	var lastEvent string
	flush := func() {
		if len(pending) > 0 {
			t.Errorf("after %q: unexpected decisions:\n  %s", lastEvent, strings.Join(pending, "\n  "))
		}
		pending = nil
	}
	collect := func() {
		for _, d := range core.Decisions() {
			if d.Kind == Accuse {
				accusations[fmt.Sprintf("%s %d", people.names[d.Accusation.Accused], d.Accusation.Segment)] = d.Accusation
				if err := d.Accusation.Check(); err != nil {
					t.Errorf("the judge's accusation does not check: %v", err)
				}
			}
			if d.Kind == Exclude {
				if err := d.Exclusion.Check(KeyOf(judgeKey), re); err != nil {
					t.Errorf("exclusion of %s does not check: %v", people.names[d.Exclusion.Culprit], err)
				}
				if d.Proof != nil {
					if err := d.Proof.Check(re); err != nil {
						t.Errorf("proof against %s does not check: %v", people.names[d.Proof.Culprit()], err)
					}
				}
			}
			pending = append(pending, people.format(d))
		}
	}
	var at time.Duration
	for _, raw := range strings.Split(sc.script, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if want, ok := strings.CutPrefix(line, "> "); ok {
			if len(pending) == 0 {
				t.Errorf("after %q: want %q, got no (more) decisions", lastEvent, want)
				continue
			}
			if pending[0] != want {
				t.Errorf("after %q: want %q, got %q", lastEvent, want, pending[0])
			}
			pending = pending[1:]
			continue
		}
		flush()
		lastEvent = line
		fields := strings.Fields(line)
		if ms, err := strconv.Atoi(fields[0]); err == nil {
			at = time.Duration(ms) * time.Millisecond
			fields = fields[1:]
		}
		now := t0.Add(at)
		seg := func(i int) uint64 {
			s, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				t.Fatalf("%q: bad segment %q", line, fields[i])
			}
			return s
		}
		digest := func(s uint64, name string) content.Hash {
			if name == "ok" {
				return correctDigest(testRecipe, inputOf(s))
			}
			return wrongDigest(inputOf(s), name)
		}
		switch fields[0] {
		case "open":
			if err := core.Open(seg(1), inputOf(seg(1)), now); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		case "out":
			s := seg(2)
			if err := core.Output(signedOutput(people.keys[fields[1]], s, digest(s, fields[3])), now); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		case "rebut":
			s := seg(2)
			a := accusations[fields[1]+" "+fields[2]]
			if a == nil {
				t.Fatalf("%q: no accusation against %s at %d", line, fields[1], s)
			}
			r := &Rebuttal{Accusation: a, Output: signedOutput(people.keys[fields[1]], s, digest(s, fields[3]))}
			if err := r.CheckInTime(now.UnixMicro()); err != nil {
				t.Fatalf("%q: the rebuttal does not check: %v", line, err)
			}
			if err := core.Rebut(r, now); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		case "reexec":
			s := seg(1)
			d, _ := re.Run(testRecipe, inputOf(s))
			if err := core.Reexecuted(s, d, now); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		case "tick":
			core.Tick(now)
		case "assigned":
			var got []string
			for _, k := range core.Assigned(seg(1)) {
				got = append(got, people.names[k])
			}
			if !slices.Equal(got, fields[2:]) {
				t.Errorf("%q: assigned %v", line, got)
			}
		case "refuse":
			s := seg(2)
			var o *Output
			switch fields[1] {
			case "forged":
				o = signedOutput(people.keys["r0"], s, digest(s, fields[3]))
				o.Digest = wrongDigest(inputOf(s), "bad") // signature no longer covers it
			case "wronginput":
				o = signedOutput(people.keys["r0"], s, digest(s, fields[3]))
				o.Input = inputOf(s + 100)
				o.Sign(people.keys["r0"])
			default:
				o = signedOutput(people.keys[fields[1]], s, digest(s, fields[3]))
			}
			if err := core.Output(o, now); err == nil {
				t.Errorf("%q: accepted", line)
			}
		default:
			t.Fatalf("unknown event %q", line)
		}
		collect()
	}
	flush()
}
