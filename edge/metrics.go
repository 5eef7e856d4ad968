package edge

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	bytesServed     prometheus.Counter
	shardsServed    prometheus.Counter
	requests        *prometheus.CounterVec // code
	requestsOK      prometheus.Counter     // requests{code="200"}, resolved once for the hot path
	evictions       *prometheus.CounterVec // reason: dropped | lru | expired | cap
	prefetched      *prometheus.CounterVec // source: edge | origin
	prefetchFailed  prometheus.Counter
	verifyFailures  *prometheus.CounterVec // where: load | prefetch | keep
	throttleWaits   prometheus.Counter
	throttleSeconds prometheus.Counter
	queueFull       prometheus.Counter
	heartbeats      *prometheus.CounterVec // result: ok | error | unknown
	regenerated     prometheus.Counter
	originDeferred  prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, stored func() (int, int64)) *metrics {
	m := &metrics{
		bytesServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_served_bytes_total", Help: "Shard bytes uploaded to others.",
		}),
		shardsServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_shards_served_total", Help: "Shards uploaded to others in full.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_edge_requests_total", Help: "Shard requests by HTTP status.",
		}, []string{"code"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_edge_evictions_total", Help: "Shards removed from the cache, by reason (dropped, lru, expired, cap).",
		}, []string{"reason"}),
		prefetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_edge_prefetched_shards_total", Help: "Directed shards fetched and stored, by source kind (edge, origin).",
		}, []string{"source"}),
		prefetchFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_prefetch_failures_total", Help: "Directed shards no source could provide.",
		}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_edge_verify_failures_total", Help: "Shards or manifests that failed verification, by where (load, prefetch, keep).",
		}, []string{"where"}),
		throttleWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_throttle_waits_total", Help: "Writes delayed by the upload cap.",
		}),
		throttleSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_throttle_wait_seconds_total", Help: "Time writes spent waiting for the upload cap.",
		}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_edge_work_queue_full_total", Help: "Prefetch or keep jobs refused because the queue was full.",
		}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_edge_heartbeats_total", Help: "Heartbeats by result (ok, error, unknown).",
		}, []string{"result"}),
	}
	m.regenerated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "swarmcast_edge_regenerated_segments_total", Help: "Segments rebuilt from k held shards to serve shards this edge does not store.",
	})
	m.originDeferred = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "swarmcast_edge_prefetch_origin_deferred_total", Help: "Directed shards not fetched from the origin yet, waiting for an edge to hold them.",
	})
	m.requestsOK = m.requests.WithLabelValues("200")
	storedShards := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmcast_edge_stored_shards", Help: "Shards in the cache.",
	}, func() float64 { n, _ := stored(); return float64(n) })
	storedBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmcast_edge_stored_bytes", Help: "Bytes in the cache (within the disk cap).",
	}, func() float64 { _, b := stored(); return float64(b) })
	reg.MustRegister(m.bytesServed, m.shardsServed, m.requests, m.evictions, m.prefetched, m.prefetchFailed,
		m.verifyFailures, m.throttleWaits, m.throttleSeconds, m.queueFull, m.heartbeats, m.regenerated, m.originDeferred, storedShards, storedBytes)
	return m
}
