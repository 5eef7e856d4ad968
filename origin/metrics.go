package origin

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	bytesServed   *prometheus.CounterVec // kind: shard | segment
	shardsServed  prometheus.Counter
	requests      *prometheus.CounterVec // route, code
	encodes       prometheus.Counter
	encodeSeconds prometheus.Histogram
	publishes     prometheus.Counter
	registrations prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, cacheBytes func() int64) *metrics {
	m := &metrics{
		bytesServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_origin_served_bytes_total",
			Help: "Body bytes sent to viewers and edges, by kind (shard, segment).",
		}, []string{"kind"}),
		shardsServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_origin_shards_served_total",
			Help: "Shards sent.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_origin_requests_total",
			Help: "Requests by route and HTTP status.",
		}, []string{"route", "code"}),
		encodes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_origin_segment_encodes_total",
			Help: "Segments erasure-coded on demand (parity cache misses).",
		}),
		encodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "swarmcast_origin_segment_encode_seconds",
			Help:    "Time to erasure-code and hash one segment.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_origin_catalogue_publishes_total",
			Help: "Catalogue publications sent to the coordinator.",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_origin_registrations_total",
			Help: "Registrations with the coordinator (first and after it forgot us or was down).",
		}),
	}
	cache := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmcast_origin_parity_cache_bytes",
		Help: "Bytes of encoded segments held in the parity cache.",
	}, func() float64 { return float64(cacheBytes()) })
	reg.MustRegister(m.bytesServed, m.shardsServed, m.requests, m.encodes, m.encodeSeconds, m.publishes, m.registrations, cache)
	return m
}
