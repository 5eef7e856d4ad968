package viewer

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
)

// TestMetricFamiliesUnchanged pins every family the viewer declares (name,
// labels, help) as dashboards and alerts know them; a rename here breaks
// them, so it must be deliberate.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) { newMetrics(reg) })
	want := []string{
		"swarmcast_viewer_bad_shards_total{} Shards that failed verification.",
		"swarmcast_viewer_bans_total{} Sources banned for the session after sending a bad shard.",
		"swarmcast_viewer_final_orders_total{result} Final orders handed to edges at the end of a play, by result (ok, error).",
		"swarmcast_viewer_live_entries_total{result} Live manifest entries received, by result: accepted (verified and chained), refused (bad signature, shape or chaining), fork (a second signed entry for a held position).",
		"swarmcast_viewer_live_latency_seconds{} Glass-to-glass latency of each live segment the gateway rebuilt: when it became servable minus the end of its first frame's program time, plus the advertised hold-back.",
		"swarmcast_viewer_live_part_latency_seconds{} Glass-to-glass latency of each Low-Latency HLS part the gateway verified: when it arrived minus the program time of its end, plus the advertised PART-HOLD-BACK.",
		"swarmcast_viewer_live_parts_total{result} Low-Latency HLS parts received from the origin, by result: accepted (verified and chained), refused (bad signature, digest, position or chaining), mismatch (a segment's parts differed from its entry's rebuilt segment: dropped).",
		"swarmcast_viewer_orders_sent_total{} Shard requests that carried a signed cumulative order.",
		"swarmcast_viewer_receipts_total{result} Edge shard responses by receipt: valid, missing, or invalid (signature, position or bytes do not match).",
		"swarmcast_viewer_segments_total{} Segments rebuilt from verified shards.",
		"swarmcast_viewer_shard_bytes_total{kind} Verified shard bytes used to rebuild segments, by source kind (edge, origin).",
		"swarmcast_viewer_stall_seconds_total{} Wall-clock time spent stalled.",
		"swarmcast_viewer_stalls_total{} Playback stalls: the next segment was not ready at its playback instant.",
		"swarmcast_viewer_startup_seconds{} Time from a Play call to the first segment ready to play.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric families changed:\ngot  %q\nwant %q", got, want)
	}
}
