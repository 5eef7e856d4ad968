package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
)

type recordingSink struct {
	mu     sync.Mutex
	start  time.Time
	got    []string
	failed []error
}

func (s *recordingSink) Decide(d btr.Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf("%v %s seg %d", d.At.Sub(s.start), d.Kind, d.Segment))
}

func (s *recordingSink) ReexecFailed(task btr.Task, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, err)
}

func (s *recordingSink) snapshot() ([]string, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...), append([]error(nil), s.failed...)
}

// The judge on the clock, in fake time, re-executing with real ffmpeg: a
// commission is decided by the re-execution as soon as the outputs
// disagree; a replica that never answers is accused at the detection
// timeout τ = 720 ms and excluded when the answer window closes, W = 150
// ms later (the first tick after it). Both culprits switch out at
// s* = 0 + Δ = 2, where the spare takes the first free slot.
func TestJudgeOnTheClock(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src0 := sourceSegment(t, ffmpeg, "testsrc", "")
	black := sourceSegment(t, ffmpeg, "testsrc", "lutyuv=y=16:u=128:v=128")
	blackOuts, err := rc.Transcode(t.Context(), ffmpeg, black)
	if err != nil {
		t.Fatal(err)
	}
	input := sha256.Sum256(src0)
	honestOut, _, err := (&Worker{Key: key("honest"), FFmpeg: ffmpeg}).Do(btr.Task{Chain: chain, Segment: 0, Recipe: rc.ID(), Input: input}, rc, src0)
	if err != nil {
		t.Fatal(err)
	}
	cheatOut := &btr.Output{Task: honestOut.Task, Digest: btr.LadderDigest(blackOuts)}
	cheatOut.Sign(key("cheat"))

	synctest.Test(t, func(t *testing.T) {
		sink := &recordingSink{start: time.Now()}
		re := NewReexecutor(ffmpeg, memSources{input: src0}, rc)
		cfg := btr.Config{Chain: chain, Recipe: rc.ID(), Params: btr.DefaultParams(), Judge: key("judge"),
			Standby: btr.Standby{Active: []btr.NodeKey{btr.KeyOf(key("honest")), btr.KeyOf(key("cheat")), btr.KeyOf(key("silent"))}, Spares: []btr.NodeKey{btr.KeyOf(key("spare"))}}}
		j, err := NewJudge(cfg, re, sink)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { j.Run(ctx); close(done) }()

		if err := j.Open(0, input, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		for _, o := range []*btr.Output{honestOut, cheatOut} {
			if err := j.Output(o); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cancel()
		<-done

		got, failed := sink.snapshot()
		want := []string{
			"300ms reexecute seg 0", // the outputs disagree: re-execute at once
			"300ms accept seg 0",    // ffmpeg ran (fake time stands still meanwhile)
			"300ms exclude seg 0",   // the cheat, with a commission proof
			"720ms accuse seg 0",    // the silent replica, at τ
			"880ms exclude seg 0",   // the first tick after τ + W = 870 ms
		}
		if len(failed) > 0 {
			t.Fatalf("re-execution failed: %v", failed)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("decisions\n got %q\nwant %q", got, want)
		}
		if a := j.Assigned(2); len(a) != 2 || a[0] != btr.KeyOf(key("honest")) || a[1] != btr.KeyOf(key("spare")) {
			t.Errorf("segment 2 runs on %v", a)
		}
	})
}

// failingReexecutor fails the test if the judge re-executes.
type failingReexecutor struct{ t *testing.T }

func (f failingReexecutor) Run(recipe string, _ content.Hash) (content.Hash, error) {
	f.t.Errorf("re-executed %s: honest replicas within their bound disagreed or were missed", recipe)
	return content.Hash{}, nil
}

// Honest but slow, in fake time: two correct replicas whose every output
// arrives 1 ms before the detection deadline τ (a replica within δ, D and
// ε is in by τ; at τ itself the judge's tick may come first) for 12 segments, one segment every T, are never accused, never
// re-executed, and every segment is accepted with both of them agreed.
func TestJudgeHonestSlowNeverAccused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := btr.DefaultParams()
		a, b := key("slow-a"), key("slow-b")
		sink := &recordingSink{start: time.Now()}
		cfg := btr.Config{Chain: chain, Recipe: "ladder", Params: p, Judge: key("judge"),
			Standby: btr.Standby{Active: []btr.NodeKey{btr.KeyOf(a), btr.KeyOf(b)}}}
		j, err := NewJudge(cfg, failingReexecutor{t}, sink)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { j.Run(ctx); close(done) }()
		const segments = 12
		for s := range uint64(segments) {
			input := content.Hash{byte(s + 1)}
			if err := j.Open(s, input, time.Now()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(p.DetectionTimeout() - time.Millisecond)
			for _, k := range []ed25519.PrivateKey{a, b} {
				o := &btr.Output{Task: btr.Task{Chain: chain, Segment: s, Recipe: "ladder", Input: input}, Digest: content.Hash{byte(s + 100)}}
				o.Sign(k)
				if err := j.Output(o); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(p.Segment - p.DetectionTimeout() + time.Millisecond)
		}
		time.Sleep(5 * p.Segment)
		synctest.Wait()
		cancel()
		<-done
		got, _ := sink.snapshot()
		if len(got) != segments {
			t.Fatalf("decisions %q, want %d accepts and nothing else", got, segments)
		}
		for _, d := range got {
			if !strings.Contains(d, "accept") {
				t.Fatalf("decisions %q: an honest replica within its bound was accused", got)
			}
		}
	})
}
