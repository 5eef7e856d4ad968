package origin

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/origin/worker"
)

// TestMetricFamiliesUnchanged pins every family the origin declares (name,
// labels, help) as dashboards and alerts know them; a rename here breaks
// them, so it must be deliberate.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) {
		newMetrics(reg, func() int64 { return 0 })
		live.NewMetrics(reg)
		worker.NewMetrics(reg)
	})
	want := []string{
		"swarmcast_origin_btr_accusations_total{} Accusations the judges signed (a worker's output missing at the detection deadline).",
		"swarmcast_origin_btr_agreements_posted_total{} Agreements of f+1 workers the coordinator took (each pays its bound workers for the segment).",
		"swarmcast_origin_btr_faults_detected_total{kind} Workers excluded by this origin's judges, by fault kind (commission, equivocation, omission, timing).",
		"swarmcast_origin_btr_messages_total{kind} BTR messages the judges sent or took, by kind (task: a source segment to a worker; output: a worker's signed answer; forwarded: a statement handed in on the forward route; log: a statement to the coordinator's channel log).",
		"swarmcast_origin_btr_rebuttals_total{} Accused workers' rebuttals the judges accepted (the accusation cleared, no exclusion).",
		"swarmcast_origin_btr_recovery_bound_seconds{} The bound R for the running BTR configuration (btr.Params.Bound): from the first segment a fault spoils to every node running without the culprit.",
		"swarmcast_origin_btr_reexec_cpu_seconds_total{} CPU time (user + system) of the judges' ffmpeg re-executions of disputed segments.",
		"swarmcast_origin_btr_segments_accepted_total{how} Live segments the judges accepted, by how (agreed: every replica signed one digest; reexecuted: the judge's re-execution decided).",
		"swarmcast_origin_catalogue_publishes_total{} Catalogue publications sent to the coordinator.",
		"swarmcast_origin_live_ingest_refused_total{reason} Publish attempts refused, by reason (key, codec, keyframe, garbage, busy).",
		"swarmcast_origin_live_parts_signed_total{} Low-Latency HLS parts signed and served (every rendition's piece of one part counts once).",
		"swarmcast_origin_live_publish_delay_seconds{} From the arrival of the frame that closed a live segment (the next keyframe, or the publisher's drop) to its entry accepted by the coordinator.",
		"swarmcast_origin_live_segments_published_total{} Live segments packaged, signed and appended on the coordinator.",
		"swarmcast_origin_live_transcode_tail_seconds{} From a live segment's close to its ladder transcode finished (the encoder's tail).",
		"swarmcast_origin_parity_cache_bytes{} Bytes of encoded segments held in the parity cache.",
		"swarmcast_origin_registrations_total{} Registrations with the coordinator (first and after it forgot us or was down).",
		"swarmcast_origin_requests_total{route,code} Requests by route and HTTP status.",
		"swarmcast_origin_segment_encode_seconds{} Time to erasure-code and hash one segment.",
		"swarmcast_origin_segment_encodes_total{} Segments erasure-coded on demand (parity cache misses).",
		"swarmcast_origin_served_bytes_total{kind} Body bytes sent to viewers and edges, by kind (shard, segment).",
		"swarmcast_origin_shards_served_total{} Shards sent.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric families changed:\ngot  %q\nwant %q", got, want)
	}
}
