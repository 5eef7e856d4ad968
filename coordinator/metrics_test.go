package coordinator

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/coordinator/playback"
	"github.com/swarmcast/swarmcast/internal/metric/metrictest"
)

// TestMetricFamiliesUnchanged pins every family the coordinator declares,
// the control plane's and the accounting subsystem's (name, labels, help),
// as dashboards and alerts know them; a rename must be deliberate.
func TestMetricFamiliesUnchanged(t *testing.T) {
	got := metrictest.Describe(func(reg prometheus.Registerer) {
		newMetrics(reg, &Coordinator{st: newState(0)})
		accounting.New(accounting.Config{Registry: reg}, nil, nil)
		playback.New(playback.Config{Registry: reg}, nil, nil)
		if _, err := live.New(context.Background(), live.Config{Registry: reg}, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	want := []string{
		"swarmcast_coordinator_account_api_errors_total{status} Account, points and settlement requests answered with an error, by HTTP status.",
		"swarmcast_coordinator_account_events_total{event} Account events (signup).",
		"swarmcast_coordinator_admin_event_streams{} Admin server-sent event streams open.",
		"swarmcast_coordinator_alive_edges{} Edges that may appear in lookups.",
		"swarmcast_coordinator_audit_bytes_total{source} Bytes fetched to audit edges, by source (edge, origin): the audit's bandwidth cost.",
		"swarmcast_coordinator_audits_total{outcome} Audit answers by outcome (passed, failed, timeout).",
		"swarmcast_coordinator_bad_shard_reports_total{verdict} Bad-shard reports by verdict (proven bans and disqualifies the edge; false_accusation and unverifiable change nothing).",
		"swarmcast_coordinator_banned_nodes{} Nodes banned for verified bad shards.",
		"swarmcast_coordinator_bans_lifted_total{outcome} Bans lifted by admins, by outcome (ban_only, reinstated: a disqualified edge got a fresh reputation).",
		"swarmcast_coordinator_btr_rebuttals_total{} Accused workers' rebuttals checked and recorded in the channel logs.",
		"swarmcast_coordinator_btr_work_credits_total{} Transcoding credits recorded: one per worker of an agreed live segment (checked btr.Agreement).",
		"swarmcast_coordinator_btr_work_points_forfeited_total{} Unsettled transcoding points forfeited by exclusions in the channel logs.",
		"swarmcast_coordinator_btr_work_points_settled_total{} Transcoding points settled into the ledger after the hold.",
		"swarmcast_coordinator_credited_points_total{} Points credited to edges at settlement.",
		"swarmcast_coordinator_directive_shards_total{action} Shards named in placement directives, by action.",
		"swarmcast_coordinator_disqualifications_total{cause} Edges disqualified, by cause (audit, bad_shard_proof).",
		"swarmcast_coordinator_fallback_origin_bytes_total{} Ciphertext bytes the HTTP playback fallback relayed from origins to browsers: origin egress that bypassed the swarm.",
		"swarmcast_coordinator_fallback_requests_total{resource,outcome} Requests to the HTTP playback fallback (/watch), by resource (master, media, segment, key) and outcome (ok, refused, not_found, origin_failed).",
		"swarmcast_coordinator_frozen_points_total{} Points earned by disqualified edges and withheld.",
		"swarmcast_coordinator_granted_points_total{} Points granted by admins.",
		"swarmcast_coordinator_key_requests_total{outcome} Content-key requests checked against entitlements, by outcome.",
		"swarmcast_coordinator_live_channels{state} Live channels by state (idle, publishing, waiting, error, ended).",
		"swarmcast_coordinator_live_entries_appended_total{} Live chain entries verified and appended.",
		"swarmcast_coordinator_live_fork_proofs_total{} Fork proofs found: two validly signed, different entries at one position of a chain.",
		"swarmcast_coordinator_live_minutes_total{channel} Minutes of live media players fetched (segments the coordinator handed a bound player key sources for, each once per key), by channel id; channels past the first 256 count under channel=\"other\".",
		"swarmcast_coordinator_live_publish_rejections_total{reason} Live publish requests refused, by reason (unknown_key, bad_genesis, forged, out_of_order, fork, ended, wrong_origin).",
		"swarmcast_coordinator_live_relays{} Relays registered for live fan-out.",
		"swarmcast_coordinator_live_tree_rebuilds_total{} Live fan-out tree rebuilds (one per changed chain).",
		"swarmcast_coordinator_live_watchers{} Edges reporting players watching a live chain.",
		"swarmcast_coordinator_logins_total{outcome} Login attempts by outcome (ok, bad_credentials, throttled, guarded).",
		"swarmcast_coordinator_lookup_duration_seconds{} Time to answer a lookup over HTTP, from decoded request to written response.",
		"swarmcast_coordinator_lookups_total{} Source lookups answered.",
		"swarmcast_coordinator_node_auth_failures_total{route} Node requests refused for their signature (missing, stale, forged or replayed), by route.",
		"swarmcast_coordinator_node_served_bytes_total{role} Bytes nodes reported serving in heartbeats (self-reported, bounded per heartbeat), by role (edge, origin).",
		"swarmcast_coordinator_node_served_clamped_total{role} Heartbeats whose served bytes exceeded the node's bound and were counted as the bound, by role.",
		"swarmcast_coordinator_nodes{} Registered nodes (edges and origins).",
		"swarmcast_coordinator_offload_ratio{} Edge egress over all egress (edge, origin, fallback) in the load overview's window; -1 without bytes.",
		"swarmcast_coordinator_order_limits_issued_total{} Order limits signed (cached limits are reused, not counted).",
		"swarmcast_coordinator_play_bytes_total{source} Shard bytes viewers reported receiving, by source kind (edge or origin).",
		"swarmcast_coordinator_play_reports_total{} Play reports received.",
		"swarmcast_coordinator_played_seconds_total{} Seconds of video viewers reported playing (play reports).",
		"swarmcast_coordinator_player_gateway_announcements_total{outcome} Players' gateway announcements accepted, by outcome (announced, withdrawn).",
		"swarmcast_coordinator_settled_bytes_total{} Bytes of delivery accepted at settlement.",
		"swarmcast_coordinator_settlement_batches_total{outcome} Settlement batches by outcome (settled, replayed, wrong_edge, batch_id_reused, not_payable: refused until the edge passes an audit).",
		"swarmcast_coordinator_settlement_rejections_total{reason} Settlement pairs rejected, by reason.",
		"swarmcast_coordinator_unlocks_total{outcome} Video unlocks by outcome (ok, refused).",
		"swarmcast_coordinator_uptime_checks_total{state} Uptime observations recorded, by state (up, down).",
		"swarmcast_coordinator_videos{} Videos in the catalogue.",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("metric families changed:\ngot  %q\nwant %q", got, want)
	}
}
