package edge

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// An edge keeps only its assigned parent's verified pushes and serves them
// on the shard route with a receipt, as stored shards; a push from anyone
// else changes nothing, and the VoD cache is untouched either way.
func TestEdgeServesLivePushesFromItsParentOnly(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 31)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	defer coord.Close()
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Coordinator = coord.URL })
	mustStore(t, e, f, f.key(0, 0, 1), false)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	parent := wire.NewNodeSigner(identity.New().Key, nil)
	outsider := wire.NewNodeSigner(identity.New().Key, nil)
	e.applyLive(&wire.LiveSet{Version: 3, Routes: []wire.LiveRoute{{Chain: pub.Chain, Substream: 1, Indices: []int{1}, Parent: parent.ID()}}})
	_, seg := pub.Next()
	var mine []*content.ShardMessage
	for _, sh := range seg.Shards {
		if sh.Index == 1 {
			mine = append(mine, sh)
		}
	}
	body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: mine}).Encode()
	vodShards, vodBytes := e.Stored()

	err := fanout.PushTo(t.Context(), srv.Client(), outsider, srv.URL, body)
	if pe, ok := err.(*fanout.PushError); !ok || pe.Status != http.StatusForbidden {
		t.Fatalf("outsider's push: %v, want 403", err)
	}
	if e.LiveWindow().Chain(pub.Chain) != nil {
		t.Fatal("the outsider's push made the edge hold the chain")
	}
	ref := content.SegmentRef{Video: pub.Chain, Segment: 0}.Shard(1)
	if _, _, err := fetchShard(t.Context(), srv.Client(), srv.URL, ref); err == nil {
		t.Fatal("the edge served a live shard nobody assigned pushed")
	}

	if err := fanout.PushTo(t.Context(), srv.Client(), parent, srv.URL, body); err != nil {
		t.Fatalf("the parent's push: %v", err)
	}
	resp, err := wire.GetShard(t.Context(), srv.Client(), wire.ShardRequest{Base: srv.URL, Ref: ref, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Body, mine[0].Encode()) {
		t.Fatal("the edge served other bytes than the pushed shard")
	}
	if _, err := wire.CheckShardReceipt(resp.Receipt, e.ID(), ref, resp.Body); err != nil {
		t.Fatalf("live shard receipt: %v", err)
	}
	// A second request is answered with the receipt signed for the first.
	again, err := wire.GetShard(t.Context(), srv.Client(), wire.ShardRequest{Base: srv.URL, Ref: ref, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if again.Receipt != resp.Receipt || counter(t, e, "swarmcast_edge_receipts_signed_total") != 1 {
		t.Fatalf("the live shard was signed again (%v receipts signed)", counter(t, e, "swarmcast_edge_receipts_signed_total"))
	}
	if n, b := e.Stored(); n != vodShards || b != vodBytes {
		t.Fatalf("the VoD cache changed: %d shards %d bytes, was %d, %d", n, b, vodShards, vodBytes)
	}
	if got := counter(t, e, "swarmcast_edge_live_pushes_total", "result", "ok"); got != 1 {
		t.Fatalf("live_pushes_total{ok} = %v, want 1", got)
	}
	// VoD shards are served as before.
	if _, _, err := fetchShard(t.Context(), srv.Client(), srv.URL, f.key(0, 0, 1)); err != nil {
		t.Fatalf("VoD shard after live: %v", err)
	}
}

// A push larger than the hot listener's 1 MiB body bound (a child of every
// substream of a large segment) still reaches the edge.
func TestEdgeTakesLargePushesOnTheHotListener(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 32)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	defer coord.Close()
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Coordinator = coord.URL })
	srv, err := httpserve.ListenHot(t.Context(), "127.0.0.1:0", "", e.ServeHot, e.Handler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	parent := wire.NewNodeSigner(identity.New().Key, nil)
	e.applyLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Indices: []int{0, 1, 2, 3, 4}, Parent: parent.ID()}}})
	_, seg := pub.NextSized(2 << 20) // 5 shards of 512 KiB
	body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards}).Encode()
	if len(body) <= 1<<20 {
		t.Fatalf("push of %d bytes is not over 1 MiB", len(body))
	}
	if err := fanout.PushTo(t.Context(), http.DefaultClient, parent, srv.Advertise, body); err != nil {
		t.Fatalf("large push: %v", err)
	}
	if got := e.LiveWindow().Indices(pub.Chain, 0, 0); len(got) != 5 {
		t.Fatalf("edge holds indices %v of the large segment, want all 5", got)
	}
}

// What the built-in player serves live counts as watched for a while,
// alongside what SetLiveWatching names, and then is forgotten.
func TestLiveWatchingExpires(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_780_000_000, 0)}
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Now = clk.Now })
	a, b := content.VideoID{1}, content.VideoID{2}
	e.SetLiveWatching([]content.VideoID{b})
	e.NoteLiveWatched(a)
	e.NoteLiveWatched(b)
	if got := e.liveWatching(); !slices.Equal(got, []content.VideoID{a, b}) {
		t.Fatalf("watching %v, want [a b] once each", got)
	}
	clk.Advance(liveWatchedTTL + time.Second)
	if got := e.liveWatching(); !slices.Equal(got, []content.VideoID{b}) {
		t.Fatalf("watching %v after the TTL, want only the set one", got)
	}
}

// An edge names a live parent that stops pushing (its children are the
// detectors of a stalled relay): the first overdue segment, with the
// edge's signed accusation of the parent; on-time pushes are never named.
func TestEdgeAccusesAStalledLiveParent(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 32)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	defer coord.Close()
	clk := &fakeClock{t: time.Unix(1_780_000_000, 0)}
	id := identity.New()
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Coordinator = coord.URL; c.Now = clk.Now; c.Identity = id })
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	parentID := identity.New()
	parent := wire.NewNodeSigner(parentID.Key, clk.Now)
	e.applyLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Substream: 1, Indices: []int{1}, Parent: parent.ID()}}})
	next := func(push bool) []byte {
		t.Helper()
		_, seg := pub.Next()
		if push {
			var mine []*content.ShardMessage
			for _, sh := range seg.Shards {
				if sh.Index == 1 {
					mine = append(mine, sh)
				}
			}
			body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: mine}).Encode()
			if err := fanout.PushTo(t.Context(), srv.Client(), parent, srv.URL, body); err != nil {
				t.Fatal(err)
			}
		}
		return seg.Entry
	}
	for range 4 {
		next(true)
		for range 10 {
			clk.Advance(100 * time.Millisecond)
			e.checkLiveParents(t.Context())
		}
	}
	if n := len(e.LiveAccusations()); n != 0 {
		t.Fatalf("a parent pushing every segment on time was named %d times", n)
	}
	entry := next(false)
	// The last push came at 3 s: segment 4 is due by 3 + T + slack (one
	// segment) = 5 s, seen published then, so accused a slack later, after
	// 6 s; segment 5 (due 6 s) is never published, so never accused.
	for range 25 {
		clk.Advance(100 * time.Millisecond)
		e.checkLiveParents(t.Context())
	}
	acc := e.LiveAccusations()
	if len(acc) != 1 || acc[0].Miss.Seq != 4 || acc[0].Accusation == nil || counter(t, e, "swarmcast_edge_live_parent_misses_total") != 1 {
		t.Fatalf("accusations %+v, want one of segment 4, signed and counted", acc)
	}
	a := acc[0].Accusation
	if err := a.Check(); err != nil || a.Task != btr.RelayTask(pub.Chain, 4, 1, entry) || a.Accuser != btr.KeyOf(id.Key) || a.Accused != btr.KeyOf(parentID.Key) {
		t.Fatalf("accusation %+v (%v), want the edge's of its parent for segment 4 substream 1", a, err)
	}
}
