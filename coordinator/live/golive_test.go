package live

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// A chain gets trees when it goes live, before anyone watches, so its first
// segments land on carriers; that costs relay upload for nobody, so it is
// bounded: the MaxGoLiveChains youngest unwatched chains, each until its
// GoLiveSegments-th entry. A chain watched later gets its trees back.
func TestGoLiveTreesAreBounded(t *testing.T) {
	ctx := context.Background()
	db, err := coordinatordb.OpenConfig(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), coordinatordb.Config{
		PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
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
	s.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: "http://o"})
	for _, r := range []wire.NodeID{"relay-a", "relay-b"} {
		s.NodeUp(TreeNode{ID: r, Role: wire.RoleRelay, Addr: "http://" + string(r), UploadCap: 100_000_000, PricePerGB: 0.01})
	}
	edges := []wire.NodeID{"edge-a", "edge-b", "edge-c"}
	for _, e := range edges {
		s.NodeUp(TreeNode{ID: e, Role: wire.RoleEdge, Addr: "http://" + string(e)})
	}
	// build is what a heartbeat after the rate limit sees.
	build := func() map[content.VideoID][]map[wire.NodeID]wire.NodeID {
		t.Helper()
		now = now.Add(MinRebuildInterval)
		s.Heartbeat(origin, nil, nil, now)
		return s.Trees()
	}
	// MaxGoLiveChains + 1 chains start a second apart; nobody watches.
	var chains []content.VideoID
	for i := range MaxGoLiveChains + 1 {
		created, err := s.CreateChannel(ctx, owner.ID, wire.CreateChannelRequest{Name: fmt.Sprintf("golive %d", i)})
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
			t.Fatalf("chain %d: %v", i, err)
		}
		chains = append(chains, chain)
		build()
	}
	oldest, youngest := chains[0], chains[len(chains)-1]
	trees := build()
	if len(trees) != MaxGoLiveChains {
		t.Fatalf("%d chains have trees, want the %d youngest", len(trees), MaxGoLiveChains)
	}
	if _, ok := trees[oldest]; ok {
		t.Fatal("the oldest unwatched chain has trees past MaxGoLiveChains")
	}
	goLiveEdges := func(chain content.VideoID) int {
		n := 0
		for id := range s.Carriers(chain) {
			if slices.Contains(edges, id) {
				n++
			}
		}
		return n
	}
	if n := goLiveEdges(youngest); n != MinEdgesPerChain {
		t.Fatalf("the youngest chain's trees reach %d edges, want %d assigned", n, MinEdgesPerChain)
	}
	// The youngest publishes GoLiveSegments entries unwatched: its go-live
	// trees go, and the oldest takes its place among the young ones.
	var prev *content.LiveEntry
	for seq := range uint64(GoLiveSegments) {
		e := &content.LiveEntry{Chain: youngest, Seq: seq, Prev: content.Hash(youngest),
			Segments: []content.Segment{{Duration: 1_000_000, Size: 4096, Root: content.Hash{byte(seq)}}}}
		if prev != nil {
			e.Prev = prev.Hash()
		}
		e.Sign(key)
		if err := s.AppendEntry(ctx, origin, youngest, e.Encode()); err != nil {
			t.Fatal(err)
		}
		prev = e
		if seq+2 == GoLiveSegments {
			if _, ok := build()[youngest]; !ok {
				t.Fatalf("trees gone before entry %d", GoLiveSegments-1)
			}
		}
	}
	trees = build()
	if _, ok := trees[youngest]; ok {
		t.Fatalf("an unwatched chain past %d entries still has trees", GoLiveSegments)
	}
	if _, ok := trees[oldest]; !ok || len(trees) != MaxGoLiveChains {
		t.Fatalf("%d chains have trees (oldest: %v), want %d with the oldest back", len(trees), ok, MaxGoLiveChains)
	}
	// Watched, the old chain has trees again, with its watcher in them.
	s.Heartbeat("edge-c", []content.VideoID{youngest}, nil, now)
	build()
	if _, ok := s.Carriers(youngest)["edge-c"]; !ok {
		t.Fatalf("a watched chain past go-live: carriers %v, want its watcher edge-c", s.Carriers(youngest))
	}
}

// Go-live trees take only the relay upload the watched chains leave:
// BuildTrees places watched chains first whatever the chain ids' order.
func TestGoLiveTreesComeAfterWatchedChains(t *testing.T) {
	// One relay with room for one chain's stream (5 substreams of 1/4 of
	// 100 kB/s each: 125 kB/s) plus a little.
	nodes := network(1, 130_000, 4)
	all := edgesOf(nodes)
	unwatched := TreeChain{Chain: content.VideoID{0x01}, Origin: "origin", RateBytes: 100_000, SegmentMS: 1000, K: 4, Edges: all[:2], Unwatched: true}
	watchedChain := TreeChain{Chain: content.VideoID{0xff}, Origin: "origin", RateBytes: 100_000, SegmentMS: 1000, K: 4, Edges: all[2:]}
	out := BuildTrees(TreeInput{Nodes: nodes, Chains: []TreeChain{unwatched, watchedChain}, Substreams: 5, PushShards: 5})
	alone := BuildTrees(TreeInput{Nodes: nodes, Chains: []TreeChain{watchedChain}, Substreams: 5, PushShards: 5})
	if !reflect.DeepEqual(out.Parent[watchedChain.Chain], alone.Parent[watchedChain.Chain]) {
		t.Fatalf("the watched chain's trees beside a go-live chain %v, want those it gets alone %v", out.Parent[watchedChain.Chain], alone.Parent[watchedChain.Chain])
	}
	// And the go-live chain still has trees to its assigned edges (what
	// the relay has left, else the origin).
	if trees := out.Parent[unwatched.Chain]; len(trees) != 5 {
		t.Fatalf("go-live chain: %d trees, want 5", len(trees))
	}
}
