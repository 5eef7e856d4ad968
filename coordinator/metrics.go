package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the control plane's series (the accounting subsystem
// registers its own, with the same swarmcast_coordinator_ prefix).
type metrics struct {
	lookups       prometheus.Counter
	lookupLatency prometheus.Histogram
	badShards     *prometheus.CounterVec // by verdict
	directives    *prometheus.CounterVec // shards named in directives, by action
	plays         prometheus.Counter
	playBytes     *prometheus.CounterVec // by source kind
}

// Bad-shard report verdicts.
const (
	verdictConfirmed = "confirmed"        // the evidence fails verification: the node is banned
	verdictFalse     = "false_accusation" // the evidence verifies: nothing happens to the node
	verdictProven    = "proven"           // a signed receipt makes the evidence transferable: the edge is disqualified
)

func newMetrics(reg *prometheus.Registry, c *Coordinator) (m *metrics, err error) {
	// promauto panics on a duplicate registration; report it as an error.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, r.(error)
		}
	}()
	const prefix = "swarmcast_coordinator_"
	f := promauto.With(reg)
	m = &metrics{
		lookups: f.NewCounter(prometheus.CounterOpts{Name: prefix + "lookups_total", Help: "Source lookups answered."}),
		lookupLatency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    prefix + "lookup_duration_seconds",
			Help:    "Time to answer a lookup over HTTP, from decoded request to written response.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 14), // 10µs .. 80ms
		}),
		badShards: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "bad_shard_reports_total", Help: "Bad-shard reports by verdict (confirmed bans the node; false_accusation does not).",
		}, []string{"verdict"}),
		directives: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "directive_shards_total", Help: "Shards named in placement directives, by action.",
		}, []string{"action"}),
		plays: f.NewCounter(prometheus.CounterOpts{Name: prefix + "play_reports_total", Help: "Play reports received."}),
		playBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "play_bytes_total", Help: "Shard bytes viewers reported receiving, by source kind (edge or origin).",
		}, []string{"source"}),
	}
	gauge := func(name, help string, value func() float64) {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + name, Help: help}, value)
	}
	gauge("alive_edges", "Edges that may appear in lookups.", func() float64 { return float64(c.Stats().AliveEdges) })
	gauge("nodes", "Registered nodes (edges and origins).", func() float64 { return float64(c.Stats().Nodes) })
	gauge("banned_nodes", "Nodes banned for verified bad shards.", func() float64 { return float64(c.Stats().BannedNodes) })
	gauge("videos", "Videos in the catalogue.", func() float64 { return float64(c.Stats().Videos) })
	if c.pool != nil {
		gauge("origin_pool_active_origins", "Origins the AVARDO origin pool keeps on (its stack depth).",
			func() float64 { _, n := c.OriginPoolActive(); return float64(n) })
	}
	for _, v := range []string{verdictConfirmed, verdictFalse, verdictProven} {
		m.badShards.WithLabelValues(v)
	}
	return m, nil
}
