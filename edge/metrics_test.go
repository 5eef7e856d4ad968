package edge

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
)

// TestMetricFamiliesUnchanged pins every family the edge declares (name,
// labels, help) as dashboards and alerts know them; a rename here breaks
// them, so it must be deliberate.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) {
		newMetrics(reg, func() (int, int64) { return 0, 0 }, func() (int, int64) { return 0, 0 }, func() int64 { return 0 })
	})
	want := []string{
		"swarmcast_edge_disk_cap_bytes{} Disk cap advertised to coordinators: the configured cap, bounded by free space on the cache filesystem.",
		"swarmcast_edge_evictions_total{reason} Shards removed from the cache, by reason (dropped, lru, expired, cap, corrupt: failed verification when served, disk_full: the filesystem filled up).",
		"swarmcast_edge_heartbeats_total{result} Heartbeats by result (ok, error, unknown).",
		"swarmcast_edge_live_parent_misses_total{} Live pushes a substream's parent did not deliver by the segment cadence plus the slack, each accused with this edge's signed statement (relays under BTR).",
		"swarmcast_edge_live_pushes_total{result} Live pushes received from parents, by result (ok; rejected: the entry or a shard failed verification; refused: not the assigned parent, unsigned, malformed, stale, a fork).",
		"swarmcast_edge_orders_total{result} Order limits/orders received with shard requests or as final orders, by result (accepted, not_larger, no_order, settled; invalid: wrong_edge, expired, bad_limit, unverifiable, bad_order, over_limit, malformed, too_many_pairs).",
		"swarmcast_edge_prefetch_failures_total{} Directed shards no source could provide.",
		"swarmcast_edge_prefetch_origin_deferred_total{} Directed shards not fetched from the origin yet, waiting for an edge to hold them.",
		"swarmcast_edge_prefetched_shards_total{source} Directed shards fetched and stored, by source kind (edge, origin).",
		"swarmcast_edge_receipts_signed_total{} Served-shard receipts signed (cached receipts are not re-signed).",
		"swarmcast_edge_regenerated_segments_total{} Segments rebuilt from k held shards to serve shards this edge does not store.",
		"swarmcast_edge_requests_total{code} Shard requests by HTTP status.",
		"swarmcast_edge_served_bytes_total{} Shard bytes uploaded to others.",
		"swarmcast_edge_settlement_batches_total{result} Settlement submissions by result (ok, error: retried with the same batch id, refused: dropped).",
		"swarmcast_edge_settlement_pairs_total{result} Settled (limit, order) pairs by result: accepted, the coordinator's rejection reason, or batch_refused.",
		"swarmcast_edge_shards_served_total{} Shards uploaded to others in full.",
		"swarmcast_edge_stored_bytes{} Bytes in the cache (within the disk cap).",
		"swarmcast_edge_stored_shards{} Shards in the cache.",
		"swarmcast_edge_throttle_wait_seconds_total{} Time writes spent waiting for the upload cap.",
		"swarmcast_edge_throttle_waits_total{} Writes delayed by the upload cap.",
		"swarmcast_edge_unpaid_bytes_total{} Shard bytes served on requests without a valid order limit (served anyway).",
		"swarmcast_edge_unsettled_bytes{} Bytes covered by orders not yet settled.",
		"swarmcast_edge_unsettled_orders{} Serials with an order not yet settled.",
		"swarmcast_edge_verify_failures_total{where} Shards or manifests that failed verification, by where (load, prefetch, keep; serve: a stored shard about to be served, dropped and fetched again; push: a live push).",
		"swarmcast_edge_work_queue_full_total{} Prefetch or keep jobs refused because the queue was full.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric families changed:\ngot  %q\nwant %q", got, want)
	}
}
