package fanout

import (
	"slices"
	"time"
)

// ParentWatch is a child's side of relays under BTR (docs/LIVE.md, "Relays
// under BTR"), sans-IO: it is told when each substream's push of a segment
// arrived (verified) and when the parent excused a segment (the parent's
// own signed accusation of its parent: it was starved), and on Tick it
// names the pushes overdue, which the driver accuses (btr.Accusation of the
// substream's parent for that segment) and posts to the judge.
//
// Deadline: with segment s's push from a correct parent arriving within
// [A_s, A_s + L] (A_s its publication, L = Timeout, the path latency at the
// child's depth) and A_{s+1} − A_s ≤ Segment, the push of segment a + k
// after an on-time arrival of a at time t is due by t + k·Segment + L:
// A_{a+k} ≤ A_a + k·Segment ≤ t + k·Segment. A correct parent within its
// bound is never named. Only on-time arrivals re-anchor t, so a parent that
// is late by more than L stays late on every segment (the judge's strike
// count), and a parent that skips a segment is named for it.
//
// The cadence is the chain's, not a parent's: every arrival bounds the
// publications (A_a ≤ t). A substream's watch restarted for a new parent
// (Restart: a rebuilt tree) takes the new parent's first push as an anchor
// only if it is on time against the anchor the substream held; a late one
// keeps that anchor. Otherwise a parent slow from before a child moved under
// it would anchor late and never be named by that child: the judge's timing
// rule, which needs late answers to several distinct children, would wait
// for a fault elsewhere (issue 12, B19: seed 4, f = 2).
type ParentWatch struct {
	segment, timeout time.Duration
	subs             map[int]*watchedSubstream
	// seeds are the anchors of substreams whose parent changed (Restart):
	// the new parent's first push is judged against them.
	seeds map[int]watchAnchor
}

type watchAnchor struct {
	seq uint64
	at  time.Time
}

type watchedSubstream struct {
	first     uint64    // the watch's first push: earlier ones are not this parent's
	anchorSeq uint64    // the last on-time arrival (or a held anchor, startAnchor)
	anchorAt  time.Time // when it arrived
	next      uint64    // the lowest segment not yet received or named
	got       map[uint64]bool
	excused   map[uint64]bool
}

// Miss is a push overdue: the substream's parent for Seq did not deliver
// it by its deadline.
type Miss struct {
	Substream int
	Seq       uint64
	Due       time.Time
}

// NewParentWatch watches pushes of segments every segment (a chain's
// target duration) with a slack of timeout (btr.Params.RelayTimeout of
// the child's depth).
func NewParentWatch(segment, timeout time.Duration) *ParentWatch {
	return &ParentWatch{segment: segment, timeout: timeout, subs: map[int]*watchedSubstream{}, seeds: map[int]watchAnchor{}}
}

// dueFrom is the deadline of seq's push on anchor a.
func (w *ParentWatch) dueFrom(a watchAnchor, seq uint64) time.Time {
	return a.at.Add((time.Duration(seq) - time.Duration(a.seq)) * w.segment).Add(w.timeout)
}

// startAnchor is the anchor of sub's watch starting with the push of seq at
// now: now if that push is on time against the anchor sub held before a
// Restart (or sub never had one), else that anchor (the push was late: the
// next ones are judged against it). Only sub's own anchor: substreams take
// different paths, and a fresh watch (the child's first push in sub) keeps
// the slack of its own first arrival.
func (w *ParentWatch) startAnchor(sub int, seq uint64, now time.Time) watchAnchor {
	if a, ok := w.seeds[sub]; ok && now.After(w.dueFrom(a, seq)) {
		return a
	}
	return watchAnchor{seq, now}
}

// due is the deadline of segment seq's push.
func (w *ParentWatch) due(s *watchedSubstream, seq uint64) time.Time {
	return w.dueFrom(watchAnchor{s.anchorSeq, s.anchorAt}, seq)
}

// Received records the verified push of seq in substream sub at now. The
// first one starts the watch of that substream.
func (w *ParentWatch) Received(sub int, seq uint64, now time.Time) {
	s := w.subs[sub]
	if s == nil {
		a := w.startAnchor(sub, seq, now)
		delete(w.seeds, sub)
		s = &watchedSubstream{first: seq, anchorSeq: a.seq, anchorAt: a.at, next: seq + 1, got: map[uint64]bool{}, excused: map[uint64]bool{}}
		s.got[seq] = true
		// The new parent answers for nothing due before its first push
		// came (a catch-up of its window, or segments it had no route
		// for yet): only the segments due after it are watched.
		for !w.due(s, s.next).After(now) {
			s.next++
		}
		w.subs[sub] = s
		return
	}
	if seq < s.first || s.got[seq] {
		return
	}
	s.got[seq] = true
	if !now.After(w.due(s, seq)) {
		s.anchorSeq, s.anchorAt = seq, now
	}
	for s.got[s.next] {
		s.next++
	}
	w.forget(s)
}

// Excuse records that the parent was starved of seq in sub (its signed
// accusation of its own parent reached this child): seq is not named.
func (w *ParentWatch) Excuse(sub int, seq uint64) {
	if s := w.subs[sub]; s != nil {
		s.excused[seq] = true
	}
}

// Stop ends the watch of sub (the chain ended, or the child left the tree).
func (w *ParentWatch) Stop(sub int) { delete(w.subs, sub); delete(w.seeds, sub) }

// Restart ends the watch of sub because its parent changed: the new parent
// is named for nothing due before its first push arrived (the old one's
// misses, a catch-up of its window, are not its), and that push is judged
// against the anchor sub held (the chain's cadence), so a new parent already
// late is named from the first segment due after its first push.
func (w *ParentWatch) Restart(sub int) {
	if s := w.subs[sub]; s != nil {
		w.seeds[sub] = watchAnchor{s.anchorSeq, s.anchorAt}
		delete(w.subs, sub)
	}
}

// Tick names every push overdue at now, once each, in substream then
// segment order.
func (w *ParentWatch) Tick(now time.Time) []Miss {
	var out []Miss
	subs := make([]int, 0, len(w.subs))
	for j := range w.subs {
		subs = append(subs, j)
	}
	slices.Sort(subs)
	for _, j := range subs {
		s := w.subs[j]
		from := s.next
		for {
			if s.got[s.next] {
				s.next++
				continue
			}
			d := w.due(s, s.next)
			if now.Before(d) || now.Equal(d) {
				break
			}
			if !s.excused[s.next] {
				out = append(out, Miss{Substream: j, Seq: s.next, Due: d})
			}
			s.next++
		}
		if s.next != from {
			w.forget(s)
		}
	}
	return out
}

// forget drops the state of segments below next (they are settled).
func (w *ParentWatch) forget(s *watchedSubstream) {
	for seq := range s.got {
		if seq < s.next && seq != s.anchorSeq {
			delete(s.got, seq)
		}
	}
	for seq := range s.excused {
		if seq < s.next {
			delete(s.excused, seq)
		}
	}
}
