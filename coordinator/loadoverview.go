package coordinator

import (
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Load-overview defaults: 10 s buckets over the last hour (360 points, a
// fixed ring: memory does not grow with uptime or traffic).
const (
	defaultOverviewBucket = 10 * time.Second
	defaultOverviewWindow = time.Hour
	// maxOverviewBuckets bounds the ring whatever the configuration.
	maxOverviewBuckets = 8640
)

// LoadOverview is the sans-IO core of the admin dashboard's load picture:
// a ring of fixed-width time buckets of egress by source, plus running
// totals since start for metering. It is fed events the coordinator
// already receives (heartbeat served-bytes deltas, play reports,
// settlements, the playback fallback's proxied bytes), each with the
// instant it happened, and advanced by Advance; it reads no clock and does
// no I/O. Not safe for concurrent use (the Coordinator locks it).
//
// Which figure is proven: only settled bytes (orders signed by viewers
// under coordinator-signed limits, accepted at settlement). Node egress is
// self-reported by each node about itself; play figures are reported by
// viewers' accounts; fallback bytes are measured here. See wire.LoadPoint.
type LoadOverview struct {
	width  time.Duration
	ring   []wire.LoadPoint // ring[head] is the open bucket
	head   int
	filled int       // closed buckets held, ≤ len(ring)-1
	opened time.Time // start of the open bucket
	closed int64     // buckets closed since start (monotone)

	totals wire.Metering // since start; PricePerGB and money are filled by Metering
}

// NewLoadOverview keeps window/width buckets of width (clamped to
// [1, maxOverviewBuckets]); the first bucket opens at now truncated to the
// width, so bucket edges are round (…:00, …:10, …).
func NewLoadOverview(width, window time.Duration, now time.Time) *LoadOverview {
	if width <= 0 {
		width = defaultOverviewBucket
	}
	if window <= 0 {
		window = defaultOverviewWindow
	}
	n := int(min(max(window/width, 1), maxOverviewBuckets))
	o := &LoadOverview{width: width, ring: make([]wire.LoadPoint, n+1)}
	o.opened = now.Truncate(width)
	o.ring[0] = wire.LoadPoint{Start: o.opened}
	return o
}

// Width is the bucket width.
func (o *LoadOverview) Width() time.Duration { return o.width }

// NextClose is when the open bucket closes.
func (o *LoadOverview) NextClose() time.Time { return o.opened.Add(o.width) }

// Advance closes every bucket that ended by now and returns how many it
// closed (0: none ended). Buckets with no events are closed empty, so the
// series has no gaps; a jump longer than the window just empties the ring.
func (o *LoadOverview) Advance(now time.Time) int {
	if now.Before(o.opened.Add(o.width)) {
		return 0
	}
	steps := int64(now.Sub(o.opened) / o.width)
	if n := int64(len(o.ring)); steps > n {
		// Only the last len(ring) buckets can still be held: skip the rest.
		o.opened = o.opened.Add(time.Duration(steps-n) * o.width)
		o.closed += steps - n
		steps = n
	}
	for range steps {
		o.opened = o.opened.Add(o.width)
		o.head = (o.head + 1) % len(o.ring)
		o.ring[o.head] = wire.LoadPoint{Start: o.opened}
		o.filled = min(o.filled+1, len(o.ring)-1)
	}
	o.closed += steps
	return int(steps)
}

// Closed counts the buckets closed since start (skipped ones included), so
// a publisher can tell whether a bucket closed since it last looked, even
// if another caller's Advance closed it.
func (o *LoadOverview) Closed() int64 { return o.closed }

// open is the bucket an event at now belongs to, after closing the ended
// ones. An event stamped before the open bucket (a late caller) counts in
// the open bucket: the series never rewrites a closed bucket that may have
// been pushed to dashboards already.
func (o *LoadOverview) open(now time.Time) *wire.LoadPoint {
	o.Advance(now)
	return &o.ring[o.head]
}

// RecordServed adds a node's self-reported served bytes (one heartbeat's
// delta, already bounded by the caller) at now.
func (o *LoadOverview) RecordServed(role wire.Role, bytes int64, now time.Time) {
	if bytes <= 0 {
		return
	}
	p := o.open(now)
	switch role {
	case wire.RoleOrigin:
		p.OriginBytes += bytes
		o.totals.OriginBytes += bytes
	case wire.RoleEdge:
		p.EdgeBytes += bytes
		o.totals.EdgeBytes += bytes
	}
}

// RecordFallback adds bytes the coordinator's HTTP playback fallback
// relayed from origins to browsers (origin egress the coordinator measured
// itself).
func (o *LoadOverview) RecordFallback(bytes int64, now time.Time) {
	if bytes <= 0 {
		return
	}
	o.open(now).FallbackBytes += bytes
	o.totals.FallbackBytes += bytes
}

// RecordPlay adds one checked play report: bytes the viewer got from edges
// and from origins, and the milliseconds it played.
func (o *LoadOverview) RecordPlay(edgeBytes, originBytes int64, playedMS float64, now time.Time) {
	p := o.open(now)
	p.PlayEdgeBytes += edgeBytes
	p.PlayOriginBytes += originBytes
	p.PlayedMS += playedMS
	o.totals.Plays++
	o.totals.MinutesStreamed += playedMS / 60000
}

// RecordSettled adds bytes of delivery accepted at settlement (proven).
func (o *LoadOverview) RecordSettled(bytes int64, now time.Time) {
	if bytes <= 0 {
		return
	}
	o.open(now).SettledBytes += bytes
	o.totals.ProvenSavedBytes += bytes
}

// offload is edge / (edge + origin + fallback) in [0, 1], or -1 without
// bytes.
func offload(edge, origin, fallback int64) float64 {
	total := float64(edge) + float64(origin) + float64(fallback)
	if total <= 0 {
		return -1
	}
	return float64(edge) / total
}

// Metering is usage since start with money priced at pricePerGB (per 10^9
// bytes).
func (o *LoadOverview) Metering(pricePerGB float64) wire.Metering {
	m := o.totals
	m.SavedBytes = m.EdgeBytes
	m.PricePerGB = pricePerGB
	m.MoneySaved = float64(m.SavedBytes) / 1e9 * pricePerGB
	m.ProvenMoneySaved = float64(m.ProvenSavedBytes) / 1e9 * pricePerGB
	m.Offload = offload(m.EdgeBytes, m.OriginBytes, m.FallbackBytes)
	return m
}

// Points appends the closed buckets, oldest first, to dst, and returns it
// with the offload over them.
func (o *LoadOverview) Points(dst []wire.LoadPoint) ([]wire.LoadPoint, float64) {
	var edge, origin, fallback int64
	for i := o.filled; i >= 1; i-- {
		p := o.ring[(o.head-i+len(o.ring))%len(o.ring)]
		p.Offload = offload(p.EdgeBytes, p.OriginBytes, p.FallbackBytes)
		edge, origin, fallback = edge+p.EdgeBytes, origin+p.OriginBytes, fallback+p.FallbackBytes
		dst = append(dst, p)
	}
	return dst, offload(edge, origin, fallback)
}
