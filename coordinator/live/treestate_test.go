package live

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// A chain with watchers gets trees through heartbeats: each node's set
// comes once (nil while unchanged), a relay that leaves is replaced at the
// next heartbeat with a newer version, and the end of the chain empties
// every set.
func TestLiveSetsThroughHeartbeats(t *testing.T) {
	ctx := context.Background()
	db, err := coordinatordb.OpenConfig(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), coordinatordb.Config{
		PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	s, err := New(ctx, Config{Now: func() time.Time { return now }}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.CreateAccount(ctx, "owner", "correct horse battery", now)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	origin := wire.NodeID(hex.EncodeToString(pub))
	created, err := s.CreateChannel(ctx, owner.ID, wire.CreateChannelRequest{Name: "trees"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthorizeIngest(origin, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	var ck content.ContentKey
	g := &content.LiveGenesis{Channel: string(created.Channel.ID), Params: content.DefaultLiveParams(), KeyID: ck.ID(), TargetDuration: 1_000_000,
		Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
	g.Sign(key)
	chain, err := s.StartChain(ctx, origin, wire.LiveStartRequest{Genesis: g.Encode(), Key: ck[:]})
	if err != nil {
		t.Fatal(err)
	}

	s.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: "http://o"})
	relays := []wire.NodeID{"relay-a", "relay-b", "relay-c"}
	for _, r := range relays {
		s.NodeUp(TreeNode{ID: r, Role: wire.RoleRelay, Addr: "http://" + string(r), UploadCap: 10_000_000, PricePerGB: 0.01})
	}
	edges := []wire.NodeID{"edge-a", "edge-b", "edge-c"}
	for _, e := range edges {
		s.NodeUp(TreeNode{ID: e, Role: wire.RoleEdge, Addr: "http://" + string(e)})
	}
	if alive, excluded := s.RelayCounts(); alive != len(relays) || excluded != 0 {
		t.Fatalf("relay counts %d alive, %d excluded; want %d, 0", alive, excluded, len(relays))
	}
	// Nobody watches yet, but the chain just went live: its trees reach
	// MinEdgesPerChain assigned edges through the relays, so the first
	// segments land on carriers (GoLiveSegments).
	s.Heartbeat("edge-a", nil, nil, now)
	goLive := s.Carriers(chain)
	var goLiveEdges []wire.NodeID
	for id := range goLive {
		if slices.Contains(edges, id) {
			goLiveEdges = append(goLiveEdges, id)
		}
	}
	if len(goLiveEdges) != MinEdgesPerChain || len(goLive) <= MinEdgesPerChain {
		t.Fatalf("carriers at go-live %v: want %d assigned edges and relays", goLive, MinEdgesPerChain)
	}
	// Two edges watch; the first heartbeat builds the trees (with a second
	// edge assigned), the second watcher is built in after the rate limit.
	s.Heartbeat("edge-a", []content.VideoID{chain}, nil, now)
	set := s.Heartbeat("edge-b", []content.VideoID{chain}, nil, now)
	now = now.Add(MinRebuildInterval)
	if later := s.Heartbeat("edge-b", []content.VideoID{chain}, nil, now); later != nil {
		set = later
	}
	if set == nil || len(set.Routes) != content.DefaultLivePushShards {
		t.Fatalf("watching edge's set: %+v, want one route per substream", set)
	}
	for _, r := range set.Routes {
		if r.Chain != chain || r.Parent == "" || len(r.Children) > 0 {
			t.Fatalf("edge route %+v", r)
		}
	}
	if info, _ := s.Channel(created.Channel.ID); info.Viewers != 2 {
		t.Fatalf("viewers %d, want 2", info.Viewers)
	}
	if again := s.Heartbeat("edge-b", []content.VideoID{chain}, nil, now); again != nil {
		t.Fatalf("unchanged set sent again: %+v", again)
	}
	originSet := s.Heartbeat(origin, nil, nil, now)
	if originSet == nil || len(originSet.Routes) != content.DefaultLivePushShards {
		t.Fatalf("origin set: %+v", originSet)
	}
	// The relay feeding edge-b's substream 0 leaves: replaced at once.
	lost := set.Routes[0].Parent
	if lost == origin {
		t.Fatalf("substream 0 of edge-b comes from the origin although relays cost a quarter of its price")
	}
	s.NodeDown(lost)
	now = now.Add(10 * time.Millisecond) // well inside the watcher rate limit: a loss is not rate-limited
	next := s.Heartbeat("edge-b", []content.VideoID{chain}, nil, now)
	if next == nil || next.Version <= set.Version {
		t.Fatalf("after relay loss: %+v, want a newer set", next)
	}
	for _, r := range next.Routes {
		if r.Parent == lost || r.Parent == "" {
			t.Fatalf("substream %d still from %q", r.Substream, r.Parent)
		}
	}
	// edge-c was not needed once two edges watched: if it was a go-live
	// edge, its set has emptied.
	if set := s.Heartbeat("edge-c", nil, nil, now); set != nil && (!slices.Contains(goLiveEdges, "edge-c") || len(set.Routes) != 0) {
		t.Fatalf("edge-c (go-live edges %v) before it watches: %+v", goLiveEdges, set)
	}
	// A new watcher inside the rate limit waits; after it, it is built.
	if set := s.Heartbeat("edge-c", []content.VideoID{chain}, nil, now); set != nil {
		t.Fatalf("rebuilt inside the rate limit: %+v", set)
	}
	now = now.Add(MinRebuildInterval)
	if set := s.Heartbeat("edge-c", []content.VideoID{chain}, nil, now); set == nil || len(set.Routes) == 0 {
		t.Fatalf("new watcher after the rate limit: %+v", set)
	}
	// A relay that comes up counts; once excluded it no longer does.
	before, _ := s.RelayCounts()
	s.NodeUp(TreeNode{ID: "relay-d", Role: wire.RoleRelay, Addr: "http://relay-d", UploadCap: 10_000_000})
	if alive, _ := s.RelayCounts(); alive != before+1 {
		t.Fatalf("a relay came up: %d alive, want %d", alive, before+1)
	}
	s.excludeRelay("relay-d", relaySwitch{Chain: chain})
	if alive, excluded := s.RelayCounts(); alive != before || excluded != 1 {
		t.Fatalf("after an exclusion: relay counts %d alive, %d excluded; want %d, 1", alive, excluded, before)
	}
	// The end empties every set.
	if _, err := s.EndChannel(ctx, owner, created.Channel.ID); err != nil {
		t.Fatal(err)
	}
	if set := s.Heartbeat("edge-a", []content.VideoID{chain}, nil, now); set == nil || len(set.Routes) != 0 {
		t.Fatalf("after the end: %+v, want an empty set", set)
	}
}

// Only the newest MemoryEntries entries stay in memory; older ones are
// answered, compared (a fork of an old position is still a fork) and
// reloaded from the store.
func TestLiveMemoryWindow(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "c.db")
	open := func() *coordinatordb.DB {
		db, err := coordinatordb.OpenConfig(ctx, dsn, coordinatordb.Config{PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	s, err := New(ctx, Config{MemoryEntries: 2}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.CreateAccount(ctx, "owner", "correct horse battery", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	origin := wire.NodeID(hex.EncodeToString(pub))
	created, err := s.CreateChannel(ctx, owner.ID, wire.CreateChannelRequest{Name: "window"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthorizeIngest(origin, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	var ck content.ContentKey
	g := &content.LiveGenesis{Channel: string(created.Channel.ID), Params: content.DefaultLiveParams(), KeyID: ck.ID(), TargetDuration: 1_000_000,
		Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
	g.Sign(key)
	chain, err := s.StartChain(ctx, origin, wire.LiveStartRequest{Genesis: g.Encode(), Key: ck[:]})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*content.LiveEntry
	entry := func(seq uint64, root byte) *content.LiveEntry {
		prev := content.Hash(chain)
		if seq > 0 {
			prev = entries[seq-1].Hash()
		}
		e := &content.LiveEntry{Chain: chain, Seq: seq, Prev: prev, Segments: []content.Segment{{Duration: 1_000_000, Size: 4096, Root: content.Hash{root}}}}
		e.Sign(key)
		return e
	}
	for seq := range uint64(6) {
		e := entry(seq, 1)
		if err := s.AppendEntry(ctx, origin, chain, e.Encode()); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	if got, _ := s.Entries(ctx, chain, 0, 0); len(got) != 6 {
		t.Fatalf("entries from 0: %d, want 6 (the old ones from the store)", len(got))
	}
	if got, _ := s.Entries(ctx, chain, 5, 0); len(got) != 1 {
		t.Fatalf("entries from 5: %d", len(got))
	}
	if err := s.AppendEntry(ctx, origin, chain, entries[0].Encode()); err != nil {
		t.Fatalf("re-sending entry 0: %v", err)
	}
	if err := s.AppendEntry(ctx, origin, chain, entry(0, 9).Encode()); err == nil {
		t.Fatal("a fork of entry 0 was accepted")
	} else if st, _ := wire.StatusOf(err); st != 409 {
		t.Fatalf("fork of entry 0: %v", err)
	}
	s2, err := New(ctx, Config{MemoryEntries: 2}, open(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head, ok := s2.IsChain(chain); !ok || head != 5 {
		t.Fatalf("after restart: head %d %v", head, ok)
	}
	if got, _ := s2.Entries(ctx, chain, 0, 0); len(got) != 6 {
		t.Fatalf("entries from 0 after restart: %d", len(got))
	}
	e6 := entry(6, 1)
	if err := s2.AppendEntry(ctx, origin, chain, e6.Encode()); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
}

// With the tree chore running (the coordinator's Run), a heartbeat never
// waits for a build: it asks for one and returns, and the sets the chore
// built come with the following heartbeats.
func TestTreeChoreBuildsOffTheHeartbeat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := coordinatordb.OpenConfig(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), coordinatordb.Config{
		PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(ctx, Config{}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.CreateAccount(ctx, "owner", "correct horse battery", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	origin := wire.NodeID(hex.EncodeToString(pub))
	created, err := s.CreateChannel(ctx, owner.ID, wire.CreateChannelRequest{Name: "chore"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthorizeIngest(origin, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	var ck content.ContentKey
	g := &content.LiveGenesis{Channel: string(created.Channel.ID), Params: content.DefaultLiveParams(), KeyID: ck.ID(), TargetDuration: 1_000_000,
		Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
	g.Sign(key)
	chain, err := s.StartChain(ctx, origin, wire.LiveStartRequest{Genesis: g.Encode(), Key: ck[:]})
	if err != nil {
		t.Fatal(err)
	}
	s.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: "http://o"})
	s.NodeUp(TreeNode{ID: "relay-a", Role: wire.RoleRelay, Addr: "http://relay-a", UploadCap: 10_000_000, PricePerGB: 0.01})
	s.NodeUp(TreeNode{ID: "edge-a", Role: wire.RoleEdge, Addr: "http://edge-a"})
	s.NodeUp(TreeNode{ID: "edge-b", Role: wire.RoleEdge, Addr: "http://edge-b"})

	// The chore's builds are held here: a heartbeat meanwhile must still
	// answer (and ask for a build).
	s.buildMu.Lock()
	choreDone := make(chan struct{})
	go func() {
		defer close(choreDone)
		s.RunTrees(ctx)
	}()
	defer func() { cancel(); <-choreDone }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			<-time.After(10 * time.Millisecond)
		}
	}
	waitFor("the chore to start", func() bool {
		s.treeMu.Lock()
		defer s.treeMu.Unlock()
		return s.trees.chore
	})
	answered := make(chan *wire.LiveSet, 1)
	go func() { answered <- s.Heartbeat("edge-a", []content.VideoID{chain}, nil, time.Now()) }()
	select {
	case set := <-answered:
		if set != nil {
			s.buildMu.Unlock()
			t.Fatalf("a set before any build: %+v", set)
		}
	case <-time.After(10 * time.Second):
		s.buildMu.Unlock()
		t.Fatal("a heartbeat waited for the tree build")
	}
	s.buildMu.Unlock()
	var set *wire.LiveSet
	waitFor("edge-a's set from the chore's build", func() bool {
		set = s.Heartbeat("edge-a", []content.VideoID{chain}, nil, time.Now())
		return set != nil
	})
	if len(set.Routes) != content.DefaultLivePushShards {
		t.Fatalf("edge-a's set: %+v, want one route per substream", set)
	}
}
