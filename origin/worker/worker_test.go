package worker

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/origin/live"
)

// The real thing: origin/live's ladder recipe run by ffmpeg on a source
// segment like the origin's cutter produces (1 s of H.264 + AAC in
// MPEG-TS, starting at a keyframe).

type memSources map[content.Hash][]byte

func (m memSources) Source(h content.Hash) ([]byte, error) {
	b, ok := m[h]
	if !ok {
		return nil, errors.New("not held")
	}
	return b, nil
}

func ladder() live.Recipe {
	return live.Recipe{Rungs: live.LadderFor(content.DefaultLadder, 320, 180), Audio: true}
}

// sourceSegment encodes 1 s of a lavfi pattern; vf, if set, filters it
// (a cheat's black frames).
func sourceSegment(t *testing.T, ffmpeg, pattern, vf string) []byte {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", pattern + "=size=320x180:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1"}
	if vf != "" {
		args = append(args, "-vf", vf)
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", "pipe:1")
	out, err := exec.Command(ffmpeg, args...).Output()
	if err != nil {
		t.Fatalf("making a source segment: %v", err)
	}
	return out
}

func key(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("worker test " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

var (
	chain = content.VideoID(sha256.Sum256([]byte("worker test chain")))
	t0    = time.Unix(1_800_000_000, 0)
)

// Two replicas on one source segment sign the same digest (the recipe is
// bit-exact across runs), and the judge accepts it; another segment gives
// another digest.
func TestReplicasAgree(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	task := btr.Task{Chain: chain, Segment: 0, Recipe: rc.ID(), Input: sha256.Sum256(src)}
	a, b := &Worker{Key: key("a"), FFmpeg: ffmpeg}, &Worker{Key: key("b"), FFmpeg: ffmpeg}
	oa, outs, err := a.Do(task, rc, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(rc.Rungs) {
		t.Fatalf("%d outputs for %d rungs", len(outs), len(rc.Rungs))
	}
	ob, _, err := b.Do(task, rc, src)
	if err != nil {
		t.Fatal(err)
	}
	if oa.Digest != ob.Digest {
		t.Fatalf("two runs of recipe %s on one segment differ: %x vs %x", rc.ID(), oa.Digest[:8], ob.Digest[:8])
	}
	core, err := btr.NewCore(btr.Config{Chain: chain, Recipe: rc.ID(), Params: btr.DefaultParams(), Judge: key("judge"),
		Standby: btr.Standby{Active: []btr.NodeKey{btr.KeyOf(key("a")), btr.KeyOf(key("b"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Open(0, task.Input, t0); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*btr.Output{oa, ob} {
		if err := core.Output(o, t0.Add(500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if d := core.Decisions(); len(d) != 1 || d[0].Kind != btr.Accept || d[0].Digest != oa.Digest {
		t.Fatalf("decisions %+v", d)
	}
	other := sourceSegment(t, ffmpeg, "smptebars", "")
	task1 := btr.Task{Chain: chain, Segment: 1, Recipe: rc.ID(), Input: sha256.Sum256(other)}
	o1, _, err := a.Do(task1, rc, other)
	if err != nil {
		t.Fatal(err)
	}
	if o1.Digest == oa.Digest {
		t.Fatal("two different source segments gave one digest")
	}
	if _, _, err := a.Do(task1, rc, src); err == nil {
		t.Error("a worker transcoded bytes that are not the task's input")
	}
}

// A replica that signed the digest of black frames is proven by real
// re-execution, through the judge's core and by a third party holding only
// the exclusion's bytes; a forged proof against the honest replica is
// refused.
func TestRealCommissionProof(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	input := sha256.Sum256(src)
	task := btr.Task{Chain: chain, Segment: 0, Recipe: rc.ID(), Input: input}

	honest, _, err := (&Worker{Key: key("honest"), FFmpeg: ffmpeg}).Do(task, rc, src)
	if err != nil {
		t.Fatal(err)
	}
	// The cheat transcodes black frames (cheap, the right shape and size
	// class) and signs their digest for the real input.
	black := sourceSegment(t, ffmpeg, "testsrc", "lutyuv=y=16:u=128:v=128")
	blackOuts, err := rc.Transcode(t.Context(), ffmpeg, black)
	if err != nil {
		t.Fatal(err)
	}
	cheat := &btr.Output{Task: task, Digest: btr.LadderDigest(blackOuts)}
	cheat.Sign(key("cheat"))
	if cheat.Digest == honest.Digest {
		t.Fatal("black frames gave the honest digest")
	}

	judge := NewReexecutor(ffmpeg, memSources{input: src}, rc)
	core, err := btr.NewCore(btr.Config{Chain: chain, Recipe: rc.ID(), Params: btr.DefaultParams(), Judge: key("judge"),
		Standby: btr.Standby{Active: []btr.NodeKey{btr.KeyOf(key("honest")), btr.KeyOf(key("cheat"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Open(0, input, t0); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*btr.Output{cheat, honest} {
		if err := core.Output(o, t0.Add(400*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	var exclusion *btr.Exclusion
	accepted := false
	for range 3 { // a re-execution's result leads to more decisions
		for _, d := range core.Decisions() {
			switch d.Kind {
			case btr.Reexecute:
				dig, err := judge.Run(d.Task.Recipe, d.Task.Input)
				if err != nil {
					t.Fatal(err)
				}
				if err := core.Reexecuted(d.Segment, dig, t0.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			case btr.Accept:
				accepted = d.Digest == honest.Digest
			case btr.Exclude:
				exclusion = d.Exclusion
			}
		}
	}
	if !accepted {
		t.Error("the honest ladder was not accepted")
	}
	if exclusion == nil || exclusion.Culprit != btr.KeyOf(key("cheat")) || exclusion.Kind != btr.Commission {
		t.Fatalf("the cheat was not excluded for commission: %+v", exclusion)
	}

	// An independent verifier: the exclusion's bytes, the judge's key, its
	// own ffmpeg and copy of the source segment.
	third := NewReexecutor(ffmpeg, memSources{input: src}, rc)
	got, err := btr.DecodeExclusion(exclusion.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Check(btr.KeyOf(key("judge")), third); err != nil {
		t.Errorf("an independent verifier refused the real proof: %v", err)
	}
	forged := &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: honest, Correct: cheat.Digest}
	if err := forged.Check(third); err == nil || !strings.Contains(err.Error(), "false") {
		t.Errorf("a forged proof against the honest replica: %v", err)
	}
	swapped := NewReexecutor(ffmpeg, memSources{input: black}, rc)
	if err := (&btr.ProofOfMisbehaviour{Kind: btr.Commission, A: cheat}).Check(swapped); err == nil {
		t.Errorf("a proof checked against bytes that are not the signed input")
	}
	if _, err := third.Run("unknown-recipe", input); err == nil {
		t.Errorf("re-executed an unknown recipe")
	}
}
