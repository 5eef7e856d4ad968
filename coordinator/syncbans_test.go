package coordinator

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// TestBansReachEveryCoordinatorOnTheStore: two coordinators on one
// database; a ban applied through A keeps the edge out of B's lookups from
// B's next sweep on, and lifting it through A (the store's row deleted, as
// the admin route does) lists it on B again from its next sweep.
func TestBansReachEveryCoordinatorOnTheStore(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "coordinator.db")
	clock := newFakeClock()
	fix := sampleStore(t)
	origin := newTestNode()
	var cs [2]*Coordinator
	var dbs [2]*coordinatordb.DB
	for i := range cs {
		dbs[i] = openStore(t, dsn, nil)
		c, err := New(Config{Seed: int64(i + 1), Now: clock.Now, Log: quietLog(), Store: dbs[i],
			OriginKeys: []wire.NodeID{origin.ID}, Accounting: accounting.Config{AuditInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
		if body, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: origin.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"}); !ok {
			t.Fatalf("register origin: %s", body)
		}
		if body, ok := call(c, wire.PathPublish, wire.PublishRequest{OriginID: origin.ID, Videos: []wire.PublishedVideo{fix.published(t, fix.ids[0])}}); !ok {
			t.Fatalf("publish: %s", body)
		}
	}
	a, b := cs[0], cs[1]
	edge := newTestNode().ID
	for _, c := range cs {
		if body, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: edge, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}); !ok {
			t.Fatalf("register edge: %s", body)
		}
		clock.Advance(time.Millisecond) // each signed request its own time
		if body, ok := call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: edge, Full: true, Added: []wire.ShardSet{set(fix.ids[0], 0, 0, 1)}}); !ok {
			t.Fatalf("heartbeat: %s", body)
		}
	}
	listed := func(c *Coordinator) bool {
		resp, err := c.Lookup(wire.LookupRequest{Video: fix.ids[0], Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.Segments[0].Sources {
			if s.NodeID == edge {
				return true
			}
		}
		return false
	}
	if !listed(a) || !listed(b) {
		t.Fatal("edge not listed before the ban")
	}

	if err := (*network)(a).Ban(t.Context(), edge, "test ban"); err != nil {
		t.Fatal(err)
	}
	if listed(a) {
		t.Fatal("A lists the edge it banned")
	}
	b.Sweep()
	if listed(b) {
		t.Fatal("B lists the edge after a sweep, though A banned it in the shared store")
	}

	// Lifted through A: the store's row goes (as the admin route does),
	// then A's memory.
	if _, err := dbs[0].LiftBan(t.Context(), edge, "root", "test", clock.Now()); err != nil {
		t.Fatal(err)
	}
	(*network)(a).Unban(edge)
	if !listed(a) {
		t.Fatal("A does not list the edge it unbanned")
	}
	b.Sweep()
	if !listed(b) {
		t.Fatal("B still keeps the edge out after a sweep, though its ban was lifted in the shared store")
	}
}
