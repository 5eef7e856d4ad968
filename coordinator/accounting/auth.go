package accounting

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// maxTokenLen bounds a presented session or API token (they are 64 hex
// digits); longer values are refused before any hashing or SQL.
const maxTokenLen = 128

// caller is an authenticated request's account and how it proved it.
type caller struct {
	acct    coordinatordb.Account
	session string      // session token, when authenticated by one
	edge    wire.NodeID // the edge, when authenticated by its API token
	cookie  bool        // authenticated by the session cookie
}

func (c *caller) admin() bool { return c.acct.Role == coordinatordb.RoleAdmin }

// errNoCredentials means the request carries no token or cookie.
var errNoCredentials = errors.New("authentication required: send Authorization: Bearer <session or API token>, or log in for a session cookie")

// errEdgeTokenScope refuses an edge API token outside settlement.
var errEdgeTokenScope = &wire.StatusError{Status: http.StatusForbidden, Msg: "an edge API token may only settle (POST " + wire.PathSettle + "); use a login session (Authorization: Bearer <session token>) for this route"}

// authenticate resolves the request's credentials, refusing an edge's API
// token (403): tokens are scoped to settlement, which uses
// authenticateEdge. A nil caller with a nil error never happens: no
// credentials is errNoCredentials.
func (s *Service) authenticate(r *http.Request) (*caller, error) {
	who, err := s.authenticateEdge(r)
	if err != nil {
		return nil, err
	}
	if who.edge != "" {
		return nil, errEdgeTokenScope
	}
	return who, nil
}

// authenticateEdge is authenticate that also accepts an edge API token
// (caller.edge set): only the settle route uses it.
func (s *Service) authenticateEdge(r *http.Request) (*caller, error) {
	ctx, now := r.Context(), s.cfg.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" || len(token) > maxTokenLen {
			return nil, &wire.StatusError{Status: http.StatusUnauthorized, Msg: "Authorization header: want \"Bearer <token>\""}
		}
		a, err := s.db.SessionAccount(ctx, token, now)
		if err == nil {
			return &caller{acct: a, session: token}, nil
		}
		if !errors.Is(err, coordinatordb.ErrSessionInvalid) {
			return nil, err
		}
		a, node, err := s.db.APITokenEdge(ctx, token)
		if errors.Is(err, coordinatordb.ErrAPITokenInvalid) {
			return nil, &wire.StatusError{Status: http.StatusUnauthorized, Msg: "bearer token is not a live session or API token; log in again or create a new API token"}
		}
		if err != nil {
			return nil, err
		}
		return &caller{acct: a, edge: node}, nil
	}
	ck, err := r.Cookie(wire.SessionCookieName)
	if err != nil || ck.Value == "" {
		return nil, &wire.StatusError{Status: http.StatusUnauthorized, Msg: errNoCredentials.Error()}
	}
	if len(ck.Value) > maxTokenLen {
		return nil, &wire.StatusError{Status: http.StatusUnauthorized, Msg: "session cookie is malformed; log in again"}
	}
	a, err := s.db.SessionAccount(ctx, ck.Value, now)
	if errors.Is(err, coordinatordb.ErrSessionInvalid) {
		return nil, &wire.StatusError{Status: http.StatusUnauthorized, Msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	// A cookie rides along with any cross-site request; a state change
	// must also prove the page read the CSRF token (SameSite=Strict is the
	// first line, this the second).
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		want := s.csrfToken(ck.Value)
		if !hmac.Equal([]byte(r.Header.Get(wire.HeaderCSRF)), []byte(want)) {
			return nil, &wire.StatusError{Status: http.StatusForbidden, Msg: "cookie-authenticated request without a valid " + wire.HeaderCSRF + " header (use the csrf_token from login)"}
		}
	}
	return &caller{acct: a, session: ck.Value, cookie: true}, nil
}

// csrfToken derives a session's CSRF token: HMAC-SHA256(csrfKey, session).
func (s *Service) csrfToken(session string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(session))
	return hex.EncodeToString(m.Sum(nil))
}

// authed wraps a handler that needs an account by login session (or
// cookie): 401/403 on bad credentials, 403 for an edge API token.
func (s *Service) authed(h func(w http.ResponseWriter, r *http.Request, who *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := s.authenticate(r)
		if err != nil {
			s.WriteError(w, err)
			return
		}
		h(w, r, who)
	}
}

// edgeAuthed is authed that also admits an edge API token: the settle
// route, and nothing else.
func (s *Service) edgeAuthed(h func(w http.ResponseWriter, r *http.Request, who *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := s.authenticateEdge(r)
		if err != nil {
			s.WriteError(w, err)
			return
		}
		h(w, r, who)
	}
}

// adminOnly is authed for admins.
func (s *Service) adminOnly(h func(w http.ResponseWriter, r *http.Request, who *caller)) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, who *caller) {
		if !who.admin() {
			wire.WriteError(w, http.StatusForbidden, "this route is for admins; account %q is a %s", who.acct.Username, who.acct.Role)
			return
		}
		h(w, r, who)
	})
}

// AuthorizeAdmin authenticates r and refuses (401/403) anyone but an
// admin with a login session, for the control plane's admin routes.
func (s *Service) AuthorizeAdmin(r *http.Request) error {
	who, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if who.session == "" {
		return &wire.StatusError{Status: http.StatusForbidden, Msg: "admin routes need a login session; an edge API token may only settle"}
	}
	if !who.admin() {
		return &wire.StatusError{Status: http.StatusForbidden, Msg: fmt.Sprintf("this route is for admins; account %q is a %s", who.acct.Username, who.acct.Role)}
	}
	return nil
}

// storeStatus maps a store error to an HTTP status and message.
func storeStatus(err error) (int, string) {
	var (
		re     *wire.StatusError
		uerr   *coordinatordb.UsernameError
		perr   *coordinatordb.PasswordError
		berr   *coordinatordb.EdgeBindingError
		locked *throttledError
		short  *coordinatordb.InsufficientPointsError
	)
	switch {
	case errors.As(err, &re):
		return re.Status, re.Msg
	case errors.As(err, &uerr), errors.As(err, &perr):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &berr):
		return http.StatusConflict, err.Error()
	case errors.As(err, &locked):
		return http.StatusTooManyRequests, err.Error()
	case errors.As(err, &short):
		return http.StatusPaymentRequired, fmt.Sprintf("insufficient points: have %d, need %d", short.Have, short.Need)
	case errors.Is(err, coordinatordb.ErrUsernameTaken), errors.Is(err, coordinatordb.ErrViewerKeyTaken), errors.Is(err, coordinatordb.ErrAuditClosed), errors.Is(err, coordinatordb.ErrBatchIDReused):
		return http.StatusConflict, err.Error()
	case errors.Is(err, coordinatordb.ErrBadCredentials), errors.Is(err, coordinatordb.ErrSessionInvalid), errors.Is(err, coordinatordb.ErrAPITokenInvalid):
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, coordinatordb.ErrEdgeNotBound):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, coordinatordb.ErrUnknownVideo), errors.Is(err, coordinatordb.ErrNotFound):
		return http.StatusNotFound, err.Error()
	}
	return http.StatusInternalServerError, "coordinator store: " + err.Error()
}

// WriteError answers err with its status (a store error mapped to what it
// means for the client: 400, 401, 402, 403, 404, 409, 429; anything else is
// 500 and logged); a 429 carries Retry-After in seconds.
func (s *Service) WriteError(w http.ResponseWriter, err error) {
	status, msg := storeStatus(err)
	var locked *throttledError
	if errors.As(err, &locked) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(locked.retryAfter.Seconds())))))
	}
	if status >= 500 {
		s.log.Error("store error", "err", err)
	}
	s.metrics.apiErrors.WithLabelValues(strconv.Itoa(status)).Inc()
	wire.WriteError(w, status, "%s", msg)
}

// requireSession refuses edge API tokens on routes that change an account.
func requireSession(w http.ResponseWriter, who *caller, what string) bool {
	if who.session == "" {
		wire.WriteError(w, http.StatusForbidden, "%s needs a login session; an edge API token may only settle", what)
		return false
	}
	return true
}

// Caller is the account behind r's login session (a bearer session token,
// or the session cookie with the CSRF header on a state change): 401
// without one, 403 for an edge API token. For the coordinator's
// subsystems that decide by account (coordinator/live's channels).
func (s *Service) Caller(r *http.Request) (coordinatordb.Account, error) {
	who, err := s.authenticate(r)
	if err != nil {
		return coordinatordb.Account{}, err
	}
	if who.session == "" {
		return coordinatordb.Account{}, &wire.StatusError{Status: http.StatusForbidden, Msg: "this route needs a login session; an edge API token may only settle"}
	}
	return who.acct, nil
}
