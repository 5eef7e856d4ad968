package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// The players API over a real coordinator and store: a player key bound
// to the account announces its loopback gateway with its signature and the
// account's session; the account (and nobody else) lists it, most recent
// first; it disappears when not refreshed within wire.PlayerGatewayMaxAge
// or when withdrawn. Anything but http://127.0.0.1:PORT or
// http://[::1]:PORT is refused with the reason, as are unbound keys,
// another account's key, forged, stale and anonymous announcements, and
// none of them changes what the account lists.
func TestPlayersAPI(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	alice := h.signup("alice", testPassword)
	aliceTok := h.login("alice", testPassword).Token
	bob := h.signup("bob", testPassword)
	bobTok := h.login("bob", testPassword).Token
	_, edgeAPI := h.boundEdge("edgeowner", "")

	bind := func(tok string, acct int64, p identity.Identity) {
		t.Helper()
		h.want(h.do("POST", wire.PathBindViewer, tok, wire.SignBindViewer(p.Key, acct, h.clock.Now())), 200)
	}
	announce := func(tok string, acct int64, p identity.Identity, gw string) reply {
		t.Helper()
		return h.do("POST", wire.PathPlayers, tok, wire.SignPlayerGateway(p.Key, acct, gw, h.clock.Now()))
	}
	list := func(tok string) []wire.PlayerInfo {
		t.Helper()
		r := h.want(h.do("GET", wire.PathPlayers, tok, nil), 200)
		if !strings.HasPrefix(string(r.body), `{"players":[`) {
			t.Fatalf("players body %s: want {\"players\":[...]}", r.body)
		}
		return decode[wire.PlayersResponse](t, r).Players
	}

	p1, p2, unbound, bobs := identity.New(), identity.New(), identity.New(), identity.New()
	bind(aliceTok, alice.ID, p1)
	bind(aliceTok, alice.ID, p2)
	bind(bobTok, bob.ID, bobs)
	if got := list(aliceTok); len(got) != 0 {
		t.Fatalf("before any announcement: %+v", got)
	}
	h.want(announce(aliceTok, alice.ID, p1, "http://127.0.0.1:43117"), 200)
	t0 := h.clock.Now()
	h.clock.Advance(10 * time.Second)
	h.want(announce(aliceTok, alice.ID, p2, "http://[::1]:8089"), 200)
	got := list(aliceTok)
	if len(got) != 2 || got[0].ViewerID != p2.ID || got[0].Gateway != "http://[::1]:8089" || got[1].ViewerID != p1.ID ||
		got[1].Gateway != "http://127.0.0.1:43117" || !got[1].SeenAt.Equal(t0) {
		t.Fatalf("alice's players %+v: want p2 ([::1]:8089) then p1 (127.0.0.1:43117, seen %s)", got, t0)
	}
	r := h.want(h.do("GET", wire.PathPlayers, aliceTok, nil), 200)
	if !strings.Contains(string(r.body), `"seen_at":"2026-01-01T00:00:10Z"`) || !strings.Contains(string(r.body), `"viewer_id":"`+string(p2.ID)+`"`) {
		t.Errorf("players JSON %s lacks the contract's fields", r.body)
	}

	for _, gw := range []string{
		"http://10.0.0.7:8080", "http://192.168.1.20:43117", "http://localhost:43117", "http://attacker.example:80",
		"https://127.0.0.1:43117", "http://127.0.0.1", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:080",
		"http://127.0.0.1:43117/", "http://127.0.0.1:43117/videos", "http://127.0.0.1:43117?x", "http://user@127.0.0.1:43117",
		"http://127.0.0.2:43117", "http://[::2]:43117", "http://::1:43117", "javascript:alert(1)", "http://0.0.0.0:43117",
		"http://127.1:43117", "http://[::ffff:127.0.0.1]:43117", " http://127.0.0.1:43117",
	} {
		h.want(announce(aliceTok, alice.ID, p1, gw), 400, "127.0.0.1:PORT")
	}
	h.want(announce(aliceTok, alice.ID, unbound, "http://127.0.0.1:1"), 403, "bind it first")
	h.want(announce(aliceTok, alice.ID, bobs, "http://127.0.0.1:2"), 403, "another account")
	forged := wire.SignPlayerGateway(p1.Key, alice.ID, "http://127.0.0.1:43117", h.clock.Now())
	forged.Gateway = "http://127.0.0.1:6666"
	h.want(h.do("POST", wire.PathPlayers, aliceTok, forged), 401, "does not verify")
	h.want(h.do("POST", wire.PathPlayers, aliceTok, wire.SignPlayerGateway(p1.Key, bob.ID, "http://127.0.0.1:3", h.clock.Now())), 401, "not this account")
	h.want(h.do("POST", wire.PathPlayers, aliceTok, wire.SignPlayerGateway(p1.Key, alice.ID, "http://127.0.0.1:4", h.clock.Now().Add(-time.Minute))), 401)
	h.want(h.do("POST", wire.PathPlayers, "", wire.SignPlayerGateway(p1.Key, alice.ID, "http://127.0.0.1:5", h.clock.Now())), 401, "authentication required")
	h.want(h.do("POST", wire.PathPlayers, edgeAPI, wire.SignPlayerGateway(p1.Key, alice.ID, "http://127.0.0.1:5", h.clock.Now())), 403, "may only settle")
	h.want(h.do("GET", wire.PathPlayers, "", nil), 401)
	h.want(h.do("GET", wire.PathPlayers, edgeAPI, nil), 403)
	if after := list(aliceTok); len(after) != 2 || after[0] != got[0] || after[1] != got[1] {
		t.Fatalf("refused announcements changed alice's players: %+v, was %+v", after, got)
	}
	if b := list(bobTok); len(b) != 0 {
		t.Fatalf("bob sees %+v", b)
	}

	// p1 refreshes, p2 stops: past the max age only p1 is listed.
	h.clock.Advance(wire.PlayerGatewayMaxAge - 5*time.Second)
	h.want(announce(aliceTok, alice.ID, p1, "http://127.0.0.1:43118"), 200) // restarted on another port
	h.clock.Advance(10 * time.Second)
	if got := list(aliceTok); len(got) != 1 || got[0].ViewerID != p1.ID || got[0].Gateway != "http://127.0.0.1:43118" {
		t.Fatalf("after p2 went quiet for %v: %+v, want only p1 at its new port", wire.PlayerGatewayMaxAge, got)
	}
	h.want(announce(aliceTok, alice.ID, p1, ""), 200)
	if got := list(aliceTok); len(got) != 0 {
		t.Fatalf("after withdrawal: %+v", got)
	}
	if m := h.metric(`swarmcast_coordinator_player_gateway_announcements_total{outcome="announced"}`); m != "3" {
		t.Errorf("announced metric %q, want 3", m)
	}
}
