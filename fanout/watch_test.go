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

// The cadence is the chain's: a child moved under a parent that is already
// late (Restart after a rebuild) names that parent from its second push on,
// while an honest new parent on time is never named and the new parent
// answers for nothing before its first push. Before B19's fix the
// restarted watch anchored on the late first push and never named it.
func TestParentWatchJudgesANewParentOnTheChainsCadence(t *testing.T) {
	const T, slack = time.Second, 100 * time.Millisecond
	t0 := time.Unix(1_780_000_000, 0)
	pub := func(s uint64) time.Time { return t0.Add(time.Duration(s) * T) }
	late := 2 * T // swarmcast relay --fault slow's hold
	tickAll := func(w *fanout.ParentWatch, from, to time.Time) []fanout.Miss {
		var out []fanout.Miss
		for at := from; !at.After(to); at = at.Add(10 * time.Millisecond) {
			out = append(out, w.Tick(at)...)
		}
		return out
	}
	// run feeds substream 0's pushes of from..to-1 arriving delay after
	// their publication (substream 1 on time throughout when both is
	// set) and returns the misses named.
	run := func(w *fanout.ParentWatch, from, to uint64, delay time.Duration, both bool) []fanout.Miss {
		var out []fanout.Miss
		for s := from; s < to; s++ {
			if both {
				w.Received(1, s, pub(s))
			}
			out = append(out, tickAll(w, pub(s), pub(s).Add(delay).Add(-time.Millisecond))...)
			w.Received(0, s, pub(s).Add(delay))
		}
		return append(out, tickAll(w, pub(to), pub(to).Add(slack))...)
	}

	// Moved under a parent already slow: named from its second push on.
	w := fanout.NewParentWatch(T, slack)
	if m := run(w, 0, 10, 0, false); len(m) != 0 {
		t.Fatalf("the honest first parent was named: %+v", m)
	}
	w.Restart(0)
	m := run(w, 12, 18, late, false)
	// 12 came at pub(12) + 2 T: 13 (due pub(13) + slack) was due before
	// it; 14 on are the new parent's.
	if len(m) < 4 || m[0].Seq != 14 {
		t.Fatalf("a new parent 2 T late from its first push (12) was named for %+v, want every segment from 14", m)
	}
	for _, x := range m {
		if x.Seq < 14 || x.Seq > 18 {
			t.Fatalf("named segment %d: the new parent's first push was 12, at pub(12) + 2 T", x.Seq)
		}
	}

	// A new honest parent whose first push is a catch-up of an old segment
	// of its window: the segments due before it came are not its; the
	// live ones after it, on time, are not named.
	w = fanout.NewParentWatch(T, slack)
	run(w, 0, 10, 0, false)
	w.Restart(0)
	w.Received(0, 8, pub(14)) // catch-up: 8 at 14's publication
	if m := tickAll(w, pub(14), pub(14).Add(slack/2)); len(m) != 0 {
		t.Fatalf("a new parent was named for segments due before its first push: %+v", m)
	}
	for s := uint64(9); s < 15; s++ {
		w.Received(0, s, pub(14).Add(slack/2)) // the rest of the catch-up
	}
	if m := run(w, 15, 20, slack/2, false); len(m) != 0 {
		t.Fatalf("an honest new parent after a catch-up was named: %+v", m)
	}

	// An honest new parent after a restart, at the end of its slack: never named.
	w = fanout.NewParentWatch(T, slack)
	run(w, 0, 10, 0, false)
	w.Restart(0)
	if m := run(w, 11, 20, slack, false); len(m) != 0 {
		t.Fatalf("an honest new parent was named: %+v", m)
	}

	// A fresh substream watch (no Restart) still anchors on its first push:
	// substreams take different paths, a consistently slower one is not named.
	w = fanout.NewParentWatch(T, slack)
	for s := range uint64(5) {
		w.Received(1, s, pub(s))
	}
	if m := run(w, 5, 12, slack+T/2, true); len(m) != 0 {
		t.Fatalf("a fresh substream a constant %v behind another was named: %+v", slack+T/2, m)
	}
}
