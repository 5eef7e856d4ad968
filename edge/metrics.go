package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric"
)

type metrics struct {
	bytesServed     prometheus.Counter
	shardsServed    prometheus.Counter
	requests        *prometheus.CounterVec // code
	requestsOK      prometheus.Counter     // requests{code="200"}, resolved once for the hot path
	evictions       *prometheus.CounterVec // reason: dropped | lru | expired | cap | corrupt | disk_full
	prefetched      *prometheus.CounterVec // source: edge | origin
	prefetchFailed  prometheus.Counter
	verifyFailures  *prometheus.CounterVec // where: load | prefetch | keep | serve
	throttleWaits   prometheus.Counter
	throttleSeconds prometheus.Counter
	queueFull       prometheus.Counter
	heartbeats      *prometheus.CounterVec // result: ok | error | unknown
	regenerated     prometheus.Counter
	originDeferred  prometheus.Counter

	orders           *prometheus.CounterVec // result: accepted | not_larger | no_order | settled | wrong_edge | expired | bad_limit | unverifiable | bad_order | over_limit | malformed | too_many_pairs
	unpaidBytes      prometheus.Counter
	settleBatches    *prometheus.CounterVec // result: ok | error | refused
	settlePairs      *prometheus.CounterVec // result: accepted | <coordinator rejection reason> | batch_refused
	receiptsSigned   prometheus.Counter
	livePushes       *prometheus.CounterVec // result: ok | rejected | refused
	liveParentMisses prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, stored func() (int, int64), unsettled func() (int, int64), diskCap func() int64) *metrics {
	f := metric.For(reg, "edge")
	m := &metrics{
		bytesServed:     f.Counter("served_bytes_total", "Shard bytes uploaded to others."),
		shardsServed:    f.Counter("shards_served_total", "Shards uploaded to others in full."),
		requests:        f.CounterVec("requests_total", "Shard requests by HTTP status.", "code"),
		evictions:       f.CounterVec("evictions_total", "Shards removed from the cache, by reason (dropped, lru, expired, cap, corrupt: failed verification when served, disk_full: the filesystem filled up).", "reason"),
		prefetched:      f.CounterVec("prefetched_shards_total", "Directed shards fetched and stored, by source kind (edge, origin).", "source"),
		prefetchFailed:  f.Counter("prefetch_failures_total", "Directed shards no source could provide."),
		verifyFailures:  f.CounterVec("verify_failures_total", "Shards or manifests that failed verification, by where (load, prefetch, keep; serve: a stored shard about to be served, dropped and fetched again; push: a live push).", "where"),
		throttleWaits:   f.Counter("throttle_waits_total", "Writes delayed by the upload cap."),
		throttleSeconds: f.Counter("throttle_wait_seconds_total", "Time writes spent waiting for the upload cap."),
		queueFull:       f.Counter("work_queue_full_total", "Prefetch or keep jobs refused because the queue was full."),
		heartbeats:      f.CounterVec("heartbeats_total", "Heartbeats by result (ok, error, unknown).", "result"),
		regenerated:     f.Counter("regenerated_segments_total", "Segments rebuilt from k held shards to serve shards this edge does not store."),
		originDeferred:  f.Counter("prefetch_origin_deferred_total", "Directed shards not fetched from the origin yet, waiting for an edge to hold them."),

		orders:           f.CounterVec("orders_total", "Order limits/orders received with shard requests or as final orders, by result (accepted, not_larger, no_order, settled; invalid: wrong_edge, expired, bad_limit, unverifiable, bad_order, over_limit, malformed, too_many_pairs).", "result"),
		unpaidBytes:      f.Counter("unpaid_bytes_total", "Shard bytes served on requests without a valid order limit (served anyway)."),
		settleBatches:    f.CounterVec("settlement_batches_total", "Settlement submissions by result (ok, error: retried with the same batch id, refused: dropped).", "result"),
		settlePairs:      f.CounterVec("settlement_pairs_total", "Settled (limit, order) pairs by result: accepted, the coordinator's rejection reason, or batch_refused.", "result"),
		receiptsSigned:   f.Counter("receipts_signed_total", "Served-shard receipts signed (cached receipts are not re-signed)."),
		livePushes:       f.CounterVec("live_pushes_total", "Live pushes received from parents, by result (ok; rejected: the entry or a shard failed verification; refused: not the assigned parent, unsigned, malformed, stale, a fork).", "result"),
		liveParentMisses: f.Counter("live_parent_misses_total", "Live pushes a substream's parent did not deliver by the segment cadence plus the slack, each accused with this edge's signed statement (relays under BTR)."),
	}
	m.requestsOK = m.requests.WithLabelValues("200")
	f.GaugeFunc("stored_shards", "Shards in the cache.", func() float64 { n, _ := stored(); return float64(n) })
	f.GaugeFunc("stored_bytes", "Bytes in the cache (within the disk cap).", func() float64 { _, b := stored(); return float64(b) })
	f.GaugeFunc("disk_cap_bytes", "Disk cap advertised to coordinators: the configured cap, bounded by free space on the cache filesystem.", func() float64 { return float64(diskCap()) })
	f.GaugeFunc("unsettled_orders", "Serials with an order not yet settled.", func() float64 { n, _ := unsettled(); return float64(n) })
	f.GaugeFunc("unsettled_bytes", "Bytes covered by orders not yet settled.", func() float64 { _, b := unsettled(); return float64(b) })
	return m
}
