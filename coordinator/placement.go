package coordinator

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// PlacementEdge is an alive, unbanned edge as the placer sees it.
type PlacementEdge struct {
	ID             wire.NodeID
	Region         string
	DiskCapBytes   int64
	UploadCapBytes int64                            // bytes per second
	Held           map[content.SegmentRef]ShardMask // what the edge reports holding (watched or fetched)
	Assigned       map[content.SegmentRef]ShardMask // the previous plan, kept where still valid so plans are stable
}

// PlacementSegment is a segment with demand.
type PlacementSegment struct {
	Key        content.SegmentRef
	Rate       float64            // requests per second (decayed)
	ByRegion   map[string]float64 // requests per second by viewer region
	ShardBytes int64              // size of each of its shards
	K, NMax    int
	// Viewers is how many distinct viewers asked for it (SegmentDemand.Viewers;
	// 0 = unknown, placed as if enough).
	Viewers int
	// Predicted is demand predicted along a playhead (SegmentDemand.Predicted;
	// Rate is then at most the measured rate it came from): ranked by rate
	// like the rest, after a measured segment of the same rate.
	Predicted bool
}

// PlacementState is the input of one placement round.
type PlacementState struct {
	Edges    []PlacementEdge
	Segments []PlacementSegment
}

// Assignment says edge Edge should keep Shards of Segment.
type Assignment struct {
	Edge    wire.NodeID
	Segment content.SegmentRef
	Shards  ShardMask
}

// Placer assigns coded shards to edges so that the number of edges holding
// distinct shards of a segment follows its demand: every segment with
// demand gets at least k holders (enough to rebuild it without the origin,
// as viewers take one shard per edge), the hottest up to n_max (or every
// edge if there are fewer), and shards of one segment go to distinct edges
// unless fewer than k edges have room.
// No edge is assigned more bytes than its disk cap or more expected upload
// than its upload cap.
//
// Expected upload model: a viewer fetches k distinct shards of a segment, so
// with c holders each serves rate·shardBytes·min(1, k/c) bytes per second.
// An edge is admitted with c counting itself, an upper bound on its final
// load (more holders only lower it).
//
// Plan is pure apart from the Placer's seeded random source: the same seed
// and the same sequence of states give the same plans.
//
// MinViewers is the demand a segment needs before it is replicated: at
// least that many distinct viewers (0 or 1: any demand). Most segments of
// a large catalogue are asked for by one viewer in a demand window;
// copying k shards of each to edges costs more than it returns, and the
// viewer's own edge (when its player is an edge) already holds it. A
// segment below the minimum is not assigned: what edges hold of it stays
// servable until evicted. docs/PERFORMANCE.md ("Scale") measures it.
type Placer struct {
	MinViewers int
	// SaturationRate is the request rate (per second) from which a segment
	// gets every n_max holder: the parity holders beyond k scale with
	// rate / max(hottest, SaturationRate) (TargetShards), so when every
	// segment is cold (each fetched by one viewer at a time, minutes apart)
	// the hottest of them is not copied to n_max edges. Each placed shard
	// costs the origin (or a regenerating edge) one shard; the holders
	// beyond k only spread concurrent fetches and give the fetch scheduler
	// spares against a slow holder. NewPlacer sets
	// DefaultPlacementSaturationRate; ≤ 0 scales by the hottest alone.
	SaturationRate float64

	rng  *rand.Rand
	pick []candidate // scratch for bestFresh
}

// DefaultPlacementMinViewers is the coordinator's default Placer.MinViewers:
// replicate on any demand. The scale scenario (a catalogue far larger than
// the edges' disks) runs with 2; the demo, whose small catalogue is all
// re-watched, loses 4.7 points of offload with 2 (docs/PERFORMANCE.md,
// "Scale").
const DefaultPlacementMinViewers = 1

// DefaultPlacementSaturationRate is Placer.SaturationRate's default: one
// request per second, at which a segment of 2-6 s has several viewers
// fetching it at once. Below it a segment's holders are k plus a share of
// the parity proportional to its rate (at least one spare). In the
// seed-capstone scenario (each segment fetched by ~3 viewers over 40 min,
// rates ~0.01-0.05/s) scaling by the hottest alone put ~19 shards of every
// placed segment on edges, 2.4 times the k = 8 a viewer fetches, all of them
// from the origin (docs/PERFORMANCE.md, "seed-capstone: where the origin's
// bytes go").
const DefaultPlacementSaturationRate = 1.0

// candidate is an edge ranked for one segment: higher region demand, then
// more headroom, then lower tiebreak is better.
type candidate struct {
	i        int
	region   float64
	headroom float64
	tiebreak uint64
}

func (a candidate) better(b candidate) bool {
	if a.region != b.region {
		return a.region > b.region
	}
	if a.headroom != b.headroom {
		return a.headroom > b.headroom
	}
	return a.tiebreak < b.tiebreak || a.tiebreak == b.tiebreak && a.i < b.i
}

// bestFresh returns up to need edges holding no shard of seg that fit one
// of its shards, best first, in one pass with a bounded heap whose root is
// the worst kept candidate.
func (p *Placer) bestFresh(edges []edgeLoad, perSeg []ShardMask, order []int, seg *PlacementSegment, loadIf func(int) float64, need int) []int {
	h := p.pick[:0]
	down := func(j int) {
		for {
			worst, l, r := j, 2*j+1, 2*j+2
			if l < len(h) && h[worst].better(h[l]) {
				worst = l
			}
			if r < len(h) && h[worst].better(h[r]) {
				worst = r
			}
			if worst == j {
				return
			}
			h[j], h[worst] = h[worst], h[j]
			j = worst
		}
	}
	for _, i := range order {
		l := &edges[i]
		if !perSeg[i].Empty() || !l.fits(seg.ShardBytes, loadIf(i)) {
			continue
		}
		c := candidate{i: i, region: seg.ByRegion[l.e.Region], headroom: 1 - l.upload/float64(max(l.e.UploadCapBytes, 1)), tiebreak: l.tiebreak}
		switch {
		case len(h) < need:
			h = append(h, c)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !h[parent].better(h[j]) {
					break
				}
				h[parent], h[j] = h[j], h[parent]
				j = parent
			}
		case c.better(h[0]):
			h[0] = c
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b candidate) int {
		if a.better(b) {
			return -1
		}
		return 1
	})
	out := make([]int, len(h))
	for j, c := range h {
		out[j] = c.i
	}
	p.pick = h
	return out
}

// NewPlacer returns a placer whose tie-breaks follow seed.
func NewPlacer(seed int64) *Placer {
	return &Placer{rng: rand.New(rand.NewSource(seed)), SaturationRate: DefaultPlacementSaturationRate}
}

// TargetShards is how many distinct shards a segment with rate should have,
// given the hottest segment's rate: k, plus a share of the n_max-k parity
// headroom proportional to rate/hottest.
func TargetShards(rate, hottest float64, k, nmax int) int {
	if rate <= 0 || hottest <= 0 {
		return 0
	}
	extra := int(math.Ceil(float64(nmax-k) * min(rate/hottest, 1)))
	return min(k+extra, nmax)
}

// supply is shards of one segment already on edge i.
type supply struct {
	i      int
	shards ShardMask
}

// edgeLoad is an edge's running budget during one plan.
type edgeLoad struct {
	e        *PlacementEdge
	disk     int64   // bytes assigned
	upload   float64 // expected bytes per second
	tiebreak uint64
}

func (l *edgeLoad) fits(shardBytes int64, load float64) bool {
	return l.disk+shardBytes <= l.e.DiskCapBytes && l.upload+load <= float64(l.e.UploadCapBytes)
}

// Plan computes the full assignment for st. now is accepted for symmetry
// with the other sans-IO cores; the plan depends on demand, not on time.
func (p *Placer) Plan(now time.Time, st PlacementState) []Assignment {
	_ = now
	edges := make([]edgeLoad, len(st.Edges))
	byID := make(map[wire.NodeID]int, len(st.Edges))
	order := make([]int, len(st.Edges))
	for i := range st.Edges {
		order[i] = i
	}
	// Visit edges in id order so map order never leaks into the plan.
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(string(st.Edges[a].ID), string(st.Edges[b].ID)) })
	for _, i := range order {
		edges[i] = edgeLoad{e: &st.Edges[i], tiebreak: p.rng.Uint64()}
		byID[st.Edges[i].ID] = i
	}

	segs := make([]PlacementSegment, 0, len(st.Segments))
	for _, seg := range st.Segments {
		if seg.Viewers == 0 || seg.Viewers >= p.MinViewers {
			segs = append(segs, seg)
		}
	}
	slices.SortStableFunc(segs, func(a, b PlacementSegment) int {
		if a.Rate != b.Rate {
			if a.Rate > b.Rate {
				return -1
			}
			return 1
		}
		if a.Predicted != b.Predicted {
			if b.Predicted {
				return -1 // at equal rates, measured demand first
			}
			return 1
		}
		return content.CompareSegmentRefs(a.Key, b.Key)
	})
	hottest := 0.0
	if len(segs) > 0 {
		hottest = max(segs[0].Rate, p.SaturationRate)
	}

	// Index what edges hold and were assigned by segment, in edge order, so
	// each segment visits only its own supply.
	// Supply is kept for the segments placed only, by slot (one per key).
	slot := make(map[content.SegmentRef]int32, len(segs))
	segSlot := make([]int32, len(segs))
	for j := range segs {
		n, ok := slot[segs[j].Key]
		if !ok {
			n = int32(len(slot))
			slot[segs[j].Key] = n
		}
		segSlot[j] = n
	}
	held := make([][]supply, len(slot))
	assigned := make([][]supply, len(slot))
	for _, i := range order {
		for key, m := range st.Edges[i].Held {
			if n, ok := slot[key]; ok {
				held[n] = append(held[n], supply{i, m})
			}
		}
		for key, m := range st.Edges[i].Assigned {
			if n, ok := slot[key]; ok {
				assigned[n] = append(assigned[n], supply{i, m})
			}
		}
	}

	plan := make([][]Assignment, len(edges)) // by edge index, in the order placed
	perSeg := make([]ShardMask, len(edges))  // per edge index: shards of the current segment
	var touched []int                        // edges with a non-empty perSeg
	for j, seg := range segs {
		if seg.K < 1 || seg.NMax < seg.K || seg.ShardBytes <= 0 || seg.Rate <= 0 {
			continue
		}
		// target counts holders. More than one per edge is pointless (a
		// viewer takes one shard per edge), except to reach k shards.
		target := min(TargetShards(seg.Rate, hottest, seg.K, seg.NMax), max(seg.K, len(edges)))
		for _, i := range touched {
			perSeg[i] = ShardMask{}
		}
		touched = touched[:0]
		var covered ShardMask
		holders := 0
		// loadIf is edge i's expected upload for one more shard of seg.
		loadIf := func(i int) float64 {
			c := holders
			if perSeg[i].Empty() {
				c++
			}
			return seg.Rate * float64(seg.ShardBytes) * min(1, float64(seg.K)/float64(c))
		}
		admit := func(i, shard int) bool {
			if covered.Has(shard) || shard >= seg.NMax {
				return false
			}
			load := loadIf(i)
			if !edges[i].fits(seg.ShardBytes, load) {
				return false
			}
			edges[i].disk += seg.ShardBytes
			edges[i].upload += load
			if perSeg[i].Empty() {
				holders++
				touched = append(touched, i)
			}
			perSeg[i].Set(shard)
			covered.Set(shard)
			return true
		}
		// Supply first: shards already on edges (what their players watched,
		// what earlier plans placed) cost no transfer, so an edge keeps all
		// it holds. But a viewer takes one shard per edge per segment (so
		// one liar spoils at most one), so the target counts holders, not
		// shards: an edge that watched a segment and holds k of its shards
		// is one source, not k.
		for _, src := range [][]supply{held[segSlot[j]], assigned[segSlot[j]]} {
			for _, sup := range src {
				if holders >= target && perSeg[sup.i].Empty() {
					continue
				}
				for _, sh := range sup.shards.Indices() {
					admit(sup.i, sh)
				}
			}
		}
		// Then new shards, lowest index first (the code is a prefix, and
		// data shards are plain ciphertext ranges the origin serves cheaply),
		// each on one of the best edges not yet holding a shard of this
		// segment. One pass picks them all: admitting an edge changes only
		// that edge's budget, and admitted edges are no longer fresh.
		if need := target - holders; need > 0 {
			shard := 0
			for _, i := range p.bestFresh(edges, perSeg, order, &seg, loadIf, need) {
				for covered.Has(shard) {
					shard++
				}
				if shard >= seg.NMax {
					break
				}
				admit(i, shard)
			}
		}
		// Still short of k (fewer fresh edges with room than k): double up,
		// since viewers can only rebuild from edges alone with k shards.
		for shard := 0; shard < seg.NMax && covered.Count() < min(target, seg.K); shard++ {
			if covered.Has(shard) {
				continue
			}
			best := pickEdge(edges, perSeg, order, &seg, loadIf, false)
			if best < 0 {
				break
			}
			admit(best, shard)
		}
		for _, i := range touched {
			plan[i] = append(plan[i], Assignment{Edge: edges[i].e.ID, Segment: seg.Key, Shards: perSeg[i]})
		}
	}

	var out []Assignment
	for _, i := range order {
		// An edge's segments in key order (a key placed twice: the last).
		mine := plan[i]
		slices.SortStableFunc(mine, func(a, b Assignment) int { return content.CompareSegmentRefs(a.Segment, b.Segment) })
		for j, a := range mine {
			if j+1 < len(mine) && content.CompareSegmentRefs(a.Segment, mine[j+1].Segment) == 0 {
				continue
			}
			out = append(out, a)
		}
	}
	return out
}

// pickEdge picks the edge to take one more shard of seg, or -1: it must fit
// the shard within its caps and, with fresh set, hold no shard of seg yet.
func pickEdge(edges []edgeLoad, perSeg []ShardMask, order []int, seg *PlacementSegment, loadIf func(int) float64, fresh bool) int {
	best := candidate{i: -1}
	for _, i := range order {
		l := &edges[i]
		if fresh && !perSeg[i].Empty() || !l.fits(seg.ShardBytes, loadIf(i)) {
			continue
		}
		c := candidate{i: i, region: seg.ByRegion[l.e.Region], headroom: 1 - l.upload/float64(max(l.e.UploadCapBytes, 1)), tiebreak: l.tiebreak}
		if best.i < 0 || c.better(best) {
			best = c
		}
	}
	return best.i
}

// maxPlacementSupply bounds the holders of one segment a placement round
// hands the placer (Coordinator.Place): the first of the segment's holder
// list (registration order, a removal moving the last holder in). The
// placer admits at most NMax (≤ 256) holders of a segment, each adding a
// shard no earlier one has, so four times that is supply enough whenever
// one holder in four brings a new shard; a segment with fewer holders
// gets the plan its whole list gives.
const maxPlacementSupply = 1024
