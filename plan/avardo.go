package plan

import (
	"fmt"
	"math"
	"sort"
)

// Avardo is an AVARDO plan for one auto-scaling data centre: a block
// allocation built for a fixed stack order of servers, and the closed-form
// request dispatch that goes with it.
//
// Construction (our reconstruction of the paper, see docs/PLANNING.md):
//   - the base servers 0..n0-1, n0 = ⌈blocks/slots⌉, hold one copy of every
//     block, balanced in both block count and popularity mass;
//   - every later server is an extra in a layer [b, min(2b, S)) and holds one
//     equal-mass slice ("mega video") of the load of every server below b, so
//     pushing it offloads every active server evenly (interleaving);
//   - slices are cut from a parent's most-loaded blocks, and a block heavier
//     than a slice is cut across several slices, which replicates blocks by
//     popularity.
//
// Invariant: at every level n ≥ n0, the closed-form dispatch leaves each
// active server with load exactly 1/n of the total, except for the rounding
// of whole blocks onto base servers and slices too light to carry their share.
type Avardo struct {
	alloc  Allocation
	pop    []float64
	base   []int32   // block -> server holding its first copy
	pieces [][]piece // block -> slices it belongs to, by layer, then server
	layers []layer
	n0     int
}

// piece is a share of one block's load that an extra server can take from the
// parent server that carries it at the layer's base level.
type piece struct {
	server, parent int32
	layer          int32
	share          float64 // fraction of the block's popularity in this slice
}

// layer is a run of extra servers [first, end) that offload the servers
// 0..first-1 once those carry the load of level first.
type layer struct {
	first, end int
	load       []float64 // parent -> share of the total load it carries at level first
	binMass    []float64 // parent -> share of the total load in each of its slices
	bins       [][]int32 // parent -> extra servers holding one of its slices, ascending
}

// NewAvardo builds the AVARDO allocation of a catalogue with the given
// popularity onto servers servers of slots block slots each. It runs in
// O(blocks·log blocks + blocks·n0) time.
func NewAvardo(popularity []float64, servers, slots int) (*Avardo, error) {
	if err := checkShape(popularity, servers, slots); err != nil {
		return nil, err
	}
	M := len(popularity)
	n0 := (M + slots - 1) / slots
	a := &Avardo{
		alloc:  Allocation{Servers: servers, Slots: slots, Replicas: make([][]int32, M)},
		pop:    popularity,
		base:   make([]int32, M),
		pieces: make([][]piece, M),
		n0:     n0,
	}
	order := byPopularity(popularity)
	baseLoad := a.placeBase(order)
	parents := make([][]item, n0) // parent -> (block, load) pairs, heaviest first
	for _, m := range order {
		s := a.base[m]
		parents[s] = append(parents[s], item{block: m, load: popularity[m]})
	}
	for b := n0; b < servers; {
		end := min(2*b, servers)
		a.addLayer(b, end, slots, parents, baseLoad)
		b = end
		if b < servers {
			// Frozen loads at level b become the parents of the next layer.
			parents, baseLoad = a.levelLoads(b)
		}
	}
	for m := range a.alloc.Replicas {
		rs := []int32{a.base[m]}
		for _, p := range a.pieces[m] {
			rs = append(rs, p.server)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		uniq := rs[:1]
		for _, s := range rs[1:] {
			if s != uniq[len(uniq)-1] {
				uniq = append(uniq, s)
			}
		}
		a.alloc.Replicas[m] = uniq
	}
	return a, nil
}

func checkShape(popularity []float64, servers, slots int) error {
	if len(popularity) == 0 {
		return ErrNoBlocks
	}
	if servers < 1 {
		return fmt.Errorf("plan: need at least 1 server, got %d", servers)
	}
	if slots < 1 {
		return fmt.Errorf("plan: need at least 1 block slot per server, got %d", slots)
	}
	sum := 0.0
	for m, p := range popularity {
		if !(p >= 0) || math.IsInf(p, 0) {
			return fmt.Errorf("plan: popularity of block %d is %v; it must be a finite number ≥ 0", m, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("plan: block popularities sum to %v, want 1", sum)
	}
	if n0 := (len(popularity) + slots - 1) / slots; n0 > servers {
		return fmt.Errorf("plan: storage constraint cannot be met: %d blocks need at least %d servers of %d slots, have %d servers",
			len(popularity), n0, slots, servers)
	}
	return nil
}

type item struct {
	block int32
	load  float64 // share of the total load this parent carries for the block
}

// byPopularity returns block ids sorted by decreasing popularity, ties by id.
func byPopularity(pop []float64) []int32 {
	order := make([]int32, len(pop))
	for i := range order {
		order[i] = int32(i)
	}
	sort.SliceStable(order, func(i, j int) bool { return pop[order[i]] > pop[order[j]] })
	return order
}

// placeBase puts one copy of every block on servers 0..n0-1 so that block
// counts differ by at most one and popularity masses are as equal as a
// count-aware longest-processing-time greedy makes them. It returns the mass
// of each base server.
func (a *Avardo) placeBase(order []int32) []float64 {
	M, n0 := len(order), a.n0
	room := make([]int, n0)
	for s := range room {
		room[s] = M / n0
		if s < M%n0 {
			room[s]++
		}
	}
	mass := make([]float64, n0)
	restMass, restCount := 1.0, float64(M)
	for _, m := range order {
		// Projected final mass if the rest were spread at average density.
		rho := restMass / restCount
		best, bestKey := -1, math.Inf(1)
		for s := 0; s < n0; s++ {
			if room[s] == 0 {
				continue
			}
			if k := mass[s] + float64(room[s]-1)*rho; k < bestKey {
				best, bestKey = s, k
			}
		}
		a.base[m] = int32(best)
		room[best]--
		mass[best] += a.pop[m]
		restMass -= a.pop[m]
		restCount--
	}
	return mass
}

// addLayer lets the extra servers [first, end) each take one equal-mass slice
// of every parent server 0..first-1.
func (a *Avardo) addLayer(first, end, slots int, parents [][]item, load []float64) {
	li := int32(len(a.layers))
	ly := layer{first: first, end: end, load: load, binMass: make([]float64, first), bins: make([][]int32, first)}
	for s := 0; s < first; s++ {
		var caps []int
		for r := first; r < end; r++ {
			c := slots / first
			if (s+r)%first < slots%first {
				c++
			}
			if c > 0 {
				ly.bins[s] = append(ly.bins[s], int32(r))
				caps = append(caps, c)
			}
		}
		if len(caps) == 0 {
			continue
		}
		mass, cut := sliceParent(parents[s], caps)
		ly.binMass[s] = mass
		for _, c := range cut {
			m := c.block
			p := piece{server: ly.bins[s][c.bin], parent: int32(s), layer: li, share: c.mass / a.pop[m]}
			a.pieces[m] = append(a.pieces[m], p)
		}
	}
	a.layers = append(a.layers, ly)
}

type cutPiece struct {
	block int32
	bin   int
	mass  float64
}

// sliceParent cuts the heaviest blocks of one parent into len(caps) slices of
// equal mass, slice k holding at most caps[k] pieces, and returns the slice
// mass and the pieces. Blocks are dealt to slices in snake order (equal
// counts, nearly equal mass); then slices above the mean mass hand pieces of
// their heaviest blocks to slices below it until every slice has exactly the
// mean. A block split this way is stored on several extras, which replicates
// blocks by popularity. It replicates the longest prefix of the parent's
// blocks that fits the caps.
func sliceParent(items []item, caps []int) (float64, []cutPiece) {
	R := len(caps)
	try := func(P int) (bool, float64, []cutPiece) {
		if P == 0 {
			return true, 0, nil
		}
		bins := make([][]cutPiece, R)
		mass := make([]float64, R)
		W := 0.0
		for i, it := range items[:P] {
			k := i % R
			if (i/R)%2 == 1 {
				k = R - 1 - k
			}
			bins[k] = append(bins[k], cutPiece{block: it.block, bin: k, mass: it.load})
			mass[k] += it.load
			W += it.load
		}
		T := W / float64(R)
		tol := T * 1e-12
		var donors, takers []int
		for k := range mass {
			if mass[k] > T+tol {
				donors = append(donors, k)
			} else if mass[k] < T-tol {
				takers = append(takers, k)
			}
		}
		next := make([]int, R) // donor -> index of its heaviest piece not yet given away
		for len(donors) > 0 && len(takers) > 0 {
			d, t := donors[0], takers[0]
			for next[d] < len(bins[d]) && bins[d][next[d]].mass <= tol {
				next[d]++
			}
			if next[d] == len(bins[d]) {
				donors = donors[1:]
				continue
			}
			p := &bins[d][next[d]]
			amount := math.Min(math.Min(mass[d]-T, T-mass[t]), p.mass)
			p.mass -= amount
			mass[d] -= amount
			mass[t] += amount
			bins[t] = append(bins[t], cutPiece{block: p.block, bin: t, mass: amount})
			if mass[d] <= T+tol {
				donors = donors[1:]
			}
			if mass[t] >= T-tol {
				takers = takers[1:]
			}
		}
		var out []cutPiece
		for k := range bins {
			count := 0
			for _, p := range bins[k] {
				if p.mass > tol {
					count++
					out = append(out, p)
				}
			}
			if count > caps[k] {
				return false, 0, nil
			}
		}
		return true, T, out
	}
	lo, hi := 0, len(items)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ok, _, _ := try(mid); ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for ; lo > 0; lo-- {
		if ok, T, out := try(lo); ok {
			return T, out
		}
	}
	return 0, nil
}

// levelLoads runs the closed-form dispatch at level n and returns, for every
// server below n, its (block, load) pairs heaviest first and its total load.
func (a *Avardo) levelLoads(n int) ([][]item, []float64) {
	parents := make([][]item, n)
	total := make([]float64, n)
	var w []Share
	for m := range a.pop {
		w = a.appendWeights(w[:0], m, n)
		for _, sh := range w {
			if sh.Weight > 0 {
				l := sh.Weight * a.pop[m]
				parents[sh.Server] = append(parents[sh.Server], item{block: int32(m), load: l})
				total[sh.Server] += l
			}
		}
	}
	for s := range parents {
		sort.SliceStable(parents[s], func(i, j int) bool { return parents[s][i].load > parents[s][j].load })
	}
	return parents, total
}

// q is the fraction of each active slice's mass that parent s hands to its
// extras at level n of layer ly: it makes the parent's load exactly 1/n.
func (ly *layer) q(s int, n int) float64 {
	bins := ly.bins[s]
	active := sort.Search(len(bins), func(i int) bool { return int(bins[i]) >= n })
	if active == 0 || ly.binMass[s] <= 0 {
		return 0
	}
	q := (ly.load[s] - 1/float64(n)) / (float64(active) * ly.binMass[s])
	return math.Max(0, math.Min(1, q))
}

// Share is the fraction of a block's requests that one server serves.
type Share struct {
	Server int32
	Weight float64
}

// appendWeights appends the closed-form dispatch of block m at level n.
func (a *Avardo) appendWeights(dst []Share, m, n int) []Share {
	start := len(dst)
	dst = append(dst, Share{Server: a.base[m], Weight: 1})
	for _, p := range a.pieces[m] {
		ly := &a.layers[p.layer]
		if n <= ly.first {
			break
		}
		if int(p.server) >= n {
			continue
		}
		moved := ly.q(int(p.parent), min(n, ly.end)) * p.share
		if moved <= 0 {
			continue
		}
		for i := start; i < len(dst); i++ {
			if dst[i].Server == p.parent {
				dst[i].Weight -= moved
				break
			}
		}
		found := false
		for i := start; i < len(dst); i++ {
			if dst[i].Server == p.server {
				dst[i].Weight += moved
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, Share{Server: p.server, Weight: moved})
		}
	}
	return dst
}

// Allocation returns the block allocation. The caller must not modify it.
func (a *Avardo) Allocation() *Allocation { return &a.alloc }

// MinServers returns n0, the number of base servers that hold every block and
// so must always be active.
func (a *Avardo) MinServers() int { return a.n0 }

// Weights returns the closed-form dispatch of block at stack depth active
// (servers 0..active-1 on): the share of its requests each server serves. The
// shares are ≥ 0, sum to 1, and name only active servers that hold the block.
func (a *Avardo) Weights(block, active int) ([]Share, error) {
	if err := a.checkDispatch(block, active); err != nil {
		return nil, err
	}
	w := a.appendWeights(nil, block, active)
	out := w[:0]
	for _, s := range w {
		if s.Weight > 1e-15 {
			out = append(out, s)
		}
	}
	return out, nil
}

func (a *Avardo) checkDispatch(block, active int) error {
	if block < 0 || block >= len(a.pop) {
		return fmt.Errorf("plan: block %d outside the catalogue of %d blocks", block, len(a.pop))
	}
	if active < a.n0 || active > a.alloc.Servers {
		return fmt.Errorf("plan: %d active servers outside %d..%d; fewer than %d base servers leave blocks unserved",
			active, a.n0, a.alloc.Servers, a.n0)
	}
	return nil
}

// Dispatch picks the server for one request for block when servers
// 0..active-1 are on. u is a uniform draw in [0, 1) supplied by the caller
// (for example a hash of the request id), so the choice is deterministic and
// follows Weights in distribution. The server is always active and always
// holds the block.
func (a *Avardo) Dispatch(block, active int, u float64) (int, error) {
	w, err := a.Weights(block, active)
	if err != nil {
		return -1, err
	}
	acc := 0.0
	for _, s := range w {
		acc += s.Weight
		if u < acc {
			return int(s.Server), nil
		}
	}
	return int(w[len(w)-1].Server), nil
}

// Loads returns each active server's share of the total request rate at stack
// depth active under the closed-form dispatch.
func (a *Avardo) Loads(active int) ([]float64, error) {
	if err := a.checkDispatch(0, active); err != nil {
		return nil, err
	}
	load := make([]float64, active)
	var w []Share
	for m, p := range a.pop {
		w = a.appendWeights(w[:0], m, active)
		for _, s := range w {
			load[s.Server] += s.Weight * p
		}
	}
	return load, nil
}

// DispatchCapacity returns the largest request rate the closed-form dispatch
// serves at stack depth active when each server serves at most perServer
// requests per second. It is at most the max-flow capacity of Capacities.
func (a *Avardo) DispatchCapacity(active int, perServer float64) (float64, error) {
	load, err := a.Loads(active)
	if err != nil {
		return 0, err
	}
	peak := 0.0
	for _, l := range load {
		peak = math.Max(peak, l)
	}
	return perServer / peak, nil
}

// Threshold tells the origin pool when to push or pop one server of the stack.
type Threshold struct {
	Server     int     `json:"server"`     // stack position; servers below MinServers are always on
	Activate   float64 `json:"activate"`   // push Server when the request rate rises above this (req/s)
	Deactivate float64 `json:"deactivate"` // pop Server when the request rate falls below this (req/s)
}

// Thresholds returns, for every server, the request rates at which the stack
// pushes and pops it. Server i (i ≥ n0) is needed once the rate exceeds the
// closed-form capacity of servers 0..i-1, so Activate = C(i); it is released
// only when the rate falls below (1 − hysteresis)·C(i), which keeps the pool
// from flapping around a threshold. Base servers have both thresholds 0.
// hysteresis must be in [0, 1).
func (a *Avardo) Thresholds(perServer, hysteresis float64) ([]Threshold, error) {
	if !(perServer > 0) {
		return nil, fmt.Errorf("plan: per-server rate must be > 0, got %v", perServer)
	}
	if !(hysteresis >= 0 && hysteresis < 1) {
		return nil, fmt.Errorf("plan: hysteresis must be in [0, 1), got %v", hysteresis)
	}
	out := make([]Threshold, a.alloc.Servers)
	prev := 0.0
	for i := range out {
		out[i].Server = i
		if i < a.n0 {
			continue
		}
		c, err := a.DispatchCapacity(i, perServer)
		if err != nil {
			return nil, err
		}
		c = math.Max(c, prev) // a deeper stack never needs a lower threshold
		prev = c
		out[i].Activate = c
		out[i].Deactivate = (1 - hysteresis) * c
	}
	return out, nil
}

// NextDepth returns the stack depth the pool should move to from depth
// current at request rate rate: it pushes while the rate exceeds the next
// server's Activate and pops while it is below the top server's Deactivate.
// The result is in [n0, len(th)].
func NextDepth(th []Threshold, current int, rate float64) int {
	n0 := 0
	for n0 < len(th) && th[n0].Activate == 0 {
		n0++
	}
	n := max(current, n0)
	n = min(n, len(th))
	for n < len(th) && rate > th[n].Activate {
		n++
	}
	for n > n0 && rate < th[n-1].Deactivate {
		n--
	}
	return n
}
