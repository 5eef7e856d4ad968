package relay

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
)

// TestMetricFamiliesUnchanged pins every family the relay declares (name,
// labels, help) as dashboards and alerts know them.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) {
		newMetrics(reg, func() float64 { return 0 }, func() float64 { return 0 })
	})
	want := []string{
		"swarmcast_relay_children{} Children this relay pushes to.",
		"swarmcast_relay_forward_delay_seconds{} From a push's arrival to a child's acceptance of its forward.",
		"swarmcast_relay_heartbeats_total{result} Heartbeats by result (ok, error, unknown).",
		"swarmcast_relay_held_segments{} Live segments held in the window, over every chain.",
		"swarmcast_relay_parent_misses_total{} Pushes a substream's parent did not deliver by the segment cadence plus the slack, each accused with this relay's signed statement (relays under BTR).",
		"swarmcast_relay_parent_quiet_total{} Times a substream's parent sent nothing for 3 segment durations while the chain was live.",
		"swarmcast_relay_proofs_posted_total{} Commission proofs against a parent (its signed push over shards that failed verification) posted to the relays' judge.",
		"swarmcast_relay_push_in_bytes_total{} Bytes of live pushes accepted.",
		"swarmcast_relay_push_out_bytes_total{} Bytes of live pushes children accepted.",
		"swarmcast_relay_pushes_in_total{result} Live pushes received, by result (ok; refused: unsigned, bad, not_parent, rejected, fork, stale, unavailable).",
		"swarmcast_relay_pushes_out_total{result} Live pushes sent to children, by result (ok, error).",
		"swarmcast_relay_queue_drops_total{} Segments dropped unsent because a child's queue was full (the child is slower than the stream).",
		"swarmcast_relay_rebuttals_total{result} Accusations of this relay by the relays' judge it answered with its signed push, by result (ok; refused; no_push: it never sent that push).",
		"swarmcast_relay_requests_total{code} Shard requests by HTTP status.",
		"swarmcast_relay_served_bytes_total{} Shard bytes uploaded to players.",
		"swarmcast_relay_verify_failures_total{} Pushes whose entry or shards failed verification (refused, nothing kept).",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric families changed:\ngot  %q\nwant %q", got, want)
	}
}
