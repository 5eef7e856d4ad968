package fanout_test

import (
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/fanout"
)

// A parent within its bound (each push within the slack after its
// publication, publications T apart) is never named; a stalled one is
// named once per segment from the first one it misses; an excused
// segment is not named; a parent late by more than the slack on every
// segment is named on every segment (it does not re-anchor the cadence).
func TestParentWatch(t *testing.T) {
	const T, slack = time.Second, 100 * time.Millisecond
	t0 := time.Unix(1_780_000_000, 0)
	pub := func(s uint64) time.Time { return t0.Add(time.Duration(s) * T) }
	tickAll := func(w *fanout.ParentWatch, from, to time.Time) []fanout.Miss {
		var out []fanout.Miss
		for at := from; !at.After(to); at = at.Add(10 * time.Millisecond) {
			out = append(out, w.Tick(at)...)
		}
		return out
	}

	// Honest but slow: alternately on time and at the very end of the slack.
	w := fanout.NewParentWatch(T, slack)
	for s := range uint64(20) {
		at := pub(s)
		if s%2 == 1 {
			at = at.Add(slack)
		}
		if m := tickAll(w, at.Add(-T+10*time.Millisecond), at); len(m) > 0 {
			t.Fatalf("an honest parent was named: %+v", m)
		}
		w.Received(0, s, at)
	}

	// A stall from segment 5: segments 5, 6, 7 named once each, in order.
	w = fanout.NewParentWatch(T, slack)
	for s := range uint64(5) {
		w.Received(0, s, pub(s).Add(slack/2))
	}
	m := tickAll(w, pub(4), pub(7).Add(2*slack))
	if len(m) != 3 || m[0].Seq != 5 || m[1].Seq != 6 || m[2].Seq != 7 {
		t.Fatalf("a stall from segment 5 named %+v, want 5, 6, 7", m)
	}
	if !m[0].Due.Equal(pub(4).Add(slack / 2).Add(T + slack)) {
		t.Fatalf("segment 5 due %v, want the last arrival + T + slack", m[0].Due)
	}

	// Excused: the parent was starved of 3.
	w = fanout.NewParentWatch(T, slack)
	w.Received(2, 2, pub(2))
	w.Excuse(2, 3)
	if m := tickAll(w, pub(2), pub(3).Add(slack+20*time.Millisecond)); len(m) != 0 {
		t.Fatalf("an excused segment was named: %+v", m)
	}

	// Late by more than the slack on every segment: named every time.
	w = fanout.NewParentWatch(T, slack)
	w.Received(1, 0, pub(0))
	named := 0
	for s := uint64(1); s < 6; s++ {
		late := pub(s).Add(slack + 200*time.Millisecond)
		named += len(tickAll(w, pub(s), late.Add(-time.Millisecond)))
		w.Received(1, s, late)
	}
	if named != 5 {
		t.Fatalf("a parent late on 5 segments was named %d times, want 5", named)
	}
}
