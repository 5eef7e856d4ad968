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
	// windows is each identified viewer's last counted lookup window
	// (RecordBy): a viewer fetches a segment once however many of its
	// lookups cover it, so only the part of a window past the last one
	// counts. Entries idle for a half-life are forgotten (Fold).
	windows   map[wire.NodeID]viewerWindow
	lastSweep time.Time

	// Predicted demand along the playhead (SetPrediction; nil ahead: off).
	ahead     func(video content.VideoID, rendition int) PredictionDepth
	predicted map[demandKey]predictedDemand
	// heads are the lookup horizons since the last Fold (RecordPlayhead), in
	// arrival order with repeats: an append costs a lookup less than a map
	// write. At most maxPlayheadsPerFold are kept.
	heads      []demandKey
	predicting bool
	// hits and misses count predictions that were (a lookup asked for the
	// segment) and were not (it expired unasked), decayed with the rates:
	// the measured continuation probability is (hits+1)/(hits+misses+2).
	hits, misses float64
}

// maxPlayheadsPerFold bounds the playheads one Fold predicts from (~64 B
// each: 8 MB): 131 072 lookups in a 2 s placement round is 65 000 lookups/s
// by viewers that are not edges, beyond which later lookups of the round
// are not predicted from (their measured demand still counts).
const maxPlayheadsPerFold = 1 << 17

// predictedDemand is one segment's predicted demand in one region.
type predictedDemand struct {
	rate    float64 // requests per second
	viewers int     // the head's SegmentDemand.Viewers (1 or 2)
	expires time.Time
}

// Prediction of demand along the playhead. VoD is watched in order: a
// viewer whose lookup covered segments [from, to) of a rendition asks for
// to, to+1, … next, one segment duration apart. Fold credits the ahead
// segments past each playhead's horizon recorded since the previous Fold
// (RecordPlayhead: the last segment of a lookup) with a predicted rate: the
// horizon's measured rate × the measured continuation probability ×
// (ahead+1-d)/ahead for the d-th segment past it (d = 1 … ahead), so it
// falls with distance and never exceeds the measured demand it came from.
// A prediction lasts TTL past the last lookup that made it: a viewer that
// stops looking up (a title abandoned) stops being predicted within ttl.
// A segment with measured demand in any region is never predicted
// (measured demand replaces it), and Demand marks predicted segments: the
// placer ranks segments by rate, a measured one first at equal rates.
// Predictions are not ranked below all measured demand: the placer's
// upload model counts the decayed demand of segments viewers already
// fetched, which then took every cache's budget before the segments they
// are about to fetch (docs/PERFORMANCE.md, "Predictive placement").
//
// ahead returns a rendition's PredictionDepth; it is called from Fold once
// per rendition with fresh lookups and may take its own locks.
func (d *DemandTracker) SetPrediction(ahead func(video content.VideoID, rendition int) PredictionDepth) {
	d.ahead = ahead
	if d.predicted == nil {
		d.predicted = make(map[demandKey]predictedDemand)
		d.predicting = true
	}
}

// RecordPlayhead marks segment last of a rendition, the last of a lookup's
// window recorded with RecordBy, as a playhead's horizon: the next Fold
// predicts demand past it (SetPrediction; without it this does nothing).
// Callers skip it for viewers whose own fetches feed a cache (a player
// that is an edge keeps what it watched, and placement fills the next
// holders from it rather than from the origin).
func (d *DemandTracker) RecordPlayhead(video content.VideoID, rendition, last int, region string) {
	if d.predicting && len(d.heads) < maxPlayheadsPerFold {
		d.heads = append(d.heads, demandKey{content.SegmentRef{Video: video, Rendition: rendition, Segment: last}, region})
	}
}

// ContinuationProbability is the measured share of predicted segments that
// a lookup then asked for, with a uniform prior ((hits+1)/(hits+misses+2)).
func (d *DemandTracker) ContinuationProbability() float64 {
	return (d.hits + 1) / (d.hits + d.misses + 2)
}

// viewerWindow is a viewer's counted lookup window [from, to) of one
// rendition, as of the Fold before at.
type viewerWindow struct {
	video     content.VideoID
	rendition int
	from, to  int
	at        time.Time
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
		windows:  make(map[wire.NodeID]viewerWindow),
	}
}

// Record counts one request for each segment in [from, to) of a rendition
// from an unknown viewer (each such request counts as a distinct viewer).
func (d *DemandTracker) Record(video content.VideoID, rendition, from, to int, region string) {
	d.RecordBy(video, rendition, from, to, region, "")
}

// RecordBy is Record for a request by viewer: the segments' distinct-viewer
// counts (SegmentDemand.Viewers) grow only when another viewer asks.
//
// A viewer's lookups overlap: it looks up a window of LookupWindow
// segments every few segments it plays (and again when its answer ages),
// yet fetches each segment once. So a lookup by an identified viewer that
// continues its previous window (same rendition, starting inside it)
// counts only the segments past that window: the rate is then the
// segment's fetch rate, which the placer's upload model takes it for (a
// rate ~2.7× the fetches, at 8-segment windows looked up every 3
// segments, spent every edge's upload budget on segments viewers had
// already fetched: docs/PERFORMANCE.md, "seed-capstone: where the
// origin's bytes go"). A lookup elsewhere (a seek, another title) counts
// in full. Anonymous lookups (viewer "") always count in full. A window
// recorded out of order (lookupdemand.go's queues may apply two of a
// viewer's lookups in either order) starts before the last one and counts
// in full: at worst the overcount of before, never an undercount.
func (d *DemandTracker) RecordBy(video content.VideoID, rendition, from, to int, region string, viewer wire.NodeID) {
	if viewer != "" {
		w, ok := d.windows[viewer]
		if ok && w.video == video && w.rendition == rendition && from >= w.from && from <= w.to {
			from, w.from, w.to = max(from, w.to), from, max(w.to, to)
		} else {
			w = viewerWindow{video: video, rendition: rendition, from: from, to: to}
		}
		w.at = d.last
		d.windows[viewer] = w
	}
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
	if d.ahead != nil {
		d.predict(now, decay)
	}
	clear(d.pending)
	if now.Sub(d.lastSweep) >= d.halfLife/4 {
		// Forget the windows of viewers silent for a half-life (a viewer
		// that comes back then counts its next lookup in full).
		d.lastSweep = now
		for id, w := range d.windows {
			if now.Sub(w.at) > d.halfLife {
				delete(d.windows, id)
			}
		}
	}
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

// predict updates the predictions after the rates took the pending
// requests (which are still in d.pending): it scores the predictions the
// lookups asked for or that expired, then predicts ahead of every playhead
// recorded since the last Fold. Its cost follows the pending segments, the
// playheads and the live predictions.
func (d *DemandTracker) predict(now time.Time, decay float64) {
	d.hits *= decay
	d.misses *= decay
	for k := range d.pending {
		if _, ok := d.predicted[k]; ok {
			d.hits++
			delete(d.predicted, k)
		}
	}
	for k, p := range d.predicted {
		if !now.Before(p.expires) {
			d.misses++
			delete(d.predicted, k)
		}
	}
	cont := d.ContinuationProbability()
	type rendition struct {
		video content.VideoID
		r     int
	}
	depth := make(map[rendition]PredictionDepth)
	for _, k := range d.heads {
		rk := rendition{k.seg.Video, k.seg.Rendition}
		pd, ok := depth[rk]
		if !ok {
			pd = d.ahead(k.seg.Video, k.seg.Rendition)
			depth[rk] = pd
		}
		ahead, segments := pd.Ahead, pd.Segments
		headRate := d.rates[k]
		viewers := 1
		if d.seen[k.seg].many {
			viewers = 2
		}
		for dist := 1; dist <= ahead && k.seg.Segment+dist < segments; dist++ {
			pk := k
			pk.seg.Segment += dist
			if _, ok := d.pending[pk]; ok {
				continue // asked for (another viewer's window): measured
			}
			rate := headRate * cont * float64(ahead+1-dist) / float64(ahead)
			expires, v := now.Add(pd.TTL), viewers
			if old, ok := d.predicted[pk]; ok && old.expires.Equal(expires) {
				// Two playheads of this Fold predict it: keep the higher
				// (an older prediction is replaced by this Fold's).
				rate, v = max(rate, old.rate), max(v, old.viewers)
			}
			d.predicted[pk] = predictedDemand{rate: rate, viewers: v, expires: expires}
		}
	}
	d.heads = d.heads[:0]
}

// PredictionDepth is how demand is predicted along one rendition's
// playheads (DemandTracker.SetPrediction).
type PredictionDepth struct {
	Ahead    int           // segments predicted past a lookup's horizon (≤ 0: none)
	Segments int           // the rendition's segment count: predictions stop at its last
	TTL      time.Duration // how long a prediction outlives the lookup that made it
}

// PredictionDepthFor is the prediction for a rendition of segments of
// duration segment: Ahead covers lead (ceil(lead/segment)), and a
// prediction lasts as long as the longer of lead and two segments, more
// than a playing viewer waits between lookups (it looks up at least once
// per segment it fetches when its answer is older than lookupMaxAge, 5 s).
// lead ≤ 0 or an unknown duration predicts nothing.
func PredictionDepthFor(lead, segment time.Duration, segments int) PredictionDepth {
	if lead <= 0 || segment <= 0 {
		return PredictionDepth{Segments: segments}
	}
	return PredictionDepth{
		Ahead:    int((lead + segment - 1) / segment),
		Segments: segments,
		TTL:      max(lead, 2*segment),
	}
}

// DefaultPredictLead is Config.PredictLead's default: the time from a
// viewer's lookup to a cache holding a segment the lookup did not reach
// and whose holders the viewer's next lookup can list: the next
// placement round (placementInterval), the edges' wait for another edge
// before the origin fills a directed shard (edge.DefaultPrefetchOriginDelay,
// 10 s), and the age of the viewer's cached lookup answer when it fetches
// (viewer's lookupMaxAge, 5 s). Roles do not import each other, so the two
// are restated here.
func DefaultPredictLead(placementInterval time.Duration) time.Duration {
	return placementInterval + 10*time.Second + 5*time.Second
}

// SegmentDemand is a segment's request rate, in total and by viewer region.
type SegmentDemand struct {
	Key      content.SegmentRef
	Rate     float64            // requests per second
	ByRegion map[string]float64 // region ("" = unknown) -> requests per second
	// Viewers is how many distinct viewers asked for it while its demand
	// lasted, capped at 2 (2 = two or more).
	Viewers int
	// Predicted is set when no lookup asked for the segment and Rate is
	// predicted demand along a playhead (SetPrediction): the placer ranks
	// it below every measured segment.
	Predicted bool
}

// Demand lists the segments with demand as of the last Fold, sorted by key.
func (d *DemandTracker) Demand() []SegmentDemand {
	// The segments are built in place in a slice (at[seg] is the index),
	// and only their indices are sorted: a SegmentDemand is 80 bytes.
	at := make(map[content.SegmentRef]int32, len(d.rates))
	var segs []SegmentDemand
	for k, r := range d.rates {
		n, ok := at[k.seg]
		if !ok {
			n = int32(len(segs))
			at[k.seg] = n
			segs = append(segs, SegmentDemand{Key: k.seg, ByRegion: make(map[string]float64, 1), Viewers: 1})
			if d.seen[k.seg].many {
				segs[n].Viewers = 2
			}
		}
		sd := &segs[n]
		sd.Rate += r
		sd.ByRegion[k.region] += r
	}
	for k, p := range d.predicted {
		n, ok := at[k.seg]
		switch {
		case !ok:
			n = int32(len(segs))
			at[k.seg] = n
			segs = append(segs, SegmentDemand{Key: k.seg, ByRegion: make(map[string]float64, 1), Viewers: p.viewers, Predicted: true})
		case !segs[n].Predicted:
			continue // measured demand replaces the prediction
		}
		sd := &segs[n]
		sd.Viewers = max(sd.Viewers, p.viewers)
		sd.Rate += p.rate
		sd.ByRegion[k.region] += p.rate
	}
	var regions []string
	order := make([]int32, len(segs))
	for n := range segs {
		order[n] = int32(n)
		sd := &segs[n]
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
	}
	slices.SortFunc(order, func(a, b int32) int { return content.CompareSegmentRefs(segs[a].Key, segs[b].Key) })
	out := make([]SegmentDemand, len(segs))
	for j, n := range order {
		out[j] = segs[n]
	}
	return out
}
