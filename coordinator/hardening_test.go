package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// throttledHarness is a store harness with the login throttle's defaults
// (the plain harness deepens the per-client bucket for its many logins).
func throttledHarness(t *testing.T) *storeHarness {
	return newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", func(c *Config) { c.Accounting.LoginThrottle = accounting.LoginThrottle{} })
}

// from sends a JSON request to the coordinator's handler as the client at
// remote ("10.0.0.66:4711"): the throttle keys on the source address, and
// a real server sets RemoteAddr exactly like this.
func (h *storeHarness) from(remote, method, path string, body any, mod ...func(*http.Request)) reply {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.RemoteAddr = remote
	req.Header.Set("Content-Type", "application/json")
	for _, m := range mod {
		m(req)
	}
	rec := httptest.NewRecorder()
	h.c.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	rb, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, rb, res.Header}
}

func cookieNamed(r reply, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestAttackLockOutTheAdmin: before, five wrong passwords from anyone
// locked any account, the admin's included, for everyone for 15 minutes
// (and the lock survived restarts). Now the guesser's own address is
// throttled and the admin logs in from anywhere else at once.
func TestAttackLockOutTheAdmin(t *testing.T) {
	h := throttledHarness(t)
	const attacker, adminHome = "10.0.0.66:5000", "10.0.0.1:6000"
	var throttled reply
	for i := range 30 {
		r := h.from(attacker, "POST", wire.PathLogin, wire.Credentials{Username: "root", Password: "guess-number-" + strconv.Itoa(i)})
		switch {
		case i < 10 && r.status != http.StatusUnauthorized:
			t.Fatalf("guess %d: %d %s, want 401 while the client has tokens", i, r.status, r.body)
		case i >= 10 && r.status != http.StatusTooManyRequests:
			t.Fatalf("guess %d: %d %s, want 429 once the client's bucket is empty", i, r.status, r.body)
		}
		throttled = r
	}
	if secs, err := strconv.Atoi(throttled.header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After %q: want a few seconds", throttled.header.Get("Retry-After"))
	}
	if !strings.Contains(string(throttled.body), "from your address") {
		t.Fatalf("429 body %s does not say why", throttled.body)
	}
	// The victim: the admin still logs in, and so does the attacker's
	// address once its bucket refills (a throttle, not a ban).
	h.want(h.from(adminHome, "POST", wire.PathLogin, wire.Credentials{Username: "root", Password: rootPassword}), 200)
	h.clock.Advance(6 * time.Second)
	h.want(h.from(attacker, "POST", wire.PathLogin, wire.Credentials{Username: "root", Password: rootPassword}), 200)
	if got := h.metric(`swarmcast_coordinator_logins_total{outcome="throttled"}`); got != "20" {
		t.Fatalf("throttled logins metric = %q, want 20", got)
	}
}

// TestAttackDistributedGuessing: many addresses, one guess each, against
// one username. The username gets guarded (429 for unvouched clients)
// after 10 failures, but the owner's browser, holding the device cookie of
// an earlier login, still gets in; an unknown username is guarded exactly
// the same way, so the guard reveals nothing.
func TestAttackDistributedGuessing(t *testing.T) {
	h := throttledHarness(t)
	h.signup("victim", testPassword)
	home := h.from("10.0.0.1:1", "POST", wire.PathLogin, wire.Credentials{Username: "victim", Password: testPassword})
	h.want(home, 200)
	device := cookieNamed(home, accounting.DeviceCookieName)
	if device == nil || !device.HttpOnly || device.SameSite != http.SameSiteStrictMode || device.Path != wire.PathLogin {
		t.Fatalf("device cookie %+v", device)
	}
	for _, name := range []string{"victim", "nobody-here"} {
		for i := range 10 {
			h.want(h.from("10.1.0."+strconv.Itoa(i)+":1", "POST", wire.PathLogin, wire.Credentials{Username: name, Password: "wrong-guess-" + strconv.Itoa(i)}), http.StatusUnauthorized)
		}
	}
	known := h.from("10.2.0.1:1", "POST", wire.PathLogin, wire.Credentials{Username: "victim", Password: testPassword})
	unknown := h.from("10.2.0.2:1", "POST", wire.PathLogin, wire.Credentials{Username: "nobody-here", Password: testPassword})
	h.want(known, http.StatusTooManyRequests, "log in from a browser that has logged in to it before")
	if unknown.status != known.status || !bytes.Equal(unknown.body, known.body) || unknown.header.Get("Retry-After") != known.header.Get("Retry-After") {
		t.Fatalf("guarded known %d %s vs unknown %d %s: the guard tells them apart", known.status, known.body, unknown.status, unknown.body)
	}
	// The owner's browser is vouched for; a forged or other user's cookie is not.
	withDevice := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: accounting.DeviceCookieName, Value: v}) }
	}
	h.want(h.from("10.0.0.1:2", "POST", wire.PathLogin, wire.Credentials{Username: "victim", Password: testPassword}, withDevice(device.Value)), 200)
	forged := strings.Split(device.Value, ".")[0] + "." + strings.Repeat("0", 64)
	h.want(h.from("10.2.0.3:1", "POST", wire.PathLogin, wire.Credentials{Username: "victim", Password: testPassword}, withDevice(forged)), http.StatusTooManyRequests)
	// The guard lifts when the failures age out of the window.
	h.clock.Advance(16 * time.Minute)
	h.want(h.from("10.2.0.4:1", "POST", wire.PathLogin, wire.Credentials{Username: "victim", Password: testPassword}), 200)
}

// TestAttackAccountEnumeration: a wrong password for a real account and
// any password for a missing one get the same status and body, and the
// store spends the same argon2id work on both (the dummy hash has the
// store's own cost: coordinatordb's TestDummyHashHasTheStoreCost).
func TestAttackAccountEnumeration(t *testing.T) {
	h := throttledHarness(t)
	h.signup("realuser", testPassword)
	known := h.from("10.0.0.2:1", "POST", wire.PathLogin, wire.Credentials{Username: "realuser", Password: "not-the-password"})
	unknown := h.from("10.0.0.3:1", "POST", wire.PathLogin, wire.Credentials{Username: "ghostuser", Password: "not-the-password"})
	if known.status != http.StatusUnauthorized || unknown.status != known.status || !bytes.Equal(known.body, unknown.body) {
		t.Fatalf("known %d %s vs unknown %d %s", known.status, known.body, unknown.status, unknown.body)
	}
	if cookieNamed(known, wire.SessionCookieName) != nil || cookieNamed(known, accounting.DeviceCookieName) != nil {
		t.Fatal("a failed login set a cookie")
	}
}

// TestAttackWeakPasswords: sign-ups with passwords attackers guess first
// are refused with a reason, and no account is created.
func TestAttackWeakPasswords(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	for _, tc := range []struct{ user, pass, phrase string }{
		{"weak1", "password", "want 10"},
		{"weak2", "12345678", "want 10"},
		{"weak3", "password123", "most common"},
		{"weak4", "Qwerty123456!", "most common"},
		{"weak5", "Dragon2024!", "most common"},
		{"tenletters", "tenletters", "username"},
		{"longname2", "my-longname2-pass", "username"},
		{"longname3", "LONGNAME3rocks", "username"},
	} {
		h.want(h.do("POST", wire.PathSignup, "", wire.Credentials{Username: tc.user, Password: tc.pass}), http.StatusBadRequest, "invalid password", tc.phrase)
		if _, err := h.store.AccountByName(context.Background(), tc.user); err == nil {
			t.Errorf("refused sign-up %s created the account", tc.user)
		}
	}
	h.signup("strong", "four unrelated words")
	// The bootstrap admin follows the same policy, before writing anything.
	if _, err := accounting.BootstrapAdmin(context.Background(), h.store, "admin2", "admin2admin2", h.clock.Now()); err == nil || !strings.Contains(err.Error(), "username") {
		t.Fatalf("weak bootstrap admin: %v", err)
	}
	if _, err := h.store.AccountByName(context.Background(), "admin2"); err == nil {
		t.Fatal("refused bootstrap admin was created")
	}
}

// TestAttackFormCSRF: a cross-site HTML form can post to login and sign-up
// (form-urlencoded, multipart or text/plain: no preflight); those are
// refused with 415 before anything happens, so a page cannot log a
// browser into the attacker's account or create accounts.
func TestAttackFormCSRF(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	h.signup("formvictim", testPassword)
	creds, _ := json.Marshal(wire.Credentials{Username: "formvictim", Password: testPassword})
	fresh, _ := json.Marshal(wire.Credentials{Username: "csrfmade", Password: testPassword})
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "text/json"} {
		ctSet := func(r *http.Request) {
			if ct == "" {
				r.Header.Del("Content-Type")
			} else {
				r.Header.Set("Content-Type", ct)
			}
		}
		r := h.do("POST", wire.PathLogin, "", creds, ctSet)
		h.want(r, http.StatusUnsupportedMediaType, "application/json")
		if cookieNamed(r, wire.SessionCookieName) != nil {
			t.Fatalf("Content-Type %q: login set a session cookie", ct)
		}
		h.want(h.do("POST", wire.PathSignup, "", fresh, ctSet), http.StatusUnsupportedMediaType)
		h.want(h.do("POST", wire.PathLookup, "", []byte(`{}`), ctSet), http.StatusUnsupportedMediaType)
		h.want(h.do("POST", wire.PathGrant, h.admin, []byte(`{"username":"formvictim","points":5}`), ctSet), http.StatusUnsupportedMediaType)
	}
	if _, err := h.store.AccountByName(context.Background(), "csrfmade"); err == nil {
		t.Fatal("a form sign-up created an account")
	}
	if bal := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, h.session("formvictim"), nil), 200)).Balance; bal != 0 {
		t.Fatalf("balance %d after refused grants", bal)
	}
	// JSON with a charset parameter is still JSON.
	h.want(h.do("POST", wire.PathLogin, "", creds, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }), 200)
}

// TestAttackOversizeBodies: each route reads only what it needs.
func TestAttackOversizeBodies(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	pad := strings.Repeat("x", wire.MaxSmallJSONBody)
	for _, path := range []string{wire.PathSignup, wire.PathLogin} {
		h.want(h.do("POST", path, "", []byte(`{"username":"big","password":"`+pad+`"}`)), http.StatusRequestEntityTooLarge, "over")
	}
	h.want(h.do("POST", wire.PathGrant, h.admin, []byte(`{"username":"root","points":1,"memo":"`+pad+`"}`)), http.StatusRequestEntityTooLarge)
	h.want(h.do("POST", wire.PathLookup, "", []byte(`{"region":"`+strings.Repeat("x", wire.MaxLookupBody)+`"}`)), http.StatusRequestEntityTooLarge)
	// The largest legitimate lookup (every exclusion allowed) still fits.
	big := wire.LookupRequest{Video: h.video(0), Count: wire.MaxLookupCount}
	for range maxExclude {
		big.Exclude = append(big.Exclude, wire.NodeID(strings.Repeat("a", 64)))
	}
	h.want(h.do("POST", wire.PathLookup, "", big), 200)
}

// TestAttackStolenEdgeToken: before, an edge's API token (kept in a file
// on the contributor's disk) read content keys, /me and /ledger, and could
// not be revoked. Now it may settle and nothing else, and its owner
// revokes it (or rebinds the edge for a fresh one).
func TestAttackStolenEdgeToken(t *testing.T) {
	f := newSettleFixture(t, "sqlite:"+t.TempDir()+"/c.db")
	h := f.h
	owner := h.session("edgeop")
	h.grant("edgeop", 100)
	free := h.video(0)
	h.want(h.do("GET", videoPath(wire.PathKey, free), owner, nil), 200) // the owner is entitled
	stolen := f.apiToken
	for _, rt := range []struct{ method, path string }{
		{"GET", videoPath(wire.PathKey, free)},
		{"GET", wire.PathMe},
		{"GET", wire.PathLedger},
		{"POST", videoPath(wire.PathUnlock, free)},
		{"POST", wire.PathBindViewer},
		{"POST", wire.PathRevokeEdgeTokens},
		{"GET", wire.PathFlows + "?edge=" + string(f.edge.ID)},
		{"GET", strings.Replace(wire.PathEdgeStatus, "{node}", string(f.edge.ID), 1)},
	} {
		var body any
		if rt.method == "POST" {
			body = wire.BindViewerRequest{ViewerID: f.viewer.ID}
		}
		r := h.do(rt.method, rt.path, stolen, body)
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "may only settle") || bytes.Contains(r.body, []byte("balance")) {
			t.Errorf("%s %s with the edge token: %d %s, want 403", rt.method, rt.path, r.status, r.body)
		}
	}
	// It still settles.
	h.want(f.settle(wire.SettlementBatch{ID: "batch-before-revoke", Edge: f.edge.ID, Pairs: []wire.SettlementPair{order(f.viewer, f.limit, 1000)}}, stolen), 200)

	// The owner revokes it: settlement with it stops at once; the account is unchanged.
	rev := decode[wire.RevokeEdgeTokensResponse](t, h.want(h.do("POST", wire.PathRevokeEdgeTokens, owner, nil), 200))
	if rev.Revoked != 1 {
		t.Fatalf("revoked %d tokens, want 1", rev.Revoked)
	}
	h.want(f.settle(wire.SettlementBatch{ID: "batch-after-revoke", Edge: f.edge.ID}, stolen), http.StatusUnauthorized, "not a live session or API token")
	me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, owner, nil), 200))
	if me.Edge != f.edge.ID {
		t.Fatalf("revoking unbound the edge: %+v", me)
	}
	// Rebinding issues a fresh token; an older one stays dead.
	fresh := decode[wire.BindEdgeResponse](t, h.want(h.do("POST", wire.PathBindEdge, owner, h.consent(owner, f.edge.ID)), 200)).APIToken
	h.clock.Advance(time.Millisecond) // a second consent, not a replay of the first
	again := decode[wire.BindEdgeResponse](t, h.want(h.do("POST", wire.PathBindEdge, owner, h.consent(owner, f.edge.ID)), 200)).APIToken
	h.want(f.settle(wire.SettlementBatch{ID: "batch-old-fresh", Edge: f.edge.ID}, fresh), http.StatusUnauthorized)
	h.want(f.settle(wire.SettlementBatch{ID: "batch-new", Edge: f.edge.ID, Pairs: []wire.SettlementPair{order(f.viewer, f.limit, 2000)}}, again), 200)
}

// TestAttackReusedBatchID: before, a batch id already settled by another
// edge answered 500, and the same edge reusing an id with new pairs got
// the old result back as a "replay" (its new pairs silently unpaid). Now
// both are 409 and change nothing; a true replay is still 200 Replayed.
func TestAttackReusedBatchID(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		f := newSettleFixture(t, dsn)
		h := f.h
		first := wire.SettlementBatch{ID: "batch-reused", Edge: f.edge.ID, Pairs: []wire.SettlementPair{order(f.viewer, f.limit, 1_000_000)}}
		res := decode[wire.SettlementResult](t, h.want(f.settle(first, f.apiToken), 200))
		if res.Accepted != 1 || res.Replayed {
			t.Fatalf("first settle: %+v", res)
		}
		balance := func() int64 {
			return decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, h.session("edgeop"), nil), 200)).Balance
		}
		before := balance()
		changed := first
		changed.Pairs = []wire.SettlementPair{order(f.viewer, f.limit, 2_000_000)}
		h.want(f.settle(changed, f.apiToken), http.StatusConflict, "fresh random id")
		other, otherAPI := h.boundEdge("otherop2", "")
		h.want(f.settle(wire.SettlementBatch{ID: "batch-reused", Edge: other.ID}, otherAPI), http.StatusConflict, "another edge")
		if got := balance(); got != before {
			t.Fatalf("balance %d after refused reuses, want %d", got, before)
		}
		again := decode[wire.SettlementResult](t, h.want(f.settle(first, f.apiToken), 200))
		if !again.Replayed || again.Accepted != 1 {
			t.Fatalf("true replay: %+v", again)
		}
	})
}
