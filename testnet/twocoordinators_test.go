package testnet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/pgtest"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// TestTwoCoordinatorsOnePostgres runs two coordinators on one PostgreSQL
// store. Edges heartbeat to both, so the same lookup at either returns the
// same edges with the same shards; players spread over both coordinators
// play, and the edges settle with the primary what limits from either
// signed, visible alike through the other coordinator's API.
func TestTwoCoordinatorsOnePostgres(t *testing.T) {
	n := startNet(t, Config{Edges: 4, Videos: 1, Seed: 11, GrantPoints: 100, AuditInterval: -1,
		Coordinators: 2, DSN: freshPostgres(t)})
	ctx := context.Background()
	video := n.Videos[0]
	nodes := n.AliveEdges()
	if n.CoordinatorURLs[0] == n.CoordinatorURLs[1] {
		t.Fatal("both coordinators at one URL")
	}
	// Players on odd edges use coordinator B (testnet spreads them).
	var onB []*EdgeNode
	for _, nd := range nodes {
		if nd.Index%2 == 1 {
			onB = append(onB, nd)
		}
	}

	// Warm the edges through B, let placement (the primary's) spread shards.
	qs := playAll(t, onB[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video), 10*time.Second)

	// The same lookup at A and at B: same edges, same shard indices.
	asker := nodes[0]
	atA := clientAt(n.CoordinatorURLs[0], asker.Account.Token)
	atB := clientAt(n.CoordinatorURLs[1], asker.Account.Token)
	var a, b map[string][]int
	agree := waitUntil(10*time.Second, func() bool {
		a = holdings(t, atA, n, video, asker.Identity.ID)
		b = holdings(t, atB, n, video, asker.Identity.ID)
		return len(a) > 0 && maps.EqualFunc(a, b, slices.Equal[[]int])
	})
	if !agree {
		t.Fatalf("lookups disagree after 10s: %d holdings at A, %d at B; first difference: %s", len(a), len(b), firstDifference(a, b))
	}
	t.Logf("lookups at A and B agree on %d (segment, edge) holdings", len(a))

	// Players on B play; their edges settle with A when they stop.
	qs = append(qs, playAll(t, onB, video, 4)...)
	fromEdges := fromOtherEdges(append(onB[:1:1], onB...), qs)
	if fromEdges == 0 {
		t.Fatal("players on B got nothing from edges")
	}
	auditAll(t, n) // settlement pays only audited edges
	n.StopEdges()

	adminB := clientAt(n.CoordinatorURLs[1], n.Admin.Token)
	var flowBytesB, flowBytesStore, balanceB int64
	for _, e := range nodes {
		flows, err := adminB.FlowsFromEdge(ctx, e.Identity.ID, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatalf("flows of edge %d through B: %v", e.Index, err)
		}
		for _, f := range flows {
			flowBytesB += f.Bytes
		}
		stored, err := n.Store.FlowsFromEdge(ctx, e.Identity.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range stored {
			flowBytesStore += f.Bytes
		}
		meB, err := clientAt(n.CoordinatorURLs[1], e.Account.Token).Me(ctx)
		if err != nil {
			t.Fatalf("account of edge %d through B: %v", e.Index, err)
		}
		meA, err := e.Account.Me(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if meA.Balance != meB.Balance {
			t.Errorf("edge %d's balance: %d at A, %d at B", e.Index, meA.Balance, meB.Balance)
		}
		balanceB += meB.Balance - 100 // less the grant
	}
	t.Logf("players got %d bytes from edges; settled %d bytes (B's API), %d (store); %d points earned", fromEdges, flowBytesB, flowBytesStore, balanceB)
	if flowBytesB != flowBytesStore {
		t.Errorf("B reports %d settled bytes, the store %d", flowBytesB, flowBytesStore)
	}
	if rej, err := n.Store.RejectionCounts(ctx); err == nil {
		for reason, c := range rej {
			if c > 0 {
				t.Logf("rejected at settlement: %d pairs as %s", c, reason)
			}
		}
	}
	if flowBytesB < fromEdges {
		t.Errorf("settled %d bytes, less than the %d players on B received from other accounts' edges (limits signed by B refused?)", flowBytesB, fromEdges)
	}
	if balanceB <= 0 {
		t.Error("no points credited to any edge account, as seen through B")
	}
	if err := n.Store.CheckLedger(ctx); err != nil {
		t.Errorf("ledger: %v", err)
	}
	rejections, err := n.Store.RejectionCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for reason, count := range rejections {
		if count > 0 {
			t.Errorf("%d honest pairs rejected as %s", count, reason)
		}
	}
}

// clientAt is a coordinator client at url carrying a session token.
func clientAt(url, token string) *wire.CoordinatorClient {
	c := wire.NewCoordinatorClient(url, nil)
	c.Token = token
	return c
}

// holdings looks up every segment of every rendition and returns, per
// "rendition/segment/edge", the sorted shard indices that edge holds.
func holdings(t *testing.T, c *wire.CoordinatorClient, n *Network, video content.VideoID, viewerID wire.NodeID) map[string][]int {
	t.Helper()
	m, err := n.Origins[0].Store.Manifest(video)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]int)
	for r, rend := range m.Renditions {
		for from := 0; from < len(rend.Segments); from += wire.MaxLookupCount {
			resp, err := c.Lookup(context.Background(), wire.LookupRequest{Video: video, Rendition: r, From: from,
				Count: min(wire.MaxLookupCount, len(rend.Segments)-from), ViewerID: viewerID, Region: "local"})
			if err != nil {
				t.Fatalf("lookup at %s: %v", c.Base, err)
			}
			for _, seg := range resp.Segments {
				for _, s := range seg.Sources {
					shards := slices.Clone(s.Shards)
					slices.Sort(shards)
					out[fmt.Sprintf("%d/%d/%s", r, seg.Segment, s.NodeID)] = shards
				}
			}
		}
	}
	return out
}

func firstDifference(a, b map[string][]int) string {
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !slices.Equal(a[k], b[k]) {
			return fmt.Sprintf("%s: %v at A, %v at B", k, a[k], b[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			return fmt.Sprintf("%s: missing at A, %v at B", k, b[k])
		}
	}
	return "none"
}

// freshPostgres creates an empty schema for one test and returns a DSN
// whose search_path points at it; it skips the test without PostgreSQL.
func freshPostgres(tb testing.TB) string { return pgtest.FreshSchema(tb, "testnet") }
