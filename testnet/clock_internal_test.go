package testnet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// TestBurnedClockReadsBack: the publisher's clock strip survives x264 and
// reads back as the frame's media time.
func TestBurnedClockReadsBack(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	out := filepath.Join(t.TempDir(), "src.ts")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	p, err := StartPublisher(ctx, ffmpeg, out, PublishOptions{Duration: 3 * time.Second, Output: "mpegts"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	times, err := ReadBurnedClock(ctx, ffmpeg, out, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) < 70 || times[0] != 0 || times[len(times)-1] < 2800*time.Millisecond {
		t.Fatalf("read %d clocks: first %v last %v, want 75 frames from 0 to 2.9 s", len(times), times[:min(3, len(times))], times[len(times)-1:])
	}
}
