package testnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// scrape reads one sample of an edge's /metrics ("name" or
// `name{label="value"}`); 0 if absent.
func scrape(t *testing.T, e *EdgeNode, series string) float64 {
	t.Helper()
	resp, err := http.Get(e.Server.Advertise + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// ATTACK: an outsider floods an edge (started without --coordinator-key,
// as in the README) with order limits it signed itself. Before: the edge
// kept them unverified (100,000 pairs in 17 s, RSS 42 → 443 MB, orders.json
// 60 MB, real orders then refused). After: the edge learnt its
// coordinator's key when it registered, refuses every forged limit before
// keeping anything, and still takes (and is paid for) real viewers' orders.
func TestForgedOrderFloodIsRefused(t *testing.T) {
	n := startNet(t, Config{Edges: 4, Videos: 1, Seed: 11, GrantPoints: 100, AuditInterval: -1})
	video := n.Videos[0]
	nodes := n.AliveEdges()
	victim := nodes[1]
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video), 10*time.Second)

	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	outsider := identity.New()
	const flood = 1000
	for i := range flood {
		l := wire.OrderLimit{Edge: victim.Identity.ID, Viewer: outsider.ID, Video: video, MaxBytes: 1 << 40, ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
		l.Serial[0], l.Serial[1], l.Serial[2] = byte(i), byte(i>>8), 0xbd
		wire.SignOrderLimit(forger, &l)
		o := wire.Order{Serial: l.Serial, Amount: 1 << 30}
		wire.SignOrder(outsider.Key, &o)
		err := wire.SendFinalOrder(context.Background(), http.DefaultClient, victim.Server.Advertise, wire.SettlementPair{Limit: l, Order: o})
		var apiErr *wire.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
			t.Fatalf("forged order %d: %v, want a 400", i, err)
		}
	}
	if got := scrape(t, victim, "swarmcast_edge_unsettled_orders"); got != 0 {
		t.Fatalf("the victim holds %v unsettled orders after the flood, want 0", got)
	}
	if got := scrape(t, victim, `swarmcast_edge_orders_total{result="bad_limit"}`); got != flood {
		t.Errorf("orders{result=bad_limit} = %v, want %d", got, flood)
	}
	if fi, err := os.Stat(filepath.Join(n.cfg.Dir, "edge-1", "orders.json")); err == nil && fi.Size() > 64<<10 {
		t.Errorf("orders.json is %d bytes after the flood", fi.Size())
	}

	// Real viewers are still paid by this edge.
	servedBefore := victim.Edge.BytesServed()
	playAll(t, []*EdgeNode{nodes[0], nodes[2], nodes[3]}, video, 4)
	if victim.Edge.BytesServed() > servedBefore {
		if got := scrape(t, victim, `swarmcast_edge_orders_total{result="accepted"}`); got == 0 {
			t.Error("the victim served real viewers after the flood but accepted none of their orders")
		}
	}
}

// ATTACK (on itself): the disk of an honest edge corrupts a shard. Before:
// the edge served it with a signed receipt and was disqualified at once
// without noticing. After: it verifies before signing, drops the shard
// (the coordinator hears it gone), fetches it again, and stays unbanned
// while players play through it.
func TestCorruptDiskShardNeverGetsAnEdgeBanned(t *testing.T) {
	// No placement rounds: nothing copies edge 0's shards (which would put
	// them in its memory cache) before its disk rots them.
	n := startNet(t, Config{Edges: 4, Videos: 1, Seed: 12, AuditInterval: -1, PlacementInterval: time.Hour})
	video := n.Videos[0]
	nodes := n.AliveEdges()
	playAll(t, nodes[:1], video, 8) // edge 0 keeps every shard it watched
	holder := nodes[0]
	dir := filepath.Join(n.cfg.Dir, "edge-0", "shards", video.String())
	files, err := os.ReadDir(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("edge 0 holds no shard files: %v", err)
	}
	cc := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	heldShards := func() int {
		infos, err := cc.Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range infos {
			if nd.NodeID == holder.Identity.ID {
				return nd.Shards
			}
		}
		return -1
	}
	before := heldShards()
	// Rot every stored shard of the first two segments on disk (shards kept
	// from watching were never served, so none is in the memory cache).
	var rotted []content.ShardRef
	for _, f := range files {
		var r, s, i int
		var kind string
		if _, err := fmt.Sscanf(strings.Replace(f.Name(), ".", " ", 1), "%d-%d-%d %s", &r, &s, &i, &kind); err != nil || s > 1 {
			continue
		}
		name := filepath.Join(dir, f.Name())
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0x01
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		rotted = append(rotted, content.SegmentRef{Video: video, Rendition: r, Segment: s}.Shard(i))
	}
	if len(rotted) == 0 {
		t.Fatal("nothing rotted")
	}
	// A viewer asks for them: no receipt is ever signed over the bad bytes.
	for _, k := range rotted {
		resp, err := wire.GetShard(context.Background(), http.DefaultClient, wire.ShardRequest{Base: holder.Server.Advertise, Ref: k, MaxBytes: 1 << 20})
		if err == nil || resp.Receipt != "" {
			t.Fatalf("rotted shard %s served (receipt %q, err %v), want refused", k, resp.Receipt, err)
		}
	}
	if got := scrape(t, holder, `swarmcast_edge_verify_failures_total{where="serve"}`); got != float64(len(rotted)) {
		t.Errorf("verify_failures{where=serve} = %v, want %d", got, len(rotted))
	}
	// The coordinator hears them gone with the next heartbeat.
	if !waitUntil(30*time.Second, func() bool { return heldShards() <= before-len(rotted) }) {
		t.Errorf("the coordinator still lists %d shards on the edge (had %d, %d dropped)", heldShards(), before, len(rotted))
	}
	playAll(t, nodes[1:], video, 4)
	nodesInfo, err := wire.NewCoordinatorClient(n.CoordinatorURL, nil).Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodesInfo {
		if nd.Banned {
			t.Errorf("node %s was banned; no edge lies here", nd.NodeID)
		}
	}
}
