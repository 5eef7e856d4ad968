package coordinator

import (
	"math"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// demandFloor is the rate (requests per second) below which a segment's
// demand is forgotten, so the table only holds segments someone watches.
const demandFloor = 1e-3

type demandKey struct {
	seg    content.SegmentRef
	region string
}

// DemandTracker estimates per-segment, per-region request rates with an
// exponentially decaying kernel: a steady rate of r lookups per second
// converges to r, and a segment nobody asks for halves every half-life. It
// is sans-IO and not safe for concurrent use.
type DemandTracker struct {
	halfLife time.Duration
	last     time.Time
	pending  map[demandKey]float64 // requests counted since the last Fold
	rates    map[demandKey]float64 // requests per second, as of last
	// seen is who asked for a segment while its demand lasts (forgotten
	// with it): the first viewer, and whether a different one asked too.
	seen map[content.SegmentRef]viewersSeen
}

// viewersSeen counts a segment's distinct viewers up to two.
type viewersSeen struct {
	first wire.NodeID
	many  bool
}

// NewDemandTracker starts an empty tracker at now.
func NewDemandTracker(halfLife time.Duration, now time.Time) *DemandTracker {
	return &DemandTracker{
		halfLife: halfLife,
		last:     now,
		pending:  make(map[demandKey]float64),
		rates:    make(map[demandKey]float64),
		seen:     make(map[content.SegmentRef]viewersSeen),
	}
}

// Record counts one request for each segment in [from, to) of a rendition
// from an unknown viewer (each such request counts as a distinct viewer).
func (d *DemandTracker) Record(video content.VideoID, rendition, from, to int, region string) {
	d.RecordBy(video, rendition, from, to, region, "")
}

// RecordBy is Record for a request by viewer: the segments' distinct-viewer
// counts (SegmentDemand.Viewers) grow only when another viewer asks.
func (d *DemandTracker) RecordBy(video content.VideoID, rendition, from, to int, region string, viewer wire.NodeID) {
	for s := from; s < to; s++ {
		seg := content.SegmentRef{Video: video, Rendition: rendition, Segment: s}
		d.pending[demandKey{seg, region}]++
		switch v, ok := d.seen[seg]; {
		case !ok:
			d.seen[seg] = viewersSeen{first: viewer, many: viewer == ""}
		case !v.many && (viewer == "" || viewer != v.first):
			d.seen[seg] = viewersSeen{first: v.first, many: true}
		}
	}
}

// Fold decays the rates to now and adds the requests recorded since the
// previous Fold, spread as impulses of weight ln2/halfLife.
func (d *DemandTracker) Fold(now time.Time) {
	dt := now.Sub(d.last)
	if dt < 0 {
		dt = 0
	}
	d.last = now
	lambda := math.Ln2 / d.halfLife.Seconds()
	decay := math.Exp(-lambda * dt.Seconds())
	forgot := false
	for k, r := range d.rates {
		if r *= decay; r < demandFloor {
			delete(d.rates, k)
			forgot = true
		} else {
			d.rates[k] = r
		}
	}
	for k, n := range d.pending {
		d.rates[k] += n * lambda
	}
	clear(d.pending)
	if forgot {
		// Forget who asked for segments whose demand is gone (in every region).
		live := make(map[content.SegmentRef]bool, len(d.rates))
		for k := range d.rates {
			live[k.seg] = true
		}
		for seg := range d.seen {
			if !live[seg] {
				delete(d.seen, seg)
			}
		}
	}
}

// SegmentDemand is a segment's request rate, in total and by viewer region.
type SegmentDemand struct {
	Key      content.SegmentRef
	Rate     float64            // requests per second
	ByRegion map[string]float64 // region ("" = unknown) -> requests per second
	// Viewers is how many distinct viewers asked for it while its demand
	// lasted, capped at 2 (2 = two or more).
	Viewers int
}

// Demand lists the segments with demand as of the last Fold, sorted by key.
func (d *DemandTracker) Demand() []SegmentDemand {
	bySeg := make(map[content.SegmentRef]*SegmentDemand)
	for k, r := range d.rates {
		sd := bySeg[k.seg]
		if sd == nil {
			sd = &SegmentDemand{Key: k.seg, ByRegion: make(map[string]float64), Viewers: 1}
			if d.seen[k.seg].many {
				sd.Viewers = 2
			}
			bySeg[k.seg] = sd
		}
		sd.Rate += r
		sd.ByRegion[k.region] += r
	}
	out := make([]SegmentDemand, 0, len(bySeg))
	var regions []string
	for _, sd := range bySeg {
		if len(sd.ByRegion) > 1 {
			// Sum in region order: a sum in map order can differ in its
			// last bit from run to run, and then so could the plan.
			regions = regions[:0]
			for r := range sd.ByRegion {
				regions = append(regions, r)
			}
			slices.Sort(regions)
			sd.Rate = 0
			for _, r := range regions {
				sd.Rate += sd.ByRegion[r]
			}
		}
		out = append(out, *sd)
	}
	slices.SortFunc(out, func(a, b SegmentDemand) int { return content.CompareSegmentRefs(a.Key, b.Key) })
	return out
}
