package origin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric"
)

type metrics struct {
	bytesServed  *prometheus.CounterVec // kind: shard | segment
	shardsServed prometheus.Counter
	requests     *prometheus.CounterVec // route, code
	// Children resolved once for the hot path (requests{route="shard",
	// code="200"}, bytes{kind="shard"}).
	shardOK       prometheus.Counter
	shardBytes    prometheus.Counter
	encodes       prometheus.Counter
	encodeSeconds prometheus.Histogram
	publishes     prometheus.Counter
	registrations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, cacheBytes func() int64) *metrics {
	f := metric.For(reg, "origin")
	m := &metrics{
		bytesServed:   f.CounterVec("served_bytes_total", "Body bytes sent to viewers and edges, by kind (shard, segment).", "kind"),
		shardsServed:  f.Counter("shards_served_total", "Shards sent."),
		requests:      f.CounterVec("requests_total", "Requests by route and HTTP status.", "route", "code"),
		encodes:       f.Counter("segment_encodes_total", "Segments erasure-coded on demand (parity cache misses)."),
		encodeSeconds: f.Histogram("segment_encode_seconds", "Time to erasure-code and hash one segment.", prometheus.ExponentialBuckets(0.0005, 2, 12)), // 0.5ms .. 1s
		publishes:     f.Counter("catalogue_publishes_total", "Catalogue publications sent to the coordinator."),
		registrations: f.Counter("registrations_total", "Registrations with the coordinator (first and after it forgot us or was down)."),
	}
	m.shardOK = m.requests.WithLabelValues("shard", "200")
	m.shardBytes = m.bytesServed.WithLabelValues("shard")
	f.GaugeFunc("parity_cache_bytes", "Bytes of encoded segments held in the parity cache.", func() float64 { return float64(cacheBytes()) })
	return m
}
