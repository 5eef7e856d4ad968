package viewer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric"
)

// metrics are the viewer's QoE counters on its node registry.
type metrics struct {
	startup    prometheus.Histogram
	stalls     prometheus.Counter
	stallTime  prometheus.Counter
	shardBytes *prometheus.CounterVec // by source kind: edge, origin
	badShards  prometheus.Counter
	bans       prometheus.Counter
	segments   prometheus.Counter

	receipts    *prometheus.CounterVec // result: valid | missing | invalid
	ordersSent  prometheus.Counter
	finalOrders *prometheus.CounterVec // result: ok | error

	liveEntries *prometheus.CounterVec // result: accepted | refused | fork
	liveLatency prometheus.Histogram
	// Low-Latency HLS parts (livell.go).
	liveParts       *prometheus.CounterVec
	livePartLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.For(reg, "viewer")
	m := &metrics{
		startup:    f.Histogram("startup_seconds", "Time from a Play call to the first segment ready to play.", []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10}),
		stalls:     f.Counter("stalls_total", "Playback stalls: the next segment was not ready at its playback instant."),
		stallTime:  f.Counter("stall_seconds_total", "Wall-clock time spent stalled."),
		shardBytes: f.CounterVec("shard_bytes_total", "Verified shard bytes used to rebuild segments, by source kind (edge, origin).", "kind"),
		badShards:  f.Counter("bad_shards_total", "Shards that failed verification."),
		bans:       f.Counter("bans_total", "Sources banned for the session after sending a bad shard."),
		segments:   f.Counter("segments_total", "Segments rebuilt from verified shards."),

		receipts:    f.CounterVec("receipts_total", "Edge shard responses by receipt: valid, missing, or invalid (signature, position or bytes do not match).", "result"),
		ordersSent:  f.Counter("orders_sent_total", "Shard requests that carried a signed cumulative order."),
		finalOrders: f.CounterVec("final_orders_total", "Final orders handed to edges at the end of a play, by result (ok, error).", "result"),

		liveEntries:     f.CounterVec("live_entries_total", "Live manifest entries received, by result: accepted (verified and chained), refused (bad signature, shape or chaining), fork (a second signed entry for a held position).", "result"),
		liveParts:       f.CounterVec("live_parts_total", "Low-Latency HLS parts received from the origin, by result: accepted (verified and chained), refused (bad signature, digest, position or chaining), mismatch (a segment's parts differed from its entry's rebuilt segment: dropped).", "result"),
		livePartLatency: f.Histogram("live_part_latency_seconds", "Glass-to-glass latency of each Low-Latency HLS part the gateway verified: when it arrived minus the program time of its end, plus the advertised PART-HOLD-BACK.", []float64{0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 6}),
		liveLatency:     f.Histogram("live_latency_seconds", "Glass-to-glass latency of each live segment the gateway rebuilt: when it became servable minus the end of its first frame's program time, plus the advertised hold-back.", []float64{0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 15}),
	}
	for _, r := range []string{"accepted", "refused", "mismatch"} {
		m.liveParts.WithLabelValues(r)
	}
	for _, r := range []string{"accepted", "refused", "fork"} {
		m.liveEntries.WithLabelValues(r) // every result shows from the first scrape
	}
	return m
}
