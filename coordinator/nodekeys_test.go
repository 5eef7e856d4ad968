package coordinator

import (
	"net/http"
	"slices"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/wire"
)

// Relays and BTR workers are admitted by key, as origins are: anyone else
// registering in those roles is refused with how to get allowed, and
// never listed; the same key registers once allowed, and as an edge
// always (edges need no allowance).
func TestAttackRegisterAsRelayOrWorker(t *testing.T) {
	h := newHarness(t)
	for _, role := range []wire.Role{wire.RoleRelay, wire.RoleWorker} {
		n := newTestNode()
		s := wire.NewNodeSigner(n.Key, h.clock.Now)
		status, msg := h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: role, Addr: "http://127.0.0.1:1"}), s)
		wantStatus(t, "unallowed "+string(role), status, msg, http.StatusForbidden, "--"+string(role)+"-key "+string(n.ID))
		wantStatus(t, "unallowed "+string(role), status, msg, http.StatusForbidden, "node-keys allow "+string(role)+" "+string(n.ID))
		if h.nodeInfo(n.ID) != nil {
			t.Fatalf("unallowed %s listed", role)
		}
		// Allowed as the other role is not allowed as this one.
		other := wire.RoleWorker
		if role == wire.RoleWorker {
			other = wire.RoleRelay
		}
		if err := h.c.AllowNode(t.Context(), other, n.ID); err != nil {
			t.Fatal(err)
		}
		status, msg = h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: role, Addr: "http://127.0.0.1:1"}), s)
		wantStatus(t, string(role)+" allowed only as "+string(other), status, msg, http.StatusForbidden, "not an allowed "+string(role))
		if err := h.c.AllowNode(t.Context(), role, n.ID); err != nil {
			t.Fatal(err)
		}
		if status, msg := h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: role, Addr: "http://127.0.0.1:1"}), s); status != http.StatusOK {
			t.Fatalf("allowed %s refused: %d %s", role, status, msg)
		}
		if info := h.nodeInfo(n.ID); info == nil || info.Role != role {
			t.Fatalf("allowed %s listed as %+v", role, info)
		}
	}
}

// The node-keys admin routes: outsiders (no session, a plain account) and
// bad input are refused with the store unchanged; an allowance is durable
// and taken by a second coordinator on the store; a revocation drops the
// registered node at once and refuses it from then on, here and (by the
// next sweep) at the second coordinator; a command-line key cannot be
// revoked at run time.
func TestNodeKeysAdminRoute(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		flagRelay := newTestNode()
		h := newStoreHarness(t, dsn, "", func(c *Config) { c.RelayKeys = []wire.NodeID{flagRelay.ID} })
		ctx := t.Context()
		relay := newTestNode()
		allow := wire.NodeKeyRequest{Role: wire.RoleRelay, NodeID: relay.ID}
		user := h.user("mallory")
		for _, path := range []string{wire.PathNodeKeys, wire.PathNodeKeyRevoke} {
			h.want(h.do("POST", path, user, allow), http.StatusForbidden, "admins")
			h.want(h.do("POST", path, "", allow), http.StatusUnauthorized)
		}
		h.want(h.do("GET", wire.PathNodeKeys, user, nil), http.StatusForbidden, "admins")
		h.want(h.do("GET", wire.PathNodeKeys, "", nil), http.StatusUnauthorized)
		h.want(h.do("POST", wire.PathNodeKeys, h.admin, wire.NodeKeyRequest{Role: wire.RoleRelay, NodeID: "nope"}), http.StatusBadRequest, "64 lowercase hex", "--print-id")
		h.want(h.do("POST", wire.PathNodeKeys, h.admin, wire.NodeKeyRequest{Role: wire.RoleEdge, NodeID: relay.ID}), http.StatusBadRequest, "edges need no allowance")
		h.want(h.do("POST", wire.PathNodeKeys, h.admin, wire.NodeKeyRequest{Role: "boss", NodeID: relay.ID}), http.StatusBadRequest, "origin", "relay", "worker")
		h.want(h.do("POST", wire.PathNodeKeyRevoke, h.admin, allow), http.StatusNotFound, "not an allowed relay")
		h.want(h.do("POST", wire.PathNodeKeyRevoke, h.admin, wire.NodeKeyRequest{Role: wire.RoleRelay, NodeID: flagRelay.ID}), http.StatusConflict, "--relay-key")
		if keys, err := h.store.NodeKeys(ctx); err != nil || len(keys) != 1 || keys[0].Node != h.origin.ID {
			t.Fatalf("refused requests changed the store: %+v %v", keys, err)
		}
		_, ok := call(h.c, wire.PathRegister, wire.RegisterRequest{NodeID: relay.ID, Role: wire.RoleRelay, Addr: "http://127.0.0.1:1"})
		if ok {
			t.Fatal("relay registered before it was allowed")
		}

		h.want(h.do("POST", wire.PathNodeKeys, h.admin, allow), http.StatusOK)
		h.want(h.do("POST", wire.PathNodeKeys, h.admin, allow), http.StatusOK) // again: a no-op
		keys := decode[[]wire.NodeKeyInfo](t, h.want(h.do("GET", wire.PathNodeKeys, h.admin, nil), http.StatusOK))
		var got []string
		for _, k := range keys {
			got = append(got, string(k.Role)+" "+string(k.NodeID)+" "+k.Source)
		}
		want := []string{"relay " + string(flagRelay.ID) + " flag", "origin " + string(h.origin.ID) + " store", "relay " + string(relay.ID) + " store"}
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}

		second, err := New(Config{Seed: 9, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: accounting.Config{AuditInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Coordinator{h.c, second} {
			if _, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: relay.ID, Role: wire.RoleRelay, Addr: "http://127.0.0.1:1"}); !ok {
				t.Fatal("allowed relay refused")
			}
		}
		// A sweep keeps allowed nodes (the store's and the command line's).
		if _, ok := call(h.c, wire.PathRegister, wire.RegisterRequest{NodeID: flagRelay.ID, Role: wire.RoleRelay, Addr: "http://127.0.0.1:1"}); !ok {
			t.Fatal("the command line's relay refused")
		}
		h.c.Sweep()
		second.Sweep()
		if !registered(h.c, relay.ID) || !registered(h.c, flagRelay.ID) || !registered(second, relay.ID) || !registered(h.c, h.origin.ID) {
			t.Fatal("a sweep dropped an allowed node")
		}
		h.want(h.do("POST", wire.PathNodeKeyRevoke, h.admin, allow), http.StatusOK)
		if h.nodeInfo(relay.ID) != nil {
			t.Fatal("revoked relay still registered")
		}
		if resp := h.heartbeat(wire.HeartbeatRequest{NodeID: relay.ID}); !resp.Unknown {
			t.Fatal("revoked relay's heartbeat accepted")
		}
		body, ok := call(h.c, wire.PathRegister, wire.RegisterRequest{NodeID: relay.ID, Role: wire.RoleRelay, Addr: "http://127.0.0.1:1"})
		if ok || !bytesContains(body, "not an allowed relay") {
			t.Fatalf("revoked relay re-registered: %s", body)
		}
		// The second coordinator still has it registered until its sweep
		// reads the store.
		if !registered(second, relay.ID) {
			t.Fatal("second coordinator lost the relay before its sweep")
		}
		second.Sweep()
		if registered(second, relay.ID) {
			t.Fatal("relay revoked through another coordinator still registered after a sweep")
		}
		if _, ok := call(second, wire.PathRegister, wire.RegisterRequest{NodeID: relay.ID, Role: wire.RoleRelay, Addr: "http://127.0.0.1:1"}); ok {
			t.Fatal("second coordinator took a revoked relay")
		}
		// Edges were never affected: the same key registers as an edge.
		if _, ok := call(h.c, wire.PathRegister, wire.RegisterRequest{NodeID: relay.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}); !ok {
			t.Fatal("a revoked relay key cannot register as an edge")
		}
	})
}

func registered(c *Coordinator, id wire.NodeID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.st.nodes[id] != nil
}

// A revoked relay leaves the live trees: the next build runs without it
// and no route names it as anyone's parent.
func TestRevokedRelayLeavesTrees(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	ctx := t.Context()
	origin := h.newLiveOrigin()
	admin := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	admin.Token = h.admin
	created, err := admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	tc := newTestChain(t, origin, created.Channel.ID)
	chain := tc.g.ID()
	if err := origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
		t.Fatal(err)
	}
	relay := newTestNode().ID
	if err := admin.AllowNodeKey(ctx, wire.RoleRelay, relay); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: relay, Role: wire.RoleRelay, Addr: "http://127.0.0.1:7300", UploadCapBytes: 10_000_000, PricePerGB: 0.01}); err != nil {
		t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: relay})
	var edges []wire.NodeID
	for range 3 {
		edges = append(edges, h.edge(""))
	}
	inTrees := func() bool {
		for _, e := range edges {
			h.heartbeat(wire.HeartbeatRequest{NodeID: e, LiveWatching: []content.VideoID{chain}})
		}
		for _, sub := range h.c.Live().Trees()[chain] {
			for child, parent := range sub {
				if child == relay || parent == relay {
					return true
				}
			}
		}
		return false
	}
	h.clock.Advance(live.MinRebuildInterval)
	if !inTrees() {
		t.Fatalf("the allowed relay is in no tree: %v", h.c.Live().Trees()[chain])
	}
	if err := admin.RevokeNodeKey(ctx, wire.RoleRelay, relay); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(live.MinRebuildInterval)
	if inTrees() {
		t.Fatalf("the revoked relay is still in the trees: %v", h.c.Live().Trees()[chain])
	}
	if len(h.c.Live().Trees()[chain]) == 0 {
		t.Fatal("no trees after the revocation: the edges lost the chain")
	}
}
