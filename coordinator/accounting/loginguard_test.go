package accounting

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

var guardT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestLoginGuardClientBucket(t *testing.T) {
	g := newLoginGuard(LoginThrottle{ClientBurst: 3, ClientRefill: 10 * time.Second}, []byte("k"))
	for i := range 3 {
		if err := g.attempt("a", guardT0); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	err := g.attempt("a", guardT0)
	te, ok := err.(*throttledError)
	if !ok || te.retryAfter != 10*time.Second {
		t.Fatalf("4th attempt: %v, want throttled for 10s", err)
	}
	if err := g.attempt("b", guardT0); err != nil {
		t.Fatalf("another client is throttled by a's attempts: %v", err)
	}
	if err := g.attempt("a", guardT0.Add(5*time.Second)); err == nil {
		t.Fatal("half a refill gave a token")
	}
	if err := g.attempt("a", guardT0.Add(10*time.Second)); err != nil {
		t.Fatalf("after one refill: %v", err)
	}
}

func TestLoginGuardNeedsDistinctClients(t *testing.T) {
	g := newLoginGuard(LoginThrottle{NameFailures: 3, NameWindow: time.Minute}, []byte("k"))
	for range 50 {
		g.failed("root", "one-client", guardT0)
	}
	if err := g.guarded("root", guardT0); err != nil {
		t.Fatalf("one client guarded a username: %v", err)
	}
	g.failed("root", "c2", guardT0.Add(10*time.Second))
	g.failed("root", "c3", guardT0.Add(20*time.Second))
	err := g.guarded("root", guardT0.Add(30*time.Second))
	if te, ok := err.(*throttledError); !ok || te.retryAfter != 30*time.Second {
		t.Fatalf("three clients: %v, want guarded until the first failure is a minute old", err)
	}
	if err := g.guarded("root", guardT0.Add(time.Minute)); err != nil {
		t.Fatalf("still guarded after the window: %v", err)
	}
}

func TestLoginGuardIsBounded(t *testing.T) {
	g := newLoginGuard(LoginThrottle{MaxClients: 100, MaxUsernames: 50}, []byte("k"))
	for i := range 10_000 {
		_ = g.attempt("client-"+strconv.Itoa(i), guardT0)
		g.failed("name-"+strconv.Itoa(i), "c", guardT0)
	}
	if g.clients.len() != 100 || g.names.len() != 50 {
		t.Fatalf("guard holds %d clients, %d names; want at most 100, 50", g.clients.len(), g.names.len())
	}
}

func TestDeviceToken(t *testing.T) {
	g := newLoginGuard(LoginThrottle{}, []byte("k"))
	tok := g.deviceToken("alice", guardT0.Add(time.Hour))
	if !g.trustedDevice(tok, "alice", guardT0) {
		t.Fatal("own token not trusted")
	}
	if g.trustedDevice(tok, "bob", guardT0) || g.trustedDevice(tok, "alice", guardT0.Add(time.Hour)) {
		t.Fatal("token trusted for another user or after expiry")
	}
	other := newLoginGuard(LoginThrottle{}, []byte("other key"))
	for _, bad := range []string{"", ".", "x.y", other.deviceToken("alice", guardT0.Add(time.Hour)), strconv.FormatInt(guardT0.Add(48*time.Hour).Unix(), 10) + tok[len(strconv.FormatInt(guardT0.Add(time.Hour).Unix(), 10)):]} {
		if g.trustedDevice(bad, "alice", guardT0) {
			t.Errorf("forged token %q trusted", bad)
		}
	}
}

func TestClientKey(t *testing.T) {
	for remote, want := range map[string]string{
		"10.1.2.3:5555":            "10.1.2.3",
		"[2001:db8:1:2:aa::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:1": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":    "192.0.2.7",
		"not-an-address":           "not-an-address",
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = remote
		if got := clientKey(r); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", remote, got, want)
		}
	}
}

// FuzzDeviceToken feeds arbitrary cookie values to the device-cookie
// check: never a panic, and only a token the guard issued is trusted.
func FuzzDeviceToken(f *testing.F) {
	g := newLoginGuard(LoginThrottle{}, []byte("fuzz key"))
	real := g.deviceToken("alice", guardT0.Add(time.Hour))
	f.Add(real, "alice")
	f.Add("", "alice")
	f.Add("1.2.3", "bob")
	f.Add("99999999999999999999."+real, "alice")
	f.Fuzz(func(t *testing.T, token, user string) {
		if g.trustedDevice(token, user, guardT0) && !(token == real && user == "alice") {
			t.Fatalf("trusted a token it did not issue: %q for %q", token, user)
		}
	})
}
