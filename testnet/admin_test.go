package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// TestAdminOverviewReflectsRealPlays: after real plays over loopback, the
// admin overview (over HTTP, as the admin) shows origin and edge egress in
// its closed buckets, an offload in [0, 1], minutes streamed from the
// play reports, and the node table lists every edge with what it served.
func TestAdminOverviewReflectsRealPlays(t *testing.T) {
	n := startNet(t, Config{Edges: 4, Videos: 1, Seed: 7, OverviewBucket: 500 * time.Millisecond, AuditInterval: -1})
	video := n.Videos[0]
	nodes := n.AliveEdges()
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video), 10*time.Second)
	playAll(t, nodes[1:], video, 4)

	ctx := context.Background()
	var ov wire.AdminOverview
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if ov, err = n.Admin.AdminOverview(ctx); err != nil {
			t.Fatal(err)
		}
		var origin, edge int64
		for _, p := range ov.Points {
			origin += p.OriginBytes
			edge += p.EdgeBytes
		}
		if origin > 0 && edge > 0 && ov.Metering.Plays >= int64(len(nodes)) {
			t.Logf("overview: %d points, origin %d B, edge %d B, window offload %.2f, %.2f minutes streamed", len(ov.Points), origin, edge, ov.WindowOffload, ov.Metering.MinutesStreamed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("overview after the plays: origin %d B, edge %d B in %d points, %d plays; want both > 0 and %d plays", origin, edge, len(ov.Points), ov.Metering.Plays, len(nodes))
		}
		time.Sleep(100 * time.Millisecond) // poll a real network, bounded by the deadline
	}
	if !(ov.WindowOffload > 0 && ov.WindowOffload <= 1) || !(ov.Metering.Offload > 0 && ov.Metering.Offload <= 1) {
		t.Fatalf("offload window %v, since start %v: want (0, 1]", ov.WindowOffload, ov.Metering.Offload)
	}
	if ov.Metering.MinutesStreamed <= 0 || ov.Metering.MoneySaved <= 0 {
		t.Fatalf("metering %+v: want minutes and money saved", ov.Metering)
	}
	page, err := n.Admin.AdminNodes(ctx, "", wire.AdminPageMax)
	if err != nil {
		t.Fatal(err)
	}
	served := map[wire.NodeID]int64{}
	for _, row := range page.Nodes {
		served[row.NodeID] = row.ServedBytes
	}
	var edgesServing int
	for _, e := range nodes {
		b, ok := served[e.Identity.ID]
		if !ok {
			t.Fatalf("edge %s missing from the node table", e.Identity.ID)
		}
		if b > 0 {
			edgesServing++
		}
	}
	if edgesServing == 0 {
		t.Fatal("no edge shows served bytes in the node table")
	}
	videos, err := n.Admin.AdminVideos(ctx)
	if err != nil || len(videos) != 1 || videos[0].Plays < int64(len(nodes)) || videos[0].MaxHolders == 0 {
		t.Fatalf("video table %+v, %v: want the video with its plays and holders", videos, err)
	}
}
