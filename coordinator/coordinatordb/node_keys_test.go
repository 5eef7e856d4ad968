package coordinatordb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// An allowed key survives a reopen and is allowed only in its role;
// allowing twice is a no-op; a malformed key or a role that is not
// admitted by key is refused and stores nothing; a revocation takes it
// back for good.
func TestNodeKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db, err := OpenConfig(ctx, be.dsn, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		relay := wire.NodeID(strings.Repeat("ab", 32))
		worker := wire.NodeID(strings.Repeat("cd", 32))
		if ok, err := db.NodeKeyAllowed(ctx, wire.RoleRelay, relay); ok || err != nil {
			t.Fatalf("before: allowed=%v err=%v", ok, err)
		}
		for range 2 {
			if err := db.AllowNodeKey(ctx, wire.RoleRelay, relay, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AllowNodeKey(ctx, wire.RoleWorker, worker, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.AllowNodeKey(ctx, wire.RoleRelay, "'; DROP TABLE node_keys;--", time.Now()); err == nil {
			t.Fatal("malformed key allowed")
		}
		if err := db.AllowNodeKey(ctx, wire.RoleEdge, relay, time.Now()); err == nil || !strings.Contains(err.Error(), "relay") {
			t.Fatalf("edge key allowed (edges are not admitted by key): %v", err)
		}
		db.Close()
		db, err = OpenConfig(ctx, be.dsn, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if ok, err := db.NodeKeyAllowed(ctx, wire.RoleRelay, relay); !ok || err != nil {
			t.Fatalf("after reopen: allowed=%v err=%v", ok, err)
		}
		if ok, _ := db.NodeKeyAllowed(ctx, wire.RoleOrigin, relay); ok {
			t.Fatal("a relay key is allowed as an origin")
		}
		keys, err := db.NodeKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, 0, len(keys))
		for _, k := range keys {
			got = append(got, string(k.Role)+" "+string(k.Node))
		}
		if want := []string{"relay " + string(relay), "worker " + string(worker)}; !slices.Equal(got, want) {
			t.Fatalf("keys %v, want %v", got, want)
		}
		if had, err := db.RevokeNodeKey(ctx, wire.RoleRelay, relay); !had || err != nil {
			t.Fatalf("revoke: had=%v err=%v", had, err)
		}
		if had, err := db.RevokeNodeKey(ctx, wire.RoleRelay, relay); had || err != nil {
			t.Fatalf("second revoke: had=%v err=%v", had, err)
		}
		if ok, _ := db.NodeKeyAllowed(ctx, wire.RoleRelay, relay); ok {
			t.Fatal("revoked key still allowed")
		}
		if n := count(t, db, "node_keys"); n != 1 {
			t.Fatalf("%d node keys, want 1 (the worker)", n)
		}
	})
}
