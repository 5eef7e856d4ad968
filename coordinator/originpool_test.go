package coordinator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/wire"
)

// zipfPool builds a pool of origins over a synthetic Zipf catalogue of
// blocks, each block one segment.
func zipfPool(t *testing.T, origins, blocks int, perServer, hysteresis float64) (*OriginPool, []content.SegmentRef) {
	t.Helper()
	cat, err := plan.SyntheticCatalogue(plan.CatalogueSpec{Blocks: blocks, Videos: blocks / 10, Zipf: 0.9, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]content.SegmentRef, cat.Blocks())
	seen := map[int32]int{}
	for m := range keys {
		v := cat.Video[m]
		keys[m] = content.SegmentRef{Video: videoNamed(fmt.Sprintf("v%03d", v)), Rendition: 0, Segment: seen[v]}
		seen[v]++
	}
	ids := make([]wire.NodeID, origins)
	for i := range ids {
		// Registered in reverse, so stack order must come from sorting.
		ids[i] = wire.NodeID(fmt.Sprintf("origin-%02d", origins-1-i))
	}
	p, err := NewOriginPool(OriginPoolConfig{PerServerRate: perServer, Hysteresis: hysteresis}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(keys, cat.Popularity, ids); err != nil {
		t.Fatal(err)
	}
	return p, keys
}

// checkDispatch asserts that many random requests all go to an active
// origin whose allocation holds the block, and that every route lists only
// such origins, the dispatched one first.
func checkDispatch(t *testing.T, p *OriginPool, keys []content.SegmentRef, rng *rand.Rand) {
	t.Helper()
	alloc := p.Allocation()
	for range 2000 {
		k := keys[rng.IntN(len(keys))]
		u := rng.Float64()
		s := p.Dispatch(k, u)
		b := p.Block(k)
		if s < 0 || s >= p.Active() {
			t.Fatalf("depth %d: %v dispatched to %d, not an active origin", p.Active(), k, s)
		}
		if !slices.Contains(alloc.Replicas[b], int32(s)) {
			t.Fatalf("depth %d: %v (block %d) dispatched to %d, which holds only %v", p.Active(), k, b, s, alloc.Replicas[b])
		}
		route := p.Route(nil, k, u, func(int) bool { return true })
		if len(route) == 0 || route[0] != s {
			t.Fatalf("route %v does not start with the dispatched origin %d", route, s)
		}
		for _, i := range route {
			if i >= p.Active() || !slices.Contains(alloc.Replicas[b], int32(i)) {
				t.Fatalf("route %v names %d, not an active holder of block %d", route, i, b)
			}
		}
	}
}

func TestOriginPoolScalesInStackOrder(t *testing.T) {
	const origins, perServer, hysteresis = 5, 100.0, 0.1
	p, keys := zipfPool(t, origins, 400, perServer, hysteresis)
	if got := p.Origins(); !slices.IsSorted(got) || len(got) != origins {
		t.Fatalf("stack order %v: want the %d origins sorted by id", got, origins)
	}
	if err := p.Allocation().Validate(); err != nil {
		t.Fatal(err)
	}
	th := p.Thresholds()
	rng := rand.New(rand.NewPCG(1, 2))
	if p.Active() != 1 {
		t.Fatalf("idle pool has %d origins on, want the 1 base origin", p.Active())
	}
	checkDispatch(t, p, keys, rng)

	// Rising load: each threshold crossed pushes exactly the next origin.
	for i := 1; i < origins; i++ {
		below := th[i].Activate * 0.999
		if d := p.ObserveRate(below); d != i {
			t.Fatalf("rate %.1f just below origin %d's threshold %.1f: depth %d, want %d", below, i, th[i].Activate, d, i)
		}
		if d := p.ObserveRate(th[i].Activate * 1.001); d != i+1 {
			t.Fatalf("rate just above origin %d's threshold %.1f: depth %d, want %d", i, th[i].Activate, d, i+1)
		}
		checkDispatch(t, p, keys, rng)
	}
	// Load oscillating inside the top origin's band never pops it.
	top := th[origins-1]
	for j := range 50 {
		r := top.Deactivate + (top.Activate-top.Deactivate)*float64(j%7)/7
		if d := p.ObserveRate(r); d != origins {
			t.Fatalf("rate %.1f inside the band [%.1f, %.1f]: depth %d, want %d (flapping)", r, top.Deactivate, top.Activate, d, origins)
		}
	}
	// Falling load: origins are popped in reverse stack order, each only
	// once the rate drops below its deactivation threshold.
	for i := origins - 1; i >= 1; i-- {
		if d := p.ObserveRate(th[i].Deactivate * 1.001); d != i+1 {
			t.Fatalf("rate just above origin %d's release %.1f: depth %d, want %d", i, th[i].Deactivate, d, i+1)
		}
		if d := p.ObserveRate(th[i].Deactivate * 0.999); d != i {
			t.Fatalf("rate just below origin %d's release %.1f: depth %d, want %d", i, th[i].Deactivate, d, i)
		}
		checkDispatch(t, p, keys, rng)
	}
	// And inside the lowest band, oscillation does not push it back.
	for j := range 50 {
		r := th[1].Deactivate + (th[1].Activate-th[1].Deactivate)*float64(j%5)/5
		if d := p.ObserveRate(r); d != 1 {
			t.Fatalf("rate %.1f inside origin 1's band: depth %d, want 1", r, d)
		}
	}
}

func TestOriginPoolMeasuresRate(t *testing.T) {
	p, _ := zipfPool(t, 4, 200, 50, 0.1)
	th := p.Thresholds()
	now := time.Unix(0, 0)
	// A steady 400 segment requests per second: the rate converges to 400
	// and the pool climbs to the depth whose capacity covers it.
	for range 1000 {
		now = now.Add(100 * time.Millisecond)
		p.Observe(now, 40)
	}
	if r := p.Rate(); r < 380 || r > 420 {
		t.Fatalf("steady 400/s measured as %.1f", r)
	}
	want := plan.NextDepth(th, 1, 400)
	if p.Active() != want {
		t.Fatalf("at 400/s depth %d, want %d", p.Active(), want)
	}
	// Silence: the rate decays and the pool drains to the base origin.
	for range 100 {
		now = now.Add(time.Second)
		p.Observe(now, 0)
	}
	if p.Active() != 1 || p.Rate() > 1 {
		t.Fatalf("after 100 s of silence: depth %d rate %.2f, want 1 origin", p.Active(), p.Rate())
	}
}

func TestOriginPoolRouteSkipsDeadOrigins(t *testing.T) {
	p, keys := zipfPool(t, 4, 200, 1, 0.1)
	p.ObserveRate(1e9)
	if p.Active() != 4 {
		t.Fatalf("depth %d at a huge rate, want 4", p.Active())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		k := keys[rng.IntN(len(keys))]
		u := rng.Float64()
		dead := p.Dispatch(k, u)
		route := p.Route(nil, k, u, func(i int) bool { return i != dead })
		if len(route) == 0 || slices.Contains(route, dead) {
			t.Fatalf("route %v with origin %d dead", route, dead)
		}
	}
	k := keys[0]
	if got := p.Route(nil, k, 0.5, func(i int) bool { return i == 3 }); len(got) != 1 || got[0] != 3 {
		t.Fatalf("route with only origin 3 alive = %v, want [3]", got)
	}
	if got := p.Route(nil, k, 0.5, func(int) bool { return false }); len(got) != 0 {
		t.Fatalf("route with every origin dead = %v, want none", got)
	}
	if got := p.Route(nil, content.SegmentRef{Video: videoNamed("unknown")}, 0.5, func(int) bool { return true }); got != nil {
		t.Fatalf("route of an unknown segment = %v, want nil", got)
	}
}

func TestOriginPoolRejectsBadConfig(t *testing.T) {
	for _, cfg := range []OriginPoolConfig{{PerServerRate: 0}, {PerServerRate: -1}, {PerServerRate: 1, Hysteresis: 1}, {PerServerRate: 1, Hysteresis: -0.1}} {
		if _, err := NewOriginPool(cfg, time.Unix(0, 0)); err == nil {
			t.Errorf("NewOriginPool(%+v) accepted", cfg)
		}
	}
	p, err := NewOriginPool(OriginPoolConfig{PerServerRate: 1}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(nil, nil, []wire.NodeID{"o"}); err != nil || p.Active() != 0 || p.Dispatch(content.SegmentRef{Video: videoNamed("v")}, 0) != -1 {
		t.Fatalf("empty catalogue: err %v depth %d", err, p.Active())
	}
	if err := p.Rebuild([]content.SegmentRef{{Video: videoNamed("v")}}, []float64{1, 2}, nil); err == nil {
		t.Fatal("mismatched popularity accepted")
	}
}

// poolCoordinator starts a coordinator with the origin pool on, registers
// origins origins and publishes the sample videos through the first.
func poolCoordinator(t *testing.T, perServer float64, origins int) (*Coordinator, []wire.NodeID) {
	t.Helper()
	fix := sampleStore(t)
	clock := newFakeClock()
	c, err := New(Config{Seed: 1, Now: clock.Now, Log: quietLog(), OriginPerServerRate: perServer, Store: testStore(t), Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []wire.NodeID
	for i := range origins {
		id := newTestNode().ID
		ids = append(ids, id)
		if err := c.AllowOrigin(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: id, Role: wire.RoleOrigin, Addr: fmt.Sprintf("http://127.0.0.1:%d", 9000+i)}); !ok {
			t.Fatal("register origin")
		}
	}
	var videos []wire.PublishedVideo
	for _, id := range fix.ids {
		videos = append(videos, fix.published(t, id))
	}
	if body, ok := call(c, wire.PathPublish, wire.PublishRequest{OriginID: ids[0], Videos: videos}); !ok {
		t.Fatalf("publish: %s", body)
	}
	slices.Sort(ids)
	return c, ids
}

// lookupBoth runs one lookup and returns the hand-written JSON and the
// wire value of the same result.
func lookupBoth(t *testing.T, c *Coordinator, req wire.LookupRequest) ([]byte, wire.LookupResponse) {
	t.Helper()
	sc := c.scratch.Get().(*lookupScratch)
	defer c.scratch.Put(sc)
	var body []byte
	var resp wire.LookupResponse
	err := c.lookup(&req, sc, func(res *lookupResult) {
		body = res.appendJSON(nil)
		resp = res.response()
	})
	if err != nil {
		t.Fatal(err)
	}
	return body, resp
}

func TestLookupRoutesOriginsThroughPool(t *testing.T) {
	fix := sampleStore(t)
	for _, tc := range []struct {
		name      string
		perServer float64
		wantDepth int
	}{{"huge capacity", 1e9, 1}, {"tiny capacity", 1e-6, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			c, stack := poolCoordinator(t, tc.perServer, 3)
			firsts := map[wire.NodeID]int{}
			var reqs []wire.LookupRequest
			for v, id := range fix.ids {
				for r, rend := range fix.mustManifest(t, v).Renditions {
					for from := 0; from < len(rend.Segments); from += 4 {
						reqs = append(reqs, wire.LookupRequest{Video: id, Rendition: r, From: from, Count: 4})
					}
				}
			}
			for i := range 300 {
				req := reqs[i%len(reqs)]
				body, resp := lookupBoth(t, c, req)
				want, _ := json.Marshal(resp)
				if !bytes.Equal(body, append(want, '\n')) {
					t.Fatalf("hand-written JSON differs from encoding/json:\n%s\n%s", body, want)
				}
				if len(resp.Origins) != 3 {
					t.Fatalf("response-level origins %v, want all 3", resp.Origins)
				}
				got, depth := c.OriginPoolActive()
				if !slices.Equal(got, stack) {
					t.Fatalf("pool stack %v, want %v", got, stack)
				}
				for _, seg := range resp.Segments {
					if len(seg.Origins) == 0 {
						t.Fatalf("segment %d has no pool origins", seg.Segment)
					}
					for _, o := range seg.Origins {
						idx, _ := slices.BinarySearch(stack, o.NodeID)
						if idx >= depth {
							t.Fatalf("segment %d routed to %s, stack position %d of %d active", seg.Segment, o.NodeID, idx, depth)
						}
						c.poolMu.Lock()
						holders := c.pool.Allocation().Replicas[c.pool.Block(content.SegmentRef{Video: req.Video, Rendition: req.Rendition, Segment: seg.Segment})]
						c.poolMu.Unlock()
						if !slices.Contains(holders, int32(idx)) {
							t.Fatalf("segment %d routed to origin %d, which does not hold it (holders %v)", seg.Segment, idx, holders)
						}
					}
					firsts[seg.Origins[0].NodeID]++
				}
			}
			if _, depth := c.OriginPoolActive(); depth != tc.wantDepth {
				t.Fatalf("depth %d, want %d", depth, tc.wantDepth)
			}
			families, err := c.cfg.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			gauge := -1.0
			for _, f := range families {
				if f.GetName() == "swarmcast_coordinator_origin_pool_active_origins" {
					gauge = f.GetMetric()[0].GetGauge().GetValue()
				}
			}
			if gauge != float64(tc.wantDepth) {
				t.Fatalf("active-origins gauge %v, want %d", gauge, tc.wantDepth)
			}
			if len(firsts) != tc.wantDepth {
				t.Fatalf("dispatched to %v, want %d distinct origins", firsts, tc.wantDepth)
			}
		})
	}
}
