package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric"
)

type metrics struct {
	pushesIn       *prometheus.CounterVec // result: ok | unsigned | bad | not_parent | rejected | fork | stale | unavailable
	pushBytesIn    prometheus.Counter
	pushesOut      *prometheus.CounterVec // result: ok | error
	pushBytesOut   prometheus.Counter
	queueDrops     prometheus.Counter
	forwardDelay   prometheus.Histogram
	verifyFailures prometheus.Counter
	shardRequests  *prometheus.CounterVec // code
	servedBytes    prometheus.Counter
	heartbeats     *prometheus.CounterVec // result: ok | error | unknown
	parentQuiet    prometheus.Counter
	parentMisses   prometheus.Counter
	rebuttals      *prometheus.CounterVec // result: ok | refused | no_push
	proofsPosted   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, held func() float64, children func() float64) *metrics {
	f := metric.For(reg, "relay")
	m := &metrics{
		pushesIn:       f.CounterVec("pushes_in_total", "Live pushes received, by result (ok; refused: unsigned, bad, not_parent, rejected, fork, stale, unavailable).", "result"),
		pushBytesIn:    f.Counter("push_in_bytes_total", "Bytes of live pushes accepted."),
		pushesOut:      f.CounterVec("pushes_out_total", "Live pushes sent to children, by result (ok, error).", "result"),
		pushBytesOut:   f.Counter("push_out_bytes_total", "Bytes of live pushes children accepted."),
		queueDrops:     f.Counter("queue_drops_total", "Segments dropped unsent because a child's queue was full (the child is slower than the stream)."),
		forwardDelay:   f.Histogram("forward_delay_seconds", "From a push's arrival to a child's acceptance of its forward.", []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
		verifyFailures: f.Counter("verify_failures_total", "Pushes whose entry or shards failed verification (refused, nothing kept)."),
		shardRequests:  f.CounterVec("requests_total", "Shard requests by HTTP status.", "code"),
		servedBytes:    f.Counter("served_bytes_total", "Shard bytes uploaded to players."),
		heartbeats:     f.CounterVec("heartbeats_total", "Heartbeats by result (ok, error, unknown).", "result"),
		parentQuiet:    f.Counter("parent_quiet_total", "Times a substream's parent sent nothing for 3 segment durations while the chain was live."),
		parentMisses:   f.Counter("parent_misses_total", "Pushes a substream's parent did not deliver by the segment cadence plus the slack, each accused with this relay's signed statement (relays under BTR)."),
		rebuttals:      f.CounterVec("rebuttals_total", "Accusations of this relay by the relays' judge it answered with its signed push, by result (ok; refused; no_push: it never sent that push).", "result"),
		proofsPosted:   f.Counter("proofs_posted_total", "Commission proofs against a parent (its signed push over shards that failed verification) posted to the relays' judge."),
	}
	f.GaugeFunc("held_segments", "Live segments held in the window, over every chain.", held)
	f.GaugeFunc("children", "Children this relay pushes to.", children)
	return m
}
