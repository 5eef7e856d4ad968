package live

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
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
	// Nobody watches: no sets.
	if set := s.Heartbeat("edge-a", nil, nil, now); set != nil {
		t.Fatalf("set before anyone watches: %+v", set)
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
	// A new watcher inside the rate limit waits; after it, it is built.
	if set := s.Heartbeat("edge-c", []content.VideoID{chain}, nil, now); set != nil {
		t.Fatalf("rebuilt inside the rate limit: %+v", set)
	}
	now = now.Add(MinRebuildInterval)
	if set := s.Heartbeat("edge-c", []content.VideoID{chain}, nil, now); set == nil || len(set.Routes) == 0 {
		t.Fatalf("new watcher after the rate limit: %+v", set)
	}
	// The end empties every set.
	if _, err := s.EndChannel(ctx, owner, created.Channel.ID); err != nil {
		t.Fatal(err)
	}
	if set := s.Heartbeat("edge-a", []content.VideoID{chain}, nil, now); set == nil || len(set.Routes) != 0 {
		t.Fatalf("after the end: %+v, want an empty set", set)
	}
}
