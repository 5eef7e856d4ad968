package accounting

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// In-process account operations. The JSON endpoints (endpoint.go) and the
// coordinator's web app (coordinator/web) both call these, so a rule such
// as the login throttle or a password check lives in one place whatever
// the client speaks. Errors are the store's or *wire.StatusError; ErrorStatus
// says what each means to a client.

// LoginAttempt is one password login.
type LoginAttempt struct {
	Username, Password string
	// Client is the throttle's name for the request's source (ClientKey).
	Client string
	// DeviceToken is the DeviceCookieName cookie the browser sent, if any:
	// it exempts the owner's own browser from a guarded username.
	DeviceToken string
}

// LoginResult is a successful login: the session, the CSRF token bound to
// it, and a fresh device token for the DeviceCookieName cookie.
type LoginResult struct {
	Session       coordinatordb.Session
	CSRFToken     string
	DeviceToken   string
	DeviceExpires time.Time
	Account       wire.AccountInfo
}

// ClientKey is the login throttle's name for r's source address.
func ClientKey(r *http.Request) string { return clientKey(r) }

// ErrorStatus maps an error of this package or the store to the HTTP
// status and the message a client should see (WriteError writes them).
// A nil error is 200.
func ErrorStatus(err error) (int, string) {
	if err == nil {
		return http.StatusOK, ""
	}
	return storeStatus(err)
}

// CSRFToken is the CSRF token bound to a session token (or to any other
// secret string a caller keys a form on): HMAC-SHA256 under a key derived
// from the coordinator's identity, so it survives restarts.
func (s *Service) CSRFToken(session string) string { return s.csrfToken(session) }

// SignUp creates an account after the client's throttle and the username
// and password rules; nothing is written when a check fails.
func (s *Service) SignUp(ctx context.Context, cr wire.Credentials, client string) (wire.AccountInfo, error) {
	// A sign-up costs an argon2id hash: it spends the client's login
	// tokens like a login does.
	if err := s.logins.attempt(client, s.cfg.Now()); err != nil {
		s.metrics.logins.WithLabelValues("throttled").Inc()
		return wire.AccountInfo{}, err
	}
	if err := coordinatordb.ValidateUsername(cr.Username); err != nil {
		return wire.AccountInfo{}, err
	}
	if err := coordinatordb.ValidatePassword(cr.Username, cr.Password); err != nil {
		return wire.AccountInfo{}, err
	}
	a, err := s.db.CreateAccount(ctx, cr.Username, cr.Password, s.cfg.Now())
	if err != nil {
		return wire.AccountInfo{}, err
	}
	s.metrics.accounts.WithLabelValues("signup").Inc()
	s.log.Info("account created", "account", a.ID, "username", a.Username)
	return s.accountInfo(ctx, a)
}

// LogIn checks a password under the login throttle (LoginThrottle): the
// client's bucket first, then the username's guard unless the attempt
// carries the username's device token; only then the password, which costs
// the same argon2id work whether or not the account exists.
func (s *Service) LogIn(ctx context.Context, at LoginAttempt) (LoginResult, error) {
	now := s.cfg.Now()
	if err := s.logins.attempt(at.Client, now); err != nil {
		s.metrics.logins.WithLabelValues("throttled").Inc()
		return LoginResult{}, err
	}
	named := coordinatordb.ValidateUsername(at.Username) == nil
	if named && (at.DeviceToken == "" || !s.logins.trustedDevice(at.DeviceToken, at.Username, now)) {
		if err := s.logins.guarded(at.Username, now); err != nil {
			s.metrics.logins.WithLabelValues("guarded").Inc()
			return LoginResult{}, err
		}
	}
	sess, err := s.db.Login(ctx, at.Username, at.Password, now)
	if err != nil {
		if named && errors.Is(err, coordinatordb.ErrBadCredentials) {
			s.logins.failed(at.Username, at.Client, now)
		}
		s.metrics.logins.WithLabelValues("bad_credentials").Inc()
		return LoginResult{}, err
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	a, err := s.db.Account(ctx, sess.AccountID)
	if err != nil {
		return LoginResult{}, err
	}
	info, err := s.accountInfo(ctx, a)
	if err != nil {
		return LoginResult{}, err
	}
	deviceExpires := now.Add(s.logins.p.DeviceTTL)
	return LoginResult{
		Session: sess, CSRFToken: s.csrfToken(sess.Token),
		DeviceToken: s.logins.deviceToken(at.Username, deviceExpires), DeviceExpires: deviceExpires,
		Account: info,
	}, nil
}

// LogOut ends a login session.
func (s *Service) LogOut(ctx context.Context, session string) error {
	return s.db.Logout(ctx, session)
}

// SessionAccount is the account a live login session belongs to; an
// unknown or expired session is a 401 *wire.StatusError.
func (s *Service) SessionAccount(ctx context.Context, session string) (wire.AccountInfo, error) {
	if session == "" || len(session) > maxTokenLen {
		return wire.AccountInfo{}, &wire.StatusError{Status: http.StatusUnauthorized, Msg: "no live login session; log in again"}
	}
	a, err := s.db.SessionAccount(ctx, session, s.cfg.Now())
	if errors.Is(err, coordinatordb.ErrSessionInvalid) {
		return wire.AccountInfo{}, &wire.StatusError{Status: http.StatusUnauthorized, Msg: err.Error()}
	}
	if err != nil {
		return wire.AccountInfo{}, err
	}
	return s.accountInfo(ctx, a)
}

// Ledger is an account's newest ledger entries, newest first (at most
// limit, 1..1000).
func (s *Service) Ledger(ctx context.Context, accountID int64, limit int) ([]wire.LedgerEntry, error) {
	if limit < 1 || limit > 1000 {
		return nil, wire.BadRequest("ledger limit %d: want 1..1000", limit)
	}
	es, err := s.db.Entries(ctx, accountID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]wire.LedgerEntry, len(es))
	for i, e := range es {
		out[i] = wire.LedgerEntry{TxID: e.TxID, Amount: e.Amount, Kind: e.Kind, Memo: e.Memo, At: e.At}
	}
	return out, nil
}

// VideoPrice is a catalogued video's price in points (0: free).
func (s *Service) VideoPrice(ctx context.Context, video content.VideoID) (int64, error) {
	t, err := s.db.Video(ctx, video)
	if err != nil {
		return 0, err
	}
	return t.Price, nil
}

// Entitled reports whether the account may play the video (unlocked, or
// free: a free video counts as entitled before its first play unlocks it).
func (s *Service) Entitled(ctx context.Context, accountID int64, video content.VideoID) (bool, error) {
	ok, err := s.db.Entitled(ctx, accountID, video)
	if err != nil || ok {
		return ok, err
	}
	price, err := s.VideoPrice(ctx, video)
	if err != nil {
		return false, err
	}
	return price == 0, nil
}

// Unlock spends the account's points on a catalogued video (an
// *coordinatordb.InsufficientPointsError, 402, when the balance is short;
// nothing is charged twice).
func (s *Service) Unlock(ctx context.Context, accountID int64, video content.VideoID) (wire.UnlockResponse, error) {
	if _, ok := s.net.Manifest(video); !ok {
		return wire.UnlockResponse{}, wire.NotFound("video %s is not in the catalogue", video)
	}
	res, err := s.db.Unlock(ctx, accountID, video, s.cfg.Now())
	if err != nil {
		s.metrics.unlocks.WithLabelValues("refused").Inc()
		return wire.UnlockResponse{}, err
	}
	s.metrics.unlocks.WithLabelValues("ok").Inc()
	s.limits.forgetDenials()
	bal, err := s.db.Balance(ctx, accountID)
	if err != nil {
		return wire.UnlockResponse{}, err
	}
	s.log.Info("video unlocked", "account", accountID, "video", video, "charged", res.Charged, "already", res.AlreadyEntitled)
	return wire.UnlockResponse{Charged: res.Charged, AlreadyEntitled: res.AlreadyEntitled, Balance: bal}, nil
}

// EdgeStatus is an edge's standing: reputation, audits, earnings and ban,
// for its owner (accountID) or an admin; anyone else gets 403.
func (s *Service) EdgeStatus(ctx context.Context, accountID int64, admin bool, node wire.NodeID) (wire.EdgeStatusInfo, error) {
	if err := wire.CheckNodeID(node); err != nil {
		return wire.EdgeStatusInfo{}, wire.BadRequest("edge status: %v", err)
	}
	if !admin {
		owner, err := s.db.EdgeAccount(ctx, node)
		if err != nil && !errors.Is(err, coordinatordb.ErrNotFound) {
			return wire.EdgeStatusInfo{}, err
		}
		if err != nil || owner.ID != accountID {
			return wire.EdgeStatusInfo{}, &wire.StatusError{Status: http.StatusForbidden, Msg: "edge status: edge " + string(node) + " is not bound to your account"}
		}
	}
	return s.edgeStatus(ctx, node)
}

// edgeStatus reads an edge's standing without an ownership check.
func (s *Service) edgeStatus(ctx context.Context, node wire.NodeID) (wire.EdgeStatusInfo, error) {
	st, err := s.db.EdgeReputation(ctx, node)
	if err != nil {
		return wire.EdgeStatusInfo{}, err
	}
	tally, err := s.db.AuditTally(ctx, node)
	if err != nil {
		return wire.EdgeStatusInfo{}, err
	}
	credited, frozen, err := s.db.EdgeEarnings(ctx, node)
	if err != nil {
		return wire.EdgeStatusInfo{}, err
	}
	info := wire.EdgeStatusInfo{
		NodeID: node, Reputation: st.Audit.Score(), Alpha: st.Audit.Alpha, Beta: st.Audit.Beta,
		AuditsPassed: tally.Passed, AuditsFailed: tally.Failed, Contained: tally.Contained,
		Disqualified: st.Disqualified, DisqualifiedAt: st.DisqualifiedAt, DisqualifiedReason: st.DisqualifyReason,
		CreditedPoints: credited, FrozenPoints: frozen,
	}
	if err := s.addBan(ctx, &info, st); err != nil {
		return wire.EdgeStatusInfo{}, err
	}
	return info, nil
}

// EdgeBytesServed sums the bytes settled flows from an edge carried in
// [since, until) (what the edge was paid for).
func (s *Service) EdgeBytesServed(ctx context.Context, node wire.NodeID, since, until time.Time) (int64, error) {
	fs, err := s.db.FlowsFromEdge(ctx, node, since, until)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, f := range fs {
		n += f.Bytes
	}
	return n, nil
}
