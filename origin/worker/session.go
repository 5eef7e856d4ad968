package worker

import (
	"context"
	"log/slog"

	"github.com/swarmcast/swarmcast/wire"
)

// Session is the worker's registration with one coordinator: it registers
// as wire.RoleWorker at addr (its task server's advertised URL) with its
// slots and heartbeats how many are busy, so origins with --btr-f find it
// (wire.PathBTRWorkers). The coordinator must allow its key
// (coordinator --worker-key). Run it with NodeSession.Run.
func (s *Server) Session(cc *wire.CoordinatorClient, id wire.NodeID, addr string, log *slog.Logger) *wire.NodeSession {
	slots := s.Slots
	if slots <= 0 {
		slots = 2
	}
	return &wire.NodeSession{
		Client:       cc,
		Register:     wire.RegisterRequest{NodeID: id, Role: wire.RoleWorker, Addr: addr, BTRSlots: slots},
		LeaveTimeout: wire.DefaultLeaveTimeout,
		Log:          log,
		NextHeartbeat: func(bool) wire.HeartbeatRequest {
			return wire.HeartbeatRequest{BTRBusy: s.Busy()}
		},
		OnHeartbeat: func(_ context.Context, res wire.HeartbeatResult) error {
			if res.Err != nil {
				log.Warn("btr worker heartbeat", "err", res.Err)
			}
			return nil
		},
	}
}
