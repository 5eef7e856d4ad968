package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/wire"
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
	// The admin overview's inputs (admin.go).
	nodeServedBytes *prometheus.CounterVec // by role; self-reported in heartbeats, bounded
	servedClamped   *prometheus.CounterVec // heartbeats whose served bytes exceeded the bound, by role
	playedSeconds   prometheus.Counter
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
		nodeServedBytes:  f.CounterVec("node_served_bytes_total", "Bytes nodes reported serving in heartbeats (self-reported, bounded per heartbeat), by role (edge, origin).", "role"),
		servedClamped:    f.CounterVec("node_served_clamped_total", "Heartbeats whose served bytes exceeded the node's bound and were counted as the bound, by role.", "role"),
		playedSeconds:    f.Counter("played_seconds_total", "Seconds of video viewers reported playing (play reports)."),
	}
	for _, role := range []wire.Role{wire.RoleEdge, wire.RoleOrigin} {
		m.nodeServedBytes.WithLabelValues(string(role))
		m.servedClamped.WithLabelValues(string(role))
	}
	f.GaugeFunc("admin_event_streams", "Admin server-sent event streams open.", func() float64 { return float64(c.events.subscribers()) })
	f.GaugeFunc("offload_ratio", "Edge egress over all egress (edge, origin, fallback) in the load overview's window; -1 without bytes.",
		c.windowOffload)
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
