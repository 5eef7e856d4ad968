package accounting

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// AuthorizePlayReport is the play-report route's rule: the request carries
// a login session (bearer token or cookie + CSRF; an edge's API token may
// only settle), and viewer is a player key bound to that session's account.
// So every report counts against an account, and a report can only speak
// for the account's own players. A session, not a signature by the viewer
// key: the player already holds the session for every other call, and a
// signature would still need the key bound to an account, plus a nonce
// against replay that the session's TLS and lifetime already give.
func (s *Service) AuthorizePlayReport(r *http.Request, viewer wire.NodeID) error {
	who, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if who.session == "" {
		return &wire.StatusError{Status: http.StatusForbidden, Msg: "play report: needs a login session; an edge API token may only settle"}
	}
	if err := wire.CheckNodeID(viewer); err != nil {
		return wire.BadRequest("play report: viewer_id: %v (the player's key, bound with %s)", err, wire.PathBindViewer)
	}
	owner, err := s.db.ViewerAccount(r.Context(), viewer)
	switch {
	case errors.Is(err, coordinatordb.ErrNotFound):
		return &wire.StatusError{Status: http.StatusForbidden, Msg: fmt.Sprintf("play report: viewer key %s is bound to no account; bind it with %s first", viewer, wire.PathBindViewer)}
	case err != nil:
		return err
	case owner.ID != who.acct.ID:
		return &wire.StatusError{Status: http.StatusForbidden, Msg: fmt.Sprintf("play report: viewer key %s is not bound to account %q", viewer, who.acct.Username)}
	}
	return nil
}
