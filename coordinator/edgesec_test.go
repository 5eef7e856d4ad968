package coordinator

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// Registration names the key order limits are signed with (so edges verify
// every limit without configuration), and a heartbeat's disk cap replaces
// the registered one (an edge whose filesystem filled up holds less).
func TestRegistrationNamesLimitKeyAndHeartbeatUpdatesDiskCap(t *testing.T) {
	id := identity.New()
	c, err := New(Config{Seed: 1, Log: quietLog(), Store: testStore(t), Accounting: accounting.Config{AuditInterval: -1, Identity: id}})
	if err != nil {
		t.Fatal(err)
	}
	edge := newTestNode().ID
	body, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: edge, Role: wire.RoleEdge, Addr: "http://127.0.0.1:9", DiskCapBytes: 1 << 30})
	if !ok {
		t.Fatalf("register: %s", body)
	}
	var resp wire.RegisterResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(id.Key.Public().(ed25519.PublicKey)); resp.CoordinatorKey != want {
		t.Errorf("registration names key %q, want the limit-signing key %q", resp.CoordinatorKey, want)
	}
	diskCap := func() int64 {
		body, _ := getBody(c, wire.PathNodes)
		var nodes []wire.NodeInfo
		if err := json.Unmarshal(body, &nodes); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.NodeID == edge {
				return n.DiskCapBytes
			}
		}
		t.Fatal("edge not listed")
		return 0
	}
	for _, hb := range []struct{ sent, want int64 }{{0, 1 << 30}, {5 << 20, 5 << 20}, {-1, 5 << 20}, {1 << 30, 1 << 30}} {
		if body, ok := call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: edge, DiskCapBytes: hb.sent}); !ok {
			t.Fatalf("heartbeat: %s", body)
		}
		if got := diskCap(); got != hb.want {
			t.Errorf("after a heartbeat with disk cap %d the edge is listed with %d, want %d", hb.sent, got, hb.want)
		}
	}
}

func getBody(c *Coordinator, path string) ([]byte, int) {
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Body.Bytes(), rec.Code
}
