package plan

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/swarmcast/swarmcast/plan/lp"
)

// RavoSpec describes a synthetic geo-distributed VoD cloud: regional proxy
// servers on a plane, a repository holding everything, and videos whose
// popularity differs by region.
type RavoSpec struct {
	Regions    int     // proxy servers, one per region
	Videos     int     // catalogue size
	Zipf       float64 // popularity exponent over a region's video ranks
	Hetero     float64 // ≥ 0: how far regional ranks drift from the global rank
	Streams    float64 // mean concurrent streams per region
	DelayBound float64 // maximum delay of a request (ms)
	Seed       uint64
}

// DefaultRavoSpec is the setup used in docs/PLANNING.md.
func DefaultRavoSpec() RavoSpec {
	return RavoSpec{Regions: 10, Videos: 10000, Zipf: 0.8, Hetero: 1, Streams: 1000, DelayBound: 200, Seed: 1}
}

// RavoInstance is a concrete cloud. Node indices 0..Regions-1 are proxies and
// Repo() is the repository.
type RavoInstance struct {
	Size       []float64   // video -> GB
	Bitrate    []float64   // video -> Mb/s
	Demand     [][]float64 // region -> video -> concurrent streams
	Storage    []float64   // proxy -> price per GB stored
	LinkPrice  [][]float64 // region i -> source j (proxy or repo) -> price per Mb/s of link capacity
	Process    []float64   // source -> price per Mb/s of remote streaming capacity (repo: 0)
	Prop       [][]float64 // region i -> source j -> propagation delay (ms)
	Service    float64     // mean M/M/1 service time of a stream request on a link or server (ms)
	DelayBound float64     // ms
}

// Regions returns the number of proxies.
func (in *RavoInstance) Regions() int { return len(in.Demand) }

// Repo returns the node index of the repository.
func (in *RavoInstance) Repo() int { return len(in.Demand) }

// NewRavoInstance draws an instance from spec.
func NewRavoInstance(s RavoSpec) (*RavoInstance, error) {
	switch {
	case s.Regions < 1:
		return nil, fmt.Errorf("plan: ravo needs at least 1 region, got %d", s.Regions)
	case s.Videos < 1:
		return nil, fmt.Errorf("plan: ravo needs a non-empty catalogue, got %d videos", s.Videos)
	case s.Zipf < 0 || s.Hetero < 0 || !(s.Streams > 0):
		return nil, fmt.Errorf("plan: ravo needs Zipf ≥ 0, heterogeneity ≥ 0 and streams > 0")
	case !(s.DelayBound > 0):
		return nil, fmt.Errorf("plan: delay bound must be > 0 ms, got %v", s.DelayBound)
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x4a0))
	N, V := s.Regions, s.Videos
	in := &RavoInstance{Size: make([]float64, V), Bitrate: make([]float64, V), Service: 10, DelayBound: s.DelayBound}
	for v := range V {
		in.Size[v] = 0.5 + 1.5*rng.Float64()
		in.Bitrate[v] = 2 + 4*rng.Float64()
	}
	x, y := make([]float64, N), make([]float64, N)
	for i := range N {
		x[i], y[i] = rng.Float64(), rng.Float64()
	}
	in.Storage = make([]float64, N)
	in.Process = make([]float64, N+1)
	for j := range N {
		in.Storage[j] = 1.0 * (0.75 + 0.5*rng.Float64())
		in.Process[j] = 0.05 * (0.75 + 0.5*rng.Float64())
	}
	in.LinkPrice, in.Prop = make([][]float64, N), make([][]float64, N)
	for i := range N {
		in.LinkPrice[i], in.Prop[i] = make([]float64, N+1), make([]float64, N+1)
		for j := range N {
			d := math.Hypot(x[i]-x[j], y[i]-y[j])
			in.LinkPrice[i][j] = 0.05 + 0.2*d
			in.Prop[i][j] = 5 + 100*d
		}
		in.LinkPrice[i][N] = 0.5
		in.Prop[i][N] = 80
	}
	in.Demand = make([][]float64, N)
	for i := range N {
		score := make([]float64, V)
		idx := make([]int, V)
		for v := range V {
			score[v] = math.Log(float64(v+1)) + s.Hetero*rng.NormFloat64()
			idx[v] = v
		}
		sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
		streams := s.Streams * (0.5 + rng.Float64())
		w := make([]float64, V)
		sum := 0.0
		for r, v := range idx {
			w[v] = math.Pow(float64(r+1), -s.Zipf)
			sum += w[v]
		}
		in.Demand[i] = make([]float64, V)
		for v := range V {
			in.Demand[i][v] = streams * w[v] / sum
		}
	}
	return in, in.Check()
}

// Check reports a malformed instance or a delay bound no placement can meet.
func (in *RavoInstance) Check() error {
	N := in.Regions()
	if N == 0 || len(in.Size) == 0 {
		return fmt.Errorf("plan: ravo instance needs regions and videos")
	}
	if in.DelayBound <= in.Service {
		return fmt.Errorf("plan: delay bound %.1f ms cannot be met: even a local stream needs more than the %.1f ms service time",
			in.DelayBound, in.Service)
	}
	for v, s := range in.Size {
		if !(s > 0) || !(in.Bitrate[v] > 0) {
			return fmt.Errorf("plan: video %d has size %v GB and bitrate %v Mb/s; both must be > 0", v, s, in.Bitrate[v])
		}
	}
	return nil
}

// utilCap is the highest utilisation of an M/M/1 queue with the instance's
// service time that keeps prop + queueing delay within the bound; 0 means
// the route cannot meet the bound at all.
func (in *RavoInstance) utilCap(prop float64) float64 {
	if in.DelayBound <= prop+in.Service {
		return 0
	}
	return 1 - in.Service/(in.DelayBound-prop)
}

// unitCost is the price per Mb/s of region i streaming from source j: local
// streams use the proxy's processing at the server's utilisation cap; remote
// ones buy link capacity at the link's cap plus processing at j. It is Inf
// when the route cannot meet the delay bound.
func (in *RavoInstance) unitCost(i, j int) float64 {
	if j == i {
		return 0
	}
	u := in.utilCap(in.Prop[i][j])
	if u == 0 {
		return math.Inf(1)
	}
	return in.LinkPrice[i][j]/u + in.Process[j]/in.utilCap(0)
}

// RavoPlan is a placement and retrieval plan.
type RavoPlan struct {
	Scheme string
	// Store[v] lists the proxies storing video v, ascending.
	Store [][]int
	// Source[i][v] is the node region i streams video v from (Repo() for the
	// repository).
	Source [][]int
	Cost   RavoCost
}

// RavoCost splits a plan's cost into the three rented resources.
type RavoCost struct {
	Storage    float64 `json:"storage"`
	Link       float64 `json:"link"`
	Processing float64 `json:"processing"`
	Total      float64 `json:"total"`
}

// Evaluate prices a plan: storage of every copy, and for every remote stream
// link capacity at the link's delay-bounded utilisation and processing at the
// source. It fails if a route breaks the delay bound or uses a missing copy.
func (in *RavoInstance) Evaluate(p *RavoPlan) (RavoCost, error) {
	var c RavoCost
	N := in.Regions()
	pcap := in.utilCap(0)
	for v, st := range p.Store {
		for _, j := range st {
			c.Storage += in.Storage[j] * in.Size[v]
		}
		for i := range N {
			j := p.Source[i][v]
			if j != N && !containsInt(st, j) {
				return c, fmt.Errorf("plan: region %d streams video %d from proxy %d, which does not store it", i, v, j)
			}
			if j == i {
				continue
			}
			u := in.utilCap(in.Prop[i][j])
			if u == 0 {
				return c, fmt.Errorf("plan: region %d streams video %d from node %d beyond the delay bound", i, v, j)
			}
			mbps := in.Demand[i][v] * in.Bitrate[v]
			c.Link += in.LinkPrice[i][j] * mbps / u
			c.Processing += in.Process[j] * mbps / pcap
		}
	}
	c.Total = c.Storage + c.Link + c.Processing
	return c, nil
}

// routeCheapest sends every region to its cheapest delay-feasible source
// among the stored copies and the repository.
func (in *RavoInstance) routeCheapest(store [][]int) *RavoPlan {
	N := in.Regions()
	p := &RavoPlan{Store: store, Source: make([][]int, N)}
	for i := range N {
		p.Source[i] = make([]int, len(store))
		for v, st := range store {
			best, bc := N, in.unitCost(i, N)
			for _, j := range st {
				if c := in.unitCost(i, j); c < bc {
					best, bc = j, c
				}
			}
			p.Source[i][v] = best
		}
	}
	return p
}

// videoCost is the cost of one video stored at set (bitmask over proxies)
// with cheapest routing.
func (in *RavoInstance) videoCost(v int, mask uint32) float64 {
	N := in.Regions()
	c := 0.0
	for j := range N {
		if mask&(1<<j) != 0 {
			c += in.Storage[j] * in.Size[v]
		}
	}
	for i := range N {
		best := in.unitCost(i, N)
		for j := range N {
			if mask&(1<<j) != 0 {
				best = math.Min(best, in.unitCost(i, j))
			}
		}
		c += in.Demand[i][v] * in.Bitrate[v] * best
	}
	return c
}

// ExactRavo returns an optimal plan by enumerating, for every video, all
// sets of proxies that store it (the problem separates by video because all
// resource prices are linear). It is exponential in the number of regions
// and refuses more than 14.
func ExactRavo(in *RavoInstance) (*RavoPlan, error) {
	N := in.Regions()
	if N > 14 {
		return nil, fmt.Errorf("plan: exact ravo enumerates 2^regions sets; %d regions is too many (max 14)", N)
	}
	store := make([][]int, len(in.Size))
	for v := range in.Size {
		best, bc := uint32(0), math.Inf(1)
		for mask := uint32(0); mask < 1<<N; mask++ {
			if c := in.videoCost(v, mask); c < bc-1e-12 {
				best, bc = mask, c
			}
		}
		store[v] = maskList(best, N)
	}
	p := in.routeCheapest(store)
	p.Scheme = "exact"
	var err error
	p.Cost, err = in.Evaluate(p)
	return p, err
}

func maskList(m uint32, n int) []int {
	var out []int
	for j := range n {
		if m&(1<<j) != 0 {
			out = append(out, j)
		}
	}
	return out
}

// LocalGreedy is the non-cooperative baseline: each proxy caches exactly the
// videos whose local saving (streaming them from the repository instead)
// exceeds their storage price, and everything else comes from the
// repository.
func LocalGreedy(in *RavoInstance) (*RavoPlan, error) {
	N := in.Regions()
	store := make([][]int, len(in.Size))
	for v := range in.Size {
		for j := range N {
			saving := in.Demand[j][v] * in.Bitrate[v] * in.unitCost(j, N)
			if saving > in.Storage[j]*in.Size[v] {
				store[v] = append(store[v], j)
			}
		}
	}
	p := in.routeCheapest(store)
	p.Scheme = "local-greedy"
	var err error
	p.Cost, err = in.Evaluate(p)
	return p, err
}

// GreedyAdd is the cooperative greedy baseline: for every video, keep adding
// the proxy copy that lowers the video's cost most while any does.
func GreedyAdd(in *RavoInstance) (*RavoPlan, error) {
	N := in.Regions()
	store := make([][]int, len(in.Size))
	for v := range in.Size {
		mask := uint32(0)
		cur := in.videoCost(v, mask)
		for {
			bj, bc := -1, cur
			for j := range N {
				if mask&(1<<j) == 0 {
					if c := in.videoCost(v, mask|1<<j); c < bc-1e-12 {
						bj, bc = j, c
					}
				}
			}
			if bj < 0 {
				break
			}
			mask |= 1 << bj
			cur = bc
		}
		store[v] = maskList(mask, N)
	}
	p := in.routeCheapest(store)
	p.Scheme = "greedy-add"
	var err error
	p.Cost, err = in.Evaluate(p)
	return p, err
}

// RavoOptions tunes RAVO.
type RavoOptions struct {
	Clusters int    // video groups solved as one LP "super video"; ≥ 1
	Draws    int    // independent roundings per video, best kept; ≥ 1
	Seed     uint64 // seeds clustering and rounding
	Solver   lp.Solver
}

// RavoResult is RAVO's plan with its LP value.
type RavoResult struct {
	Plan *RavoPlan
	// ClusterLP is the optimum of the clustered LP relaxation (an upper bound
	// on the unclustered LP, not a lower bound on the optimum).
	ClusterLP float64
}

// Ravo clusters videos by their per-region demand density (k-means on log
// streams per GB), solves the LP relaxation of placement and retrieval for
// the cluster "super videos", then for every video rounds each proxy copy
// independently with the cluster's LP storage value as probability, keeps the
// best of Draws roundings, routes each region to its cheapest stored copy
// (or the repository), and drops copies nobody streams from.
func Ravo(in *RavoInstance, opt RavoOptions) (*RavoResult, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	if opt.Clusters < 1 || opt.Draws < 1 {
		return nil, fmt.Errorf("plan: ravo needs ≥ 1 cluster and ≥ 1 draw, got %d and %d", opt.Clusters, opt.Draws)
	}
	if opt.Solver == nil {
		opt.Solver = lp.Auto{}
	}
	N, V := in.Regions(), len(in.Size)
	G := min(opt.Clusters, V)
	group := in.clusterVideos(G, opt.Seed)
	// Aggregate: storage size and per-region Mb/s demand of each group.
	size := make([]float64, G)
	mbps := make([][]float64, G)
	for g := range mbps {
		mbps[g] = make([]float64, N)
	}
	for v, g := range group {
		size[g] += in.Size[v]
		for i := range N {
			mbps[g][i] += in.Demand[i][v] * in.Bitrate[v]
		}
	}
	prob, icol, _ := in.groupLP(size, mbps)
	sol, err := opt.Solver.Solve(prob)
	if err != nil {
		return nil, fmt.Errorf("plan: ravo LP: %w", err)
	}
	if sol.Status != lp.Optimal {
		return nil, fmt.Errorf("plan: ravo LP is %v", sol.Status)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x4a0d))
	store := make([][]int, V)
	for v, g := range group {
		bestMask, bc := uint32(0), math.Inf(1)
		for range opt.Draws {
			mask := uint32(0)
			for j := range N {
				if rng.Float64() < sol.X[icol[g][j]] {
					mask |= 1 << j
				}
			}
			mask = in.pruneUnused(v, mask)
			if c := in.videoCost(v, mask); c < bc {
				bestMask, bc = mask, c
			}
		}
		store[v] = maskList(bestMask, N)
	}
	p := in.routeCheapest(store)
	p.Scheme = "ravo"
	if p.Cost, err = in.Evaluate(p); err != nil {
		return nil, err
	}
	return &RavoResult{Plan: p, ClusterLP: sol.Objective}, nil
}

// pruneUnused drops copies that no region would stream from.
func (in *RavoInstance) pruneUnused(v int, mask uint32) uint32 {
	N := in.Regions()
	used := uint32(0)
	for i := range N {
		best, bc := N, in.unitCost(i, N)
		for j := range N {
			if mask&(1<<j) != 0 {
				if c := in.unitCost(i, j); c < bc {
					best, bc = j, c
				}
			}
		}
		if best < N {
			used |= 1 << best
		}
	}
	return used
}

// groupLP builds the LP relaxation for super videos with the given sizes
// and per-region demand (Mb/s): min storage + routed stream cost, every
// region's demand fully routed, routes only to copies (R ≤ I) and only on
// delay-feasible routes. It returns the problem and the storage columns.
func (in *RavoInstance) groupLP(size []float64, mbps [][]float64) (*lp.Problem, [][]int, [][][]int) {
	N := in.Regions()
	p := lp.NewProblem(0)
	icol := make([][]int, len(size))
	rcol := make([][][]int, len(size))
	for g := range size {
		icol[g] = make([]int, N)
		for j := range N {
			icol[g][j] = p.AddColumn(in.Storage[j]*size[g], 0, 1)
		}
		rcol[g] = make([][]int, N)
		for i := range N {
			rcol[g][i] = make([]int, N+1)
			repo := in.unitCost(i, N)
			var idx []int
			var val []float64
			for j := 0; j <= N; j++ {
				rcol[g][i][j] = -1
				c := in.unitCost(i, j)
				// A proxy route dearer than the repository is never used.
				if math.IsInf(c, 1) || (j < N && c >= repo && j != i) {
					continue
				}
				col := p.AddColumn(mbps[g][i]*c, 0, 1)
				rcol[g][i][j] = col
				idx, val = append(idx, col), append(val, 1)
				if j < N {
					p.AddRow([]int{col, icol[g][j]}, []float64{1, -1}, math.Inf(-1), 0)
				}
			}
			p.AddRow(idx, val, 1, 1)
		}
	}
	return p, icol, rcol
}

// LPBound solves the unclustered LP relaxation, a lower bound on the cost of
// every plan. The LP separates by video, so it is solved in batches of
// batch videos.
func (in *RavoInstance) LPBound(solver lp.Solver, batch int) (float64, error) {
	return in.LPBoundProgress(solver, batch, nil)
}

// LPBoundProgress is LPBound that calls progress after each batch with the
// videos done and the total.
func (in *RavoInstance) LPBoundProgress(solver lp.Solver, batch int, progress func(done, total int)) (float64, error) {
	if solver == nil {
		solver = lp.Auto{}
	}
	if batch < 1 {
		batch = 1000
	}
	N, V := in.Regions(), len(in.Size)
	total := 0.0
	for lo := 0; lo < V; lo += batch {
		hi := min(V, lo+batch)
		size := make([]float64, hi-lo)
		mbps := make([][]float64, hi-lo)
		for v := lo; v < hi; v++ {
			size[v-lo] = in.Size[v]
			mbps[v-lo] = make([]float64, N)
			for i := range N {
				mbps[v-lo][i] = in.Demand[i][v] * in.Bitrate[v]
			}
		}
		p, _, _ := in.groupLP(size, mbps)
		sol, err := solver.Solve(p)
		if err != nil {
			return 0, fmt.Errorf("plan: ravo LP bound: %w", err)
		}
		if sol.Status != lp.Optimal {
			return 0, fmt.Errorf("plan: ravo LP bound is %v", sol.Status)
		}
		total += sol.Objective
		if progress != nil {
			progress(hi, V)
		}
	}
	return total, nil
}

// clusterVideos groups videos by k-means (k-means++ seeding, Lloyd steps)
// on the vector of log streams-per-GB over regions.
func (in *RavoInstance) clusterVideos(G int, seed uint64) []int {
	N, V := in.Regions(), len(in.Size)
	feat := make([][]float64, V)
	for v := range V {
		feat[v] = make([]float64, N)
		for i := range N {
			feat[v][i] = math.Log(1e-9 + in.Demand[i][v]*in.Bitrate[v]/in.Size[v])
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0xc105))
	dist := func(a, b []float64) float64 {
		d := 0.0
		for k := range a {
			d += (a[k] - b[k]) * (a[k] - b[k])
		}
		return d
	}
	centres := [][]float64{append([]float64(nil), feat[rng.IntN(V)]...)}
	near := make([]float64, V)
	for v := range V {
		near[v] = dist(feat[v], centres[0])
	}
	for len(centres) < G {
		sum := 0.0
		for _, d := range near {
			sum += d
		}
		pick := rng.IntN(V)
		if sum > 0 {
			r := rng.Float64() * sum
			for v, d := range near {
				if r -= d; r <= 0 {
					pick = v
					break
				}
			}
		}
		c := append([]float64(nil), feat[pick]...)
		centres = append(centres, c)
		for v := range V {
			near[v] = math.Min(near[v], dist(feat[v], c))
		}
	}
	group := make([]int, V)
	for iter := 0; iter < 25; iter++ {
		changed := false
		for v := range V {
			best, bd := 0, math.Inf(1)
			for g, c := range centres {
				if d := dist(feat[v], c); d < bd {
					best, bd = g, d
				}
			}
			if group[v] != best || iter == 0 {
				changed = changed || group[v] != best
				group[v] = best
			}
		}
		if !changed && iter > 0 {
			break
		}
		count := make([]int, G)
		for g := range centres {
			for k := range centres[g] {
				centres[g][k] = 0
			}
		}
		for v, g := range group {
			count[g]++
			for k := range feat[v] {
				centres[g][k] += feat[v][k]
			}
		}
		for g := range centres {
			if count[g] == 0 {
				copy(centres[g], feat[rng.IntN(V)])
				continue
			}
			for k := range centres[g] {
				centres[g][k] /= float64(count[g])
			}
		}
	}
	return group
}
