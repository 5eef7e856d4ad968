package coordinator

import (
	"net/http"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// TestAccountRoutesRefuseOutsiders walks every account, points and
// settlement route that changes state (or reads an account) and sends it
// what an outsider has: no credentials, an edge API token (scoped to
// settle), another user's session on an admin route, a login session on
// the settle route. Each must be refused with the status that says why,
// and afterwards the victims' state is as it was: balances, the video's
// price and entitlement, the edge's token and binding.
//
// Sign-up and login take no credentials by design; what guards them
// (per-client throttle, username guard, JSON-only bodies, password policy)
// is tested in hardening_test.go.
func TestAccountRoutesRefuseOutsiders(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	video := h.video(0)
	h.setPrice(video, 5)
	edge, edgeAPI := h.boundEdge("edgeowner", "", set(video, 0, 0, 1))
	alice := h.user("alice")
	h.grant("alice", 10)
	victimKey := newTestNode()
	before := func() (int64, int64, bool) {
		terms, err := h.store.Video(t.Context(), video)
		if err != nil {
			t.Fatal(err)
		}
		me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, alice, nil), 200))
		return me.Balance, terms.Price, len(me.Entitled) > 0
	}
	balance0, price0, entitled0 := before()

	type call struct {
		method, path string
		body         any
	}
	unlock := call{"POST", videoPath(wire.PathUnlock, video), struct{}{}}
	price := call{"POST", videoPath(wire.PathSetPrice, video), wire.SetPriceRequest{Price: 0}}
	grant := call{"POST", wire.PathGrant, wire.GrantRequest{Username: "alice", Points: 1000}}
	bindViewer := call{"POST", wire.PathBindViewer, wire.BindViewerRequest{ViewerID: victimKey.ID}}
	bindEdge := call{"POST", wire.PathBindEdge, wire.BindEdgeRequest{NodeID: edge.ID}}
	revoke := call{"POST", wire.PathRevokeEdgeTokens, nil}
	logout := call{"POST", wire.PathLogout, nil}
	settle := call{"POST", wire.PathSettle, wire.SettlementBatch{ID: "outsider-batch", Edge: edge.ID}}
	me := call{"GET", wire.PathMe, nil}
	ledger := call{"GET", wire.PathLedger, nil}

	for _, tc := range []struct {
		name   string
		c      call
		token  string
		status int
		phrase string
	}{
		// Nobody at all.
		{"unlock anonymous", unlock, "", 401, "authentication required"},
		{"price anonymous", price, "", 401, "authentication required"},
		{"grant anonymous", grant, "", 401, "authentication required"},
		{"bind viewer anonymous", bindViewer, "", 401, "authentication required"},
		{"bind edge anonymous", bindEdge, "", 401, "authentication required"},
		{"revoke anonymous", revoke, "", 401, "authentication required"},
		{"logout anonymous", logout, "", 401, "authentication required"},
		{"settle anonymous", settle, "", 401, "authentication required"},
		{"me anonymous", me, "", 401, "authentication required"},
		{"ledger anonymous", ledger, "", 401, "authentication required"},
		{"bad bearer", unlock, "not-a-token", 401, "not a live session"},
		// A stolen edge API token: it may settle, nothing else.
		{"unlock with edge token", unlock, edgeAPI, 403, "may only settle"},
		{"price with edge token", price, edgeAPI, 403, "may only settle"},
		{"grant with edge token", grant, edgeAPI, 403, "may only settle"},
		{"bind viewer with edge token", bindViewer, edgeAPI, 403, "may only settle"},
		{"bind edge with edge token", bindEdge, edgeAPI, 403, "may only settle"},
		{"revoke with edge token", revoke, edgeAPI, 403, "may only settle"},
		{"logout with edge token", logout, edgeAPI, 403, "may only settle"},
		{"me with edge token", me, edgeAPI, 403, "may only settle"},
		{"ledger with edge token", ledger, edgeAPI, 403, "may only settle"},
		// A user on admin routes.
		{"price by a user", price, alice, 403, "for admins"},
		{"grant by a user", grant, alice, 403, "for admins"},
		// A session on the edge-only route, and a key the caller does not hold.
		{"settle with a session", settle, alice, 403, "API token"},
		{"bind someone's player key", bindViewer, alice, 401, "sign"},
		{"bind someone's edge", bindEdge, alice, 401, "sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.want(h.do(tc.c.method, tc.c.path, tc.token, tc.c.body), tc.status, tc.phrase)
		})
	}

	if b, p, e := before(); b != balance0 || p != price0 || e != entitled0 {
		t.Fatalf("after the outsiders: balance %d, price %d, entitled %v; want %d, %d, %v", b, p, e, balance0, price0, entitled0)
	}
	owner := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, h.session("edgeowner"), nil), 200))
	if owner.Edge != edge.ID {
		t.Fatalf("edge owner's binding after the outsiders: %+v", owner)
	}
	// The edge's token still settles (an empty batch is a valid batch).
	h.passAudit(edge.ID)
	h.want(h.do("POST", wire.PathSettle, edgeAPI, wire.SettlementBatch{ID: "owner-batch", Edge: edge.ID}), http.StatusOK)
}
