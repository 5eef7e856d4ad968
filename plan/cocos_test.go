package plan

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/internal/testenv"

	"pgregory.net/rapid"

	"github.com/swarmcast/swarmcast/plan/lp"
)

// bestTree enumerates every parent assignment of one channel and returns the
// cheapest tree meeting the delay bound (the exact optimum).
func bestTree(in *CocosInstance, ch Channel) float64 {
	nodes := channelNodes(ch)
	D := ch.Demand
	choice := make([]int, len(D))
	best := math.Inf(1)
	for {
		parent := map[int]int{}
		for k, v := range D {
			parent[v] = nodes[choice[k]]
		}
		ok, cost := true, 0.0
		for _, v := range D {
			if parent[v] == v {
				ok = false
				break
			}
			d, steps := 0.0, 0
			for u := v; u != ch.Origin; u = parent[u] {
				d += in.Delay[parent[u]][u]
				if steps++; steps > len(nodes) {
					ok = false
					break
				}
			}
			if !ok || d > in.DelayBound {
				ok = false
				break
			}
			cost += in.edgeCost(ch, parent[v], v)
		}
		if ok {
			best = math.Min(best, cost)
		}
		k := 0
		for k < len(choice) {
			choice[k]++
			if choice[k] < len(nodes) {
				break
			}
			choice[k] = 0
			k++
		}
		if k == len(choice) {
			return best
		}
	}
}

func tinyCocos(t *rapid.T) *CocosInstance {
	spec := CocosSpec{Servers: rapid.IntRange(2, 4).Draw(t, "servers"), Channels: rapid.IntRange(1, 2).Draw(t, "channels"),
		DelayBound: rapid.Float64Range(200, 900).Draw(t, "bound"), RateMean: 1.2, RateStd: 0.2, PriceMean: 0.1, PriceStd: 0.05,
		Zipf: 0.3, Seed: rapid.Uint64().Draw(t, "seed")}
	in, err := NewCocosInstance(spec)
	if err != nil {
		if strings.Contains(err.Error(), "cannot be met") {
			// An infeasible delay bound is a correct refusal: rapid's
			// Skip discards the draw (rejection sampling), not the test.
			t.Skip(err.Error())
		}
		t.Fatalf("a valid spec was refused: %v", err)
	}
	return in
}

// TestCocosAgainstExactOptimum: LP ≤ optimum ≤ every scheme's cost, and every
// scheme meets the delay bound.
func TestCocosAgainstExactOptimum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := tinyCocos(t)
		opt := 0.0
		for _, ch := range in.Channels {
			opt += bestTree(in, ch)
		}
		co, err := Cocos(in, CocosOptions{Substreams: rapid.IntRange(1, 10).Draw(t, "k"), Solver: lp.Simplex{}})
		if err != nil {
			t.Fatal(err)
		}
		tol := 1e-7 * (1 + opt)
		if co.LPBound > opt+tol {
			t.Fatalf("LP bound %v above the exact optimum %v", co.LPBound, opt)
		}
		if co.Violations != 0 {
			t.Fatalf("cocos: %d delay violations", co.Violations)
		}
		for _, r := range []*CocosResult{co, NearestPeer(in), DelayBoundedPrim(in)} {
			if r.Violations != 0 {
				continue // greedy baselines may break the bound; only feasible trees compare with the optimum
			}
			if r.Cost < opt-tol {
				t.Fatalf("%s cost %v below the exact optimum %v", r.Scheme, r.Cost, opt)
			}
			for _, tr := range r.Trees {
				for _, v := range in.Channels[tr.Channel].Demand {
					if _, ok := tr.Parent[v]; !ok {
						t.Fatalf("%s: channel %d misses server %d", r.Scheme, tr.Channel, v)
					}
				}
			}
		}
	})
}

func TestCocosBeatsBaselines(t *testing.T) {
	spec := PaperCocosSpec()
	spec.Servers, spec.Channels = 15, 4
	in, err := NewCocosInstance(spec)
	if err != nil {
		t.Fatal(err)
	}
	co, err := Cocos(in, CocosOptions{Substreams: 10, Candidates: 4, Solver: lp.Auto{}})
	if err != nil {
		if strings.Contains(err.Error(), "COIN-OR") {
			testenv.Missing(t, "%v", err)
		}
		t.Fatal(err)
	}
	np, pr := NearestPeer(in), DelayBoundedPrim(in)
	t.Logf("cocos %.3f (LP %.3f, ×%.3f), nearest peer %.3f, prim %.3f", co.Cost, co.LPBound, co.Cost/co.LPBound, np.Cost, pr.Cost)
	if co.Cost > np.Cost || co.Cost > pr.Cost {
		t.Errorf("cocos %v not below nearest peer %v and prim %v", co.Cost, np.Cost, pr.Cost)
	}
	if co.Cost > 1.5*co.LPBound {
		t.Errorf("cocos %v more than 1.5 × its LP bound %v", co.Cost, co.LPBound)
	}
	if co.Violations != 0 {
		t.Errorf("%d delay violations", co.Violations)
	}
}

func TestCocosDeterministic(t *testing.T) {
	spec := PaperCocosSpec()
	spec.Servers, spec.Channels = 4, 2
	run := func() *CocosResult {
		in, err := NewCocosInstance(spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Cocos(in, CocosOptions{Substreams: 4, Solver: lp.Simplex{}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if a, b := run(), run(); !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different COCOS results")
	}
}

func TestCocosBadInput(t *testing.T) {
	spec := PaperCocosSpec()
	spec.Servers, spec.Channels, spec.DelayBound = 10, 2, 5
	if _, err := NewCocosInstance(spec); err == nil || !strings.Contains(err.Error(), "delay bound 5 ms cannot be met: server") {
		t.Fatalf("infeasible delay bound: err = %v", err)
	}
	for _, bad := range []CocosSpec{{Servers: -1, Channels: 1, DelayBound: 1, RateMean: 1, PriceMean: 1}, {Servers: 3, Channels: 0, DelayBound: 1, RateMean: 1, PriceMean: 1}} {
		if _, err := NewCocosInstance(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func BenchmarkCocosPaperChannel(b *testing.B) {
	if !lp.CoinAvailable() {
		b.Skip("clp not on PATH; install with apt-get install -y coinor-cbc coinor-clp")
	}
	spec := PaperCocosSpec()
	spec.Channels = 5 // the five most popular channels dominate the runtime
	in, err := NewCocosInstance(spec)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Cocos(in, CocosOptions{Substreams: 10, Candidates: 8}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCocosLPBelowCBCOptimum solves the channel MIP (integral arcs) with CBC
// on tiny instances: LP ≤ MIP ≤ best tree, since every tree within the bound
// is a feasible MIP point.
func TestCocosLPBelowCBCOptimum(t *testing.T) {
	if !lp.CoinAvailable() {
		testenv.Missing(t, "cbc/clp not on PATH (apt-get install coinor-cbc coinor-clp)")
	}
	checked := 0
	for seed := uint64(1); seed <= 8; seed++ {
		spec := PaperCocosSpec()
		spec.Servers, spec.Channels, spec.DelayBound, spec.Seed, spec.Zipf = 6, 2, 450, seed, 0.2
		in, err := NewCocosInstance(spec)
		if err != nil {
			continue
		}
		for _, ch := range in.Channels {
			if len(ch.Demand) == 0 {
				continue
			}
			m, err := in.buildChannelLP(ch, 0)
			if err != nil {
				t.Fatal(err)
			}
			relax, err := lp.Coin{}.Solve(m.p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range m.xcol {
				m.p.SetInteger(c)
			}
			mip, err := lp.Coin{}.Solve(m.p)
			if err != nil {
				t.Fatal(err)
			}
			best := bestTree(in, ch)
			tol := 1e-6 * (1 + best)
			if relax.Objective > mip.Objective+tol || mip.Objective > best+tol {
				t.Fatalf("seed %d: LP %v, MIP %v, best tree %v: want LP ≤ MIP ≤ tree", seed, relax.Objective, mip.Objective, best)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("only %d channels checked", checked)
	}
	t.Logf("%d channels: LP ≤ CBC MIP ≤ best tree", checked)
}
