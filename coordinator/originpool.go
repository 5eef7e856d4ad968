package coordinator

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/wire"
)

// OriginPoolConfig configures an OriginPool.
type OriginPoolConfig struct {
	// PerServerRate is how many segment requests per second one origin
	// serves; it must be > 0. The pool's rate measure is segments asked for
	// in lookups (every segment of a lookup window may end up at an origin),
	// an upper bound on the origin-bound request rate.
	PerServerRate float64
	// Hysteresis in [0, 1): an origin pushed at rate C is popped only below
	// (1−Hysteresis)·C, so a rate that wanders inside the band does not flap.
	Hysteresis float64
	// RateHalfLife is the decay of the measured rate; default 10 s.
	RateHalfLife time.Duration
}

// OriginPool runs AVARDO over the origins: it allocates the catalogue's
// segments (the blocks) to the origins in stack order (sorted by node id),
// keeps the first Active() of them on as the measured request rate crosses
// the plan's thresholds, and dispatches each segment request to one active
// origin that holds it by the closed form.
//
// The allocation lives here and lookups follow it; origins do not enforce
// it (in a deployment they share one publisher store, so each can serve
// anything). Every origin is given one slot per block: the slots bound
// nothing that the shared store does not already hold, and AVARDO then
// needs a single base origin (MinServers = 1) and replicates popular
// segments onto the extras.
//
// OriginPool is sans-IO and not safe for concurrent use.
type OriginPool struct {
	cfg OriginPoolConfig

	keys    []content.SegmentRef       // block id -> segment, in content.CompareSegmentRefs order
	blocks  map[content.SegmentRef]int // segment -> block id
	origins []wire.NodeID              // stack order: ascending node id
	avardo  *plan.Avardo               // nil while there are no blocks or no origins
	th      []plan.Threshold

	depth int       // active origins: origins[0:depth]
	rate  float64   // measured segment requests per second, as of last
	last  time.Time // time of the last observation
}

// NewOriginPool returns an empty pool (no catalogue, no origins) at now.
func NewOriginPool(cfg OriginPoolConfig, now time.Time) (*OriginPool, error) {
	if !(cfg.PerServerRate > 0) || math.IsInf(cfg.PerServerRate, 0) {
		return nil, fmt.Errorf("coordinator: origin pool per-server rate must be a finite number > 0, got %v", cfg.PerServerRate)
	}
	if !(cfg.Hysteresis >= 0 && cfg.Hysteresis < 1) {
		return nil, fmt.Errorf("coordinator: origin pool hysteresis must be in [0, 1), got %v", cfg.Hysteresis)
	}
	if cfg.RateHalfLife <= 0 {
		cfg.RateHalfLife = 10 * time.Second
	}
	return &OriginPool{cfg: cfg, last: now}, nil
}

// Rebuild replaces the catalogue and the origins and recomputes the
// allocation. blocks lists the catalogue's segments; popularity[i] is the
// demand of blocks[i] in any unit (nil, or all zero, means uniform);
// origins are the registered origins in any order. The active depth is kept,
// clamped to the new stack.
func (p *OriginPool) Rebuild(blocks []content.SegmentRef, popularity []float64, origins []wire.NodeID) error {
	if popularity != nil && len(popularity) != len(blocks) {
		return fmt.Errorf("coordinator: origin pool: %d popularities for %d blocks", len(popularity), len(blocks))
	}
	idx := make([]int, len(blocks))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return content.CompareSegmentRefs(blocks[a], blocks[b]) })
	keys := make([]content.SegmentRef, len(blocks))
	pop := make([]float64, len(blocks))
	total := 0.0
	for j, i := range idx {
		keys[j] = blocks[i]
		if popularity != nil && popularity[i] > 0 && !math.IsInf(popularity[i], 0) {
			pop[j] = popularity[i]
			total += pop[j]
		}
	}
	for j := range pop {
		if total > 0 {
			pop[j] /= total
		} else {
			pop[j] = 1 / float64(len(pop))
		}
	}
	stack := slices.Clone(origins)
	slices.Sort(stack)
	stack = slices.Compact(stack)

	p.keys, p.origins, p.avardo, p.th = keys, stack, nil, nil
	p.blocks = make(map[content.SegmentRef]int, len(keys))
	for j, k := range keys {
		p.blocks[k] = j
	}
	if len(keys) == 0 || len(stack) == 0 {
		p.depth = 0
		return nil
	}
	a, err := plan.NewAvardo(pop, len(stack), len(keys))
	if err != nil {
		return fmt.Errorf("coordinator: origin pool: %w", err)
	}
	th, err := a.Thresholds(p.cfg.PerServerRate, p.cfg.Hysteresis)
	if err != nil {
		return fmt.Errorf("coordinator: origin pool: %w", err)
	}
	p.avardo, p.th = a, th
	p.depth = plan.NextDepth(th, p.depth, p.rate)
	return nil
}

// Observe counts segmentRequests requests at now into the decaying rate
// (a steady r per second converges to r) and moves the active depth along
// the thresholds. It returns the new depth.
func (p *OriginPool) Observe(now time.Time, segmentRequests int) int {
	dt := now.Sub(p.last)
	if dt < 0 {
		dt = 0
	}
	p.last = now
	lambda := math.Ln2 / p.cfg.RateHalfLife.Seconds()
	p.rate = p.rate*math.Exp(-lambda*dt.Seconds()) + float64(segmentRequests)*lambda
	return p.step()
}

// ObserveRate sets the measured rate (segment requests per second) directly
// and moves the active depth along the thresholds. It returns the new depth.
func (p *OriginPool) ObserveRate(rate float64) int {
	if rate >= 0 && !math.IsInf(rate, 0) {
		p.rate = rate
	}
	return p.step()
}

func (p *OriginPool) step() int {
	if p.avardo != nil {
		p.depth = plan.NextDepth(p.th, p.depth, p.rate)
	}
	return p.depth
}

// Rate is the measured segment request rate as of the last observation.
func (p *OriginPool) Rate() float64 { return p.rate }

// Active is the stack depth: origins Origins()[0:Active()] are on.
func (p *OriginPool) Active() int { return p.depth }

// Origins returns the origins in stack order. The caller must not modify it.
func (p *OriginPool) Origins() []wire.NodeID { return p.origins }

// Thresholds returns the push/pop rates of every stack position (nil
// without an allocation). The caller must not modify it.
func (p *OriginPool) Thresholds() []plan.Threshold { return p.th }

// Block returns the block id of a segment, or -1 if it is not in the
// catalogue the pool was last built with.
func (p *OriginPool) Block(key content.SegmentRef) int {
	if b, ok := p.blocks[key]; ok {
		return b
	}
	return -1
}

// Allocation returns the block allocation (nil without one). The caller
// must not modify it.
func (p *OriginPool) Allocation() *plan.Allocation {
	if p.avardo == nil {
		return nil
	}
	return p.avardo.Allocation()
}

// Dispatch picks the stack index of the active origin that serves one
// request for the segment, by AVARDO's closed form with the uniform draw u
// in [0, 1). It returns -1 if the pool has no allocation or the segment is
// not in its catalogue.
func (p *OriginPool) Dispatch(seg content.SegmentRef, u float64) int {
	b := p.Block(seg)
	if b < 0 || p.avardo == nil {
		return -1
	}
	s, err := p.avardo.Dispatch(b, p.depth, u)
	if err != nil {
		return -1 // unreachable: the depth stays within [MinServers, Servers]
	}
	return s
}

// Route returns the stack indices of the origins a request for the
// segment should go to, best first: the dispatched origin, then the other
// active origins that hold the segment. alive(i) tells whether origin i may
// be used; dead ones are skipped, and if no holder is alive the list falls
// back to every alive origin. It returns nil if the pool cannot place the
// segment (the caller then lists every origin, as without a pool).
func (p *OriginPool) Route(dst []int, key content.SegmentRef, u float64, alive func(i int) bool) []int {
	first := p.Dispatch(key, u)
	if first < 0 {
		return dst
	}
	start := len(dst)
	if alive(first) {
		dst = append(dst, first)
	}
	for _, s := range p.avardo.Allocation().Replicas[p.blocks[key]] {
		i := int(s)
		if i < p.depth && i != first && alive(i) {
			dst = append(dst, i)
		}
	}
	if len(dst) == start {
		for i := range p.origins {
			if alive(i) {
				dst = append(dst, i)
			}
		}
	}
	return dst
}

// routeOrigins feeds the lookup's segments to the origin pool's rate and
// fills in each segment's origin route. The caller holds c.mu (read).
func (c *Coordinator) routeOrigins(req *wire.LookupRequest, now time.Time, tiebreak uint64, res *lookupResult) {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if c.poolStale || c.poolVideos != len(c.st.videos) || !c.samePoolOrigins() {
		c.rebuildPool()
	}
	c.pool.Observe(now, len(res.segments))
	stack := c.pool.Origins()
	alive := func(i int) bool {
		n := c.st.nodes[stack[i]]
		return n != nil && n.role == wire.RoleOrigin && c.st.alive(n, now)
	}
	for i := range res.segments {
		seg := &res.segments[i]
		key := content.SegmentRef{Video: req.Video, Rendition: req.Rendition, Segment: seg.segment}
		// u is a seeded draw per lookup and segment (tiebreak comes from
		// the coordinator's seed), so dispatch is reproducible.
		u := float64(splitmix64(tiebreak^uint64(seg.segment)*0x9e3779b97f4a7c15)>>11) / (1 << 53)
		c.poolRoute = c.pool.Route(c.poolRoute[:0], key, u, alive)
		seg.oStart = len(res.segOrigins)
		for _, s := range c.poolRoute {
			res.segOrigins = append(res.segOrigins, c.st.nodes[stack[s]])
		}
		seg.oEnd = len(res.segOrigins)
	}
}

// samePoolOrigins reports whether the registered origins are the pool's
// stack. The caller holds c.mu (read) and c.poolMu.
func (c *Coordinator) samePoolOrigins() bool {
	stack := c.pool.Origins()
	if len(stack) != len(c.st.origins) {
		return false
	}
	for _, o := range c.st.origins {
		if _, ok := slices.BinarySearch(stack, o.id); !ok {
			return false
		}
	}
	return true
}

// rebuildPool reallocates the catalogue over the registered origins, with
// popularity from the demand of the last placement round (uniform when
// there is none). The caller holds c.mu (read) and c.poolMu.
func (c *Coordinator) rebuildPool() {
	rate := make(map[content.SegmentRef]float64, len(c.poolDemand))
	for _, d := range c.poolDemand {
		rate[d.Key] = d.Rate
	}
	var blocks []content.SegmentRef
	var pop []float64
	for id, v := range c.st.videos {
		for r, segs := range v.segs {
			for s := range segs {
				k := content.SegmentRef{Video: id, Rendition: r, Segment: s}
				blocks = append(blocks, k)
				pop = append(pop, rate[k])
			}
		}
	}
	origins := make([]wire.NodeID, len(c.st.origins))
	for i, o := range c.st.origins {
		origins[i] = o.id
	}
	if err := c.pool.Rebuild(blocks, pop, origins); err != nil {
		c.log.Warn("origin pool: rebuild failed; lookups list every origin", "err", err)
	}
	c.poolVideos, c.poolStale = len(c.st.videos), false
	c.log.Debug("origin pool rebuilt", "blocks", len(blocks), "origins", len(origins), "active", c.pool.Active())
}

// OriginPoolActive returns the origin pool's stack in order and how many of
// its origins are on (nil, 0 when the pool is off).
func (c *Coordinator) OriginPoolActive() ([]wire.NodeID, int) {
	if c.pool == nil {
		return nil, 0
	}
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	return slices.Clone(c.pool.Origins()), c.pool.Active()
}
