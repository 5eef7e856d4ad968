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

func smallRavo(t interface{ Fatal(...any) }, regions, videos int, seed uint64) *RavoInstance {
	spec := DefaultRavoSpec()
	spec.Regions, spec.Videos, spec.Seed, spec.Streams = regions, videos, seed, 40*float64(videos)/100
	in, err := NewRavoInstance(spec)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestRavoAgainstExactOptimum: LP ≤ exact optimum ≤ every plan, and RAVO
// within the 1 + 1/e bound of the LP.
func TestRavoAgainstExactOptimum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := smallRavo(t, rapid.IntRange(1, 3).Draw(t, "regions"), rapid.IntRange(1, 4).Draw(t, "videos"), rapid.Uint64().Draw(t, "seed"))
		ex, err := ExactRavo(in)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := in.LPBound(lp.Simplex{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		opt := ex.Cost.Total
		tol := 1e-7 * (1 + opt)
		if lb > opt+tol {
			t.Fatalf("LP bound %v above the exact optimum %v", lb, opt)
		}
		r, err := Ravo(in, RavoOptions{Clusters: rapid.IntRange(1, 2).Draw(t, "clusters"), Draws: 4, Seed: 1, Solver: lp.Simplex{}})
		if err != nil {
			t.Fatal(err)
		}
		lg, _ := LocalGreedy(in)
		ga, _ := GreedyAdd(in)
		for _, p := range []*RavoPlan{r.Plan, lg, ga} {
			if p.Cost.Total < opt-tol {
				t.Fatalf("%s cost %v below the exact optimum %v", p.Scheme, p.Cost.Total, opt)
			}
		}
	})
}

// TestRavoExactMatchesCBC checks the enumeration optimum against the MIP
// solved by CBC.
func TestRavoExactMatchesCBC(t *testing.T) {
	if !lp.CoinAvailable() {
		testenv.Missing(t, "cbc/clp not on PATH (apt-get install coinor-cbc coinor-clp)")
	}
	in := smallRavo(t, 4, 30, 3)
	ex, err := ExactRavo(in)
	if err != nil {
		t.Fatal(err)
	}
	size := append([]float64(nil), in.Size...)
	mbps := make([][]float64, len(size))
	for v := range size {
		mbps[v] = make([]float64, in.Regions())
		for i := range mbps[v] {
			mbps[v][i] = in.Demand[i][v] * in.Bitrate[v]
		}
	}
	p, icol, _ := in.groupLP(size, mbps)
	for _, cols := range icol {
		for _, c := range cols {
			p.SetInteger(c)
		}
	}
	sol, err := lp.Coin{}.Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(sol.Objective-ex.Cost.Total) > 1e-6*ex.Cost.Total {
		t.Fatalf("CBC MIP optimum %v, enumeration %v", sol.Objective, ex.Cost.Total)
	}
}

func TestRavoBelowBaselineAndBound(t *testing.T) {
	in := smallRavo(t, 10, 600, 1)
	solver := lp.Solver(lp.Auto{})
	if !lp.CoinAvailable() {
		testenv.Missing(t, "cbc/clp not on PATH (apt-get install coinor-cbc coinor-clp)")
	}
	lb, err := in.LPBound(solver, 500)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Ravo(in, RavoOptions{Clusters: 50, Draws: 8, Seed: 1, Solver: solver})
	if err != nil {
		t.Fatal(err)
	}
	lg, _ := LocalGreedy(in)
	t.Logf("ravo %.1f, LP %.1f (×%.3f), local greedy %.1f", r.Plan.Cost.Total, lb, r.Plan.Cost.Total/lb, lg.Cost.Total)
	if r.Plan.Cost.Total > (1+1/math.E)*lb {
		t.Errorf("ravo %v above 1.37 × LP %v", r.Plan.Cost.Total, lb)
	}
	if r.Plan.Cost.Total >= lg.Cost.Total {
		t.Errorf("ravo %v not below local greedy %v", r.Plan.Cost.Total, lg.Cost.Total)
	}
}

func TestRavoDeterministic(t *testing.T) {
	in := smallRavo(t, 3, 40, 5)
	a, err1 := Ravo(in, RavoOptions{Clusters: 2, Draws: 3, Seed: 7, Solver: lp.Simplex{}})
	b, err2 := Ravo(in, RavoOptions{Clusters: 2, Draws: 3, Seed: 7, Solver: lp.Simplex{}})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different RAVO plans")
	}
}

func TestRavoBadInput(t *testing.T) {
	spec := DefaultRavoSpec()
	spec.DelayBound = 5
	if _, err := NewRavoInstance(spec); err == nil || !strings.Contains(err.Error(), "delay bound 5.0 ms cannot be met") {
		t.Fatalf("infeasible delay bound: err = %v", err)
	}
	spec = DefaultRavoSpec()
	spec.Videos = 0
	if _, err := NewRavoInstance(spec); err == nil || !strings.Contains(err.Error(), "non-empty catalogue") {
		t.Fatalf("empty catalogue: err = %v", err)
	}
	spec = DefaultRavoSpec()
	spec.Regions = -2
	if _, err := NewRavoInstance(spec); err == nil {
		t.Fatal("negative regions accepted")
	}
}

func BenchmarkRavo100Clusters(b *testing.B) {
	if !lp.CoinAvailable() {
		b.Skip("clp not on PATH; install with apt-get install -y coinor-cbc coinor-clp")
	}
	in, err := NewRavoInstance(DefaultRavoSpec())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Ravo(in, RavoOptions{Clusters: 100, Draws: 8, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
