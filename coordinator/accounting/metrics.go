package accounting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
)

// metrics are the accounting half of the coordinator's series; they keep
// the swarmcast_coordinator_ prefix, since operators see one coordinator.
type metrics struct {
	apiErrors      *prometheus.CounterVec // account/points routes answered with an error, by status
	accounts       *prometheus.CounterVec // by event
	logins         *prometheus.CounterVec // by outcome
	unlocks        *prometheus.CounterVec // by outcome
	keys           *prometheus.CounterVec // content-key requests, by outcome
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

func newMetrics(reg *prometheus.Registry) (m *metrics, err error) {
	// promauto panics on a duplicate registration; report it as an error
	// (two services on one registry is a wiring mistake the caller names).
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, r.(error)
		}
	}()
	f := promauto.With(reg)
	counterVec := func(name, help, label string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Name: "swarmcast_coordinator_" + name, Help: help}, []string{label})
	}
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Name: "swarmcast_coordinator_" + name, Help: help})
	}
	m = &metrics{
		apiErrors:      counterVec("account_api_errors_total", "Account, points and settlement requests answered with an error, by HTTP status.", "status"),
		accounts:       counterVec("account_events_total", "Account events (signup).", "event"),
		logins:         counterVec("logins_total", "Login attempts by outcome (ok, bad_credentials, locked).", "outcome"),
		unlocks:        counterVec("unlocks_total", "Video unlocks by outcome (ok, refused).", "outcome"),
		keys:           counterVec("key_requests_total", "Content-key requests checked against entitlements, by outcome.", "outcome"),
		grantedPoints:  counter("granted_points_total", "Points granted by admins."),
		limitsIssued:   counter("order_limits_issued_total", "Order limits signed (cached limits are reused, not counted)."),
		settlements:    counterVec("settlement_batches_total", "Settlement batches by outcome (settled, replayed, wrong_edge).", "outcome"),
		rejections:     counterVec("settlement_rejections_total", "Settlement pairs rejected, by reason.", "reason"),
		settledBytes:   counter("settled_bytes_total", "Bytes of delivery accepted at settlement."),
		creditedPoints: counter("credited_points_total", "Points credited to edges at settlement."),
		frozenPoints:   counter("frozen_points_total", "Points earned by disqualified edges and withheld."),
		audits:         counterVec("audits_total", "Audit answers by outcome (passed, failed, timeout).", "outcome"),
		auditBytes:     counterVec("audit_bytes_total", "Bytes fetched to audit edges, by source (edge, origin): the audit's bandwidth cost.", "source"),
		disqualified:   counterVec("disqualifications_total", "Edges disqualified, by cause (audit, bad_shard_proof).", "cause"),
		uptimeChecks:   counterVec("uptime_checks_total", "Uptime observations recorded, by state (up, down).", "state"),
	}
	for _, r := range coordinatordb.Reasons {
		m.rejections.WithLabelValues(string(r))
	}
	return m, nil
}
