package accounting

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Routes registers the account, points and settlement routes of
// wire/routes.go on mux.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+wire.PathSignup, s.handleSignup)
	mux.HandleFunc("POST "+wire.PathLogin, s.handleLogin)
	mux.HandleFunc("POST "+wire.PathLogout, s.authed(s.handleLogout))
	mux.HandleFunc("GET "+wire.PathMe, s.authed(s.handleMe))
	mux.HandleFunc("POST "+wire.PathBindEdge, s.authed(s.handleBindEdge))
	mux.HandleFunc("POST "+wire.PathRevokeEdgeTokens, s.authed(s.handleRevokeEdgeTokens))
	mux.HandleFunc("POST "+wire.PathBindViewer, s.authed(s.handleBindViewer))
	mux.HandleFunc("POST "+wire.PathAccountWorkers, s.authed(s.handleBindWorker))
	mux.HandleFunc("GET "+wire.PathAccountWorkers, s.authed(s.handleAccountWorkers))
	mux.HandleFunc("GET "+wire.PathPlayers, s.authed(s.handlePlayers))
	mux.HandleFunc("POST "+wire.PathPlayers, s.authed(s.handleAnnouncePlayer))
	mux.HandleFunc("GET "+wire.PathLedger, s.authed(s.handleLedger))
	mux.HandleFunc("POST "+wire.PathUnlock, s.authed(s.handleUnlock))
	mux.HandleFunc("POST "+wire.PathSetPrice, s.adminOnly(s.handleSetPrice))
	mux.HandleFunc("POST "+wire.PathGrant, s.adminOnly(s.handleGrant))
	mux.HandleFunc("POST "+wire.PathSettle, s.edgeAuthed(s.handleSettle))
	mux.HandleFunc("GET "+wire.PathRejections, s.adminOnly(s.handleRejections))
	mux.HandleFunc("GET "+wire.PathEdgeStatus, s.authed(s.handleEdgeStatus))
	mux.HandleFunc("GET "+wire.PathFlows, s.authed(s.handleFlows))
	mux.HandleFunc("POST "+wire.PathUnban, s.adminOnly(s.handleUnban))
}

func (s *Service) handleSignup(w http.ResponseWriter, r *http.Request) {
	var cr wire.Credentials
	if !wire.DecodeJSONLimit(w, r, &cr, wire.MaxSmallJSONBody) {
		return
	}
	info, err := s.SignUp(r.Context(), cr, clientKey(r))
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

// handleLogin is LogIn over JSON: the device cookie goes in, and the
// session and a fresh device cookie come out.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var cr wire.Credentials
	if !wire.DecodeJSONLimit(w, r, &cr, wire.MaxSmallJSONBody) {
		return
	}
	at := LoginAttempt{Username: cr.Username, Password: cr.Password, Client: clientKey(r)}
	if ck, err := r.Cookie(DeviceCookieName); err == nil {
		at.DeviceToken = ck.Value
	}
	res, err := s.LogIn(r.Context(), at)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: DeviceCookieName, Value: res.DeviceToken, Path: wire.PathLogin, Expires: res.DeviceExpires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.SetCookie(w, &http.Cookie{
		Name: wire.SessionCookieName, Value: res.Session.Token, Path: "/", Expires: res.Session.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	wire.WriteJSON(w, wire.LoginResponse{Token: res.Session.Token, CSRFToken: res.CSRFToken, ExpiresAt: res.Session.ExpiresAt, Account: res.Account})
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request, who *caller) {
	if who.session == "" {
		wire.WriteError(w, http.StatusBadRequest, "logout ends a login session; an edge API token is not one")
		return
	}
	if err := s.db.Logout(r.Context(), who.session); err != nil {
		s.WriteError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: wire.SessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	wire.WriteEmpty(w)
}

func (s *Service) accountInfo(ctx context.Context, a coordinatordb.Account) (wire.AccountInfo, error) {
	bal, err := s.db.Balance(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	edge, err := s.db.AccountEdge(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	ent, err := s.db.AccountEntitlements(ctx, a.ID)
	if err != nil {
		return wire.AccountInfo{}, err
	}
	return wire.AccountInfo{ID: a.ID, Username: a.Username, Role: string(a.Role), Balance: bal, Edge: edge, Entitled: ent}, nil
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request, who *caller) {
	info, err := s.accountInfo(r.Context(), who.acct)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

func (s *Service) handleBindEdge(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "binding an edge") {
		return
	}
	var req wire.BindEdgeRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := wire.CheckNodeID(req.NodeID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bind edge: %v", err)
		return
	}
	// Only whoever holds the edge's key may bind it: the edge signs its
	// consent to exactly this account, recently. An id copied from the
	// public node list proves nothing and would let anyone squat it.
	if err := wire.VerifyBindEdge(&req, who.acct.ID, s.cfg.Now()); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "bind edge: %v", err)
		return
	}
	token, err := s.db.CreateAPIToken(r.Context(), who.acct.ID, req.NodeID, s.cfg.Now())
	if err != nil {
		s.WriteError(w, err)
		return
	}
	s.log.Info("edge bound", "account", who.acct.ID, "node", req.NodeID)
	wire.WriteJSON(w, wire.BindEdgeResponse{APIToken: token})
}

// handleRevokeEdgeTokens is the owner's way to stop a leaked edge token:
// every API token of the account stops working at once; binding the edge
// again issues a fresh one.
func (s *Service) handleRevokeEdgeTokens(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "revoking edge tokens") {
		return
	}
	n, err := s.db.RevokeAPITokens(r.Context(), who.acct.ID)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	s.log.Info("edge API tokens revoked", "account", who.acct.ID, "revoked", n)
	wire.WriteJSON(w, wire.RevokeEdgeTokensResponse{Revoked: n})
}

func (s *Service) handleBindViewer(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "binding a viewer key") {
		return
	}
	var req wire.BindViewerRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := wire.CheckNodeID(req.ViewerID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bind viewer: %v", err)
		return
	}
	if err := wire.VerifyBindViewer(&req, who.acct.ID, s.cfg.Now()); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "bind viewer: %v", err)
		return
	}
	owner, err := s.db.ViewerAccount(r.Context(), req.ViewerID)
	switch {
	case err == nil && owner.ID != who.acct.ID:
		wire.WriteError(w, http.StatusConflict, "viewer key %s is bound to another account; generate a new player key", req.ViewerID)
		return
	case err != nil && !errors.Is(err, coordinatordb.ErrNotFound):
		s.WriteError(w, err)
		return
	}
	if err := s.db.BindViewerKey(r.Context(), who.acct.ID, req.ViewerID, s.cfg.Now()); err != nil {
		s.WriteError(w, err)
		return
	}
	s.limits.forgetDenials()
	wire.WriteEmpty(w)
}

func (s *Service) handleLedger(w http.ResponseWriter, r *http.Request, who *caller) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			wire.WriteError(w, http.StatusBadRequest, "limit %q: want an integer in 1..1000", s)
			return
		}
		limit = n
	}
	out, err := s.Ledger(r.Context(), who.acct.ID, limit)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

// catalogueVideo resolves the {id} path value against the catalogue.
func (s *Service) catalogueVideo(r *http.Request) (content.VideoID, *content.Manifest, error) {
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		return id, nil, wire.BadRequest("%v", err)
	}
	m, ok := s.net.Manifest(id)
	if !ok {
		return id, nil, wire.NotFound("video %s is not in the catalogue", id)
	}
	return id, m, nil
}

func (s *Service) handleUnlock(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "unlocking a video") {
		return
	}
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res, err := s.Unlock(r.Context(), who.acct.ID, id)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, res)
}

func (s *Service) handleSetPrice(w http.ResponseWriter, r *http.Request, who *caller) {
	id, m, err := s.catalogueVideo(r)
	if err != nil {
		s.WriteError(w, err)
		return
	}
	var req wire.SetPriceRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if req.Price < 0 || req.Price > coordinatordb.MaxGrantPoints {
		wire.WriteError(w, http.StatusBadRequest, "price %d: must not be negative (0 = free) nor more than %d points", req.Price, coordinatordb.MaxGrantPoints)
		return
	}
	terms := coordinatordb.VideoTerms{Video: id, Price: req.Price, PlaybackBudgetBytes: coordinatordb.PlaybackBudget(m)}
	if err := s.db.PutVideo(r.Context(), terms, s.cfg.Now()); err != nil {
		s.WriteError(w, err)
		return
	}
	s.limits.forgetVideo(id)
	s.log.Info("video price set", "video", id, "price", req.Price, "by", who.acct.Username)
	wire.WriteEmpty(w)
}

func (s *Service) handleGrant(w http.ResponseWriter, r *http.Request, who *caller) {
	var req wire.GrantRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if req.Points <= 0 || req.Points > coordinatordb.MaxGrantPoints {
		wire.WriteError(w, http.StatusBadRequest, "grant: points %d: want a positive number, at most %d per grant (grant more in several steps)", req.Points, coordinatordb.MaxGrantPoints)
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
	a, err := s.db.AccountByName(r.Context(), req.Username)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		wire.WriteError(w, http.StatusNotFound, "grant: no account named %q", req.Username)
		return
	}
	if err != nil {
		s.WriteError(w, err)
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
	if err := s.db.Grant(r.Context(), a.ID, req.Points, memo, s.cfg.Now()); err != nil {
		if errors.Is(err, coordinatordb.ErrSupplyExhausted) {
			wire.WriteError(w, http.StatusConflict, "grant: %v", err)
			return
		}
		s.WriteError(w, err)
		return
	}
	s.metrics.grantedPoints.Add(float64(req.Points))
	s.log.Info("points granted", "to", a.Username, "points", req.Points, "by", who.acct.Username)
	wire.WriteEmpty(w)
}

// parseTimeParam reads an optional RFC 3339 query parameter.
func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, wire.BadRequest("%s %q: want an RFC 3339 time like 2026-11-01T12:00:00Z", name, s)
	}
	return t, nil
}
