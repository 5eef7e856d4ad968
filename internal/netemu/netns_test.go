package netemu

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

func requireNamespaces(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// Two nodes reach each other over the bridge, the host does not reach
// them, and Close leaves no namespace of ours behind.
func TestNetworkConnectsNodesAndLeavesNothing(t *testing.T) {
	requireNamespaces(t)
	testenv.RequireTool(t, "curl", "curl")
	testenv.RequireTool(t, "python3", "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	a, err := n.AddNode(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.AddNode(ctx, 2, 8_000_000)
	if err != nil {
		t.Fatal(err)
	}
	// A real TCP exchange across the bridge: an HTTP server in b, curl in a.
	srv := b.Command(ctx, "python3", "-m", "http.server", "--bind", b.IP, "8080", "--directory", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopServer := func() { _ = srv.Cancel(); _ = srv.Wait() }
	defer func() {
		if srv.ProcessState == nil {
			stopServer()
		}
	}()
	if err := a.Exec(ctx, "curl", "-sf", "--retry", "20", "--retry-connrefused", "--retry-delay", "1", "-o", "/dev/null", "http://"+b.IP+":8080/"); err != nil {
		t.Fatalf("a cannot reach b: %v", err)
	}
	out, err := b.Output(ctx, "tc", "qdisc", "show", "dev", "eth0")
	if err != nil || !contains(out, "tbf") {
		t.Fatalf("b's uplink has no tbf qdisc: %s %v", out, err)
	}
	if names, _ := Leftovers(ctx); len(names) != 3 {
		t.Fatalf("namespaces of the run: %v, want hub + 2", names)
	}
	stopServer()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if names, err := Leftovers(ctx); err != nil || len(names) != 0 {
		t.Fatalf("after Close: %v %v, want none", names, err)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
