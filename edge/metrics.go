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

	orders         *prometheus.CounterVec // result: accepted | not_larger | no_order | settled | wrong_edge | expired | bad_limit | bad_order | over_limit | malformed | too_many_pairs
	unpaidBytes    prometheus.Counter
	settleBatches  *prometheus.CounterVec // result: ok | error | refused
	settlePairs    *prometheus.CounterVec // result: accepted | <coordinator rejection reason> | batch_refused
	receiptsSigned prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, stored func() (int, int64), unsettled func() (int, int64)) *metrics {
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
	m.orders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarmcast_edge_orders_total", Help: "Order limits/orders received with shard requests or as final orders, by result (accepted, not_larger, no_order, settled; invalid: wrong_edge, expired, bad_limit, bad_order, over_limit, malformed, too_many_pairs).",
	}, []string{"result"})
	m.unpaidBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "swarmcast_edge_unpaid_bytes_total", Help: "Shard bytes served on requests without a valid order limit (served anyway).",
	})
	m.settleBatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarmcast_edge_settlement_batches_total", Help: "Settlement submissions by result (ok, error: retried with the same batch id, refused: dropped).",
	}, []string{"result"})
	m.settlePairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarmcast_edge_settlement_pairs_total", Help: "Settled (limit, order) pairs by result: accepted, the coordinator's rejection reason, or batch_refused.",
	}, []string{"result"})
	m.receiptsSigned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "swarmcast_edge_receipts_signed_total", Help: "Served-shard receipts signed (cached receipts are not re-signed).",
	})
	unsettledPairs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmcast_edge_unsettled_orders", Help: "Serials with an order not yet settled.",
	}, func() float64 { n, _ := unsettled(); return float64(n) })
	unsettledBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmcast_edge_unsettled_bytes", Help: "Bytes covered by orders not yet settled.",
	}, func() float64 { _, b := unsettled(); return float64(b) })
	reg.MustRegister(m.orders, m.unpaidBytes, m.settleBatches, m.settlePairs, m.receiptsSigned, unsettledPairs, unsettledBytes)
	reg.MustRegister(m.bytesServed, m.shardsServed, m.requests, m.evictions, m.prefetched, m.prefetchFailed,
		m.verifyFailures, m.throttleWaits, m.throttleSeconds, m.queueFull, m.heartbeats, m.regenerated, m.originDeferred, storedShards, storedBytes)
	return m
}
