package coordinator

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

func TestCatalogue(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	videos, err := h.client.Videos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(videos) != 2 || videos[0].Title != "Alpha" || videos[1].Title != "Beta" {
		t.Fatalf("catalogue = %+v, want Alpha and Beta", videos)
	}
	if v := videos[0]; v.ID != h.video(0) || v.K != 8 || v.NMax != 32 || len(v.Renditions) != 2 || v.Renditions[0].Segments == 0 || v.DurationMS < 20_000 {
		t.Fatalf("catalogue entry = %+v", v)
	}
	// Keys go to signed-in accounts only (both videos are free, so the
	// first key request is the unlock).
	if _, err := h.client.Signup(ctx, wire.Credentials{Username: "keyholder", Password: "vault-door-secret"}); err != nil {
		t.Fatal(err)
	}
	login, err := h.client.Login(ctx, wire.Credentials{Username: "keyholder", Password: "vault-door-secret"})
	if err != nil {
		t.Fatal(err)
	}
	h.client.Token = login.Token
	for i, id := range h.fix.ids {
		want := h.fix.published(t, id)
		got, err := h.client.Manifest(ctx, id.String())
		if err != nil || !bytes.Equal(got, want.Manifest) {
			t.Fatalf("video %d manifest: err %v, equal %v", i, err, bytes.Equal(got, want.Manifest))
		}
		key, err := h.client.Key(ctx, id.String())
		if err != nil || !bytes.Equal(key, want.Key) || len(key) != 16 {
			t.Fatalf("video %d key: err %v, got %x want %x", i, err, key, want.Key)
		}
	}
	if st := h.c.Stats(); st.Videos != 2 || st.Nodes != 1 {
		t.Fatalf("stats = %+v", st)
	}

	unknown := strings.Repeat("ab", 32)
	_, err = h.client.Manifest(ctx, unknown)
	requireAPIError(t, err, http.StatusNotFound, "not in the catalogue")
	_, err = h.client.Key(ctx, unknown)
	requireAPIError(t, err, http.StatusNotFound, "not in the catalogue")
	_, err = h.client.Manifest(ctx, "nothex")
	requireAPIError(t, err, http.StatusBadRequest, "64 hex")
}

func TestPublishRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	good := h.fix.published(t, h.fix.ids[0])
	tampered := bytes.Clone(good.Manifest)
	tampered[len(tampered)/2] ^= 1
	wrongKey := bytes.Clone(good.Key)
	wrongKey[0] ^= 1
	edge := h.edge("eu")
	cases := []struct {
		name    string
		req     wire.PublishRequest
		status  int
		phrases []string
	}{
		{"tampered manifest", wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: tampered}}}, 400, []string{"videos[0]", "manifest"}},
		{"garbage manifest", wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: []byte("hello")}}}, 400, []string{"videos[0]", "manifest"}},
		{"wrong key", wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: good.Manifest, Key: wrongKey}}}, 400, []string{"key id"}},
		{"short key", wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: good.Manifest, Key: []byte{1, 2}}}}, 400, []string{"16"}},
		{"unregistered origin", wire.PublishRequest{OriginID: identity.New().ID, Videos: []wire.PublishedVideo{good}}, 404, []string{"register"}},
		{"edge publishes", wire.PublishRequest{OriginID: edge, Videos: []wire.PublishedVideo{good}}, 403, []string{"only origins"}},
		// A bad entry after a good one rejects the whole request.
		{"partial", wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{good, {Manifest: tampered}}}, 400, []string{"videos[1]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h.client.Publish(ctx, tc.req)
			requireAPIError(t, err, tc.status, tc.phrases...)
		})
	}
	if st := h.c.Stats(); st.Videos != 2 {
		t.Fatalf("rejected publishes changed the catalogue: %+v", st)
	}
}

func TestLookupRanksHolders(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	eu1 := h.edge("eu", set(v, 0, 0, 0, 1), set(v, 0, 1, 2))
	eu2 := h.edge("eu", set(v, 0, 0, 3))
	us := h.edge("us", set(v, 0, 0, 4, 5))
	h.edge("us", set(h.video(1), 0, 0, 6)) // another video: never listed

	resp := h.lookup(wire.LookupRequest{Video: v, Rendition: 0, From: 0, Count: 3, Region: "us"})
	if len(resp.Segments) != 3 {
		t.Fatalf("want 3 segments, got %+v", resp.Segments)
	}
	got := sourcesOf(resp, 0)
	if len(got) != 3 || got[0] != us || !slices.Contains(got, eu1) || !slices.Contains(got, eu2) {
		t.Fatalf("segment 0 sources = %v, want us (%s) first, then both eu edges", got, us[:8])
	}
	if src := resp.Segments[0].Sources[0]; !slices.Equal(src.Shards, []int{4, 5}) || !strings.HasPrefix(src.Addr, "http://127.0.0.1:1/") {
		t.Fatalf("us source = %+v, want shards [4 5] and its advertised addr", src)
	}
	if got := sourcesOf(resp, 1); !slices.Equal(got, []wire.NodeID{eu1}) {
		t.Fatalf("segment 1 sources = %v, want only eu1", got)
	}
	if got := sourcesOf(resp, 2); len(got) != 0 {
		t.Fatalf("segment 2 sources = %v, want none", got)
	}
	if len(resp.Origins) != 1 || resp.Origins[0].NodeID != h.origin.ID || len(resp.Origins[0].Shards) != 0 {
		t.Fatalf("origins = %+v", resp.Origins)
	}

	// Exclude is honoured.
	resp = h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 1, Region: "us", Exclude: []wire.NodeID{us}})
	if got := sourcesOf(resp, 0); slices.Contains(got, us) || len(got) != 2 {
		t.Fatalf("with us excluded, sources = %v", got)
	}

	// A loaded edge (served bytes near its upload cap) ranks after an idle
	// one of the same region.
	h.clock.Advance(time.Second)
	h.heartbeat(wire.HeartbeatRequest{NodeID: eu1, ServedBytes: wire.DefaultUploadCapBytes})
	h.heartbeat(wire.HeartbeatRequest{NodeID: eu2})
	for range 20 {
		resp = h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 1, Region: "eu"})
		if got := sourcesOf(resp, 0); got[0] != eu2 || got[1] != eu1 {
			t.Fatalf("sources = %v, want idle eu2 before loaded eu1", got)
		}
	}
	// The end of the window is clipped to the rendition.
	last := h.fix.mustManifest(t, 0).Renditions[0].Segments
	resp = h.lookup(wire.LookupRequest{Video: v, From: len(last) - 1, Count: 10})
	if len(resp.Segments) != 1 || resp.Segments[0].Segment != len(last)-1 {
		t.Fatalf("window at the end = %+v", resp.Segments)
	}
	if st := h.c.Stats(); st.Lookups != 23 {
		t.Fatalf("lookups = %d, want 23", st.Lookups)
	}
}

func TestLookupTieBreakSpreadsLoad(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	for i := range 8 {
		h.edge("eu", set(v, 0, 0, i))
	}
	firsts := map[wire.NodeID]int{}
	for range 400 {
		resp := h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 1, Region: "eu"})
		firsts[sourcesOf(resp, 0)[0]]++
	}
	if len(firsts) != 8 {
		t.Fatalf("first choices = %v, want all 8 equal edges to come first sometimes", firsts)
	}
	for id, n := range firsts {
		if n < 20 {
			t.Fatalf("edge %s first only %d/400 times: %v", id[:8], n, firsts)
		}
	}
}

func TestHeartbeatInventory(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	e := h.edge("eu", set(v, 0, 0, 1, 2))
	h.heartbeat(wire.HeartbeatRequest{NodeID: e, Added: []wire.ShardSet{set(v, 0, 1, 7)}, Removed: []wire.ShardSet{set(v, 0, 0, 1)}})
	resp := h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 2})
	if s := resp.Segments[0].Sources; len(s) != 1 || !slices.Equal(s[0].Shards, []int{2}) {
		t.Fatalf("segment 0 after delta = %+v, want shard 2", s)
	}
	if s := resp.Segments[1].Sources; len(s) != 1 || !slices.Equal(s[0].Shards, []int{7}) {
		t.Fatalf("segment 1 after delta = %+v, want shard 7", s)
	}
	// Full replaces everything.
	h.heartbeat(wire.HeartbeatRequest{NodeID: e, Full: true, Added: []wire.ShardSet{set(v, 0, 1, 9)}})
	resp = h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 2})
	if len(resp.Segments[0].Sources) != 0 || !slices.Equal(resp.Segments[1].Sources[0].Shards, []int{9}) {
		t.Fatalf("after full = %+v", resp.Segments)
	}
	nodes, err := h.client.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nodes, func(n wire.NodeInfo) bool { return n.NodeID == e })
	if i < 0 || nodes[i].Shards != 1 || !nodes[i].Alive || nodes[i].Region != "eu" || nodes[i].DiskCapBytes != wire.DefaultDiskCapBytes {
		t.Fatalf("nodes = %+v", nodes)
	}

	// Shards of a video published later join the index then.
	unknown := content.VideoID{0xcd, 0xcd, 0xcd}
	h.heartbeat(wire.HeartbeatRequest{NodeID: e, Added: []wire.ShardSet{set(unknown, 0, 0, 3)}})
	if _, err := h.client.Lookup(context.Background(), wire.LookupRequest{Video: unknown, Count: 1}); !wire.IsNotFound(err) {
		t.Fatalf("lookup of unpublished video: %v", err)
	}
}

func TestLiveness(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	ctx := context.Background()
	silent := h.edge("eu", set(v, 0, 0, 1))
	chatty := h.edge("eu", set(v, 0, 0, 2))
	leaver := h.edge("eu", set(v, 0, 0, 3))
	interval := 2 * time.Second

	if err := h.client.Leave(ctx, leaver); err != nil {
		t.Fatal(err)
	}
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, Count: 1}), 0); slices.Contains(got, leaver) || len(got) != 2 {
		t.Fatalf("after leave: %v", got)
	}
	requireAPIError(t, h.client.Leave(ctx, leaver), http.StatusNotFound, "not registered")

	// At exactly 3 intervals of silence an edge is still listed; a moment
	// later it is not, sweep or no sweep.
	for range 3 {
		h.clock.Advance(interval)
		h.heartbeat(wire.HeartbeatRequest{NodeID: chatty})
	}
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, Count: 1}), 0); len(got) != 2 {
		t.Fatalf("at 3 intervals: %v, want both", got)
	}
	h.clock.Advance(time.Millisecond)
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, Count: 1}), 0); !slices.Equal(got, []wire.NodeID{chatty}) {
		t.Fatalf("after 3 intervals: %v, want only the chatty edge", got)
	}
	if st := h.c.Stats(); st.AliveEdges != 1 {
		t.Fatalf("alive edges = %d, want 1", st.AliveEdges)
	}
	h.c.Sweep()
	if resp := h.heartbeat(wire.HeartbeatRequest{NodeID: silent}); !resp.Unknown {
		t.Fatalf("heartbeat of a swept node = %+v, want Unknown", resp)
	}
	if resp := h.heartbeat(wire.HeartbeatRequest{NodeID: chatty}); resp.Unknown {
		t.Fatal("the chatty edge was swept")
	}
	// Re-registering brings it back.
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: silent, Role: wire.RoleEdge, Addr: "http://127.0.0.1:2", Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: silent, Full: true, Added: []wire.ShardSet{set(v, 0, 0, 1)}})
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, Count: 1}), 0); len(got) != 2 {
		t.Fatalf("after re-register: %v", got)
	}
}

func TestBadShardReports(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.fix.ids[0]
	v := id
	liar := h.edge("eu", set(v, 0, 2, 5))
	honest := h.edge("eu", set(v, 0, 2, 6))

	good := h.fix.shardMessage(t, id, 0, 2, 6)
	if err := h.client.ReportBadShard(ctx, wire.BadShardReport{Node: honest, Video: v, Rendition: 0, Segment: 2, Shard: 6, Reason: "hash", Evidence: good}); err != nil {
		t.Fatal(err)
	}
	bad := h.fix.shardMessage(t, id, 0, 2, 5)
	bad[len(bad)-1] ^= 0xff
	if err := h.client.ReportBadShard(ctx, wire.BadShardReport{Node: liar, Video: v, Rendition: 0, Segment: 2, Shard: 5, Reason: "hash", Evidence: bad}); err != nil {
		t.Fatal(err)
	}
	// A valid shard sent in answer to a request for another is still bad.
	other := h.fix.shardMessage(t, id, 0, 3, 6)
	if err := h.client.ReportBadShard(ctx, wire.BadShardReport{Node: liar, Video: v, Rendition: 0, Segment: 2, Shard: 5, Evidence: other}); err != nil {
		t.Fatal(err)
	}
	got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, From: 2, Count: 1}), 2)
	if !slices.Equal(got, []wire.NodeID{honest}) {
		t.Fatalf("sources = %v, want only the honest edge", got)
	}
	st := h.c.Stats()
	if st.BannedNodes != 1 || st.BadShards != 3 {
		t.Fatalf("stats = %+v, want 1 banned, 3 reports", st)
	}
	// A ban survives re-registration.
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: liar, Role: wire.RoleEdge, Addr: "http://127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: liar, Full: true, Added: []wire.ShardSet{set(v, 0, 2, 5)}})
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, From: 2, Count: 1}), 2); slices.Contains(got, liar) {
		t.Fatal("banned node listed after re-registering")
	}
	nodes, _ := h.client.Nodes(ctx)
	i := slices.IndexFunc(nodes, func(n wire.NodeInfo) bool { return n.NodeID == liar })
	if i < 0 || !nodes[i].Banned || nodes[i].Alive {
		t.Fatalf("liar node info = %+v", nodes[i])
	}
	body := scrape(t, h.srv.URL)
	for _, want := range []string{
		`swarmcast_coordinator_bad_shard_reports_total{verdict="confirmed"} 2`,
		`swarmcast_coordinator_bad_shard_reports_total{verdict="false_accusation"} 1`,
		`swarmcast_coordinator_banned_nodes 1`,
		`swarmcast_coordinator_lookups_total 2`,
		`swarmcast_coordinator_lookup_duration_seconds_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestPlayReports(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	e := h.edge("eu")
	err := h.client.ReportPlay(ctx, wire.PlayReport{Video: h.video(0), StartupMS: 300, Stalls: 1, StallMS: 200, PlayedMS: 30_000, Completed: true,
		BytesBySource: map[wire.NodeID]int64{e: 900, h.origin.ID: 100}})
	if err != nil {
		t.Fatal(err)
	}
	p := h.c.Plays()
	if p.Plays != 1 || p.Completed != 1 || p.Stalls != 1 || p.EdgeBytes != 900 || p.OriginBytes != 100 || p.StartupMSTotal != 300 {
		t.Fatalf("aggregates = %+v", p)
	}
	if st, _ := h.client.Stats(ctx); st.PlaysReported != 1 {
		t.Fatalf("stats = %+v", st)
	}
	requireAPIError(t, h.client.ReportPlay(ctx, wire.PlayReport{Video: content.VideoID{0xee}}), http.StatusNotFound, "not in the catalogue")
	requireAPIError(t, h.client.ReportPlay(ctx, wire.PlayReport{Video: h.video(0), Stalls: -1}), http.StatusBadRequest, "negative")
}

func scrape(t testing.TB, base string) string {
	t.Helper()
	resp, err := http.Get(base + wire.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}
