package accounting

import (
	"errors"
	"net/http"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// BTR workers' accounts (docs/LIVE.md, "BTR: workers, payment, metering"):
// a worker earns for the account it signed its consent to (like an edge,
// but an account may run several workers); the account sees its workers'
// points by state and every forfeit with the exclusion that caused it.

func (s *Service) handleBindWorker(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "binding a worker") {
		return
	}
	var req wire.BindWorkerRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := wire.VerifyBindWorker(&req, who.acct.ID, s.cfg.Now()); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "bind worker: %v", err)
		return
	}
	err := s.db.BindWorker(r.Context(), who.acct.ID, req.NodeID, s.cfg.Now())
	if errors.Is(err, coordinatordb.ErrWorkerTaken) {
		wire.WriteError(w, http.StatusConflict, "bind worker: %v", err)
		return
	}
	if err != nil {
		s.WriteError(w, err)
		return
	}
	s.log.Info("worker bound", "account", who.acct.ID, "node", req.NodeID)
	wire.WriteEmpty(w)
}

// WorkerAccount is an account's workers, their points and forfeits.
func (s *Service) WorkerAccount(r *http.Request, account int64) (wire.WorkerAccountInfo, error) {
	earn, forfeits, err := s.db.AccountWork(r.Context(), account)
	if err != nil {
		return wire.WorkerAccountInfo{}, err
	}
	out := wire.WorkerAccountInfo{Workers: []wire.WorkerEarningInfo{}, Forfeits: []wire.WorkerForfeitInfo{}}
	for _, e := range earn {
		out.Workers = append(out.Workers, wire.WorkerEarningInfo{NodeID: e.Worker, Unsettled: e.Unsettled, Settled: e.Settled, Forfeited: e.Forfeited})
	}
	for _, f := range forfeits {
		out.Forfeits = append(out.Forfeits, wire.WorkerForfeitInfo{NodeID: f.Worker, Chain: f.Chain, Kind: f.Kind, Evidence: f.Exclusion, Points: f.Points, Segments: f.Segments})
	}
	return out, nil
}

func (s *Service) handleAccountWorkers(w http.ResponseWriter, r *http.Request, who *caller) {
	out, err := s.WorkerAccount(r, who.acct.ID)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, out)
}
