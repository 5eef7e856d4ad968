package edge

import (
	"context"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Each coordinator has its own unacknowledged changes: a failed heartbeat
// to one neither loses nor repeats what the other has acknowledged.
func TestInventoryDeltasPerCoordinator(t *testing.T) {
	var v content.VideoID
	k := func(i int) content.ShardRef { return content.SegmentRef{Video: v, Rendition: 0, Segment: 0}.Shard(i) }
	inv := newInventory(100, 2)
	inv.add(k(1), &heldShard{size: 1})
	primary := inv.takeDelta(0, false) // acknowledged by the primary
	second := inv.takeDelta(1, false)
	if len(primary.added) != 1 || len(second.added) != 1 {
		t.Fatalf("deltas %v / %v, want shard 1 in both", primary.added, second.added)
	}
	inv.remove(k(1))
	inv.add(k(2), &heldShard{size: 1})
	inv.restoreDelta(1, second) // the secondary's heartbeat failed
	d0 := inv.takeDelta(0, false)
	if _, ok := d0.removed[k(1)]; !ok || len(d0.added) != 1 || len(d0.removed) != 1 {
		t.Fatalf("primary's delta %v / %v, want +2 -1", d0.added, d0.removed)
	}
	d1 := inv.takeDelta(1, false)
	if _, ok := d1.added[k(2)]; !ok || len(d1.added) != 1 || len(d1.removed) != 1 {
		t.Fatalf("secondary's delta %v / %v, want +2 -1 (1 came and went unacknowledged)", d1.added, d1.removed)
	}
	if d := inv.takeDelta(0, false); len(d.added)+len(d.removed) != 0 {
		t.Fatalf("primary's delta repeated: %v / %v", d.added, d.removed)
	}
}

// An edge with two coordinators registers with both, sends each the full
// inventory then deltas, follows only the primary's directives, registers
// again with the one that forgot it alone, and leaves both.
func TestRunHeartbeatsEveryCoordinatorFollowsPrimary(t *testing.T) {
	f := sampleFixture(t)
	giveUp := time.Now().Add(time.Minute)
	primary := &fakeCoordinator{f: f, calls: make(chan call, 100000), giveUp: giveUp}
	second := &fakeCoordinator{f: f, calls: make(chan call, 100000), giveUp: giveUp}
	urlA, urlB := serve(t, primary), serve(t, second)
	e := newTestEdge(t, t.TempDir(), func(c *Config) {
		c.Coordinator = urlA
		c.Coordinators = []string{urlB, urlA + "/"} // the primary listed again: still one
		c.Advertise = "http://edge.example"
	})
	if len(e.coordinators) != 2 {
		t.Fatalf("%d coordinator clients, want 2", len(e.coordinators))
	}
	mustStore(t, e, f, f.key(0, 0, 7), false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()

	for _, fc := range []*fakeCoordinator{primary, second} {
		fc.next(t, wire.PathRegister)
		if hb := fc.next(t, wire.PathHeartbeat).hb; !hb.Full || !hasShards(hb.Added, 0, 7) {
			t.Fatalf("first heartbeat %+v, want the full inventory", hb)
		}
	}

	// The secondary's drop is ignored: one placer, the primary.
	second.answer(wire.HeartbeatResponse{Directives: directives(wire.ActionDrop, f, 0, 0, 7)})
	awaitAnswered(t, second)
	if e.isDropped(f.key(0, 0, 7)) {
		t.Fatal("the edge followed a secondary's drop directive")
	}

	// A shard stored now reaches both as a delta.
	mustStore(t, e, f, f.key(0, 1, 2), false)
	for _, fc := range []*fakeCoordinator{primary, second} {
		for {
			hb := fc.next(t, wire.PathHeartbeat).hb
			if hb.Full {
				t.Fatal("unexpected full heartbeat")
			}
			if hasShards(hb.Added, 1, 2) {
				break
			}
		}
	}

	// The secondary forgets the edge: only it gets the full inventory again.
	second.answer(wire.HeartbeatResponse{Unknown: true})
	second.next(t, wire.PathRegister)
	if hb := second.next(t, wire.PathHeartbeat).hb; !hb.Full || !hasShards(hb.Added, 0, 7) || !hasShards(hb.Added, 1, 2) {
		t.Fatalf("secondary's heartbeat after re-registering %+v, want the full inventory", hb)
	}
	if hb := primary.next(t, wire.PathHeartbeat).hb; hb.Full {
		t.Fatal("the primary got a full heartbeat though it never forgot the edge")
	}

	// The primary's drop is followed.
	primary.answer(wire.HeartbeatResponse{Directives: directives(wire.ActionDrop, f, 0, 0, 7)})
	awaitAnswered(t, primary)
	if !e.isDropped(f.key(0, 0, 7)) {
		t.Fatal("the edge ignored the primary's drop directive")
	}

	cancel()
	primary.next(t, wire.PathLeave)
	second.next(t, wire.PathLeave)
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// A limit signed by any configured coordinator key is genuine.
func TestOrderBookAcceptsAnyCoordinatorKey(t *testing.T) {
	a, b := newOrderParties(), newOrderParties()
	b.viewer = a.viewer
	now := time.Unix(1_000_000, 0)
	book := newOrderBook("me", a.coordPub, nil, b.coordPub)
	if res := book.offer(ptr(a.limit(1, "me", 1000, now.Add(time.Minute))), a.order(1, 10), now); res != orderAccepted {
		t.Errorf("limit signed by the first key: %s", res)
	}
	if res := book.offer(ptr(b.limit(2, "me", 1000, now.Add(time.Minute))), b.order(2, 10), now); res != orderAccepted {
		t.Errorf("limit signed by the second key: %s", res)
	}
	onlyA := newOrderBook("me", a.coordPub)
	if res := onlyA.offer(ptr(b.limit(3, "me", 1000, now.Add(time.Minute))), b.order(3, 10), now); res != orderBadLimit {
		t.Errorf("limit signed by an unknown key: %s, want %s", res, orderBadLimit)
	}
}

// awaitAnswered returns once the edge has handled every queued heartbeat
// answer: the answers were taken, and a heartbeat the edge sent after the
// last of them arrived (one loop handles an answer before its next
// heartbeat).
func awaitAnswered(t *testing.T, fc *fakeCoordinator) {
	t.Helper()
	for {
		fc.mu.Lock()
		left, drained := len(fc.answers), fc.drained
		fc.mu.Unlock()
		if left == 0 {
			break
		}
		select { // a stale signal from an earlier drain only costs a recheck
		case <-drained:
		case <-time.After(time.Until(fc.giveUp)):
			t.Fatal("the edge never took the queued heartbeat answers")
		}
	}
	for drained := false; !drained; { // calls recorded so far may predate the answer
		select {
		case <-fc.calls:
		default:
			drained = true
		}
	}
	fc.next(t, wire.PathHeartbeat) // at latest, the one that took the answer
	fc.next(t, wire.PathHeartbeat) // sent after the answer was handled
}

// isDropped reports whether a held shard was unassigned by a drop directive.
func (e *Edge) isDropped(k content.ShardRef) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.inv.held[k]
	return ok && h.dropped
}

func ptr[T any](v T) *T { return &v }
