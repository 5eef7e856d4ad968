package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// swarmcast live against a real coordinator: create prints the id and the
// key, list shows the channel, end ends it; each error case says what to do
// and changes nothing.
func TestLiveCommand(t *testing.T) {
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
	// Every login of the test comes from 127.0.0.1: a deep login bucket.
	c, err := coordinator.New(coordinator.Config{Store: store, Log: slog.New(slog.DiscardHandler), Accounting: accounting.Config{AuditInterval: -1, LoginThrottle: accounting.LoginThrottle{ClientBurst: 1 << 20}}})
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

	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"live", "create", "news"}, []string{"need --coordinator"}},
		{[]string{"live", "create", "news", "--coordinator", srv.URL}, []string{"need --user and --password"}},
		{append([]string{"live", "create"}, admin...), []string{"the channel's name"}},
		{append([]string{"live", "create", "news"}, bob...), []string{"may not broadcast", wire.PathLiveBroadcasters}},
		{append([]string{"live", "create", "bad/name"}, admin...), []string{"channel name", "letters, digits"}},
		{[]string{"live", "create", "news", "--coordinator", srv.URL, "--user", "root", "--password", "wrong-password-1"}, []string{"check --password"}},
		{append([]string{"live", "end", "nonsense"}, admin...), []string{"ch_"}},
		{append([]string{"live", "end", "ch_0000000000000000"}, admin...), []string{"no channel", "swarmcast live list"}},
		{append([]string{"live", "allow", "nobody"}, admin...), []string{"no account"}},
		{append([]string{"live", "allow", "bob"}, bob...), []string{"for admins"}},
		{append([]string{"live", "create", "fast", "--part-ms", "900"}, admin...), []string{"part_ms 900", "half the 1000 ms segment"}},
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
	if out, err := run(t, append([]string{"live", "list"}, "--coordinator", srv.URL)...); err != nil || !strings.Contains(out, "no channels yet") {
		t.Fatalf("list after the refusals: %v\n%s", err, out)
	}

	if out, err := run(t, append([]string{"live", "allow", "bob"}, admin...)...); err != nil || !strings.Contains(out, "bob may create channels") {
		t.Fatalf("allow: %v\n%s", err, out)
	}
	out, err := run(t, append([]string{"live", "create", "news"}, bob...)...)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`channel\s+(ch_[0-9a-f]{16}) \(news\)`).FindStringSubmatch(out)
	if m == nil || !regexp.MustCompile(`stream key\s+sk_[0-9a-f]{48}`).MatchString(out) || !strings.Contains(out, "no origin is registered") {
		t.Fatalf("create printed:\n%s", out)
	}
	id := m[1]
	oldKey := regexp.MustCompile(`stream key\s+(sk_[0-9a-f]{48})`).FindStringSubmatch(out)[1]
	out, err = run(t, "live", "list", "--coordinator", srv.URL)
	if err != nil || !regexp.MustCompile(id+`\s+news\s+idle\s+-\s+0\s+-`).MatchString(out) {
		t.Fatalf("list: %v\n%s", err, out)
	}

	// Rotation: only the owner or an admin; the old key is refused from
	// then on, the new one (shown once) authorizes.
	if _, err := wire.NewCoordinatorClient(srv.URL, nil).Signup(ctx, wire.Credentials{Username: "carol", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	carol := []string{"--coordinator", srv.URL, "--user", "carol", "--password", testPassword}
	if _, err := run(t, append([]string{"live", "rotate-key", id}, carol...)...); err == nil || !strings.Contains(err.Error(), "neither owns the channel nor is an admin") {
		t.Fatalf("rotate-key by another account: %v", err)
	}
	if _, err := run(t, append([]string{"live", "rotate-key", "nonsense"}, bob...)...); err == nil || !strings.Contains(err.Error(), "ch_") {
		t.Fatalf("rotate-key of a malformed id: %v", err)
	}
	if _, err := c.Live().AuthorizeIngest(wire.NodeID(strings.Repeat("ab", 32)), oldKey); err != nil {
		t.Fatalf("the refused rotations changed the key: %v", err)
	}
	out, err = run(t, append([]string{"live", "rotate-key", id}, bob...)...)
	newKey := regexp.MustCompile(`stream key\s+(sk_[0-9a-f]{48})`).FindStringSubmatch(out)
	if err != nil || newKey == nil || newKey[1] == oldKey || !strings.Contains(out, "old key is refused") {
		t.Fatalf("rotate-key: %v\n%s", err, out)
	}
	if _, err := c.Live().AuthorizeIngest(wire.NodeID(strings.Repeat("ab", 32)), oldKey); err == nil || !strings.Contains(err.Error(), "no channel has this stream key") {
		t.Fatalf("the old key after the rotation: %v", err)
	}
	if auth, err := c.Live().AuthorizeIngest(wire.NodeID(strings.Repeat("ab", 32)), newKey[1]); err != nil || string(auth.Channel.ID) != id {
		t.Fatalf("the new key: %+v %v", auth, err)
	}
	// A low-latency channel: 250 ms parts by default.
	out, err = run(t, append([]string{"live", "create", "fast", "--low-latency"}, bob...)...)
	if err != nil || !strings.Contains(out, "low latency parts of 250 ms") {
		t.Fatalf("create --low-latency: %v\n%s", err, out)
	}
	if out, err := run(t, append([]string{"live", "end", id}, bob...)...); err != nil || !strings.Contains(out, "ended") {
		t.Fatalf("end: %v\n%s", err, out)
	}
	if info, err := c.Live().Channel(wire.ChannelID(id)); err != nil || info.State != wire.ChannelEnded {
		t.Fatalf("after end: %+v %v", info, err)
	}
}
