package coordinator

import (
	"math"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
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
}

// NewDemandTracker starts an empty tracker at now.
func NewDemandTracker(halfLife time.Duration, now time.Time) *DemandTracker {
	return &DemandTracker{
		halfLife: halfLife,
		last:     now,
		pending:  make(map[demandKey]float64),
		rates:    make(map[demandKey]float64),
	}
}

// Record counts one request for each segment in [from, to) of a rendition.
func (d *DemandTracker) Record(video content.VideoID, rendition, from, to int, region string) {
	for s := from; s < to; s++ {
		d.pending[demandKey{content.SegmentRef{Video: video, Rendition: rendition, Segment: s}, region}]++
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
	for k, r := range d.rates {
		if r *= decay; r < demandFloor {
			delete(d.rates, k)
		} else {
			d.rates[k] = r
		}
	}
	for k, n := range d.pending {
		d.rates[k] += n * lambda
	}
	clear(d.pending)
}

// SegmentDemand is a segment's request rate, in total and by viewer region.
type SegmentDemand struct {
	Key      content.SegmentRef
	Rate     float64            // requests per second
	ByRegion map[string]float64 // region ("" = unknown) -> requests per second
}

// Demand lists the segments with demand as of the last Fold, sorted by key.
func (d *DemandTracker) Demand() []SegmentDemand {
	bySeg := make(map[content.SegmentRef]*SegmentDemand)
	for k, r := range d.rates {
		sd := bySeg[k.seg]
		if sd == nil {
			sd = &SegmentDemand{Key: k.seg, ByRegion: make(map[string]float64)}
			bySeg[k.seg] = sd
		}
		sd.Rate += r
		sd.ByRegion[k.region] += r
	}
	out := make([]SegmentDemand, 0, len(bySeg))
	for _, sd := range bySeg {
		out = append(out, *sd)
	}
	slices.SortFunc(out, func(a, b SegmentDemand) int { return content.CompareSegmentRefs(a.Key, b.Key) })
	return out
}
