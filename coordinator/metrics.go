package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmcast/swarmcast/internal/metric"
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
	// nodeAuthFailures counts node requests refused for their signature
	// (missing, stale, forged, replayed), by route.
	nodeAuthFailures *prometheus.CounterVec
}

// Bad-shard report verdicts. Only proven changes anything: a claim against
// a node needs evidence a third party can check.
const (
	verdictProven       = "proven"           // the edge's signed receipt covers bytes that fail verification: banned and disqualified
	verdictFalse        = "false_accusation" // the receipt covers bytes that verify: nothing happens to the edge
	verdictUnverifiable = "unverifiable"     // no receipt (origins sign none), or one that proves nothing: counted, nothing else
)

func newMetrics(reg prometheus.Registerer, c *Coordinator) *metrics {
	f := metric.For(reg, "coordinator")
	m := &metrics{
		lookups: f.Counter("lookups_total", "Source lookups answered."),
		lookupLatency: f.Histogram("lookup_duration_seconds", "Time to answer a lookup over HTTP, from decoded request to written response.",
			prometheus.ExponentialBuckets(10e-6, 2, 14)), // 10µs .. 80ms
		badShards:        f.CounterVec("bad_shard_reports_total", "Bad-shard reports by verdict (proven bans and disqualifies the edge; false_accusation and unverifiable change nothing).", "verdict"),
		directives:       f.CounterVec("directive_shards_total", "Shards named in placement directives, by action.", "action"),
		plays:            f.Counter("play_reports_total", "Play reports received."),
		playBytes:        f.CounterVec("play_bytes_total", "Shard bytes viewers reported receiving, by source kind (edge or origin).", "source"),
		nodeAuthFailures: f.CounterVec("node_auth_failures_total", "Node requests refused for their signature (missing, stale, forged or replayed), by route.", "route"),
	}
	for _, route := range []string{"register", "heartbeat", "leave", "publish"} {
		m.nodeAuthFailures.WithLabelValues(route)
	}
	f.GaugeFunc("alive_edges", "Edges that may appear in lookups.", func() float64 { return float64(c.Stats().AliveEdges) })
	f.GaugeFunc("nodes", "Registered nodes (edges and origins).", func() float64 { return float64(c.Stats().Nodes) })
	f.GaugeFunc("banned_nodes", "Nodes banned for verified bad shards.", func() float64 { return float64(c.Stats().BannedNodes) })
	f.GaugeFunc("videos", "Videos in the catalogue.", func() float64 { return float64(c.Stats().Videos) })
	if c.pool != nil {
		f.GaugeFunc("origin_pool_active_origins", "Origins the AVARDO origin pool keeps on (its stack depth).",
			func() float64 { _, n := c.OriginPoolActive(); return float64(n) })
	}
	for _, v := range []string{verdictProven, verdictFalse, verdictUnverifiable} {
		m.badShards.WithLabelValues(v)
	}
	return m
}
