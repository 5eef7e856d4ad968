package testnet

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/wire"
)

// pageCost is what one page view cost in the browser (Performance API).
type pageCost struct {
	HTML      int64   `json:"html"`      // bytes of the document body
	Assets    int64   `json:"assets"`    // bytes of every other resource's body
	Resources int64   `json:"resources"` // how many resources besides the document
	FCP       float64 `json:"fcp"`       // first-contentful-paint, ms from navigation start
}

const pageCostJS = `(() => {
	const nav = performance.getEntriesByType("navigation")[0];
	const res = performance.getEntriesByType("resource");
	const fcp = performance.getEntriesByName("first-contentful-paint")[0];
	return {html: nav.decodedBodySize, assets: res.reduce((a, r) => a + r.decodedBodySize, 0), resources: res.length, fcp: fcp ? fcp.startTime : -1};
})()`

// BenchmarkWebMeasure measures the web app's page weight and time to first
// paint in chromium on loopback (docs/PERFORMANCE.md, "Web app: page
// weight and first paint"): go test ./testnet -run '^$' -bench BenchmarkWebMeasure -benchtime 1x -v
//
// Each of 5 rounds opens a fresh browser profile, logs in as an edge's
// account (an edge, a ledger entry, so the dashboard is complete; the
// login returns to the landing page) and views landing, catalogue and
// dashboard, each twice in a row, starting at a different page each round:
// the first view has only what earlier pages loaded in the cache (app.css
// at least), the second is a warm repeat view. The landing page is the
// reference.
func BenchmarkWebMeasure(bm *testing.B) {
	t := bm
	b := browsertest.Start(t)
	n := startNet(t, Config{Edges: 1, Videos: 3, GrantPoints: 1000})
	base := n.CoordinatorURL
	pages := []string{wire.PageHome, wire.PageCatalogue, wire.PageDashboard}
	cold, warm := map[string][]pageCost{}, map[string][]pageCost{}
	const rounds = 5
	cr := n.EdgeCredentials(n.Edges()[0])
	view := func(s *browsertest.Session, p string) pageCost {
		s.Open(base + p)
		if err := s.WaitFor(`performance.getEntriesByName("first-contentful-paint").length > 0`, 10*time.Second); err != nil {
			t.Fatalf("%s: no first-contentful-paint: %v", p, err)
		}
		return browsertest.MustEval[pageCost](s, pageCostJS)
	}
	for round := range rounds {
		s := b.NewSession(fmt.Sprintf("measure-%d", round))
		s.Open(base + wire.PageLogin + "?next=%2F")
		s.MustDo("log in", chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), cr.Username),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), cr.Password),
			chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
		waitPath(t, s, wire.PageHome)
		for i := range pages {
			p := pages[(round+i)%len(pages)]
			cold[p] = append(cold[p], view(s, p))
			warm[p] = append(warm[p], view(s, p))
		}
	}
	median := func(costs map[string][]pageCost, p string) float64 {
		var v []float64
		for _, c := range costs[p] {
			v = append(v, c.FCP)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ref := median(cold, wire.PageHome)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("loadavg: %s", load)
	t.Logf("| page | HTML bytes | asset bytes | total bytes | resources | FCP first view, median of %d (ms) | / landing | FCP repeat view (ms) | / landing |", rounds)
	t.Logf("|---|---|---|---|---|---|---|---|---|")
	for _, p := range pages {
		c := cold[p][len(cold[p])-1]
		t.Logf("| `%s` | %d | %d | %d | %d | %.0f | %.2f | %.0f | %.2f |", p, c.HTML, c.Assets, c.HTML+c.Assets, c.Resources,
			median(cold, p), median(cold, p)/ref, median(warm, p), median(warm, p)/ref)
	}
}
