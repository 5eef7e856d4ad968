package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
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
		{"not an allowed origin", wire.PublishRequest{OriginID: newTestNode().ID, Videos: []wire.PublishedVideo{good}}, 403, []string{"not an allowed origin", "--origin-key"}},
		{"edge publishes", wire.PublishRequest{OriginID: edge, Videos: []wire.PublishedVideo{good}}, 403, []string{"not an allowed origin"}},
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
	if src := resp.Segments[0].Sources[0]; !slices.Equal(src.Shards, []int{4, 5}) || src.Addr != "http://127.0.0.1:1" {
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

// TestBadShardReports: ATTACK: reports without a receipt (the finding:
// undecodable evidence "confirmed" a permanent ban of an honest edge and of
// an origin) are counted as unverifiable and change nothing: both victims
// stay listed and unbanned, also after re-registering.
func TestBadShardReports(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.fix.ids[0]
	v := id
	victim := h.edge("eu", set(v, 0, 2, 5))
	honest := h.edge("eu", set(v, 0, 2, 6))

	bad := h.fix.shardMessage(t, id, 0, 2, 5)
	bad[len(bad)-1] ^= 0xff
	other := h.fix.shardMessage(t, id, 0, 3, 6)
	for _, rep := range []wire.BadShardReport{
		{Node: victim, Video: v, Rendition: 0, Segment: 2, Shard: 5, Reason: "hash", Evidence: []byte("does not decode")},
		{Node: victim, Video: v, Rendition: 0, Segment: 2, Shard: 5, Reason: "hash", Evidence: bad},
		{Node: victim, Video: v, Rendition: 0, Segment: 2, Shard: 5, Evidence: other},
		{Node: h.origin.ID, Video: v, Rendition: 0, Segment: 2, Shard: 5, Evidence: []byte("junk")},
		{Node: honest, Video: v, Rendition: 0, Segment: 2, Shard: 6, Evidence: h.fix.shardMessage(t, id, 0, 2, 6)},
	} {
		var got struct{ Verdict, Detail string }
		b, _ := json.Marshal(rep)
		r, err := http.Post(h.srv.URL+wire.PathBadShard, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(r.Body).Decode(&got)
		r.Body.Close()
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("report against %s: status %d, %v", rep.Node, r.StatusCode, err)
		}
		if got.Verdict != verdictUnverifiable || !strings.Contains(got.Detail, "no receipt") {
			t.Fatalf("report against %s: %+v, want unverifiable for want of a receipt", rep.Node, got)
		}
	}
	// A ban would survive re-registration: re-register to be sure there is none.
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: victim, Role: wire.RoleEdge, Addr: "http://127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: victim, Full: true, Added: []wire.ShardSet{set(v, 0, 2, 5)}})
	got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, From: 2, Count: 1}), 2)
	if !slices.Contains(got, victim) || !slices.Contains(got, honest) {
		t.Fatalf("sources = %v, want the victim and the honest edge still listed", got)
	}
	resp := h.lookup(wire.LookupRequest{Video: v, From: 2, Count: 1})
	if len(resp.Origins) != 1 || resp.Origins[0].NodeID != h.origin.ID {
		t.Fatalf("origins = %+v, want the accused origin still listed", resp.Origins)
	}
	st := h.c.Stats()
	if st.BannedNodes != 0 || st.BadShards != 5 {
		t.Fatalf("stats = %+v, want 0 banned, 5 reports", st)
	}
	nodes, _ := h.client.Nodes(ctx)
	for _, n := range nodes {
		if n.Banned {
			t.Fatalf("node %s banned by an unverifiable report", n.NodeID)
		}
	}
	body := scrape(t, h.srv.URL)
	for _, want := range []string{
		`swarmcast_coordinator_bad_shard_reports_total{verdict="unverifiable"} 5`,
		`swarmcast_coordinator_bad_shard_reports_total{verdict="proven"} 0`,
		`swarmcast_coordinator_banned_nodes 0`,
		`swarmcast_coordinator_lookups_total 2`,
		`swarmcast_coordinator_lookup_duration_seconds_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
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
