package coordinator

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// TestAccountsFlow walks the whole accounts contract over HTTP: sign-up,
// login, binding an edge (API token), unlocking with and without points,
// and the key route's 401/403/200.
func TestAccountsFlow(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		paid, free := h.video(0), h.video(1)
		h.setPrice(paid, 50)

		info := h.signup("alice", "correct-horse")
		if info.Username != "alice" || info.Role != "user" || info.Balance != 0 {
			t.Fatalf("signup: %+v", info)
		}
		h.want(h.do("POST", wire.PathSignup, "", wire.Credentials{Username: "alice", Password: "another-pass"}), http.StatusConflict, "taken")
		h.want(h.do("POST", wire.PathLogin, "", wire.Credentials{Username: "alice", Password: "wrong-pass"}), http.StatusUnauthorized, "wrong username or password")
		lr := h.login("alice", "correct-horse")
		if lr.Token == "" || lr.CSRFToken == "" || lr.Account.Username != "alice" {
			t.Fatalf("login: %+v", lr)
		}
		tok := lr.Token

		// Bind an edge: one per account.
		edge := h.edge("")
		bind := decode[wire.BindEdgeResponse](t, h.want(h.do("POST", wire.PathBindEdge, tok, h.consent(tok, edge)), 200))
		if bind.APIToken == "" {
			t.Fatal("no API token")
		}
		h.want(h.do("POST", wire.PathBindEdge, tok, h.consent(tok, h.edge(""))), http.StatusConflict, "one edge")
		me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, tok, nil), 200))
		if me.Edge != edge {
			t.Fatalf("me.edge = %q, want %s", me.Edge, edge)
		}
		// The API token authenticates the edge, but only for settling.
		h.want(h.do("GET", wire.PathMe, bind.APIToken, nil), http.StatusForbidden, "may only settle")
		h.want(h.do("POST", videoPath(wire.PathUnlock, paid), bind.APIToken, nil), http.StatusForbidden, "may only settle")

		// Keys: no credentials 401, not entitled 403 with the price.
		keyPath := videoPath(wire.PathKey, paid)
		h.want(h.do("GET", keyPath, "", nil), http.StatusUnauthorized, "authentication required")
		h.want(h.do("GET", keyPath, "bogus", nil), http.StatusUnauthorized)
		h.want(h.do("GET", keyPath, tok, nil), http.StatusForbidden, "unlock it first (price 50 points)")

		// Unlock without points: 402 with have/need; nothing charged.
		h.want(h.do("POST", videoPath(wire.PathUnlock, paid), tok, nil), http.StatusPaymentRequired, "have 0, need 50")
		h.grant("alice", 80)
		un := decode[wire.UnlockResponse](t, h.want(h.do("POST", videoPath(wire.PathUnlock, paid), tok, nil), 200))
		if un.Charged != 50 || un.Balance != 30 || un.AlreadyEntitled {
			t.Fatalf("unlock: %+v", un)
		}
		un = decode[wire.UnlockResponse](t, h.want(h.do("POST", videoPath(wire.PathUnlock, paid), tok, nil), 200))
		if un.Charged != 0 || un.Balance != 30 || !un.AlreadyEntitled {
			t.Fatalf("re-unlock (re-watch) must be free: %+v", un)
		}
		key := h.want(h.do("GET", keyPath, tok, nil), 200)
		if len(key.body) != 16 {
			t.Fatalf("key is %d bytes", len(key.body))
		}
		// A free video: the key route unlocks it on the spot.
		h.want(h.do("GET", videoPath(wire.PathKey, free), tok, nil), 200)
		me = decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, tok, nil), 200))
		if len(me.Entitled) != 2 || me.Balance != 30 {
			t.Fatalf("me after unlocks: %+v", me)
		}
		ledger := decode[[]wire.LedgerEntry](t, h.want(h.do("GET", wire.PathLedger+"?limit=10", tok, nil), 200))
		if len(ledger) != 2 || ledger[0].Amount != -50 || ledger[0].Kind != "unlock" || ledger[1].Amount != 80 {
			t.Fatalf("ledger: %+v", ledger)
		}
		// Admin routes refuse users.
		h.want(h.do("POST", wire.PathGrant, tok, wire.GrantRequest{Username: "alice", Points: 1}), http.StatusForbidden, "admins")
		h.want(h.do("POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: "nobody", Points: 1}), http.StatusNotFound, "no account")
		// Logout ends the session.
		h.want(h.do("POST", wire.PathLogout, tok, nil), 200)
		h.want(h.do("GET", wire.PathMe, tok, nil), http.StatusUnauthorized)
		if err := h.store.CheckLedger(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCookieAuthNeedsCSRF: the session cookie authenticates reads; state
// changes also need the CSRF token from login.
func TestCookieAuthNeedsCSRF(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	h.signup("bob", "long-secret-one")
	r := h.want(h.do("POST", wire.PathLogin, "", wire.Credentials{Username: "bob", Password: "long-secret-one"}), 200)
	lr := decode[wire.LoginResponse](t, r)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == wire.SessionCookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != lr.Token {
		t.Fatalf("session cookie: %+v", cookie)
	}
	withCookie := func(req *http.Request) { req.AddCookie(&http.Cookie{Name: wire.SessionCookieName, Value: lr.Token}) }
	withCSRF := func(v string) func(*http.Request) {
		return func(req *http.Request) { req.Header.Set(wire.HeaderCSRF, v) }
	}
	h.want(h.do("GET", wire.PathMe, "", nil, withCookie), 200)
	unlock := videoPath(wire.PathUnlock, h.video(1))
	h.want(h.do("POST", unlock, "", nil, withCookie), http.StatusForbidden, wire.HeaderCSRF)
	h.want(h.do("POST", unlock, "", nil, withCookie, withCSRF("0000")), http.StatusForbidden, wire.HeaderCSRF)
	h.want(h.do("POST", unlock, "", nil, withCookie, withCSRF(lr.CSRFToken)), 200)
	// Bearer tokens need no CSRF token: they are not sent by browsers on their own.
	h.want(h.do("POST", unlock, lr.Token, nil), 200)
}

// TestAccountsBadInput: malformed, oversize and SQL-hostile input gets a
// clear 4xx and writes nothing.
func TestAccountsBadInput(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	tok := h.user("dave")
	for _, tc := range []struct {
		method, path, token string
		body                any
		status              int
		phrase              string
	}{
		{"POST", wire.PathSignup, "", []byte(`{"username":`), 400, "malformed"},
		{"POST", wire.PathSignup, "", []byte(`{"username":"x","password":"y","extra":1}`), 400, "unknown field"},
		{"POST", wire.PathSignup, "", wire.Credentials{Username: "eve'; DROP TABLE accounts;--", Password: "password-eve"}, 400, "invalid username"},
		{"POST", wire.PathSignup, "", wire.Credentials{Username: "Robert", Password: "password-x"}, 400, "invalid username"},
		{"POST", wire.PathSignup, "", wire.Credentials{Username: "shorty", Password: "short"}, 400, "invalid password"},
		{"POST", wire.PathSignup, "", []byte(`{"username":"big","password":"` + strings.Repeat("a", wire.MaxSmallJSONBody) + `"}`), 413, "over"},
		{"POST", wire.PathLogin, "", wire.Credentials{Username: "' OR 1=1 --", Password: "x"}, 401, "wrong username"},
		{"POST", wire.PathBindEdge, tok, wire.BindEdgeRequest{NodeID: "'; DELETE FROM edge_bindings;--"}, 400, "64 lowercase hex"},
		{"POST", wire.PathBindViewer, tok, wire.BindViewerRequest{ViewerID: "ABC"}, 400, "64 lowercase hex"},
		{"GET", wire.PathLedger + "?limit=abc", tok, nil, 400, "limit"},
		{"GET", wire.PathLedger + "?limit=100000", tok, nil, 400, "limit"},
		{"POST", textVideoPath(wire.PathUnlock, "zz"), tok, nil, 400, ""},
		{"POST", textVideoPath(wire.PathUnlock, strings.Repeat("ab", 32)), tok, nil, 404, "not in the catalogue"},
		{"POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: "dave", Points: -5}, 400, "positive"},
		{"POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: "x' OR '1'='1", Points: 5}, 400, "invalid username"},
		{"POST", videoPath(wire.PathSetPrice, h.video(0)), h.admin, wire.SetPriceRequest{Price: -1}, 400, "negative"},
		{"GET", wire.PathFlows, tok, nil, 400, "exactly one"},
		{"GET", wire.PathFlows + "?edge=" + strings.Repeat("a", 64) + "&since=yesterday", tok, nil, 400, "rfc 3339"},
		{"GET", wire.PathFlows + "?viewer=../etc", tok, nil, 400, "64 lowercase hex"},
		{"GET", strings.Replace(wire.PathEdgeStatus, "{node}", "1;DROP", 1), tok, nil, 400, "64 lowercase hex"},
		{"GET", wire.PathMe, strings.Repeat("t", 500), nil, 401, "bearer"},
		{"POST", wire.PathSettle, tok, wire.SettlementBatch{ID: "b1"}, 403, "api token"},
	} {
		r := h.do(tc.method, tc.path, tc.token, tc.body)
		if r.status != tc.status || !strings.Contains(strings.ToLower(string(r.body)), strings.ToLower(tc.phrase)) {
			t.Errorf("%s %s: want %d mentioning %q, got %d %s", tc.method, tc.path, tc.status, tc.phrase, r.status, r.body)
		}
	}
	// Nothing was written: only root and dave exist; dave has no points and no edge.
	if _, err := h.store.AccountByName(context.Background(), "eve"); err == nil {
		t.Fatal("hostile sign-up created an account")
	}
	me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, tok, nil), 200))
	if me.Balance != 0 || me.Edge != "" || len(me.Entitled) != 0 {
		t.Fatalf("bad input changed the account: %+v", me)
	}
}
