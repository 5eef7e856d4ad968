package coordinator

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// directiveShards sums the shards each directive names, per segment.
func directiveShards(ds []wire.Directive, action string) map[content.SegmentRef]ShardMask {
	out := map[content.SegmentRef]ShardMask{}
	for _, d := range ds {
		if d.Action == action {
			k := content.SegmentRef{Video: d.Video, Rendition: d.Rendition, Segment: d.Segment}
			out[k] = out[k].Union(maskOf(d.Shards...))
		}
	}
	return out
}

// measuredOnly turns predicted demand off: the tests using it pin how
// placement follows what viewers asked for (TestPlacementAheadOfAViewer
// pins the prediction).
func measuredOnly(c *Config) { c.PredictLead = -1 }

func TestPlacementDirectives(t *testing.T) {
	h := newHarnessWith(t, measuredOnly)
	ctx := context.Background()
	v := h.video(0)
	var edges []wire.NodeID
	for range 12 {
		edges = append(edges, h.edge("eu"))
	}
	// Viewers watch segments 0..3; segment 0 is looked up far more.
	for range 30 {
		h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 1, Region: "eu"})
	}
	h.lookup(wire.LookupRequest{Video: v, From: 1, Count: 3, Region: "eu"})
	h.clock.Advance(time.Second)
	h.c.Place()

	fetched := map[wire.NodeID]map[content.SegmentRef]ShardMask{}
	distinct := map[content.SegmentRef]ShardMask{}
	for _, e := range edges {
		resp := h.heartbeat(wire.HeartbeatRequest{NodeID: e})
		fetched[e] = directiveShards(resp.Directives, wire.ActionFetch)
		for k, m := range fetched[e] {
			if k.Video != v || k.Rendition != 0 || k.Segment > 3 {
				t.Fatalf("directive for a segment nobody watched: %v", k)
			}
			if m.Count() != 1 {
				t.Fatalf("edge got %d shards of one segment with 12 edges free", m.Count())
			}
			distinct[k] = distinct[k].Union(m)
		}
		// Directives are delivered once.
		if again := h.heartbeat(wire.HeartbeatRequest{NodeID: e}); len(again.Directives) != 0 {
			t.Fatalf("directives delivered twice: %+v", again.Directives)
		}
	}
	hot, cold := distinct[content.SegmentRef{Video: v}].Count(), distinct[content.SegmentRef{Video: v, Segment: 1}].Count()
	if hot != 12 || cold < 8 || cold >= hot {
		t.Fatalf("distinct shards hot %d, cold %d; want all 12 edges on the hot one and k..12 on cold", hot, cold)
	}

	// An edge leaves: its shards go to others at the next round, and the
	// edges that fetched report the shards they now hold.
	for _, e := range edges {
		var added []wire.ShardSet
		for k, m := range fetched[e] {
			added = append(added, set(k.Video, k.Rendition, k.Segment, m.Indices()...))
		}
		h.heartbeat(wire.HeartbeatRequest{NodeID: e, Added: added})
	}
	leaver := slices.IndexFunc(edges, func(e wire.NodeID) bool { return len(fetched[e]) > 1 })
	if err := h.client.Leave(ctx, edges[leaver]); err != nil {
		t.Fatal(err)
	}
	h.c.Place()
	refetched := map[content.SegmentRef]ShardMask{}
	for i, e := range edges {
		if i == leaver {
			continue
		}
		resp := h.heartbeat(wire.HeartbeatRequest{NodeID: e})
		if drops := directiveShards(resp.Directives, wire.ActionDrop); len(drops) != 0 {
			t.Fatalf("churn made edge %d drop %v", i, drops)
		}
		for k, m := range directiveShards(resp.Directives, wire.ActionFetch) {
			refetched[k] = refetched[k].Union(m)
		}
	}
	// The hot segment had one shard per edge and keeps one per remaining
	// edge; the cold ones had fewer holders than edges and get replacements.
	for k := range fetched[edges[leaver]] {
		if k.Segment != 0 && refetched[k].Empty() {
			t.Errorf("segment %v lost a holder and got no replacement", k)
		}
	}

	// Demand fades: after many half-lives every assignment is dropped.
	h.clock.Advance(time.Hour)
	h.c.Place()
	for i, e := range edges {
		if i == leaver {
			continue
		}
		resp := h.heartbeat(wire.HeartbeatRequest{NodeID: e})
		if drops := directiveShards(resp.Directives, wire.ActionDrop); len(drops) == 0 && len(fetched[e]) > 0 {
			t.Fatalf("edge %d kept its assignment after demand faded: %+v", i, resp.Directives)
		}
	}
}

func TestRunSweepsAndPlacesInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fix := sampleStore(t)
		c, err := New(Config{Seed: 3, Log: quietLog(), HeartbeatInterval: time.Second, PlacementInterval: time.Second, Store: testStore(t), Accounting: accounting.Config{AuditInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()

		origin := newTestNode().ID
		edge := newTestNode().ID
		register := func(id wire.NodeID, role wire.Role) {
			if _, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: id, Role: role, Addr: "http://127.0.0.1:9"}); !ok {
				t.Fatalf("register %s failed", role)
			}
		}
		if err := c.AllowOrigin(t.Context(), origin); err != nil {
			t.Fatal(err)
		}
		register(origin, wire.RoleOrigin)
		register(edge, wire.RoleEdge)
		if _, ok := call(c, wire.PathPublish, wire.PublishRequest{OriginID: origin, Videos: []wire.PublishedVideo{fix.published(t, fix.ids[0])}}); !ok {
			t.Fatal("publish failed")
		}
		if _, err := c.Lookup(wire.LookupRequest{Video: fix.ids[0], Count: 2}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // fake time: one placement round
		synctest.Wait()
		body, _ := call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: edge})
		if !bytesContains(body, `"action":"fetch"`) {
			t.Fatalf("heartbeat after a placement round = %s, want fetch directives", body)
		}
		if c.Stats().AliveEdges != 1 {
			t.Fatal("edge not alive")
		}
		time.Sleep(3*time.Second + time.Millisecond) // silent for over 3 intervals
		synctest.Wait()
		if c.Stats().AliveEdges != 0 {
			t.Fatal("silent edge still alive")
		}
		time.Sleep(time.Second) // a sweep has run since
		synctest.Wait()
		body, _ = call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: edge})
		if !bytesContains(body, `"unknown":true`) {
			t.Fatalf("heartbeat of a swept edge = %s", body)
		}
		if st := c.Stats(); st.Nodes != 1 {
			t.Fatalf("stats = %+v, want only the origin (which never heartbeats) left", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestFetchDirectivesReissuedUntilHeld(t *testing.T) {
	h := newHarnessWith(t, measuredOnly)
	v := h.video(0)
	e := h.edge("eu")
	h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 1})
	h.c.Place()
	first := directiveShards(h.heartbeat(wire.HeartbeatRequest{NodeID: e}).Directives, wire.ActionFetch)
	if len(first) != 1 {
		t.Fatalf("fetch directives = %v, want one segment", first)
	}
	// The edge never reports the shards: after reissueRounds rounds it is
	// told again, and not before.
	for round := 2; round <= reissueRounds; round++ {
		h.c.Place()
		got := h.heartbeat(wire.HeartbeatRequest{NodeID: e}).Directives
		if round < reissueRounds && len(got) != 0 {
			t.Fatalf("round %d: directives %+v before the reissue round", round, got)
		}
		if round == reissueRounds && !reflectEqual(directiveShards(got, wire.ActionFetch), first) {
			t.Fatalf("round %d: got %+v, want the same fetch again", round, got)
		}
	}
}
