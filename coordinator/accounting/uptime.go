package accounting

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// recordUptime writes each edge's up/down into the store's uptime
// reputation every UptimeInterval (not every heartbeat: one row update per
// edge per interval). dropped lists unbanned edges the sweep just dropped:
// they count as down unless they registered again before the record.
func (s *Service) recordUptime(now time.Time, dropped []wire.NodeID) {
	u := &s.uptime
	u.mu.Lock()
	if u.gone == nil {
		u.gone = make(map[wire.NodeID]bool)
	}
	for _, id := range dropped {
		u.gone[id] = false
	}
	if u.last.IsZero() {
		u.last = now
	}
	due := now.Sub(u.last) >= s.cfg.UptimeInterval
	var obs map[wire.NodeID]bool
	if due {
		u.last = now
		obs, u.gone = u.gone, nil
	}
	u.mu.Unlock()
	if !due {
		return
	}
	for id, up := range s.net.EdgeLiveness(now) {
		obs[id] = up // registered now: its current state wins
	}
	ctx := context.Background()
	for id, up := range obs {
		if _, err := s.db.RecordUptime(ctx, id, up, now); err != nil {
			s.log.Warn("uptime: record", "edge", id, "err", err)
			continue
		}
		state := "down"
		if up {
			state = "up"
		}
		s.metrics.uptimeChecks.WithLabelValues(state).Inc()
	}
}
