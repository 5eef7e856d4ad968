package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// swarmcast relay --print-id, then swarmcast node-keys against a real
// coordinator: a relay the operator allowed registers; listed; revoked, it
// is dropped at once and refused from then on. Every refusal says what to
// do and changes nothing.
func TestNodeKeysCommand(t *testing.T) {
	t.Setenv("SWARMCAST_PASSWORD", "")
	ctx := context.Background()
	store, err := coordinatordb.OpenConfig(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), coordinatordb.Config{
		PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := accounting.BootstrapAdmin(ctx, store, "root", testPassword, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Config{Store: store, Log: slog.New(slog.DiscardHandler), HeartbeatInterval: 200 * time.Millisecond, Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	if _, err := wire.NewCoordinatorClient(srv.URL, nil).Signup(ctx, wire.Credentials{Username: "bob", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	admin := []string{"--coordinator", srv.URL, "--user", "root", "--password", testPassword}
	bob := []string{"--coordinator", srv.URL, "--user", "bob", "--password", testPassword}

	keyFile := filepath.Join(t.TempDir(), "relay.key")
	if _, err := run(t, "relay", "--print-id"); err == nil || !strings.Contains(err.Error(), "--key FILE") {
		t.Fatalf("--print-id without a key file: %v, want it to ask for --key FILE", err)
	}
	out, err := run(t, "relay", "--key", keyFile, "--print-id")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if err := wire.CheckNodeID(wire.NodeID(id)); err != nil {
		t.Fatalf("--print-id printed %q: %v", out, err)
	}
	if again, _ := run(t, "relay", "--key", keyFile, "--print-id"); strings.TrimSpace(again) != id {
		t.Fatalf("--print-id printed %q, then %q: the key file must keep the identity", id, again)
	}

	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"node-keys", "allow", "relay", id}, []string{"need --coordinator"}},
		{append([]string{"node-keys", "allow", "relay"}, admin...), []string{"ROLE NODE_ID"}},
		{append([]string{"node-keys", "allow", "edge", id}, admin...), []string{"edges need no allowance"}},
		{append([]string{"node-keys", "allow", "relay", "xyz"}, admin...), []string{"swarmcast relay --print-id"}},
		{append([]string{"node-keys", "allow", "relay", id}, bob...), []string{"for admins"}},
		{append([]string{"node-keys", "revoke", "relay", id}, admin...), []string{"not an allowed relay"}},
		{append([]string{"node-keys", "list"}, bob...), []string{"for admins"}},
	} {
		out, err := run(t, tc.args...)
		if err == nil {
			t.Fatalf("%q succeeded:\n%s", tc.args, out)
		}
		for _, w := range tc.says {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not say %q", tc.args, err, w)
			}
		}
	}
	if out, err := run(t, append([]string{"node-keys", "list"}, admin...)...); err != nil || !strings.Contains(out, "no node keys allowed") {
		t.Fatalf("list after the refusals: %v\n%s", err, out)
	}

	if out, err := run(t, append([]string{"node-keys", "allow", "relay", id}, admin...)...); err != nil || !strings.Contains(out, "allowed") {
		t.Fatalf("allow: %v\n%s", err, out)
	}
	relay := runCommand(t, "relay", "--coordinator", srv.URL, "--key", keyFile, "--listen", "127.0.0.1:0")
	if got := relay.await(t, regexp.MustCompile(`relay (\S+) serving`)); got != id {
		t.Fatalf("relay runs as %s, --print-id said %s", got, id)
	}
	relay.await(t, regexp.MustCompile(`(--relay-key \S+)`))
	isRelay := func() bool {
		nodes, err := wire.NewCoordinatorClient(srv.URL, nil).Nodes(ctx)
		return err == nil && slices.ContainsFunc(nodes, func(n wire.NodeInfo) bool { return n.NodeID == wire.NodeID(id) && n.Role == wire.RoleRelay })
	}
	for deadline := time.Now().Add(20 * time.Second); !isRelay(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the allowed relay did not register in 20 s:\n%s", relay)
		}
	}
	out, err = run(t, append([]string{"node-keys", "list"}, admin...)...)
	if err != nil || !regexp.MustCompile(`relay\s+`+id+`\s+store\s+20`).MatchString(out) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run(t, append([]string{"node-keys", "revoke", "relay", id}, admin...)...); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if isRelay() {
		t.Fatal("the revoked relay is still registered")
	}
}
