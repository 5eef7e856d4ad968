package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
)

type metrics struct {
	lookups       prometheus.Counter
	lookupLatency prometheus.Histogram
	badShards     *prometheus.CounterVec // by verdict
	directives    *prometheus.CounterVec // shards named in directives, by action
	plays         prometheus.Counter
	playBytes     *prometheus.CounterVec // by source kind

	// Accounts, points and proofs (registered always; zero without a Store).
	apiErrors      *prometheus.CounterVec // account/points routes answered with an error, by status
	accounts       *prometheus.CounterVec // by event
	logins         *prometheus.CounterVec // by outcome
	unlocks        *prometheus.CounterVec // by outcome
	keys           *prometheus.CounterVec // key requests with a Store, by outcome
	grantedPoints  prometheus.Counter
	limitsIssued   prometheus.Counter
	settlements    *prometheus.CounterVec // batches, by outcome
	rejections     *prometheus.CounterVec // settlement pairs rejected, by reason
	settledBytes   prometheus.Counter
	creditedPoints prometheus.Counter
	frozenPoints   prometheus.Counter
	audits         *prometheus.CounterVec // audit answers, by outcome
	auditBytes     *prometheus.CounterVec // bytes fetched for audits, by source (edge, origin)
	disqualified   *prometheus.CounterVec // edges disqualified, by cause
	uptimeChecks   *prometheus.CounterVec // uptime records, by up/down
}

// Bad-shard report verdicts.
const (
	verdictConfirmed = "confirmed"        // the evidence fails verification: the node is banned
	verdictFalse     = "false_accusation" // the evidence verifies: nothing happens to the node
	verdictProven    = "proven"           // a signed receipt makes the evidence transferable: the edge is disqualified
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
	counterVec := func(name, help string, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m.apiErrors = counterVec("swarmcast_coordinator_account_api_errors_total", "Account, points and settlement requests answered with an error, by HTTP status.", "status")
	m.accounts = counterVec("swarmcast_coordinator_account_events_total", "Account events (signup).", "event")
	m.logins = counterVec("swarmcast_coordinator_logins_total", "Login attempts by outcome (ok, bad_credentials, locked).", "outcome")
	m.unlocks = counterVec("swarmcast_coordinator_unlocks_total", "Video unlocks by outcome (ok, refused).", "outcome")
	m.keys = counterVec("swarmcast_coordinator_key_requests_total", "Content-key requests checked against entitlements, by outcome.", "outcome")
	m.grantedPoints = counter("swarmcast_coordinator_granted_points_total", "Points granted by admins.")
	m.limitsIssued = counter("swarmcast_coordinator_order_limits_issued_total", "Order limits signed (cached limits are reused, not counted).")
	m.settlements = counterVec("swarmcast_coordinator_settlement_batches_total", "Settlement batches by outcome (settled, replayed, wrong_edge).", "outcome")
	m.rejections = counterVec("swarmcast_coordinator_settlement_rejections_total", "Settlement pairs rejected, by reason.", "reason")
	m.settledBytes = counter("swarmcast_coordinator_settled_bytes_total", "Bytes of delivery accepted at settlement.")
	m.creditedPoints = counter("swarmcast_coordinator_credited_points_total", "Points credited to edges at settlement.")
	m.frozenPoints = counter("swarmcast_coordinator_frozen_points_total", "Points earned by disqualified edges and withheld.")
	m.audits = counterVec("swarmcast_coordinator_audits_total", "Audit answers by outcome (passed, failed, timeout).", "outcome")
	m.auditBytes = counterVec("swarmcast_coordinator_audit_bytes_total", "Bytes fetched to audit edges, by source (edge, origin): the audit's bandwidth cost.", "source")
	m.disqualified = counterVec("swarmcast_coordinator_disqualifications_total", "Edges disqualified, by cause (audit, bad_shard_proof).", "cause")
	m.uptimeChecks = counterVec("swarmcast_coordinator_uptime_checks_total", "Uptime observations recorded, by state (up, down).", "state")
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	for _, col := range []prometheus.Collector{
		m.lookups, m.lookupLatency, m.badShards, m.directives, m.plays, m.playBytes,
		m.apiErrors, m.accounts, m.logins, m.unlocks, m.keys, m.grantedPoints, m.limitsIssued,
		m.settlements, m.rejections, m.settledBytes, m.creditedPoints, m.frozenPoints,
		m.audits, m.auditBytes, m.disqualified, m.uptimeChecks,
		gauge("swarmcast_coordinator_alive_edges", "Edges that may appear in lookups.", func() float64 { return float64(c.Stats().AliveEdges) }),
		gauge("swarmcast_coordinator_nodes", "Registered nodes (edges and origins).", func() float64 { return float64(c.Stats().Nodes) }),
		gauge("swarmcast_coordinator_banned_nodes", "Nodes banned for verified bad shards.", func() float64 { return float64(c.Stats().BannedNodes) }),
		gauge("swarmcast_coordinator_videos", "Videos in the catalogue.", func() float64 { return float64(c.Stats().Videos) }),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	for _, v := range []string{verdictConfirmed, verdictFalse, verdictProven} {
		m.badShards.WithLabelValues(v)
	}
	for _, r := range coordinatordb.Reasons {
		m.rejections.WithLabelValues(string(r))
	}
	return m, nil
}
