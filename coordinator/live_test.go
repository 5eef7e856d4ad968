package coordinator

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// liveOrigin is an origin node with its own signed client.
type liveOrigin struct {
	id     identity.Identity
	client *wire.CoordinatorClient
}

// newLiveOrigin allows and registers a fresh origin on h.
func (h *storeHarness) newLiveOrigin() liveOrigin {
	h.t.Helper()
	id := newTestNode()
	ctx := context.Background()
	if err := h.c.AllowOrigin(ctx, id.ID); err != nil {
		h.t.Fatal(err)
	}
	cl := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(id.Key, h.clock.Now))
	if _, err := cl.Register(ctx, wire.RegisterRequest{NodeID: id.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:7100", RTMPAddr: "rtmp://127.0.0.1:1935"}); err != nil {
		h.t.Fatal(err)
	}
	return liveOrigin{id: id, client: cl}
}

// testChain is a broadcast an origin signs: genesis, key and entries.
type testChain struct {
	g       *content.LiveGenesis
	key     content.ContentKey
	entries []*content.LiveEntry
}

func newTestChain(t testing.TB, o liveOrigin, ch wire.ChannelID) *testChain {
	t.Helper()
	var key content.ContentKey
	rand.Read(key[:])
	g := &content.LiveGenesis{
		Channel: string(ch), Title: "live test", Params: content.DefaultLiveParams(), KeyID: key.ID(), TargetDuration: 1_000_000,
		Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000, Width: 640, Height: 360, Codecs: "avc1.64001e"}},
		Started:    1_700_000_000_000_000,
	}
	rand.Read(g.Nonce[:])
	g.Sign(o.id.Key)
	return &testChain{g: g, key: key}
}

// entry signs the next entry (or, with prev given, one naming prev).
func (tc *testChain) entry(o liveOrigin, seq uint64, root byte) *content.LiveEntry {
	prev := content.Hash(tc.g.ID())
	if seq > 0 && int(seq) <= len(tc.entries) {
		prev = tc.entries[seq-1].Hash()
	}
	e := &content.LiveEntry{Chain: tc.g.ID(), Seq: seq, Prev: prev, ProgramTime: int64(seq) * 1_000_000,
		Segments: []content.Segment{{Duration: 1_000_000, Size: 4096, Root: content.Hash{root}}}}
	e.Sign(o.id.Key)
	return e
}

// The whole channel life over HTTP with real signatures, on both stores:
// every state-changing request by an outsider is refused with nothing
// changed; forged, reordered and forked entries are refused and leave the
// chain as it was; the owner ends the broadcast (410 for the origin); a
// restart keeps channels, chains and entries.
func TestLiveChannelLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		ctx := context.Background()
		anon := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
		asUser := func(tok string) *wire.CoordinatorClient {
			cl := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
			cl.Token = tok
			return cl
		}
		alice := h.user("alice")
		bob := h.user("bob")

		// Creating: no session 401, a plain account 403, bad input 400.
		_, err := anon.CreateChannel(ctx, wire.CreateChannelRequest{Name: "news"})
		requireAPIError(t, err, http.StatusUnauthorized)
		_, err = asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news"})
		requireAPIError(t, err, http.StatusForbidden, "may not broadcast", wire.PathLiveBroadcasters)
		requireAPIError(t, asUser(bob).AllowBroadcaster(ctx, "alice"), http.StatusForbidden)
		if chs, _ := anon.Channels(ctx); len(chs) != 0 {
			t.Fatalf("refused creates left channels: %+v", chs)
		}
		if err := asUser(h.admin).AllowBroadcaster(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		requireAPIError(t, asUser(h.admin).AllowBroadcaster(ctx, "nobody"), http.StatusNotFound, "no account")
		_, err = asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: " bad/name"})
		requireAPIError(t, err, http.StatusBadRequest, "channel name")
		_, err = asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news", SegmentMS: 50})
		requireAPIError(t, err, http.StatusBadRequest, "segment_ms")
		for _, partMS := range []int{50, 600} { // below 100 ms; over half the 1 s segment
			_, err = asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news", PartMS: partMS})
			requireAPIError(t, err, http.StatusBadRequest, "part_ms")
		}
		if chs, _ := anon.Channels(ctx); len(chs) != 0 {
			t.Fatalf("refused creates left channels: %+v", chs)
		}
		ll, err := asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news-ll", PartMS: 250})
		if err != nil || ll.Channel.PartMS != 250 {
			t.Fatalf("a low-latency channel: %+v %v", ll.Channel, err)
		}
		origin := h.newLiveOrigin()
		created, err := asUser(alice).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news"})
		if err != nil {
			t.Fatal(err)
		}
		id := created.Channel.ID
		if created.Channel.State != wire.ChannelIdle || created.Channel.Head != -1 || created.Channel.SegmentMS != 1000 || len(created.StreamKey) < 20 {
			t.Fatalf("created: %+v", created)
		}
		wantRTMP := "rtmp://127.0.0.1:1935/live/" + created.StreamKey
		wantHLS := "http://127.0.0.1:7100/live/" + created.StreamKey + "/index.m3u8"
		// The harness's own origin (no RTMP listener) is listed for HLS too.
		if len(created.RTMPIngest) != 1 || created.RTMPIngest[0] != wantRTMP || len(created.HLSIngest) != 2 || !slices.Contains(created.HLSIngest, wantHLS) {
			t.Fatalf("ingest urls %q %q, want %q %q", created.RTMPIngest, created.HLSIngest, wantRTMP, wantHLS)
		}
		_, err = asUser(h.admin).CreateChannel(ctx, wire.CreateChannelRequest{Name: "news"})
		requireAPIError(t, err, http.StatusConflict, "pick another name")

		// Ingest authorize: origins only, the key must be a channel's.
		_, err = anon.AuthorizeIngest(ctx, created.StreamKey)
		requireAPIError(t, err, http.StatusUnauthorized)
		edge := newTestNode()
		edgeClient := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(edge.Key, h.clock.Now))
		if _, err := edgeClient.Register(ctx, wire.RegisterRequest{NodeID: edge.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:7200"}); err != nil {
			t.Fatal(err)
		}
		_, err = edgeClient.AuthorizeIngest(ctx, created.StreamKey)
		requireAPIError(t, err, http.StatusForbidden, "not an allowed origin")
		_, err = origin.client.AuthorizeIngest(ctx, "sk_wrong")
		requireAPIError(t, err, http.StatusForbidden, "no channel has this stream key; create one with swarmcast live create")
		auth, err := origin.client.AuthorizeIngest(ctx, created.StreamKey)
		if err != nil {
			t.Fatal(err)
		}
		if auth.Channel.ID != id || auth.K != 4 || auth.NMax != 16 || auth.PushShards != content.DefaultLivePushShards || auth.Resume != (content.VideoID{}) {
			t.Fatalf("authorize: %+v", auth)
		}

		// Chain start: another origin (that did not authorize the key), a
		// genesis signed by another key, a key that does not match.
		other := h.newLiveOrigin()
		tc := newTestChain(t, origin, id)
		chain := tc.g.ID()
		otherChain := newTestChain(t, other, id)
		requireAPIError(t, other.client.StartChain(ctx, otherChain.g.Encode(), otherChain.key), http.StatusForbidden, "did not authorize")
		requireAPIError(t, origin.client.StartChain(ctx, otherChain.g.Encode(), otherChain.key), http.StatusForbidden, "not by origin")
		var wrongKey content.ContentKey
		requireAPIError(t, origin.client.StartChain(ctx, tc.g.Encode(), wrongKey), http.StatusBadRequest, "key id")
		requireAPIError(t, anon.StartChain(ctx, tc.g.Encode(), tc.key), http.StatusUnauthorized)
		if _, err := anon.LiveGenesis(ctx, chain); err == nil {
			t.Fatal("refused starts registered the chain")
		}
		if err := origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
			t.Fatal(err)
		}

		// Entries: three good ones, then forged, reordered, forked, another
		// origin's and an unsigned one, all refused.
		for seq := range uint64(3) {
			e := tc.entry(origin, seq, byte(seq+1))
			if err := origin.client.AppendEntry(ctx, chain, e.Encode()); err != nil {
				t.Fatal(err)
			}
			tc.entries = append(tc.entries, e)
		}
		if err := origin.client.AppendEntry(ctx, chain, tc.entries[2].Encode()); err != nil {
			t.Fatalf("re-sending the head: %v", err)
		}
		forged := tc.entry(origin, 3, 9)
		forged.Segments[0].Root[5] ^= 1 // altered after signing
		requireAPIError(t, origin.client.AppendEntry(ctx, chain, forged.Encode()), http.StatusBadRequest, "bad signature")
		requireAPIError(t, origin.client.AppendEntry(ctx, chain, tc.entry(origin, 5, 9).Encode()), http.StatusConflict, "does not follow", "next entry is 3")
		fork := tc.entry(origin, 1, 42)
		requireAPIError(t, origin.client.AppendEntry(ctx, chain, fork.Encode()), http.StatusConflict, "fork")
		requireAPIError(t, other.client.AppendEntry(ctx, chain, tc.entry(other, 3, 9).Encode()), http.StatusForbidden, "published by origin")
		requireAPIError(t, anon.AppendEntry(ctx, chain, tc.entry(origin, 3, 9).Encode()), http.StatusUnauthorized)
		raws, err := anon.LiveEntries(ctx, chain, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(raws) != 3 {
			t.Fatalf("%d entries after the refusals, want 3", len(raws))
		}
		for i, raw := range raws {
			if !bytes.Equal(raw, tc.entries[i].Encode()) {
				t.Fatalf("entry %d changed", i)
			}
		}
		if got := h.metric(`swarmcast_coordinator_live_publish_rejections_total{reason="fork"}`); got != "1" {
			t.Fatalf("fork rejections %q, want 1", got)
		}
		if got := h.metric(`swarmcast_coordinator_live_entries_appended_total`); got != "3" {
			t.Fatalf("entries appended %q, want 3", got)
		}

		// Viewers: genesis, entries from 1, the key for a session only.
		g, err := anon.LiveGenesis(ctx, chain)
		if err != nil || !bytes.Equal(g, tc.g.Encode()) {
			t.Fatalf("genesis: %v", err)
		}
		if raws, err := anon.LiveEntries(ctx, chain, 1, 0); err != nil || len(raws) != 2 {
			t.Fatalf("entries from 1: %d, %v", len(raws), err)
		}
		_, err = anon.LiveKey(ctx, chain)
		requireAPIError(t, err, http.StatusUnauthorized)
		key, err := asUser(bob).LiveKey(ctx, chain)
		if err != nil || !bytes.Equal(key, tc.key[:]) {
			t.Fatalf("key for a session: %x, %v", key, err)
		}
		info, err := anon.Channel(ctx, id)
		if err != nil || info.State != wire.ChannelPublishing || info.Chain != chain || info.Head != 2 {
			t.Fatalf("channel while publishing: %+v %v", info, err)
		}

		// State reports: only the publishing origin.
		requireAPIError(t, other.client.ReportChannelState(ctx, id, wire.ChannelStateReport{State: wire.ChannelWaiting, Chain: chain}), http.StatusForbidden)
		requireAPIError(t, origin.client.ReportChannelState(ctx, id, wire.ChannelStateReport{State: "dancing"}), http.StatusBadRequest, "want")
		if err := origin.client.ReportChannelState(ctx, id, wire.ChannelStateReport{State: wire.ChannelWaiting, Chain: chain}); err != nil {
			t.Fatal(err)
		}
		if auth, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil || auth.Resume != chain {
			t.Fatalf("re-authorize while waiting: resume %v, %v; want the chain", auth.Resume, err)
		}

		// Ending: not by another account; the owner may; appends are Gone.
		_, err = asUser(bob).EndChannel(ctx, id)
		requireAPIError(t, err, http.StatusForbidden, "neither owns")
		_, err = anon.EndChannel(ctx, id)
		requireAPIError(t, err, http.StatusUnauthorized)
		if info, _ := anon.Channel(ctx, id); info.State != wire.ChannelWaiting {
			t.Fatalf("refused ends changed the state to %q", info.State)
		}
		ended, err := asUser(alice).EndChannel(ctx, id)
		if err != nil || ended.State != wire.ChannelEnded {
			t.Fatalf("end: %+v %v", ended, err)
		}
		if err := origin.client.AppendEntry(ctx, chain, tc.entry(origin, 3, 9).Encode()); !errors.Is(err, wire.ErrChannelEnded) {
			t.Fatalf("append after the end: %v, want ErrChannelEnded", err)
		}
		recording := content.VideoID{7}
		if err := origin.client.ReportChannelState(ctx, id, wire.ChannelStateReport{State: wire.ChannelEnded, Chain: chain, Recording: recording}); err != nil {
			t.Fatal(err)
		}

		// A restart on the same store keeps it all.
		c2, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: h.c.cfg.Accounting})
		if err != nil {
			t.Fatal(err)
		}
		info, err = c2.Live().Channel(id)
		if err != nil || info.State != wire.ChannelEnded || info.Chain != chain || info.Head != 2 || len(info.Recordings) != 1 || info.Recordings[0] != recording || info.Name != "news" {
			t.Fatalf("after restart: %+v %v", info, err)
		}
		if raws, err := c2.Live().Entries(ctx, chain, 0, 0); err != nil || len(raws) != 3 || !bytes.Equal(raws[2], tc.entries[2].Encode()) {
			t.Fatalf("entries after restart: %d %v", len(raws), err)
		}
		if info, err := c2.Live().Channel(ll.Channel.ID); err != nil || info.PartMS != 250 {
			t.Fatalf("the low-latency channel after restart: %+v %v", info, err)
		}
	})
}

// A lookup of a live chain answers from its trees: segments up to the head
// only, edges before relays with the indices their substreams carry, the
// origin, and order limits for the edges; a segment past the head is 404.
// Heartbeats hand the watching edges their routes.
func TestLiveLookupFromTrees(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	ctx := context.Background()
	origin := h.newLiveOrigin()
	created, err := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).CreateChannel(ctx, wire.CreateChannelRequest{Name: "lookup"})
	requireAPIError(t, err, http.StatusUnauthorized)
	admin := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	admin.Token = h.admin
	if created, err = admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "lookup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	tc := newTestChain(t, origin, created.Channel.ID)
	chain := tc.g.ID()
	if err := origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
		t.Fatal(err)
	}
	for seq := range uint64(3) {
		e := tc.entry(origin, seq, byte(seq+1))
		if err := origin.client.AppendEntry(ctx, chain, e.Encode()); err != nil {
			t.Fatal(err)
		}
		tc.entries = append(tc.entries, e)
	}
	var relays, edges []wire.NodeID
	for range 2 {
		r := newTestNode().ID
		if err := h.c.AllowNode(ctx, wire.RoleRelay, r); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: r, Role: wire.RoleRelay, Addr: "http://127.0.0.1:7300", UploadCapBytes: 10_000_000, PricePerGB: 0.01}); err != nil {
			t.Fatal(err)
		}
		h.heartbeat(wire.HeartbeatRequest{NodeID: r})
		relays = append(relays, r)
	}
	for range 3 {
		edges = append(edges, h.edge(""))
	}
	var edgeSet *wire.LiveSet
	for _, e := range edges {
		if resp := h.heartbeat(wire.HeartbeatRequest{NodeID: e, LiveWatching: []content.VideoID{chain}}); resp.Live != nil && e == edges[0] {
			edgeSet = resp.Live
		}
	}
	h.clock.Advance(live.MinRebuildInterval)
	if resp := h.heartbeat(wire.HeartbeatRequest{NodeID: edges[0], LiveWatching: []content.VideoID{chain}}); resp.Live != nil {
		edgeSet = resp.Live
	}
	if edgeSet == nil || len(edgeSet.Routes) != content.DefaultLivePushShards {
		t.Fatalf("watching edge's live set: %+v", edgeSet)
	}
	// Malformed live reports are refused.
	_, err = h.client.Heartbeat(ctx, wire.HeartbeatRequest{NodeID: edges[0], PeerRTTMS: map[wire.NodeID]float64{edges[1]: -5}})
	requireAPIError(t, err, http.StatusBadRequest, "peer_rtt_ms")

	viewer := newTestNode()
	bob := h.user("bob")
	h.want(h.do("POST", wire.PathBindViewer, bob, h.viewerConsent(bob, viewer.Key)), 200)
	resp := h.lookup(wire.LookupRequest{Video: chain, From: 0, Count: 10, ViewerID: viewer.ID})
	if len(resp.Segments) != 3 {
		t.Fatalf("%d segments, want the 3 up to the head", len(resp.Segments))
	}
	if len(resp.Origins) != 1 || resp.Origins[0].NodeID != origin.id.ID {
		t.Fatalf("origins %+v", resp.Origins)
	}
	covered := map[int]int{}
	seenRelay := false
	for _, src := range resp.Segments[0].Sources {
		isRelay := slices.Contains(relays, src.NodeID)
		if !isRelay && !slices.Contains(edges, src.NodeID) {
			t.Fatalf("source %s is neither a watching edge nor a relay", src.NodeID)
		}
		if seenRelay && !isRelay {
			t.Fatalf("edge %s ranked after a relay", src.NodeID)
		}
		seenRelay = seenRelay || isRelay
		if !isRelay {
			for _, i := range src.Shards {
				covered[i]++
			}
		}
	}
	for i := range content.DefaultLivePushShards {
		if covered[i] < 2 {
			t.Fatalf("index %d reaches %d edges, want every pushed index on at least 2: %v", i, covered[i], covered)
		}
	}
	if len(resp.Limits) == 0 {
		t.Fatal("no order limits for the live edges")
	}
	for _, l := range resp.Limits {
		if l.Video != chain || l.Viewer != viewer.ID || !slices.Contains(edges, l.Edge) {
			t.Fatalf("limit %+v", l)
		}
	}
	_, err = h.client.Lookup(ctx, wire.LookupRequest{Video: chain, From: 3, Count: 1})
	requireAPIError(t, err, http.StatusNotFound, "not published yet")
	_, err = h.client.Lookup(ctx, wire.LookupRequest{Video: chain, Rendition: 1, From: 0, Count: 1})
	requireAPIError(t, err, http.StatusBadRequest, "rendition")
}

// A registration's RTMP address must be an origin's, rtmp://IP:PORT from
// the address it registers from; anything else is refused and registers
// nothing.
func TestRegisterRTMPAddr(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	ctx := context.Background()
	id := newTestNode()
	if err := h.c.AllowOrigin(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	cl := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(id.Key, h.clock.Now))
	for _, tc := range []struct {
		role wire.Role
		rtmp string
		says string
	}{
		{wire.RoleOrigin, "rtmp://192.0.2.1:1935", "not the address this registration came from"},
		{wire.RoleOrigin, "http://127.0.0.1:1935", "rtmp_addr"},
		{wire.RoleOrigin, "rtmp://127.0.0.1", "port"},
		{wire.RoleOrigin, "rtmp://127.0.0.1:1935/live", "rtmp_addr"},
		{wire.RoleEdge, "rtmp://127.0.0.1:1935", "only origins"},
	} {
		_, err := cl.Register(ctx, wire.RegisterRequest{NodeID: id.ID, Role: tc.role, Addr: "http://127.0.0.1:7100", RTMPAddr: tc.rtmp})
		requireAPIError(t, err, http.StatusBadRequest, tc.says)
	}
	h.c.mu.RLock()
	registered := h.c.st.nodes[id.ID] != nil
	h.c.mu.RUnlock()
	if registered {
		t.Fatal("a refused registration registered the node")
	}
}

// Rotating a channel's stream key is its owner's or an admin's: an
// anonymous caller, another account and an unknown channel are refused
// with the key unchanged; after a rotation the old key is refused and the
// new one authorizes, offering the broadcast's chain to resume.
func TestRotateStreamKey(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	ctx := context.Background()
	origin := h.newLiveOrigin()
	bob := h.user("bob")
	h.want(h.do("POST", wire.PathLiveBroadcasters, h.admin, wire.AllowBroadcasterRequest{Username: "bob"}), http.StatusOK)
	owner := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	owner.Token = bob
	created, err := owner.CreateChannel(ctx, wire.CreateChannelRequest{Name: "rotating"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Channel.ID
	if _, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	tc := newTestChain(t, origin, id)
	if err := origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
		t.Fatal(err)
	}
	if err := origin.client.AppendEntry(ctx, tc.g.ID(), tc.entry(origin, 0, 1).Encode()); err != nil {
		t.Fatal(err)
	}
	rotate := strings.Replace(wire.PathLiveRotateKey, "{channel}", string(id), 1)
	h.want(h.do("POST", rotate, "", struct{}{}), http.StatusUnauthorized)
	h.want(h.do("POST", rotate, h.user("mallory"), struct{}{}), http.StatusForbidden, "neither owns the channel nor is an admin")
	h.want(h.do("POST", strings.Replace(wire.PathLiveRotateKey, "{channel}", "ch_00000000000000ff", 1), bob, struct{}{}), http.StatusNotFound)
	if _, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatalf("a refused rotation changed the key: %v", err)
	}

	rotated, err := owner.RotateStreamKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.StreamKey == created.StreamKey || rotated.Channel.ID != id || len(rotated.RTMPIngest) != 1 || !strings.HasSuffix(rotated.RTMPIngest[0], rotated.StreamKey) {
		t.Fatalf("rotation answered %+v", rotated)
	}
	_, err = origin.client.AuthorizeIngest(ctx, created.StreamKey)
	requireAPIError(t, err, http.StatusForbidden, "no channel has this stream key")
	auth, err := origin.client.AuthorizeIngest(ctx, rotated.StreamKey)
	if err != nil || auth.Channel.ID != id || auth.Resume != tc.g.ID() {
		t.Fatalf("the new key: %+v %v, want channel %s resuming chain %s", auth, err, id, tc.g.ID())
	}
	// An admin rotates too; the key survives a restart of the coordinator.
	admin := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	admin.Token = h.admin
	again, err := admin.RotateStreamKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Live().AuthorizeIngest(origin.id.ID, again.StreamKey); err != nil {
		t.Fatalf("the rotated key after a restart: %v", err)
	}
	if _, err := restarted.Live().AuthorizeIngest(origin.id.ID, rotated.StreamKey); err == nil {
		t.Fatal("the key rotated away authorizes after a restart")
	}
}

// Two coordinators on one store: a channel created on one and a key
// rotated there reach the other at its next ingest authorization, so the
// old key is refused everywhere, not only where it was rotated.
func TestRotatedKeyReachesTheOtherCoordinator(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	ctx := context.Background()
	origin := h.newLiveOrigin()
	other, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	otherSrv := httptest.NewServer(other.Handler())
	t.Cleanup(otherSrv.Close)
	atOther := wire.NewCoordinatorClient(otherSrv.URL, otherSrv.Client()).AsNode(wire.NewNodeSigner(origin.id.Key, h.clock.Now))
	if _, err := atOther.Register(ctx, wire.RegisterRequest{NodeID: origin.id.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:7100", RTMPAddr: "rtmp://127.0.0.1:1935"}); err != nil {
		t.Fatal(err)
	}
	bob := h.user("bob")
	h.want(h.do("POST", wire.PathLiveBroadcasters, h.admin, wire.AllowBroadcasterRequest{Username: "bob"}), http.StatusOK)
	owner := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	owner.Token = bob
	created, err := owner.CreateChannel(ctx, wire.CreateChannelRequest{Name: "two coordinators"})
	if err != nil {
		t.Fatal(err)
	}
	if auth, err := atOther.AuthorizeIngest(ctx, created.StreamKey); err != nil || auth.Channel.ID != created.Channel.ID {
		t.Fatalf("the other coordinator on a channel created after it started: %+v %v", auth, err)
	}
	rotated, err := owner.RotateStreamKey(ctx, created.Channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = atOther.AuthorizeIngest(ctx, created.StreamKey)
	requireAPIError(t, err, http.StatusForbidden, "no channel has this stream key")
	if auth, err := atOther.AuthorizeIngest(ctx, rotated.StreamKey); err != nil || auth.Channel.ID != created.Channel.ID {
		t.Fatalf("the rotated key at the other coordinator: %+v %v", auth, err)
	}
}
