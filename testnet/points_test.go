package testnet

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// TestPointsEndToEnd runs the network with accounts: a paid video cannot be
// played before it is unlocked, unlocking spends points, players sign
// orders as bytes arrive, edges settle them when they stop, and the
// coordinator credits the edges' accounts with flows that match what the
// players received, in a ledger that balances.
func TestPointsEndToEnd(t *testing.T) {
	n := startNet(t, Config{Edges: 5, Videos: 1, Seed: 5, GrantPoints: 100, AuditInterval: -1})
	ctx := context.Background()
	video := n.Videos[0]
	nodes := n.AliveEdges()

	if err := n.Admin.SetPrice(ctx, video, 500); err != nil {
		t.Fatal(err)
	}
	// Too expensive: no key, no play, and the unlock says why.
	if _, err := nodes[0].Viewer.Play(ctx, video, viewer.PlayOptions{Rendition: -1, Speed: 8}); !errors.Is(err, viewer.ErrNotEntitled) {
		t.Fatalf("play of an unpaid video: %v, want ErrNotEntitled", err)
	}
	_, err := nodes[0].Account.UnlockVideo(ctx, video)
	var ae *wire.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusPaymentRequired {
		t.Fatalf("unlock with 100 of 500 points: %v, want 402", err)
	}
	if err := n.Admin.SetPrice(ctx, video, 5); err != nil {
		t.Fatal(err)
	}
	var players []*EdgeNode
	for _, nd := range nodes[:3] {
		u, err := nd.Account.UnlockVideo(ctx, video)
		if err != nil || u.Charged != 5 || u.Balance != 95 {
			t.Fatalf("unlock: %+v, %v; want charged 5, balance 95", u, err)
		}
		players = append(players, nd)
	}
	// Warm the edges, then play on three of them.
	playAll(t, players[:1], n.Videos[0], 8)
	waitPlacement(n, 8*segmentsOf(n, n.Videos[0]), 10*time.Second)
	qs := playAll(t, players, n.Videos[0], 4)
	fromEdges := fromOtherEdges(players, qs)

	// Only audited edges are paid: audit every edge before they stop.
	auditAll(t, n)
	// Stopping the edges settles what they hold.
	var served int64
	for _, e := range n.AliveEdges() {
		served += e.Edge.BytesServed()
		n.StopEdge(e)
	}
	var credited, flowBytes int64
	for _, e := range nodes {
		c, frozen, err := n.Store.EdgeEarnings(ctx, e.Identity.ID)
		if err != nil {
			t.Fatal(err)
		}
		if frozen != 0 {
			t.Errorf("edge %d has %d frozen points", e.Index, frozen)
		}
		credited += c
		flows, err := n.Store.FlowsFromEdge(ctx, e.Identity.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			flowBytes += f.Bytes
		}
	}
	t.Logf("players got %d bytes from other accounts' edges; edges served %d (prefetch included); settled flows %d bytes; %d points credited", fromEdges, served, flowBytes, credited)
	if credited <= 0 {
		t.Fatal("no points credited to any edge")
	}
	// Players pay for every verified shard they received from other
	// accounts' edges (including late spares; their own edge earns nothing
	// from them), never for more than the edges sent.
	if flowBytes < fromEdges || flowBytes > served {
		t.Errorf("settled %d bytes; want between the %d players used and the %d edges served", flowBytes, fromEdges, served)
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

// auditAll runs audit rounds until every alive edge that served bytes has
// passed an audit (settlement pays only audited edges). Rounds pick edges at
// random, so it runs a bounded number of them.
func auditAll(t *testing.T, n *Network) {
	t.Helper()
	ctx := context.Background()
	for range 200 {
		n.Coordinator.Accounting().AuditRound(ctx)
		missing := 0
		for _, e := range n.AliveEdges() {
			if e.Edge.BytesServed() == 0 { // nothing to settle
				continue
			}
			if tally, err := n.Store.AuditTally(ctx, e.Identity.ID); err != nil || tally.Passed == 0 || tally.Contained {
				missing++
			}
		}
		if missing == 0 {
			return
		}
	}
	t.Fatal("some edges still not audited after 200 audit rounds")
}

// fromOtherEdges sums the bytes each player (qs[i], on nodes[i]) received
// from edges other than its own: what settlement pays for (an account's own
// edge serving its own player is self-dealing, never paid).
func fromOtherEdges(nodes []*EdgeNode, qs []viewer.QoE) int64 {
	var sum int64
	for i, q := range qs {
		sum += q.EdgeBytes - q.BytesBySource[nodes[i].Identity.ID]
	}
	return sum
}
