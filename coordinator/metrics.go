package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

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
)

func newMetrics(reg *prometheus.Registry, c *Coordinator) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_coordinator_lookups_total", Help: "Source lookups answered.",
		}),
		lookupLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "swarmcast_coordinator_lookup_duration_seconds",
			Help:    "Time to answer a lookup over HTTP, from decoded request to written response.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 14), // 10µs .. 80ms
		}),
		badShards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_coordinator_bad_shard_reports_total", Help: "Bad-shard reports by verdict (confirmed bans the node; false_accusation does not).",
		}, []string{"verdict"}),
		directives: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_coordinator_directive_shards_total", Help: "Shards named in placement directives, by action.",
		}, []string{"action"}),
		plays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmcast_coordinator_play_reports_total", Help: "Play reports received.",
		}),
		playBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmcast_coordinator_play_bytes_total", Help: "Shard bytes viewers reported receiving, by source kind (edge or origin).",
		}, []string{"source"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	for _, col := range []prometheus.Collector{
		m.lookups, m.lookupLatency, m.badShards, m.directives, m.plays, m.playBytes,
		gauge("swarmcast_coordinator_alive_edges", "Edges that may appear in lookups.", func() float64 { return float64(c.Stats().AliveEdges) }),
		gauge("swarmcast_coordinator_nodes", "Registered nodes (edges and origins).", func() float64 { return float64(c.Stats().Nodes) }),
		gauge("swarmcast_coordinator_banned_nodes", "Nodes banned for verified bad shards.", func() float64 { return float64(c.Stats().BannedNodes) }),
		gauge("swarmcast_coordinator_videos", "Videos in the catalogue.", func() float64 { return float64(c.Stats().Videos) }),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	for _, v := range []string{verdictConfirmed, verdictFalse} {
		m.badShards.WithLabelValues(v)
	}
	return m, nil
}
