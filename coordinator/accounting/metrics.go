package accounting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmcast/swarmcast/internal/metric"

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
	unbans         *prometheus.CounterVec // bans lifted by admins, by what lifting did

	playerAnnouncements *prometheus.CounterVec // players' gateway announcements accepted, by announced/withdrawn
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.For(reg, "coordinator")
	m := &metrics{
		apiErrors:      f.CounterVec("account_api_errors_total", "Account, points and settlement requests answered with an error, by HTTP status.", "status"),
		accounts:       f.CounterVec("account_events_total", "Account events (signup).", "event"),
		logins:         f.CounterVec("logins_total", "Login attempts by outcome (ok, bad_credentials, throttled, guarded).", "outcome"),
		unlocks:        f.CounterVec("unlocks_total", "Video unlocks by outcome (ok, refused).", "outcome"),
		keys:           f.CounterVec("key_requests_total", "Content-key requests checked against entitlements, by outcome.", "outcome"),
		grantedPoints:  f.Counter("granted_points_total", "Points granted by admins."),
		limitsIssued:   f.Counter("order_limits_issued_total", "Order limits signed (cached limits are reused, not counted)."),
		settlements:    f.CounterVec("settlement_batches_total", "Settlement batches by outcome (settled, replayed, wrong_edge, batch_id_reused, not_payable: refused until the edge passes an audit).", "outcome"),
		rejections:     f.CounterVec("settlement_rejections_total", "Settlement pairs rejected, by reason.", "reason"),
		settledBytes:   f.Counter("settled_bytes_total", "Bytes of delivery accepted at settlement."),
		creditedPoints: f.Counter("credited_points_total", "Points credited to edges at settlement."),
		frozenPoints:   f.Counter("frozen_points_total", "Points earned by disqualified edges and withheld."),
		audits:         f.CounterVec("audits_total", "Audit answers by outcome (passed, failed, timeout).", "outcome"),
		auditBytes:     f.CounterVec("audit_bytes_total", "Bytes fetched to audit edges, by source (edge, origin): the audit's bandwidth cost.", "source"),
		disqualified:   f.CounterVec("disqualifications_total", "Edges disqualified, by cause (audit, bad_shard_proof).", "cause"),
		uptimeChecks:   f.CounterVec("uptime_checks_total", "Uptime observations recorded, by state (up, down).", "state"),
		unbans:         f.CounterVec("bans_lifted_total", "Bans lifted by admins, by outcome (ban_only, reinstated: a disqualified edge got a fresh reputation).", "outcome"),

		playerAnnouncements: f.CounterVec("player_gateway_announcements_total", "Players' gateway announcements accepted, by outcome (announced, withdrawn).", "outcome"),
	}
	for _, r := range coordinatordb.Reasons {
		m.rejections.WithLabelValues(string(r))
	}
	return m
}
