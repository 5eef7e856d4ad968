package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// demo --live --btr-f 1 --faults 1, as a user runs it: the swarmcast binary
// built here (without -race: the demo's network must keep real time, which
// the race detector's in-process slowdown does not let it on a loaded
// machine) runs as a real process. One fault of every kind is injected at
// seeded segments of a real RTMP broadcast watched by a player through
// relays: commission, omission, timing and equivocation in real workers;
// stall, corrupt and slow in real relays. Every fault is detected, counted
// from the coordinator's channel log, as the kind its exclusion must name;
// no honest worker or relay is accused; every recovery is within the bound
// R the code computes for the running configuration; no player got a byte
// that differs from an honest re-run of the ladder; no play fails. The run
// is bounded by the fault plan (about 60 s of broadcast at R ≈ 6.6 s, D
// measured at its 2 s floor on a machine that transcodes in real time) and
// the demo's own waits (at most 2R after the broadcast).
func TestLiveDemoFaults(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	gobin := testenv.RequireTool(t, "go", "golang")
	dir := t.TempDir()
	binary := filepath.Join(dir, "swarmcast")
	build := exec.Command(gobin, "build", "-o", binary, "github.com/swarmcast/swarmcast/cmd/swarmcast")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	report := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, binary, "demo", "--live", "--btr-f", "1", "--faults", "1", "--edges", "2", "--viewers", "1", "--report", report)
	cmd.WaitDelay = 10 * time.Second
	outB, err := cmd.CombinedOutput()
	out := string(outB)
	if err != nil {
		t.Fatalf("demo --live --faults 1 (%v): %v\n%s", time.Since(began).Round(time.Second), err, out)
	}
	t.Logf("demo --live --btr-f 1 --faults 1 took %v", time.Since(began).Round(time.Second))
	for _, want := range []string{"BTR result", "faults injected / detected", "recovery max / bound R", "wrong bytes played"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		FaultsInjected   int     `json:"faults_injected"`
		FaultsDetected   int     `json:"faults_detected"`
		FalseAccusations int     `json:"false_accusations"`
		RecoveryBoundMS  float64 `json:"recovery_bound_ms"`
		RecoveryMaxMS    float64 `json:"recovery_max_ms"`
		WrongBytesPlayed int64   `json:"wrong_bytes_played"`
		PlaysFailed      int     `json:"plays_failed"`
		Plays            int     `json:"plays"`
		Rechecked        int     `json:"segments_rechecked"`
		SegmentsPub      int     `json:"segments_published"`
		Faults           []struct {
			Role       string `json:"role"`
			Kind       string `json:"kind"`
			Onset      uint64 `json:"onset_segment"`
			Want       string `json:"want_detected_as"`
			DetectedAs string `json:"detected_as"`
		} `json:"faults"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("--report: %v\n%s", err, b)
	}
	roles := map[string]int{}
	for _, f := range r.Faults {
		roles[f.Role]++
		if f.DetectedAs != f.Want {
			t.Errorf("a %s %s fault (onset %d) detected as %q, want %q", f.Role, f.Kind, f.Onset, f.DetectedAs, f.Want)
		}
	}
	if roles["worker"] != 4 || roles["relay"] != 3 {
		t.Errorf("faults planned %v: want 4 worker and 3 relay faults", roles)
	}
	if r.FaultsInjected != 7 || r.FaultsDetected != r.FaultsInjected {
		t.Errorf("faults injected %d, detected %d: want 7 and 7 (%+v)", r.FaultsInjected, r.FaultsDetected, r.Faults)
	}
	if r.FalseAccusations != 0 {
		t.Errorf("%d false accusations, want 0", r.FalseAccusations)
	}
	if r.RecoveryBoundMS <= 0 || r.RecoveryMaxMS <= 0 || r.RecoveryMaxMS > r.RecoveryBoundMS {
		t.Errorf("recovery max %.0f ms, bound R %.0f ms: want 0 < max ≤ R", r.RecoveryMaxMS, r.RecoveryBoundMS)
	}
	if r.WrongBytesPlayed != 0 || r.Rechecked < 4 {
		t.Errorf("%d wrong bytes played over %d segments re-run honestly: want 0 over ≥ 4", r.WrongBytesPlayed, r.Rechecked)
	}
	if r.Plays != 1 || r.PlaysFailed != 0 || r.SegmentsPub == 0 {
		t.Errorf("plays %d, failed %d, segments published %d: want 1 play, not failed", r.Plays, r.PlaysFailed, r.SegmentsPub)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}
