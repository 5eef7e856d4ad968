package live

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/wire"
)

// metrics are the live subsystem's series, on the coordinator's registry
// with its prefix.
type metrics struct {
	entries    prometheus.Counter
	rejections *prometheus.CounterVec // by reason (rejectReasons)
	forks      prometheus.Counter
	rebuilds   prometheus.Counter
	states     *prometheus.GaugeVec // channels by state, set by countStates

	workCredits   prometheus.Counter // btrpay.go
	workSettled   prometheus.Counter
	workForfeited prometheus.Counter
	rebuttals     prometheus.Counter
	minutes       *prometheus.CounterVec // minutes.go: by channel (bounded: see there)
}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	f := metric.For(reg, "coordinator")
	m := &metrics{
		entries:    f.Counter("live_entries_appended_total", "Live chain entries verified and appended."),
		rejections: f.CounterVec("live_publish_rejections_total", "Live publish requests refused, by reason (unknown_key, bad_genesis, forged, out_of_order, fork, ended, wrong_origin).", "reason"),
		forks:      f.Counter("live_fork_proofs_total", "Fork proofs found: two validly signed, different entries at one position of a chain."),
		rebuilds:   f.Counter("live_tree_rebuilds_total", "Live fan-out tree rebuilds (one per changed chain)."),
	}
	for _, r := range rejectReasons {
		m.rejections.WithLabelValues(r)
	}
	m.workCredits = f.Counter("btr_work_credits_total", "Transcoding credits recorded: one per worker of an agreed live segment (checked btr.Agreement).")
	m.workSettled = f.Counter("btr_work_points_settled_total", "Transcoding points settled into the ledger after the hold.")
	m.workForfeited = f.Counter("btr_work_points_forfeited_total", "Unsettled transcoding points forfeited by exclusions in the channel logs.")
	m.rebuttals = f.Counter("btr_rebuttals_total", "Accused workers' rebuttals checked and recorded in the channel logs.")
	m.minutes = f.CounterVec("live_minutes_total", "Minutes of live media players fetched (segments the coordinator handed a bound player key sources for, each once per key), by channel id; channels past the first 256 count under channel=\"other\".", "channel")
	m.states = f.GaugeVec("live_channels", "Live channels by state (idle, publishing, waiting, error, ended).", "state")
	f.GaugeFunc("live_relays", "Relays registered for live fan-out.", func() float64 { return float64(s.relayCount()) })
	f.GaugeFunc("live_watchers", "Edges reporting players watching a live chain.", func() float64 { return float64(s.watcherCount()) })
	return m
}

// countStatesLocked sets the channels-by-state gauge (s.mu held).
func (s *Service) countStatesLocked() {
	out := map[string]int{wire.ChannelIdle: 0, wire.ChannelPublishing: 0, wire.ChannelWaiting: 0, wire.ChannelError: 0, wire.ChannelEnded: 0}
	for _, c := range s.channels {
		out[c.rec.State]++
	}
	for state, n := range out {
		s.metrics.states.WithLabelValues(state).Set(float64(n))
	}
}
