package coordinator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
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

// authenticate resolves the request's credentials. A nil caller with a nil
// error never happens: no credentials is errNoCredentials.
func (c *Coordinator) authenticate(r *http.Request) (*caller, error) {
	ctx, now := r.Context(), c.cfg.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" || len(token) > maxTokenLen {
			return nil, &requestError{http.StatusUnauthorized, "Authorization header: want \"Bearer <token>\""}
		}
		a, err := c.store.SessionAccount(ctx, token, now)
		if err == nil {
			return &caller{acct: a, session: token}, nil
		}
		if !errors.Is(err, coordinatordb.ErrSessionInvalid) {
			return nil, err
		}
		a, node, err := c.store.APITokenEdge(ctx, token)
		if errors.Is(err, coordinatordb.ErrAPITokenInvalid) {
			return nil, &requestError{http.StatusUnauthorized, "bearer token is not a live session or API token; log in again or create a new API token"}
		}
		if err != nil {
			return nil, err
		}
		return &caller{acct: a, edge: node}, nil
	}
	ck, err := r.Cookie(wire.SessionCookieName)
	if err != nil || ck.Value == "" {
		return nil, &requestError{http.StatusUnauthorized, errNoCredentials.Error()}
	}
	if len(ck.Value) > maxTokenLen {
		return nil, &requestError{http.StatusUnauthorized, "session cookie is malformed; log in again"}
	}
	a, err := c.store.SessionAccount(ctx, ck.Value, now)
	if errors.Is(err, coordinatordb.ErrSessionInvalid) {
		return nil, &requestError{http.StatusUnauthorized, err.Error()}
	}
	if err != nil {
		return nil, err
	}
	// A cookie rides along with any cross-site request; a state change
	// must also prove the page read the CSRF token (SameSite=Strict is the
	// first line, this the second).
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		want := c.csrfToken(ck.Value)
		if !hmac.Equal([]byte(r.Header.Get(wire.HeaderCSRF)), []byte(want)) {
			return nil, &requestError{http.StatusForbidden, "cookie-authenticated request without a valid " + wire.HeaderCSRF + " header (use the csrf_token from login)"}
		}
	}
	return &caller{acct: a, session: ck.Value, cookie: true}, nil
}

// csrfToken derives a session's CSRF token: HMAC-SHA256(csrfKey, session).
func (c *Coordinator) csrfToken(session string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(session))
	return hex.EncodeToString(m.Sum(nil))
}

// authed wraps a handler that needs an account: it answers 404 when the
// coordinator has no store, 401/403 on bad credentials.
func (c *Coordinator) authed(h func(w http.ResponseWriter, r *http.Request, who *caller)) http.HandlerFunc {
	return c.withStore(func(w http.ResponseWriter, r *http.Request) {
		who, err := c.authenticate(r)
		if err != nil {
			c.writeStoreErr(w, err)
			return
		}
		h(w, r, who)
	})
}

// adminOnly is authed for admins.
func (c *Coordinator) adminOnly(h func(w http.ResponseWriter, r *http.Request, who *caller)) http.HandlerFunc {
	return c.authed(func(w http.ResponseWriter, r *http.Request, who *caller) {
		if !who.admin() {
			wire.WriteError(w, http.StatusForbidden, "this route is for admins; account %q is a %s", who.acct.Username, who.acct.Role)
			return
		}
		h(w, r, who)
	})
}

// withStore answers 404 for account routes when accounts are disabled.
func (c *Coordinator) withStore(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.store == nil {
			wire.WriteError(w, http.StatusNotFound, "accounts and points are disabled on this coordinator (start it with --db)")
			return
		}
		h(w, r)
	}
}

// storeStatus maps a store error to an HTTP status and message.
func storeStatus(err error) (int, string) {
	var (
		re     *requestError
		uerr   *coordinatordb.UsernameError
		perr   *coordinatordb.PasswordError
		berr   *coordinatordb.EdgeBindingError
		locked *coordinatordb.LockedError
		short  *coordinatordb.InsufficientPointsError
	)
	switch {
	case errors.As(err, &re):
		return re.status, re.msg
	case errors.As(err, &uerr), errors.As(err, &perr):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &berr):
		return http.StatusConflict, err.Error()
	case errors.As(err, &locked):
		return http.StatusTooManyRequests, err.Error()
	case errors.As(err, &short):
		return http.StatusPaymentRequired, fmt.Sprintf("insufficient points: have %d, need %d", short.Have, short.Need)
	case errors.Is(err, coordinatordb.ErrUsernameTaken), errors.Is(err, coordinatordb.ErrAuditClosed):
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

// writeStoreErr writes err's status; a 429 carries Retry-After in seconds.
func (c *Coordinator) writeStoreErr(w http.ResponseWriter, err error) {
	status, msg := storeStatus(err)
	var locked *coordinatordb.LockedError
	if errors.As(err, &locked) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(locked.RetryAfter.Seconds()))))
	}
	if status >= 500 {
		c.log.Error("store error", "err", err)
	}
	c.metrics.apiErrors.WithLabelValues(strconv.Itoa(status)).Inc()
	wire.WriteError(w, status, "%s", msg)
}

func (c *Coordinator) accountRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+wire.PathSignup, c.withStore(c.handleSignup))
	mux.HandleFunc("POST "+wire.PathLogin, c.withStore(c.handleLogin))
	mux.HandleFunc("POST "+wire.PathLogout, c.authed(c.handleLogout))
	mux.HandleFunc("GET "+wire.PathMe, c.authed(c.handleMe))
	mux.HandleFunc("POST "+wire.PathBindEdge, c.authed(c.handleBindEdge))
	mux.HandleFunc("POST "+wire.PathBindViewer, c.authed(c.handleBindViewer))
	mux.HandleFunc("GET "+wire.PathLedger, c.authed(c.handleLedger))
	mux.HandleFunc("POST "+wire.PathUnlock, c.authed(c.handleUnlock))
	mux.HandleFunc("POST "+wire.PathSetPrice, c.adminOnly(c.handleSetPrice))
	mux.HandleFunc("POST "+wire.PathGrant, c.adminOnly(c.handleGrant))
	mux.HandleFunc("POST "+wire.PathSettle, c.authed(c.handleSettle))
	mux.HandleFunc("GET "+wire.PathRejections, c.adminOnly(c.handleRejections))
	mux.HandleFunc("GET "+wire.PathEdgeStatus, c.authed(c.handleEdgeStatus))
	mux.HandleFunc("GET "+wire.PathFlows, c.authed(c.handleFlows))
}

func (c *Coordinator) handleSignup(w http.ResponseWriter, r *http.Request) {
	var cr wire.Credentials
	if !wire.DecodeJSON(w, r, &cr) {
		return
	}
	a, err := c.store.CreateAccount(r.Context(), cr.Username, cr.Password, c.cfg.Now())
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.metrics.accounts.WithLabelValues("signup").Inc()
	c.log.Info("account created", "account", a.ID, "username", a.Username)
	info, err := c.accountInfo(r, a)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

func (c *Coordinator) handleLogin(w http.ResponseWriter, r *http.Request) {
	var cr wire.Credentials
	if !wire.DecodeJSON(w, r, &cr) {
		return
	}
	s, err := c.store.Login(r.Context(), cr.Username, cr.Password, c.cfg.Now())
	if err != nil {
		outcome := "bad_credentials"
		var locked *coordinatordb.LockedError
		if errors.As(err, &locked) {
			outcome = "locked"
		}
		c.metrics.logins.WithLabelValues(outcome).Inc()
		c.writeStoreErr(w, err)
		return
	}
	c.metrics.logins.WithLabelValues("ok").Inc()
	a, err := c.store.Account(r.Context(), s.AccountID)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	info, err := c.accountInfo(r, a)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: wire.SessionCookieName, Value: s.Token, Path: "/", Expires: s.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	wire.WriteJSON(w, wire.LoginResponse{Token: s.Token, CSRFToken: c.csrfToken(s.Token), ExpiresAt: s.ExpiresAt, Account: info})
}

func (c *Coordinator) handleLogout(w http.ResponseWriter, r *http.Request, who *caller) {
	if who.session == "" {
		wire.WriteError(w, http.StatusBadRequest, "logout ends a login session; an edge API token is not one")
		return
	}
	if err := c.store.Logout(r.Context(), who.session); err != nil {
		c.writeStoreErr(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: wire.SessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeEmpty(w)
}

func (c *Coordinator) accountInfo(r *http.Request, a coordinatordb.Account) (wire.AccountInfo, error) {
	ctx := r.Context()
	bal, err := c.store.Balance(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	edge, err := c.cat.AccountEdge(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	ent, err := c.cat.AccountEntitlements(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	return wire.AccountInfo{ID: a.ID, Username: a.Username, Role: string(a.Role), Balance: bal, Edge: edge, Entitled: ent}, nil
}

func (c *Coordinator) handleMe(w http.ResponseWriter, r *http.Request, who *caller) {
	info, err := c.accountInfo(r, who.acct)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

// requireSession refuses edge API tokens on routes that change an account.
func requireSession(w http.ResponseWriter, who *caller, what string) bool {
	if who.session == "" {
		wire.WriteError(w, http.StatusForbidden, "%s needs a login session; an edge API token may only settle", what)
		return false
	}
	return true
}

func (c *Coordinator) handleBindEdge(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "binding an edge") {
		return
	}
	var req wire.BindEdgeRequest
	if !wire.DecodeJSON(w, r, &req) {
		return
	}
	if err := checkNodeID(req.NodeID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bind edge: %v", err)
		return
	}
	token, err := c.store.CreateAPIToken(r.Context(), who.acct.ID, req.NodeID, c.cfg.Now())
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.log.Info("edge bound", "account", who.acct.ID, "node", req.NodeID)
	wire.WriteJSON(w, wire.BindEdgeResponse{APIToken: token})
}

func (c *Coordinator) handleBindViewer(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "binding a viewer key") {
		return
	}
	var req wire.BindViewerRequest
	if !wire.DecodeJSON(w, r, &req) {
		return
	}
	if err := checkNodeID(req.ViewerID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bind viewer: %v", err)
		return
	}
	owner, err := c.cat.ViewerAccount(r.Context(), req.ViewerID)
	switch {
	case err == nil && owner.ID != who.acct.ID:
		wire.WriteError(w, http.StatusConflict, "viewer key %s is bound to another account; generate a new player key", req.ViewerID)
		return
	case err != nil && !errors.Is(err, coordinatordb.ErrNotFound):
		c.writeStoreErr(w, err)
		return
	}
	if err := c.store.BindViewerKey(r.Context(), who.acct.ID, req.ViewerID, c.cfg.Now()); err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.limits.forgetDenials()
	writeEmpty(w)
}

func (c *Coordinator) handleLedger(w http.ResponseWriter, r *http.Request, who *caller) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			wire.WriteError(w, http.StatusBadRequest, "limit %q: want an integer in 1..1000", s)
			return
		}
		limit = n
	}
	es, err := c.store.Entries(r.Context(), who.acct.ID, limit)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	out := make([]wire.LedgerEntry, len(es))
	for i, e := range es {
		out[i] = wire.LedgerEntry{TxID: e.TxID, Amount: e.Amount, Kind: e.Kind, Memo: e.Memo, At: e.At}
	}
	wire.WriteJSON(w, out)
}

// catalogueVideo resolves the {id} path value against the catalogue.
func (c *Coordinator) catalogueVideo(r *http.Request) (content.VideoID, *video, error) {
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		return id, nil, badRequest("%v", err)
	}
	c.mu.RLock()
	v := c.st.videos[id.String()]
	c.mu.RUnlock()
	if v == nil {
		return id, nil, notFound("video %s is not in the catalogue", id)
	}
	return id, v, nil
}

func (c *Coordinator) handleUnlock(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "unlocking a video") {
		return
	}
	id, _, err := c.catalogueVideo(r)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	res, err := c.store.Unlock(r.Context(), who.acct.ID, id, c.cfg.Now())
	if err != nil {
		c.metrics.unlocks.WithLabelValues("refused").Inc()
		c.writeStoreErr(w, err)
		return
	}
	c.metrics.unlocks.WithLabelValues("ok").Inc()
	c.limits.forgetDenials()
	bal, err := c.store.Balance(r.Context(), who.acct.ID)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.log.Info("video unlocked", "account", who.acct.ID, "video", id, "charged", res.Charged, "already", res.AlreadyEntitled)
	wire.WriteJSON(w, wire.UnlockResponse{Charged: res.Charged, AlreadyEntitled: res.AlreadyEntitled, Balance: bal})
}

func (c *Coordinator) handleSetPrice(w http.ResponseWriter, r *http.Request, who *caller) {
	id, v, err := c.catalogueVideo(r)
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	var req wire.SetPriceRequest
	if !wire.DecodeJSON(w, r, &req) {
		return
	}
	if req.Price < 0 {
		wire.WriteError(w, http.StatusBadRequest, "price %d: must not be negative (0 = free)", req.Price)
		return
	}
	terms := coordinatordb.VideoTerms{Video: id, Price: req.Price, PlaybackBudgetBytes: coordinatordb.PlaybackBudget(v.m)}
	if err := c.store.PutVideo(r.Context(), terms, c.cfg.Now()); err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.limits.forgetVideo(id.String())
	c.log.Info("video price set", "video", id, "price", req.Price, "by", who.acct.Username)
	writeEmpty(w)
}

func (c *Coordinator) handleGrant(w http.ResponseWriter, r *http.Request, who *caller) {
	var req wire.GrantRequest
	if !wire.DecodeJSON(w, r, &req) {
		return
	}
	if req.Points <= 0 {
		wire.WriteError(w, http.StatusBadRequest, "grant: points %d: want a positive number", req.Points)
		return
	}
	if len(req.Memo) > 256 {
		wire.WriteError(w, http.StatusBadRequest, "grant: memo of %d bytes; at most 256", len(req.Memo))
		return
	}
	if err := coordinatordb.ValidateUsername(req.Username); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "grant: %v", err)
		return
	}
	a, err := c.store.AccountByName(r.Context(), req.Username)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		wire.WriteError(w, http.StatusNotFound, "grant: no account named %q", req.Username)
		return
	}
	if err != nil {
		c.writeStoreErr(w, err)
		return
	}
	if a.Role == coordinatordb.RoleSystem {
		wire.WriteError(w, http.StatusBadRequest, "grant: %q is a system account", req.Username)
		return
	}
	memo := req.Memo
	if memo == "" {
		memo = "granted by " + who.acct.Username
	}
	if err := c.store.Grant(r.Context(), a.ID, req.Points, memo, c.cfg.Now()); err != nil {
		c.writeStoreErr(w, err)
		return
	}
	c.metrics.grantedPoints.Add(float64(req.Points))
	c.log.Info("points granted", "to", a.Username, "points", req.Points, "by", who.acct.Username)
	writeEmpty(w)
}

// authorizeKey is the key route's rule with a Store: an authenticated
// account entitled to the video. A free video is unlocked on the spot (an
// unlock at price 0 is the entitlement), so players need no extra step.
func (c *Coordinator) authorizeKey(r *http.Request, id content.VideoID) error {
	who, err := c.authenticate(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	terms, err := c.store.Video(ctx, id)
	if err != nil {
		return err
	}
	if terms.Price == 0 {
		// Free: the unlock at price 0 is the entitlement (idempotent).
		_, err := c.store.Unlock(ctx, who.acct.ID, id, c.cfg.Now())
		return err
	}
	ok, err := c.store.Entitled(ctx, who.acct.ID, id)
	if err != nil {
		return err
	}
	if !ok {
		return &requestError{http.StatusForbidden, fmt.Sprintf("video %s: not entitled; unlock it first (price %d points)", id, terms.Price)}
	}
	return nil
}

// registerTerms records a published video's price (DefaultPrice unless an
// admin set one before) and playback budget in the store.
func (c *Coordinator) registerTerms(r *http.Request, m *content.Manifest) error {
	ctx, id := r.Context(), m.ID()
	terms, err := c.store.Video(ctx, id)
	price := c.cfg.DefaultPrice
	if err == nil {
		price = terms.Price // republishing keeps an admin's price
	} else if !errors.Is(err, coordinatordb.ErrUnknownVideo) {
		return err
	}
	budget := coordinatordb.PlaybackBudget(m)
	if err == nil && terms.PlaybackBudgetBytes == budget {
		return nil
	}
	return c.store.PutVideo(ctx, coordinatordb.VideoTerms{Video: id, Price: price, PlaybackBudgetBytes: budget}, c.cfg.Now())
}

// parseTimeParam reads an optional RFC 3339 query parameter.
func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest("%s %q: want an RFC 3339 time like 2026-11-01T12:00:00Z", name, s)
	}
	return t, nil
}

// BootstrapAdmin creates the account username with password if it does not
// exist, and makes it an admin (an existing account keeps its password).
func BootstrapAdmin(ctx context.Context, store coordinatordb.Store, username, password string, now time.Time) (coordinatordb.Account, error) {
	a, err := store.CreateAccount(ctx, username, password, now)
	if errors.Is(err, coordinatordb.ErrUsernameTaken) {
		a, err = store.AccountByName(ctx, username)
	}
	if err != nil {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
	}
	if a.Role == coordinatordb.RoleSystem {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: that is a system account", username)
	}
	if err := store.SetRole(ctx, a.ID, coordinatordb.RoleAdmin); err != nil {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
	}
	a.Role = coordinatordb.RoleAdmin
	return a, nil
}
