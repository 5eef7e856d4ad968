package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// A lookup made while demandMu is held (a placement round folding) is
// answered without waiting, and its demand is counted once the holder
// applies the queue: the same counts as lookups that met no fold.
func TestLookupsDoNotWaitForTheDemandFold(t *testing.T) {
	h := newHarness(t)
	counts := func() map[demandKey]int {
		h.c.demandMu.Lock()
		defer h.c.demandMu.Unlock()
		h.c.applyQueuedDemandLocked()
		out := make(map[demandKey]int)
		for k, n := range h.c.demand.pending {
			out[k] = int(n)
		}
		return out
	}
	reqs := []wire.LookupRequest{
		{Video: h.video(0), Rendition: 0, From: 0, Count: 4},
		{Video: h.video(0), Rendition: 0, From: 2, Count: 3, Region: "eu"},
		{Video: h.video(1), Rendition: 0, From: 1, Count: 2},
	}
	// Reference: the lookups with demandMu free.
	for _, req := range reqs {
		h.lookup(req)
	}
	want := counts()
	if len(want) == 0 {
		t.Fatal("lookups recorded no demand")
	}
	h.c.demandMu.Lock()
	clear(h.c.demand.pending)
	done := make(chan error, 1)
	go func() {
		for _, req := range reqs {
			if _, err := h.client.Lookup(context.Background(), req); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			h.c.demandMu.Unlock()
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		h.c.demandMu.Unlock()
		t.Fatal("lookups waited for demandMu")
	}
	queued := h.c.demandIntake.queued.Load()
	if len(h.c.demand.pending) != 0 || queued != int64(len(reqs)) {
		t.Errorf("with demandMu held: %d segments counted, %d records queued; want 0 and %d", len(h.c.demand.pending), queued, len(reqs))
	}
	h.c.demandMu.Unlock()
	got := counts()
	if len(got) != len(want) {
		t.Fatalf("queued lookups counted %d (segment, region) keys, want %d: %v vs %v", len(got), len(want), got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: %d requests counted after the queue, want %d", k, got[k], n)
		}
	}
	if q := h.c.demandIntake.queued.Load(); q != 0 {
		t.Errorf("%d records still queued after applying", q)
	}
}

// A lookup that finds every queue full waits for demandMu instead of
// growing a queue: at most demandShards·maxQueuedDemand records wait, and
// all of them are counted.
func TestQueuedDemandIsBounded(t *testing.T) {
	h := newHarness(t)
	rec := demandRecord{video: h.video(0), rendition: 0, from: 0, to: 1}
	in := &h.c.demandIntake
	h.c.demandMu.Lock()
	for i := range demandShards * maxQueuedDemand {
		h.c.recordDemand(rec, uint64(i))
	}
	full := in.enqueue(rec, 3)
	queued := in.queued.Load()
	h.c.demandMu.Unlock()
	if full || queued != demandShards*maxQueuedDemand {
		t.Fatalf("queues full: enqueue took one more record (%v), %d records queued; want refused and %d", full, queued, demandShards*maxQueuedDemand)
	}
	h.c.recordDemand(rec, 0) // demandMu free: applies the queues, then this record
	h.c.demandMu.Lock()
	defer h.c.demandMu.Unlock()
	key := demandKey{content.SegmentRef{Video: rec.video, Rendition: rec.rendition, Segment: 0}, ""}
	if n := h.c.demand.pending[key]; n != demandShards*maxQueuedDemand+1 || in.queued.Load() != 0 {
		t.Errorf("%v requests counted, %d still queued; want %d and 0", n, in.queued.Load(), demandShards*maxQueuedDemand+1)
	}
}

// A placement round whose plan exceeds placeStepWork entries is applied in
// several holds of the write lock, with the same outcome as one hold:
// every edge's assignment is its target, each target shard queued as one
// fetch; an edge left out of the next round's snapshot has its assignment
// dropped.
func TestPlanAppliedInStepsIsThePlan(t *testing.T) {
	h := newHarness(t)
	const perEdge = 700 // 4 edges: 2,800 entries, three steps or more
	var ids []wire.NodeID
	for range 4 {
		ids = append(ids, h.edge(""))
	}
	h.c.mu.RLock()
	nodes := make(map[wire.NodeID]*node)
	for _, id := range ids {
		nodes[id] = h.c.st.nodes[id]
	}
	h.c.mu.RUnlock()
	targets := make(map[wire.NodeID]map[content.SegmentRef]ShardMask)
	for i, id := range ids {
		targets[id] = make(map[content.SegmentRef]ShardMask)
		for s := range perEdge {
			var m ShardMask
			m[0] = 1 << (i % 3)
			targets[id][content.SegmentRef{Video: h.video(0), Rendition: 0, Segment: 10000 + s}] = m
		}
	}
	fetches, drops := h.c.applyPlan(nodes, targets)
	if fetches != len(ids)*perEdge || drops != 0 {
		t.Fatalf("applied %d fetches, %d drops; want %d, 0", fetches, drops, len(ids)*perEdge)
	}
	h.c.mu.RLock()
	for _, id := range ids {
		n := h.c.st.nodes[id]
		if len(n.assigned) != perEdge || len(n.pending) != perEdge {
			t.Errorf("edge %s: %d assigned, %d pending; want %d each", id, len(n.assigned), len(n.pending), perEdge)
		}
		for key, want := range targets[id] {
			if n.assigned[key] != want || n.pending[key].fetch != want {
				t.Fatalf("edge %s, %v: assigned %v, fetch %v; want %v", id, key, n.assigned[key], n.pending[key].fetch, want)
			}
		}
	}
	h.c.mu.RUnlock()
	delete(nodes, ids[0]) // died since the snapshot
	if fetches, drops = h.c.applyPlan(nodes, targets); fetches != 0 || drops != perEdge {
		t.Fatalf("second round: %d fetches, %d drops; want 0, %d", fetches, drops, perEdge)
	}
	h.c.mu.RLock()
	defer h.c.mu.RUnlock()
	if n := h.c.st.nodes[ids[0]]; len(n.assigned) != 0 {
		t.Errorf("edge out of the snapshot kept %d assignments", len(n.assigned))
	}
}
