package plan

import (
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// largeRuns reports whether paper-scale runs are requested
// (PLANNER_LARGE=1 go test ./plan/...).
func largeRuns() bool { return os.Getenv("PLANNER_LARGE") != "" }

func zipfCatalogue(t testing.TB, blocks, videos int, zipf float64, seed uint64) *Catalogue {
	t.Helper()
	c, err := SyntheticCatalogue(CatalogueSpec{Blocks: blocks, Videos: videos, Zipf: zipf, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const perServer = 28.125 // 0.9 × 25 Gb/s over 100 MB blocks, in req/s

func TestAvardoGapBelowOnePercent(t *testing.T) {
	// 100 blocks per video, as at paper scale; PLANNER_LARGE=1 runs the
	// paper's 3×10^5 blocks and 6000 slots per server.
	blocks, slots, videos := 30000, 600, 300
	if largeRuns() {
		blocks, slots, videos = 300000, 6000, 3000
	}
	for _, zipf := range []float64{0.8, 1.0} {
		cat := zipfCatalogue(t, blocks, videos, zipf, 1)
		av, err := NewAvardo(cat.Popularity, 100, slots)
		if err != nil {
			t.Fatal(err)
		}
		if err := av.Allocation().Validate(); err != nil {
			t.Fatal(err)
		}
		n0 := av.MinServers()
		if n0 != 50 {
			t.Fatalf("n0 = %d, want 50", n0)
		}
		got, err := Capacities(cat.Popularity, av.Allocation(), n0, 100, perServer)
		if err != nil {
			t.Fatal(err)
		}
		uni, _ := UniformAllocation(cat.Popularity, 100, slots)
		hier, _ := HierarchicalAllocation(cat.Popularity, 100, slots)
		gu, _ := Capacities(cat.Popularity, uni, n0, 100, perServer)
		gh, _ := Capacities(cat.Popularity, hier, n0, 100, perServer)
		for i, l := range got {
			if l.Gap >= 0.01 {
				t.Errorf("zipf %v n=%d: gap %.4f ≥ 1%%", zipf, l.Servers, l.Gap)
			}
			if l.Capacity > l.UpperBound*(1+1e-9) {
				t.Errorf("zipf %v n=%d: capacity %v above the fluid bound %v", zipf, l.Servers, l.Capacity, l.UpperBound)
			}
			if l.Capacity < gu[i].Capacity*(1-1e-9) || l.Capacity < gh[i].Capacity*(1-1e-9) {
				t.Errorf("zipf %v n=%d: avardo %v below uniform %v or hierarchical %v", zipf, l.Servers, l.Capacity, gu[i].Capacity, gh[i].Capacity)
			}
			cf, err := av.DispatchCapacity(l.Servers, perServer)
			if err != nil {
				t.Fatal(err)
			}
			if cf > l.Capacity*(1+1e-9) {
				t.Errorf("n=%d: closed-form capacity %v above the max-flow optimum %v", l.Servers, cf, l.Capacity)
			}
			if 1-cf/l.UpperBound >= 0.01 {
				t.Errorf("zipf %v n=%d: closed-form gap %.4f ≥ 1%%", zipf, l.Servers, 1-cf/l.UpperBound)
			}
		}
	}
}

func TestAvardoGapShrinksWithSmallerBlocks(t *testing.T) {
	// Same 3000-video catalogue cut into ever smaller blocks; slots scale so
	// that n0 stays 50.
	prev := math.Inf(1)
	for _, blocks := range []int{3000, 10000, 30000} {
		cat := zipfCatalogue(t, blocks, 3000, 1.0, 1)
		av, err := NewAvardo(cat.Popularity, 100, blocks/50)
		if err != nil {
			t.Fatal(err)
		}
		lv, err := Capacities(cat.Popularity, av.Allocation(), 50, 100, perServer)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for _, l := range lv {
			worst = math.Max(worst, l.Gap)
		}
		if worst >= prev {
			t.Errorf("%d blocks: worst gap %.4f did not shrink from %.4f", blocks, worst, prev)
		}
		prev = worst
	}
}

// TestDispatchOnlyToActiveHolders is the contract the origin pool relies on.
func TestDispatchOnlyToActiveHolders(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		blocks := rapid.IntRange(1, 150).Draw(t, "blocks")
		videos := rapid.IntRange(1, blocks).Draw(t, "videos")
		slots := rapid.IntRange(1, 60).Draw(t, "slots")
		n0 := (blocks + slots - 1) / slots
		servers := rapid.IntRange(n0, 3*n0+3).Draw(t, "servers")
		zipf := rapid.Float64Range(0, 2).Draw(t, "zipf")
		cat, err := SyntheticCatalogue(CatalogueSpec{Blocks: blocks, Videos: videos, Zipf: zipf, Seed: rapid.Uint64().Draw(t, "seed")})
		if err != nil {
			t.Fatal(err)
		}
		av, err := NewAvardo(cat.Popularity, servers, slots)
		if err != nil {
			t.Fatal(err)
		}
		alloc := av.Allocation()
		if err := alloc.Validate(); err != nil {
			t.Fatal(err)
		}
		for n := av.MinServers(); n <= servers; n++ {
			for m := 0; m < blocks; m++ {
				w, err := av.Weights(m, n)
				if err != nil {
					t.Fatal(err)
				}
				sum := 0.0
				for _, s := range w {
					if s.Weight < 0 || int(s.Server) >= n || !holds(alloc.Replicas[m], s.Server) {
						t.Fatalf("block %d level %d: share %+v is not an active holder (replicas %v)", m, n, s, alloc.Replicas[m])
					}
					sum += s.Weight
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Fatalf("block %d level %d: shares sum to %v", m, n, sum)
				}
				for _, u := range []float64{0, 0.25, 0.5, 0.999999} {
					s, err := av.Dispatch(m, n, u)
					if err != nil {
						t.Fatal(err)
					}
					if s >= n || !holds(alloc.Replicas[m], int32(s)) {
						t.Fatalf("block %d level %d: dispatched to server %d, replicas %v", m, n, s, alloc.Replicas[m])
					}
				}
			}
			cf, _ := av.DispatchCapacity(n, 1)
			lv, _ := Capacities(cat.Popularity, alloc, n, n, 1)
			if cf > lv[0].Capacity*(1+1e-7) || lv[0].Capacity > float64(n)*(1+1e-9) {
				t.Fatalf("level %d: closed form %v, max-flow %v, bound %d", n, cf, lv[0].Capacity, n)
			}
		}
	})
}

func TestDispatchRejectsTooFewServers(t *testing.T) {
	cat := zipfCatalogue(t, 100, 10, 1, 1)
	av, err := NewAvardo(cat.Popularity, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := av.Dispatch(0, 4, 0.5); err == nil || !strings.Contains(err.Error(), "base servers") {
		t.Fatalf("dispatch with 4 < n0=5 active servers: err = %v", err)
	}
	if _, err := av.Dispatch(100, 5, 0.5); err == nil {
		t.Fatal("dispatch of a block outside the catalogue succeeded")
	}
}

func TestThresholdsAndHysteresis(t *testing.T) {
	cat := zipfCatalogue(t, 6000, 100, 0.9, 3)
	av, err := NewAvardo(cat.Popularity, 20, 600)
	if err != nil {
		t.Fatal(err)
	}
	th, err := av.Thresholds(perServer, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range th {
		if i < av.MinServers() {
			if x.Activate != 0 || x.Deactivate != 0 {
				t.Fatalf("base server %d has thresholds %+v", i, x)
			}
			continue
		}
		if i > av.MinServers() && x.Activate < th[i-1].Activate {
			t.Fatalf("activation thresholds not monotone at %d: %v < %v", i, x.Activate, th[i-1].Activate)
		}
		if x.Deactivate >= x.Activate || x.Activate > float64(i)*perServer*(1+1e-9) {
			t.Fatalf("server %d: %+v", i, x)
		}
	}
	n := NextDepth(th, 0, 0)
	if n != av.MinServers() {
		t.Fatalf("idle depth %d, want n0 %d", n, av.MinServers())
	}
	peak := NextDepth(th, n, 1e9)
	if peak != 20 {
		t.Fatalf("depth at huge rate %d, want 20", peak)
	}
	// Inside the hysteresis band the depth does not move either way.
	k := av.MinServers() + 3
	band := (th[k].Activate + th[k].Deactivate) / 2
	if got := NextDepth(th, k+1, band); got != k+1 {
		t.Fatalf("depth %d at rate in band of server %d, want %d", got, k, k+1)
	}
	if got := NextDepth(th, k, band); got > k {
		t.Fatalf("depth %d pushed inside the band, want ≤ %d", got, k)
	}
	if _, err := av.Thresholds(perServer, 1); err == nil {
		t.Fatal("hysteresis 1 accepted")
	}
}

func TestAvardoDeterministic(t *testing.T) {
	a1, _ := NewAvardo(zipfCatalogue(t, 5000, 50, 1, 9).Popularity, 12, 800)
	a2, _ := NewAvardo(zipfCatalogue(t, 5000, 50, 1, 9).Popularity, 12, 800)
	if !reflect.DeepEqual(a1.Allocation(), a2.Allocation()) {
		t.Fatal("same seed gave different allocations")
	}
	a3, _ := NewAvardo(zipfCatalogue(t, 5000, 50, 1, 10).Popularity, 12, 800)
	if reflect.DeepEqual(a1.Allocation(), a3.Allocation()) {
		t.Fatal("different seeds gave identical allocations")
	}
}

func TestAvardoBadInput(t *testing.T) {
	cases := []struct {
		pop            []float64
		servers, slots int
		want           string
	}{
		{nil, 3, 3, "empty"},
		{[]float64{0.5, 0.5}, 0, 3, "at least 1 server"},
		{[]float64{0.5, 0.5}, 3, -1, "slot"},
		{[]float64{1.5, -0.5}, 3, 3, "popularity of block 1"},
		{[]float64{0.25, 0.25, 0.25, 0.25}, 1, 3, "storage constraint cannot be met: 4 blocks need at least 2 servers"},
	}
	for _, c := range cases {
		for name, build := range map[string]func() error{
			"avardo":       func() error { _, err := NewAvardo(c.pop, c.servers, c.slots); return err },
			"uniform":      func() error { _, err := UniformAllocation(c.pop, c.servers, c.slots); return err },
			"hierarchical": func() error { _, err := HierarchicalAllocation(c.pop, c.servers, c.slots); return err },
		} {
			if err := build(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %v/%d/%d: err = %v, want it to mention %q", name, c.pop, c.servers, c.slots, err, c.want)
			}
		}
	}
	if _, err := SyntheticCatalogue(CatalogueSpec{Blocks: -3, Videos: 1}); err == nil {
		t.Error("negative block count accepted")
	}
	if _, err := SyntheticCatalogue(CatalogueSpec{Blocks: 10, Videos: 0}); err == nil {
		t.Error("empty catalogue accepted")
	}
}

// TestCapacityIsExact checks the Newton/min-cut capacity against plain
// bisection on the request rate with a feasibility max-flow.
func TestCapacityIsExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		blocks := rapid.IntRange(1, 40).Draw(t, "blocks")
		servers := rapid.IntRange(1, 8).Draw(t, "servers")
		slots := rapid.IntRange((blocks+servers-1)/servers, blocks).Draw(t, "slots")
		pop := make([]float64, blocks)
		sum := 0.0
		for i := range pop {
			pop[i] = rapid.Float64Range(0.01, 1).Draw(t, "p")
			sum += pop[i]
		}
		for i := range pop {
			pop[i] /= sum
		}
		a := &Allocation{Servers: servers, Slots: slots, Replicas: make([][]int32, blocks)}
		used := make([]int, servers)
		// Every block first gets one replica round-robin (slots ≥
		// ⌈blocks/servers⌉ leaves room), then extra replicas where slots
		// remain, so every drawn allocation is valid.
		for m := range pop {
			s := m % servers
			a.Replicas[m] = append(a.Replicas[m], int32(s))
			used[s]++
		}
		for m := range pop {
			for s := 0; s < servers; s++ {
				if s != m%servers && used[s] < slots && rapid.Bool().Draw(t, "hold") {
					a.Replicas[m] = append(a.Replicas[m], int32(s))
					used[s]++
				}
			}
		}
		n := servers
		lv, err := Capacities(pop, a, n, n, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := bisectCapacity(pop, a, n, 1)
		if math.Abs(lv[0].Capacity-want) > 1e-6*want {
			t.Fatalf("newton capacity %v, bisection %v", lv[0].Capacity, want)
		}
	})
}

func bisectCapacity(pop []float64, a *Allocation, n int, perServer float64) float64 {
	feasible := func(lambda float64) bool {
		net := newFlowNet(2+len(pop)+n, 0)
		for m, p := range pop {
			net.addEdge(0, 2+m, lambda*p)
			for _, s := range a.Replicas[m] {
				if int(s) < n {
					net.addEdge(2+m, 2+len(pop)+int(s), math.Inf(1))
				}
			}
		}
		for s := 0; s < n; s++ {
			net.addEdge(2+len(pop)+s, 1, perServer)
		}
		return net.maxFlow(0, 1) >= lambda*(1-1e-12)
	}
	lo, hi := 0.0, float64(n)*perServer
	for range 100 {
		mid := (lo + hi) / 2
		if feasible(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// TestAvardoAgainstExactOptimum enumerates every allocation of a tiny data
// centre and checks that no scheme beats the true optimum and that AVARDO is
// close to it.
func TestAvardoAgainstExactOptimum(t *testing.T) {
	pop := []float64{0.4, 0.3, 0.2, 0.1}
	servers, slots := 3, 2
	subsets := [][]int32{}
	for mask := 0; mask < 16; mask++ {
		var s []int32
		for m := 0; m < 4; m++ {
			if mask&(1<<m) != 0 {
				s = append(s, int32(m))
			}
		}
		if len(s) <= slots {
			subsets = append(subsets, s)
		}
	}
	best := make([]float64, servers+1)
	for _, s0 := range subsets {
		for _, s1 := range subsets {
			for _, s2 := range subsets {
				a := &Allocation{Servers: servers, Slots: slots, Replicas: make([][]int32, 4)}
				for srv, set := range [][]int32{s0, s1, s2} {
					for _, m := range set {
						a.Replicas[m] = append(a.Replicas[m], int32(srv))
					}
				}
				n0 := a.MinServers()
				if n0 > servers {
					continue
				}
				lv, err := Capacities(pop, a, n0, servers, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range lv {
					best[l.Servers] = math.Max(best[l.Servers], l.Capacity)
				}
			}
		}
	}
	av, err := NewAvardo(pop, servers, slots)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := Capacities(pop, av.Allocation(), 2, servers, 1)
	for _, l := range lv {
		if l.Capacity > best[l.Servers]*(1+1e-9) {
			t.Fatalf("n=%d: avardo %v beats the exact optimum %v", l.Servers, l.Capacity, best[l.Servers])
		}
		if best[l.Servers] > float64(l.Servers)*(1+1e-9) {
			t.Fatalf("n=%d: optimum %v above the fluid bound", l.Servers, best[l.Servers])
		}
		if l.Capacity < 0.8*best[l.Servers] {
			t.Errorf("n=%d: avardo %v under 80%% of the optimum %v", l.Servers, l.Capacity, best[l.Servers])
		}
		t.Logf("n=%d avardo %.4f optimum %.4f bound %d", l.Servers, l.Capacity, best[l.Servers], l.Servers)
	}
}

func BenchmarkAvardoPaperScale(b *testing.B) {
	cat := zipfCatalogue(b, 300000, 3000, 1.0, 1)
	for b.Loop() {
		av, err := NewAvardo(cat.Popularity, 100, 6000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Capacities(cat.Popularity, av.Allocation(), 50, 100, perServer); err != nil {
			b.Fatal(err)
		}
	}
}
