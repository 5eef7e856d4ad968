package testnet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/wire"
)

// TestAdminDashboardInBrowser: after real, settled plays, the admin
// dashboard in chromium draws load points, moves without a reload (the
// event stream adds updates), violates no CSP, and from the account table
// (the edges have stopped, to settle) leads to the flow view of an edge,
// which lists the viewer it fed, and
// from there back to the edges that fed that viewer.
func TestAdminDashboardInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	n := startNet(t, Config{Edges: 3, Videos: 1, Seed: 11, OverviewBucket: time.Second, AuditInterval: -1})
	ctx := context.Background()
	video := n.Videos[0]
	nodes := n.AliveEdges()
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video), 10*time.Second)
	playAll(t, nodes[1:], video, 4)
	auditAll(t, n)
	for _, e := range n.AliveEdges() {
		n.StopEdge(e) // stopping settles what the edge holds
	}
	// The edge that served the most settled bytes, and one viewer it fed.
	var edge, fed wire.NodeID
	var most int64
	for _, e := range nodes {
		flows, err := n.Store.FlowsFromEdge(ctx, e.Identity.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, f := range flows {
			sum += f.Bytes
		}
		if sum > most {
			edge, fed, most = e.Identity.ID, flows[0].Viewer, sum
		}
	}
	if most == 0 {
		t.Fatal("no settled flow after the plays")
	}

	admin := b.NewSession("admin")
	admin.WatchCSP()
	logInInBrowser(t, admin, n.CoordinatorURL, n.AdminCredentials())
	if r := admin.Open(n.CoordinatorURL + wire.PageAdmin); r.Status != 200 {
		t.Fatalf("admin page: %d", r.Status)
	}
	if err := admin.WaitFor(`document.querySelector("#load-chart canvas") !== null && Number(document.getElementById("load-chart").dataset.points) > 0`, 15*time.Second); err != nil {
		t.Fatalf("the admin dashboard draws no load points: %v", err)
	}
	// Without a reload, the event stream brings a new snapshot each bucket.
	if err := admin.WaitFor(`Number(document.getElementById("load-chart").dataset.updates || 0) >= 2`, 15*time.Second); err != nil {
		t.Fatalf("the load chart did not move without a reload: %v", err)
	}
	if got := browsertest.MustEval[string](admin, `document.querySelector('[data-metric="minutes_streamed"]').textContent`); got == "0.0" {
		t.Errorf("minutes streamed %q after three plays", got)
	}
	admin.Screenshot("admin-dashboard")

	admin.MustDo("open the edge's flows from its account row", chromedp.Click(chromedp.CSS(`a[href="`+wire.PageAdminFlows+`?edge=`+string(edge)+`"]`)))
	waitPath(t, admin, wire.PageAdminFlows)
	if body := browsertest.MustEval[string](admin, `document.body.textContent`); !strings.Contains(body, string(fed)) {
		t.Fatalf("the flow view of edge %s does not list viewer %s:\n%s", edge, fed, body)
	}
	admin.Screenshot("admin-flows-edge")
	admin.MustDo("follow the viewer to the edges that fed it", chromedp.Click(chromedp.CSS(`a[href="`+wire.PageAdminFlows+`?viewer=`+string(fed)+`"]`)))
	if err := admin.WaitFor(`location.search.includes("viewer=") && document.readyState === "complete"`, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if body := browsertest.MustEval[string](admin, `document.body.textContent`); !strings.Contains(body, string(edge)) {
		t.Fatalf("the flow view of viewer %s does not list edge %s", fed, edge)
	}
	admin.Screenshot("admin-flows-viewer")
	if v := admin.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations on the admin pages: %v", v)
	}
}
