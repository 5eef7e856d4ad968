package accounting

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// maxSettleBody fits the largest batch ValidateBatch accepts, plus the
// envelope.
const maxSettleBody = coordinatordb.MaxBatchPairs*wire.MaxSettlementPairJSON + 4<<10

// handleSettle turns an edge's (limit, order) pairs into points. Only the
// edge's own API token may settle, and only for itself: a batch naming
// another edge is refused before any signature work.
func (s *Service) handleSettle(w http.ResponseWriter, r *http.Request, who *caller) {
	if who.edge == "" {
		wire.WriteError(w, http.StatusForbidden, "settle: authenticate with the edge's API token (POST %s), not a login session", wire.PathBindEdge)
		return
	}
	var b wire.SettlementBatch
	if !wire.DecodeJSONLimit(w, r, &b, maxSettleBody) {
		return
	}
	if b.Edge != who.edge {
		s.metrics.settlements.WithLabelValues("wrong_edge").Inc()
		wire.WriteError(w, http.StatusForbidden, "settle: batch names edge %q but the API token belongs to edge %s", b.Edge, who.edge)
		return
	}
	if err := coordinatordb.ValidateBatch(&b); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "settle: %v", err)
		return
	}
	res, err := s.db.Settle(r.Context(), &b, s.cfg.Now())
	var reused *coordinatordb.BatchIDReusedError
	var unpaid *coordinatordb.NotPayableError
	switch {
	case errors.As(err, &reused):
		s.metrics.settlements.WithLabelValues("batch_id_reused").Inc()
		wire.WriteError(w, http.StatusConflict, "%v", err)
		return
	case errors.As(err, &unpaid):
		// Not the edge's fault yet: it keeps the batch and resends it
		// (edges retry a 503 with the same id), after the next audit round.
		s.metrics.settlements.WithLabelValues("not_payable").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.AuditInterval.Seconds()))))
		wire.WriteError(w, http.StatusServiceUnavailable, "%v", err)
		return
	case errors.Is(err, coordinatordb.ErrSupplyExhausted):
		wire.WriteError(w, http.StatusConflict, "settle: %v", err)
		return
	case err != nil:
		s.WriteError(w, err)
		return
	}
	out := wire.SettlementResult{
		BatchID: res.BatchID, Accepted: res.Accepted, SettledBytes: res.AcceptedBytes,
		CreditedPoint: res.CreditedPoints, FrozenPoints: res.FrozenPoints, FrozenReason: res.FrozenReason,
		Replayed: res.Replayed,
	}
	if len(res.Rejected) > 0 {
		out.Rejected = make(map[string]int, len(res.Rejected))
		for reason, n := range res.Rejected {
			out.Rejected[string(reason)] = n
		}
	}
	if res.Replayed {
		s.metrics.settlements.WithLabelValues("replayed").Inc()
	} else {
		s.metrics.settlements.WithLabelValues("settled").Inc()
		for reason, n := range res.Rejected {
			s.metrics.rejections.WithLabelValues(string(reason)).Add(float64(n))
		}
		s.metrics.settledBytes.Add(float64(res.AcceptedBytes))
		if s.cfg.OnSettled != nil {
			s.cfg.OnSettled(b.Edge, res.AcceptedBytes)
		}
		s.metrics.creditedPoints.Add(float64(res.CreditedPoints))
		s.metrics.frozenPoints.Add(float64(res.FrozenPoints))
	}
	s.log.Info("settlement", "edge", b.Edge, "batch", b.ID, "pairs", len(b.Pairs), "accepted", res.Accepted,
		"bytes", res.AcceptedBytes, "credited", res.CreditedPoints, "frozen", res.FrozenPoints, "replayed", res.Replayed, "rejected", out.Rejected)
	wire.WriteJSON(w, out)
}

func (s *Service) handleRejections(w http.ResponseWriter, r *http.Request, _ *caller) {
	counts, err := s.db.RejectionCounts(r.Context())
	if err != nil {
		s.WriteError(w, err)
		return
	}
	out := make(map[string]int64, len(coordinatordb.Reasons))
	for _, reason := range coordinatordb.Reasons {
		out[string(reason)] = counts[reason]
	}
	wire.WriteJSON(w, out)
}

// ownsEdge reports whether who may see node's standing and flows.
func (s *Service) ownsEdge(r *http.Request, who *caller, node wire.NodeID) (bool, error) {
	if who.admin() || who.edge == node {
		return true, nil
	}
	owner, err := s.db.EdgeAccount(r.Context(), node)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return owner.ID == who.acct.ID, nil
}

func (s *Service) handleEdgeStatus(w http.ResponseWriter, r *http.Request, who *caller) {
	node := wire.NodeID(r.PathValue("node"))
	if err := wire.CheckNodeID(node); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "edge status: %v", err)
		return
	}
	ok, err := s.ownsEdge(r, who, node)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	if !ok {
		wire.WriteError(w, http.StatusForbidden, "edge status: edge %s is not bound to your account", node)
		return
	}
	info, err := s.edgeStatus(r.Context(), node)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

// handleFlows lists settled flows to a viewer key (its owner or an admin)
// or from an edge (its owner or an admin).
func (s *Service) handleFlows(w http.ResponseWriter, r *http.Request, who *caller) {
	q := r.URL.Query()
	viewer, edge := wire.NodeID(q.Get("viewer")), wire.NodeID(q.Get("edge"))
	if (viewer == "") == (edge == "") {
		wire.WriteError(w, http.StatusBadRequest, "flows: give exactly one of ?viewer=ID or ?edge=ID")
		return
	}
	now := s.cfg.Now()
	since, err := parseTimeParam(r, "since", time.Unix(0, 0))
	if err == nil {
		var until time.Time
		until, err = parseTimeParam(r, "until", now.Add(24*time.Hour))
		if err == nil && !since.Before(until) {
			err = wire.BadRequest("flows: since %s is not before until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
		}
		if err == nil {
			s.flows(w, r, who, viewer, edge, since, until)
			return
		}
	}
	s.WriteError(w, err)
}

func (s *Service) flows(w http.ResponseWriter, r *http.Request, who *caller, viewer, edge wire.NodeID, since, until time.Time) {
	ctx := r.Context()
	var fs []coordinatordb.Flow
	var err error
	if viewer != "" {
		if err := wire.CheckNodeID(viewer); err != nil {
			wire.WriteError(w, http.StatusBadRequest, "flows: viewer: %v", err)
			return
		}
		if !who.admin() {
			owner, err := s.db.ViewerAccount(ctx, viewer)
			if err != nil && !errors.Is(err, coordinatordb.ErrNotFound) {
				s.WriteError(w, err)
				return
			}
			if err != nil || owner.ID != who.acct.ID {
				wire.WriteError(w, http.StatusForbidden, "flows: viewer key %s is not bound to your account", viewer)
				return
			}
		}
		fs, err = s.db.FlowsToViewer(ctx, viewer, since, until)
	} else {
		var ok bool
		if err := wire.CheckNodeID(edge); err != nil {
			wire.WriteError(w, http.StatusBadRequest, "flows: edge: %v", err)
			return
		}
		ok, err = s.ownsEdge(r, who, edge)
		if err != nil {
			s.WriteError(w, err)
			return
		}
		if !ok {
			wire.WriteError(w, http.StatusForbidden, "flows: edge %s is not bound to your account", edge)
			return
		}
		fs, err = s.db.FlowsFromEdge(ctx, edge, since, until)
	}
	if err != nil {
		s.WriteError(w, err)
		return
	}
	out := make([]wire.FlowInfo, len(fs))
	for i, f := range fs {
		out[i] = wire.FlowInfo{Edge: f.Edge, Viewer: f.Viewer, Video: f.Video, Bucket: f.Bucket, Bytes: f.Bytes}
	}
	wire.WriteJSON(w, out)
}
