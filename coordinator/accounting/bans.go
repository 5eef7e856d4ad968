package accounting

import (
	"context"
	"errors"
	"net/http"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Bans are the control plane's (it keeps them in the store and excludes
// banned nodes from lookups); this file is what accounts see of them: the
// owner's view in the edge status, and the admin route that lifts one.

// maxUnbanNote bounds UnbanRequest.Note.
const maxUnbanNote = 256

// addBan fills the ban fields of an edge's status. A disqualified edge is
// banned at every start even when no ban row was stored, so it reads as
// banned with the disqualification as the reason.
func (s *Service) addBan(ctx context.Context, info *wire.EdgeStatusInfo, st coordinatordb.EdgeStatus) error {
	b, err := s.db.BanOf(ctx, info.NodeID)
	switch {
	case err == nil:
		info.Banned, info.BannedAt, info.BanReason = true, b.At, b.Reason
	case !errors.Is(err, coordinatordb.ErrNotFound):
		return err
	case st.Disqualified:
		info.Banned, info.BannedAt, info.BanReason = true, st.DisqualifiedAt, "disqualified: "+st.DisqualifyReason
	}
	return nil
}

// handleUnban lifts a node's ban (admins only). Lifting is durable and
// recorded with who and when (coordinatordb.LiftBan); an edge that was
// disqualified is reinstated with a fresh reputation, the probation of a
// new edge (with the default seed one failed audit disqualifies it again),
// and its frozen points stay frozen. The node is back in lookups at once.
func (s *Service) handleUnban(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "lifting a ban") {
		return
	}
	node := wire.NodeID(r.PathValue("node"))
	if err := wire.CheckNodeID(node); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "unban: %v", err)
		return
	}
	var req wire.UnbanRequest
	if r.ContentLength != 0 && !wire.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Note) > maxUnbanNote {
		wire.WriteError(w, http.StatusBadRequest, "unban: note of %d bytes; at most %d", len(req.Note), maxUnbanNote)
		return
	}
	lifted, err := s.db.LiftBan(r.Context(), node, who.acct.Username, req.Note, s.cfg.Now())
	if errors.Is(err, coordinatordb.ErrNotBanned) {
		wire.WriteError(w, http.StatusNotFound, "unban: node %s is neither banned nor disqualified; nothing to lift", node)
		return
	}
	if err != nil {
		s.WriteError(w, err)
		return
	}
	s.net.Unban(node)
	s.metrics.unbans.WithLabelValues(reinstatedLabel(lifted.Reinstated)).Inc()
	s.log.Warn("ban lifted", "node", node, "by", who.acct.Username, "ban_reason", lifted.Reason,
		"reinstated", lifted.Reinstated, "note", lifted.Note)
	wire.WriteJSON(w, wire.UnbanResponse{
		NodeID: node, BanReason: lifted.Reason, BannedAt: lifted.At, Reinstated: lifted.Reinstated,
		LiftedBy: lifted.LiftedBy, LiftedAt: lifted.LiftedAt,
	})
}

func reinstatedLabel(reinstated bool) string {
	if reinstated {
		return "reinstated"
	}
	return "ban_only"
}
