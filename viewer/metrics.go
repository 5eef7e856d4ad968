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
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.For(reg, "viewer")
	return &metrics{
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
	}
}
