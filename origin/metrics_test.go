package origin

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
)

// TestMetricFamiliesUnchanged pins every family the origin declares (name,
// labels, help) as dashboards and alerts know them; a rename here breaks
// them, so it must be deliberate.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) { newMetrics(reg, func() int64 { return 0 }) })
	want := []string{
		"swarmcast_origin_catalogue_publishes_total{} Catalogue publications sent to the coordinator.",
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
