package viewer

import "github.com/prometheus/client_golang/prometheus"

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

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		startup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "swarmcast_viewer_startup_seconds",
			Help:    "Time from a Play call to the first segment ready to play.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_viewer_stalls_total",
			Help: "Playback stalls: the next segment was not ready at its playback instant.",
		}),
		stallTime: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_viewer_stall_seconds_total",
			Help: "Wall-clock time spent stalled.",
		}),
		shardBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_viewer_shard_bytes_total",
			Help: "Verified shard bytes used to rebuild segments, by source kind (edge, origin).",
		}, []string{"kind"}),
		badShards: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_viewer_bad_shards_total",
			Help: "Shards that failed verification.",
		}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_viewer_bans_total",
			Help: "Sources banned for the session after sending a bad shard.",
		}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_viewer_segments_total",
			Help: "Segments rebuilt from verified shards.",
		}),
	}
	m.receipts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarmcast_viewer_receipts_total",
		Help: "Edge shard responses by receipt: valid, missing, or invalid (signature, position or bytes do not match).",
	}, []string{"result"})
	m.ordersSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "swarmcast_viewer_orders_sent_total",
		Help: "Shard requests that carried a signed cumulative order.",
	})
	m.finalOrders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "swarmcast_viewer_final_orders_total",
		Help: "Final orders handed to edges at the end of a play, by result (ok, error).",
	}, []string{"result"})
	reg.MustRegister(m.startup, m.stalls, m.stallTime, m.shardBytes, m.badShards, m.bans, m.segments,
		m.receipts, m.ordersSent, m.finalOrders)
	return m
}
