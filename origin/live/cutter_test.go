package live

import (
	"errors"
	"strings"
	"testing"
)

// TestCutter drives the segmenter with 25 fps timestamps: segments start
// at keyframes, close at the first keyframe at or after the target, and a
// source whose keyframes are too far apart is refused saying what to set.
func TestCutter(t *testing.T) {
	const frame = ticksPerSecond / 25
	c := newCutter(ticksPerSecond) // 1 s segments
	if act, err := c.video(0, false); act != cutDrop || err != nil {
		t.Fatalf("frame before the first keyframe: %v %v, want dropped", act, err)
	}
	if c.audio() != cutDrop {
		t.Fatal("audio before the first keyframe must be dropped")
	}
	if act, _ := c.video(frame, true); act != cutOpen {
		t.Fatalf("first keyframe: %v, want open", act)
	}
	// A keyframe before the target does not cut.
	if act, _ := c.video(frame+ticksPerSecond/2, true); act != cutAppend {
		t.Fatalf("keyframe at 0.5 s: %v, want append", act)
	}
	if act, _ := c.video(frame+ticksPerSecond-frame, false); act != cutAppend {
		t.Fatal("plain frame must append")
	}
	if act, _ := c.video(frame+ticksPerSecond, true); act != cutClose {
		t.Fatalf("keyframe at the target: %v, want close", act)
	}
	// 1.5 s without a keyframe is tolerated, past it refused.
	start := int64(frame + ticksPerSecond)
	if _, err := c.video(start+ticksPerSecond*3/2, false); err != nil {
		t.Fatalf("at 1.5× target: %v", err)
	}
	_, err := c.video(start+ticksPerSecond*3/2+frame, false)
	var nk *errNoKeyframe
	if !errors.As(err, &nk) || !strings.Contains(err.Error(), "-g") || !strings.Contains(err.Error(), "OBS") {
		t.Fatalf("past 1.5× target without a keyframe: %v, want a refusal naming -g and OBS", err)
	}
	// A source that never sends a keyframe is refused too.
	c = newCutter(ticksPerSecond)
	for pts := int64(0); pts <= ticksPerSecond*3/2; pts += frame {
		if _, err := c.video(pts, false); err != nil {
			t.Fatalf("at %d: %v", pts, err)
		}
	}
	if _, err := c.video(ticksPerSecond*3/2+frame, false); !errors.As(err, &nk) || !nk.first {
		t.Fatalf("no keyframe at all: %v", err)
	}
}
