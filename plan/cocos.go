package plan

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/swarmcast/swarmcast/plan/lp"
)

// CocosSpec describes a synthetic multi-origin multi-channel live cloud, after
// the COCOS paper's setup: servers in a plane, each channel pushed from a
// random origin to the servers with local demand for it.
type CocosSpec struct {
	Servers    int     // servers, origins included
	Channels   int     // live channels
	DelayBound float64 // maximum origin-to-end delay (ms)
	RateMean   float64 // stream rate mean (Mb/s)
	RateStd    float64 // stream rate standard deviation (Mb/s)
	PriceMean  float64 // upload and link price mean (per Mbit)
	PriceStd   float64 // upload and link price standard deviation (per Mbit)
	Zipf       float64 // channel popularity exponent: server demands rank r with probability r^-Zipf
	Seed       uint64
}

// PaperCocosSpec is the baseline setup of the COCOS paper.
func PaperCocosSpec() CocosSpec {
	return CocosSpec{Servers: 100, Channels: 60, DelayBound: 800, RateMean: 1.2, RateStd: 0.2,
		PriceMean: 0.1, PriceStd: 0.05, Zipf: 0.5, Seed: 1}
}

// CocosInstance is a concrete live cloud.
type CocosInstance struct {
	Delay      [][]float64 // server-to-server delay (ms)
	Upload     []float64   // price of uploading one Mbit from a server
	Link       [][]float64 // price of sending one Mbit over a link
	Channels   []Channel
	DelayBound float64 // ms
}

// Channel is one live stream.
type Channel struct {
	Origin int
	Rate   float64 // Mb/s
	Demand []int   // servers with local viewers, ascending, origin excluded
}

// NewCocosInstance draws an instance: server positions uniform in a square
// with delay 10 ms + 350 ms per unit distance (±20% jitter), prices and rates
// from clipped normals, and per-server channel demand by Zipf rank.
func NewCocosInstance(s CocosSpec) (*CocosInstance, error) {
	switch {
	case s.Servers < 2:
		return nil, fmt.Errorf("plan: cocos needs at least 2 servers, got %d", s.Servers)
	case s.Channels < 1:
		return nil, fmt.Errorf("plan: cocos needs at least 1 channel, got %d", s.Channels)
	case !(s.DelayBound > 0):
		return nil, fmt.Errorf("plan: delay bound must be > 0 ms, got %v", s.DelayBound)
	case !(s.RateMean > 0) || s.RateStd < 0 || !(s.PriceMean > 0) || s.PriceStd < 0 || s.Zipf < 0:
		return nil, fmt.Errorf("plan: rates and prices need mean > 0 and deviation ≥ 0, Zipf ≥ 0")
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0xc0c05))
	n := s.Servers
	x, y := make([]float64, n), make([]float64, n)
	for i := range x {
		x[i], y[i] = rng.Float64(), rng.Float64()
	}
	clip := func(mean, std, floor float64) float64 { return math.Max(floor, mean+std*rng.NormFloat64()) }
	in := &CocosInstance{Delay: square(n), Link: square(n), Upload: make([]float64, n), DelayBound: s.DelayBound}
	for i := range n {
		in.Upload[i] = clip(s.PriceMean, s.PriceStd, s.PriceMean/20)
		for j := range n {
			if i != j {
				in.Delay[i][j] = 10 + 350*math.Hypot(x[i]-x[j], y[i]-y[j])*(0.8+0.4*rng.Float64())
				in.Link[i][j] = clip(s.PriceMean, s.PriceStd, s.PriceMean/20)
			}
		}
	}
	for c := range s.Channels {
		ch := Channel{Origin: rng.IntN(n), Rate: clip(s.RateMean, s.RateStd, s.RateMean/10)}
		p := math.Pow(float64(c+1), -s.Zipf)
		for i := range n {
			if i != ch.Origin && rng.Float64() < p {
				ch.Demand = append(ch.Demand, i)
			}
		}
		in.Channels = append(in.Channels, ch)
	}
	return in, in.Check()
}

func square(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
	}
	return m
}

// Check reports a malformed instance or a delay bound that no tree can meet.
func (in *CocosInstance) Check() error {
	n := len(in.Upload)
	if n == 0 || len(in.Delay) != n || len(in.Link) != n {
		return fmt.Errorf("plan: cocos instance needs matching delay, link and upload tables, got %d/%d/%d", len(in.Delay), len(in.Link), n)
	}
	for c, ch := range in.Channels {
		if ch.Origin < 0 || ch.Origin >= n || !(ch.Rate > 0) {
			return fmt.Errorf("plan: channel %d has origin %d and rate %v", c, ch.Origin, ch.Rate)
		}
		nodes := channelNodes(ch)
		dist, _ := in.shortestDelays(nodes, ch.Origin)
		for _, t := range ch.Demand {
			if t < 0 || t >= n || t == ch.Origin {
				return fmt.Errorf("plan: channel %d demands server %d", c, t)
			}
			if dist[t] > in.DelayBound {
				return fmt.Errorf("plan: delay bound %.0f ms cannot be met: server %d is at least %.1f ms from the origin (server %d) of channel %d",
					in.DelayBound, t, dist[t], ch.Origin, c)
			}
		}
	}
	return nil
}

func sortedKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// earliest returns the member through which v is reached soonest.
func (in *CocosInstance) earliest(members []int, delay map[int]float64, v int) int {
	best := members[0]
	for _, u := range members[1:] {
		if delay[u]+in.Delay[u][v] < delay[best]+in.Delay[best][v] {
			best = u
		}
	}
	return best
}

func channelNodes(ch Channel) []int {
	return append([]int{ch.Origin}, ch.Demand...)
}

// edgeCost is the price per second of pushing channel ch over i→j.
func (in *CocosInstance) edgeCost(ch Channel, i, j int) float64 {
	return ch.Rate * (in.Upload[i] + in.Link[i][j])
}

// shortestDelays runs Dijkstra by delay from src over the complete graph on
// nodes; it returns distances (Inf off the node set) and predecessors.
func (in *CocosInstance) shortestDelays(nodes []int, src int) ([]float64, []int) {
	n := len(in.Upload)
	dist := make([]float64, n)
	pred := make([]int, n)
	done := make([]bool, n)
	for i := range dist {
		dist[i], pred[i] = math.Inf(1), -1
	}
	dist[src] = 0
	for range nodes {
		u := -1
		for _, v := range nodes {
			if !done[v] && (u < 0 || dist[v] < dist[u]) {
				u = v
			}
		}
		if u < 0 || math.IsInf(dist[u], 1) {
			break
		}
		done[u] = true
		for _, v := range nodes {
			if v != u && !done[v] && dist[u]+in.Delay[u][v] < dist[v] {
				dist[v], pred[v] = dist[u]+in.Delay[u][v], u
			}
		}
	}
	return dist, pred
}

// Tree is one channel's overlay: every demanding server has a parent, and
// following parents reaches the origin.
type Tree struct {
	Channel int
	Parent  map[int]int // server -> parent server
	Cost    float64     // per second
	// Delay is each demanding server's origin-to-end delay (ms).
	Delay map[int]float64
}

// CocosResult is the overlay of every channel under one scheme.
type CocosResult struct {
	Scheme     string
	Trees      []Tree
	Cost       float64 // total per second
	LPBound    float64 // COCOS only: value of the LP relaxation
	Violations int     // demanding servers whose delay exceeds the bound
	MaxDelay   float64 // worst origin-to-end delay (ms)
}

func (in *CocosInstance) finish(scheme string, trees []Tree) *CocosResult {
	r := &CocosResult{Scheme: scheme, Trees: trees}
	for i := range trees {
		t := &trees[i]
		ch := in.Channels[t.Channel]
		t.Cost, t.Delay = 0, map[int]float64{}
		for _, v := range sortedKeys(t.Parent) {
			t.Cost += in.edgeCost(ch, t.Parent[v], v)
		}
		var delayOf func(v int) float64
		delayOf = func(v int) float64 {
			if v == ch.Origin {
				return 0
			}
			if d, ok := t.Delay[v]; ok {
				return d
			}
			d := delayOf(t.Parent[v]) + in.Delay[t.Parent[v]][v]
			t.Delay[v] = d
			return d
		}
		for _, v := range ch.Demand {
			d := delayOf(v)
			r.MaxDelay = math.Max(r.MaxDelay, d)
			if d > in.DelayBound*(1+1e-9) {
				r.Violations++
			}
		}
		r.Cost += t.Cost
	}
	return r
}

// NearestPeer is the Nearest Peer baseline: demanding servers join in order of
// delay from the origin, each attaching to the tree member nearest to it
// whose delay keeps it within the bound (the origin always qualifies when the
// instance passes Check). It ignores prices.
func NearestPeer(in *CocosInstance) *CocosResult {
	trees := make([]Tree, len(in.Channels))
	for c, ch := range in.Channels {
		t := Tree{Channel: c, Parent: map[int]int{}}
		delay := map[int]float64{ch.Origin: 0}
		order := append([]int(nil), ch.Demand...)
		sort.SliceStable(order, func(a, b int) bool { return in.Delay[ch.Origin][order[a]] < in.Delay[ch.Origin][order[b]] })
		members := []int{ch.Origin}
		for _, v := range order {
			best, bestD := -1, math.Inf(1)
			for _, u := range members {
				if d := in.Delay[u][v]; d < bestD && delay[u]+d <= in.DelayBound {
					best, bestD = u, d
				}
			}
			if best < 0 {
				best = in.earliest(members, delay, v)
			}
			t.Parent[v] = best
			delay[v] = delay[best] + in.Delay[best][v]
			members = append(members, v)
		}
		trees[c] = t
	}
	return in.finish("nearest-peer", trees)
}

// DelayBoundedPrim is the Prim baseline: grow a tree from the origin, each
// step adding the cheapest edge from a member to a non-member that keeps the
// newcomer within the delay bound.
func DelayBoundedPrim(in *CocosInstance) *CocosResult {
	trees := make([]Tree, len(in.Channels))
	for c, ch := range in.Channels {
		t := Tree{Channel: c, Parent: map[int]int{}}
		delay := map[int]float64{ch.Origin: 0}
		members := []int{ch.Origin}
		left := map[int]bool{}
		for _, v := range ch.Demand {
			left[v] = true
		}
		for len(left) > 0 {
			bu, bv, bc := -1, -1, math.Inf(1)
			for _, u := range members {
				for _, v := range ch.Demand {
					if !left[v] || delay[u]+in.Delay[u][v] > in.DelayBound {
						continue
					}
					if w := in.edgeCost(ch, u, v); w < bc || (w == bc && v < bv) {
						bu, bv, bc = u, v, w
					}
				}
			}
			if bv < 0 {
				// No member reaches anyone in time: attach the lowest
				// remaining server through its earliest member.
				for _, v := range ch.Demand {
					if left[v] {
						bv = v
						break
					}
				}
				bu = in.earliest(members, delay, bv)
			}
			t.Parent[bv] = bu
			delay[bv] = delay[bu] + in.Delay[bu][bv]
			members = append(members, bv)
			delete(left, bv)
		}
		trees[c] = t
	}
	return in.finish("prim", trees)
}

// CocosOptions tunes COCOS.
type CocosOptions struct {
	Substreams int // k: candidate trees cut from the LP, ≥ 1
	Candidates int // cheapest delay-feasible in-edges kept per server; 0 keeps all
	Solver     lp.Solver
	// Progress, if set, is called after each channel with the number done
	// and the total.
	Progress func(done, total int)
}

// Cocos solves, per channel, the LP relaxation of the minimum-cost overlay
// with a unit flow to every demanding server whose average path delay is at
// most the bound, splits each server's flow into k substreams along its flow
// paths, builds one tree per substream (the union of the chosen paths, pruned
// to a shortest-delay arborescence), keeps the cheapest tree that meets the
// delay bound, and re-attaches any server still over the bound.
func Cocos(in *CocosInstance, opt CocosOptions) (*CocosResult, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	if opt.Substreams < 1 {
		return nil, fmt.Errorf("plan: cocos needs at least 1 substream, got %d", opt.Substreams)
	}
	if opt.Solver == nil {
		opt.Solver = lp.Auto{}
	}
	trees := make([]Tree, len(in.Channels))
	bound := 0.0
	for c, ch := range in.Channels {
		t, lb, err := in.cocosChannel(c, ch, opt)
		if err != nil {
			return nil, fmt.Errorf("plan: cocos channel %d: %w", c, err)
		}
		trees[c] = t
		bound += lb
		if opt.Progress != nil {
			opt.Progress(c+1, len(in.Channels))
		}
	}
	r := in.finish("cocos", trees)
	r.LPBound = bound
	return r, nil
}

type arc struct{ from, to int }

// candidateArcs keeps, for every non-origin node, the cheapest delay-feasible
// in-arcs plus the arc on its shortest-delay path, so the LP stays feasible.
func (in *CocosInstance) candidateArcs(ch Channel, keep int) []arc {
	nodes := channelNodes(ch)
	dist, pred := in.shortestDelays(nodes, ch.Origin)
	var arcs []arc
	for _, v := range ch.Demand {
		var cand []int
		for _, u := range nodes {
			if u != v && dist[u]+in.Delay[u][v] <= in.DelayBound {
				cand = append(cand, u)
			}
		}
		sort.SliceStable(cand, func(a, b int) bool { return in.edgeCost(ch, cand[a], v) < in.edgeCost(ch, cand[b], v) })
		if keep > 0 && len(cand) > keep {
			cand = cand[:keep]
		}
		if !containsInt(cand, pred[v]) {
			cand = append(cand, pred[v])
		}
		for _, u := range cand {
			arcs = append(arcs, arc{u, v})
		}
	}
	return arcs
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// channelLP is the LP relaxation of one channel's overlay over candidate
// arcs: x[arc] ∈ [0, 1] at the arc's price, a unit flow f to every demanding
// server with f ≤ x, and each server's flow-weighted path delay ≤ the bound.
type channelLP struct {
	p     *lp.Problem
	arcs  []arc
	out   [][]int // node -> arcs leaving it
	xcol  []int   // arc -> column of x
	flows [][]fvar
}

type fvar struct{ arc, col int }

func (in *CocosInstance) buildChannelLP(ch Channel, candidates int) (*channelLP, error) {
	arcs := in.candidateArcs(ch, candidates)
	// Delay from the origin to every node and from every node to each
	// target, inside the candidate graph, to drop flow variables that
	// cannot lie on a path within the bound.
	n := len(in.Upload)
	out := make([][]int, n)
	into := make([][]int, n)
	for k, a := range arcs {
		out[a.from] = append(out[a.from], k)
		into[a.to] = append(into[a.to], k)
	}
	fromOrigin := in.arcDijkstra(arcs, out, ch.Origin, false)
	p := lp.NewProblem(0)
	xcol := make([]int, len(arcs))
	for k, a := range arcs {
		xcol[k] = p.AddColumn(in.edgeCost(ch, a.from, a.to), 0, 1)
	}
	flows := make([][]fvar, len(ch.Demand))
	for ti, t := range ch.Demand {
		toT := in.arcDijkstra(arcs, into, t, true)
		var delayIdx []int
		var delayVal []float64
		colOf := map[int]int{}
		for k, a := range arcs {
			if fromOrigin[a.from]+in.Delay[a.from][a.to]+toT[a.to] > in.DelayBound*(1+1e-9) {
				continue
			}
			col := p.AddColumn(0, 0, 1)
			colOf[k] = col
			flows[ti] = append(flows[ti], fvar{k, col})
			p.AddRow([]int{col, xcol[k]}, []float64{1, -1}, math.Inf(-1), 0)
			delayIdx = append(delayIdx, col)
			delayVal = append(delayVal, in.Delay[a.from][a.to])
		}
		for _, v := range channelNodes(ch)[1:] {
			var idx []int
			var val []float64
			for _, k := range into[v] {
				if col, ok := colOf[k]; ok {
					idx, val = append(idx, col), append(val, 1)
				}
			}
			for _, k := range out[v] {
				if col, ok := colOf[k]; ok {
					idx, val = append(idx, col), append(val, -1)
				}
			}
			rhs := 0.0
			if v == t {
				rhs = 1
			}
			if len(idx) > 0 {
				p.AddRow(idx, val, rhs, rhs)
			} else if rhs != 0 {
				return nil, fmt.Errorf("server %d has no arc within the delay bound", t)
			}
		}
		p.AddRow(delayIdx, delayVal, math.Inf(-1), in.DelayBound)
	}
	return &channelLP{p: p, arcs: arcs, out: out, xcol: xcol, flows: flows}, nil
}

func (in *CocosInstance) cocosChannel(c int, ch Channel, opt CocosOptions) (Tree, float64, error) {
	if len(ch.Demand) == 0 {
		return Tree{Channel: c, Parent: map[int]int{}}, 0, nil
	}
	m, err := in.buildChannelLP(ch, opt.Candidates)
	if err != nil {
		return Tree{}, 0, err
	}
	p, arcs, out, flows := m.p, m.arcs, m.out, m.flows
	sol, err := opt.Solver.Solve(p)
	if err != nil {
		return Tree{}, 0, err
	}
	if sol.Status != lp.Optimal {
		return Tree{}, 0, fmt.Errorf("LP relaxation is %v", sol.Status)
	}
	// Decompose each target's flow into paths.
	paths := make([][]weightedPath, len(ch.Demand))
	for ti, t := range ch.Demand {
		f := map[int]float64{}
		for _, fv := range flows[ti] {
			if v := sol.X[fv.col]; v > 1e-9 {
				f[fv.arc] = v
			}
		}
		paths[ti] = decompose(arcs, out, f, ch.Origin, t, in)
	}
	best := Tree{}
	bestCost, bestViol := math.Inf(1), math.MaxInt
	k := opt.Substreams
	for s := range k {
		theta := (float64(s) + 0.5) / float64(k)
		union := map[arc]bool{}
		for ti := range ch.Demand {
			ps := paths[ti]
			acc := 0.0
			pick := ps[len(ps)-1]
			for _, wp := range ps {
				acc += wp.weight
				if theta < acc {
					pick = wp
					break
				}
			}
			for _, a := range pick.arcs {
				union[arcs[a]] = true
			}
		}
		tree := in.arborescence(c, ch, union)
		tree = in.repair(ch, tree)
		cost, viol := in.treeCost(ch, tree)
		if viol < bestViol || (viol == bestViol && cost < bestCost) {
			best, bestCost, bestViol = tree, cost, viol
		}
	}
	return best, sol.Objective, nil
}

type weightedPath struct {
	arcs   []int
	weight float64
	delay  float64
}

// decompose splits one target's flow into origin→target paths, heaviest
// first, with weights summing to 1; paths are then ordered by their node
// sequence so that targets sharing a prefix round the same way.
func decompose(arcs []arc, out [][]int, f map[int]float64, origin, target int, in *CocosInstance) []weightedPath {
	var ps []weightedPath
	total := 0.0
	for iter := 0; iter < 10000 && total < 1-1e-7; iter++ {
		// Widest path by DFS over positive arcs, avoiding cycles.
		var path []int
		seen := map[int]bool{origin: true}
		var dfs func(u int) bool
		dfs = func(u int) bool {
			if u == target {
				return true
			}
			ks := append([]int(nil), out[u]...)
			sort.SliceStable(ks, func(a, b int) bool { return f[ks[a]] > f[ks[b]] })
			for _, k := range ks {
				v := arcs[k].to
				if f[k] > 1e-9 && !seen[v] {
					seen[v] = true
					path = append(path, k)
					if dfs(v) {
						return true
					}
					path = path[:len(path)-1]
				}
			}
			return false
		}
		if !dfs(origin) {
			break
		}
		w := math.Inf(1)
		d := 0.0
		for _, k := range path {
			w = math.Min(w, f[k])
			d += in.Delay[arcs[k].from][arcs[k].to]
		}
		for _, k := range path {
			f[k] -= w
		}
		total += w
		ps = append(ps, weightedPath{arcs: path, weight: w, delay: d})
	}
	if len(ps) == 0 {
		return []weightedPath{{arcs: nil, weight: 1}}
	}
	for i := range ps {
		ps[i].weight /= total
	}
	sort.SliceStable(ps, func(a, b int) bool {
		pa, pb := ps[a].arcs, ps[b].arcs
		for i := 0; i < len(pa) && i < len(pb); i++ {
			if pa[i] != pb[i] {
				return pa[i] < pb[i]
			}
		}
		return len(pa) < len(pb)
	})
	return ps
}

// arcDijkstra returns delays from src along arcs (or to src along reversed
// arcs when reverse is set).
func (in *CocosInstance) arcDijkstra(arcs []arc, adj [][]int, src int, reverse bool) []float64 {
	dist := make([]float64, len(in.Upload))
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	dist[src] = 0
	h := &distHeap{{src, 0}}
	for h.Len() > 0 {
		it := heap.Pop(h).(distItem)
		if it.d > dist[it.v] {
			continue
		}
		for _, k := range adj[it.v] {
			a := arcs[k]
			w := a.to
			if reverse {
				w = a.from
			}
			if d := it.d + in.Delay[a.from][a.to]; d < dist[w] {
				dist[w] = d
				heap.Push(h, distItem{w, d})
			}
		}
	}
	return dist
}

type distItem struct {
	v int
	d float64
}
type distHeap []distItem

func (h distHeap) Len() int { return len(h) }
func (h distHeap) Less(i, j int) bool {
	return h[i].d < h[j].d || (h[i].d == h[j].d && h[i].v < h[j].v)
}
func (h distHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)   { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any     { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

// arborescence prunes a union of paths to the shortest-delay tree from the
// origin over the union's arcs; demanding servers the union misses attach to
// the origin.
func (in *CocosInstance) arborescence(c int, ch Channel, union map[arc]bool) Tree {
	list := make([]arc, 0, len(union))
	for a := range union {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].from != list[j].from {
			return list[i].from < list[j].from
		}
		return list[i].to < list[j].to
	})
	out := make([][]int, len(in.Upload))
	for k, a := range list {
		out[a.from] = append(out[a.from], k)
	}
	// Dijkstra by delay, ties to the cheaper parent.
	dist := map[int]float64{ch.Origin: 0}
	parent := map[int]int{}
	h := &distHeap{{ch.Origin, 0}}
	done := map[int]bool{}
	for h.Len() > 0 {
		it := heap.Pop(h).(distItem)
		if done[it.v] {
			continue
		}
		done[it.v] = true
		for _, k := range out[it.v] {
			a := list[k]
			d := it.d + in.Delay[a.from][a.to]
			old, seen := dist[a.to]
			if !seen || d < old || (d == old && in.edgeCost(ch, a.from, a.to) < in.edgeCost(ch, parent[a.to], a.to)) {
				dist[a.to] = d
				parent[a.to] = a.from
				heap.Push(h, distItem{a.to, d})
			}
		}
	}
	t := Tree{Channel: c, Parent: map[int]int{}}
	keep := map[int]bool{}
	for _, v := range ch.Demand {
		if _, ok := parent[v]; !ok {
			parent[v] = ch.Origin
		}
		for u := v; u != ch.Origin && !keep[u]; u = parent[u] {
			keep[u] = true
			t.Parent[u] = parent[u]
		}
	}
	return t
}

// treeDelays returns every member's origin-to-end delay.
func (in *CocosInstance) treeDelays(ch Channel, t Tree) map[int]float64 {
	d := map[int]float64{ch.Origin: 0}
	var get func(v int, depth int) float64
	get = func(v int, depth int) float64 {
		if x, ok := d[v]; ok {
			return x
		}
		if depth > len(in.Upload) {
			return math.Inf(1) // cycle guard
		}
		x := get(t.Parent[v], depth+1) + in.Delay[t.Parent[v]][v]
		d[v] = x
		return x
	}
	for v := range t.Parent {
		get(v, 0)
	}
	return d
}

func (in *CocosInstance) treeCost(ch Channel, t Tree) (float64, int) {
	cost := 0.0
	for _, v := range sortedKeys(t.Parent) {
		cost += in.edgeCost(ch, t.Parent[v], v)
	}
	viol := 0
	d := in.treeDelays(ch, t)
	for _, v := range ch.Demand {
		if d[v] > in.DelayBound*(1+1e-9) {
			viol++
		}
	}
	return cost, viol
}

// repair re-attaches servers over the delay bound, shallowest first, to the
// cheapest member outside their subtree that keeps them within the bound.
func (in *CocosInstance) repair(ch Channel, t Tree) Tree {
	for round := 0; round < len(t.Parent)+1; round++ {
		d := in.treeDelays(ch, t)
		worst := -1
		for v := range t.Parent {
			if d[v] > in.DelayBound*(1+1e-9) && (worst < 0 || d[t.Parent[v]] < d[t.Parent[worst]] || (d[t.Parent[v]] == d[t.Parent[worst]] && v < worst)) {
				worst = v
			}
		}
		if worst < 0 {
			return t
		}
		inSub := func(u int) bool {
			for x := u; x != ch.Origin; x = t.Parent[x] {
				if x == worst {
					return true
				}
			}
			return false
		}
		best, bestC := ch.Origin, math.Inf(1)
		members := []int{ch.Origin}
		for v := range t.Parent {
			members = append(members, v)
		}
		sort.Ints(members)
		for _, u := range members {
			if u == worst || inSub(u) || d[u]+in.Delay[u][worst] > in.DelayBound {
				continue
			}
			if c := in.edgeCost(ch, u, worst); c < bestC {
				best, bestC = u, c
			}
		}
		t.Parent[worst] = best
	}
	return t
}
