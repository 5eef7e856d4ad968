package live

import (
	"fmt"
)

// The source segmenter's decision logic, sans-IO: fed frames (their
// timestamps and whether they are keyframes), it says where segments
// start and refuses a source whose keyframes are too far apart. It reads
// no clock: timestamps are the source's, in 90 kHz ticks.

// ticksPerSecond is the MPEG-TS clock.
const ticksPerSecond = 90_000

// cutAction is what the pipeline does with one frame.
type cutAction int

const (
	// cutDrop: a frame before the first keyframe (nothing decodes without one).
	cutDrop cutAction = iota
	// cutOpen: the first keyframe; the first segment opens with it.
	cutOpen
	// cutAppend: the frame belongs to the open segment.
	cutAppend
	// cutClose: a keyframe at or after the target: the open segment
	// closes before this frame, which opens the next one.
	cutClose
)

// errNoKeyframe is the refusal of a source whose keyframes are further
// apart than the segment may grow.
type errNoKeyframe struct {
	targetMS int64
	gapMS    int64
	first    bool // no keyframe at all yet
}

func (e *errNoKeyframe) Error() string {
	what := fmt.Sprintf("no keyframe for %d ms", e.gapMS)
	if e.first {
		what = fmt.Sprintf("no keyframe in the first %d ms", e.gapMS)
	}
	return fmt.Sprintf("the source has %s but segments are %d ms: send a keyframe at least every %d ms "+
		"(ffmpeg: -g FPS*%.3g or -force_key_frames 'expr:gte(t,n_forced*%.3g)'; OBS: Output → Keyframe Interval %s)",
		what, e.targetMS, e.targetMS, float64(e.targetMS)/1000, float64(e.targetMS)/1000, obsInterval(e.targetMS))
}

func obsInterval(ms int64) string {
	if ms%1000 == 0 {
		return fmt.Sprintf("%d s", ms/1000)
	}
	return "1 s"
}

// cutter cuts the source at keyframes. Invariants: a segment starts with a
// keyframe; it closes at the first keyframe whose PTS is ≥ start+target;
// it never grows past start+limit (then the source is refused).
type cutter struct {
	target int64 // ticks: the nominal segment duration
	limit  int64 // ticks: the longest a segment may grow waiting for a keyframe
	open   bool
	start  int64 // PTS of the open segment's keyframe
	// firstSeen is the PTS of the first video frame before any keyframe,
	// to bound how long a source may go without one.
	firstSeen    int64
	seenAnything bool
}

// newCutter cuts segments of target ticks; a source may stretch one to
// 1.5× target (keyframe jitter, fractional frame rates) before it is refused.
func newCutter(target int64) *cutter {
	return &cutter{target: target, limit: target + target/2}
}

// video classifies a video frame with presentation time pts.
func (c *cutter) video(pts int64, key bool) (cutAction, error) {
	if !c.open {
		if key {
			c.open, c.start = true, pts
			return cutOpen, nil
		}
		if !c.seenAnything {
			c.seenAnything, c.firstSeen = true, pts
		}
		if gap := pts - c.firstSeen; gap > c.limit {
			return cutDrop, &errNoKeyframe{targetMS: c.target * 1000 / ticksPerSecond, gapMS: gap * 1000 / ticksPerSecond, first: true}
		}
		return cutDrop, nil
	}
	if key && pts-c.start >= c.target {
		c.start = pts
		return cutClose, nil
	}
	if gap := pts - c.start; gap > c.limit {
		return cutAppend, &errNoKeyframe{targetMS: c.target * 1000 / ticksPerSecond, gapMS: gap * 1000 / ticksPerSecond}
	}
	return cutAppend, nil
}

// audio classifies an audio frame: it joins the open segment, or is
// dropped before the first keyframe.
func (c *cutter) audio() cutAction {
	if !c.open {
		return cutDrop
	}
	return cutAppend
}
