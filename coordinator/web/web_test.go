package web

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// FuzzLocalPath: whatever a login form's next field holds, the redirect
// stays on this site (a path, not //host or a scheme).
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"", "/", "/me", "/videos/ab?x=1", "//evil.example", "/\\evil", "https://evil.example/", "/%2F%2Fevil", "javascript:alert(1)", "/a\r\nLocation: x", "/\t/evil.example", "/ /evil", "/\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := localPath(next)
		if got != next && got != wire.PageDashboard {
			t.Fatalf("localPath(%q) = %q: neither the input nor the dashboard", next, got)
		}
		// What a browser makes of it: tabs and newlines dropped, backslashes read as slashes.
		seen := strings.ReplaceAll(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(got), "\\", "/")
		if !strings.HasPrefix(seen, "/") || strings.HasPrefix(seen, "//") {
			t.Fatalf("localPath(%q) = %q leaves the site (a browser reads %q)", next, got, seen)
		}
	})
}

func TestBalanceHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	entries := []wire.LedgerEntry{ // newest first
		{Amount: -40, At: t0.Add(2 * time.Second)},
		{Amount: 100, At: t0.Add(time.Second)},
	}
	got := balanceHistory(60, entries, t0.Add(3*time.Second))
	if want := `[[1001,1002,1003],[100,60,60]]`; got != want {
		t.Fatalf("balanceHistory = %s, want %s", got, want)
	}
	if got := balanceHistory(0, nil, t0); got != `[[1000],[0]]` {
		t.Fatalf("empty history = %s", got)
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{formatPoints(0), "0"}, {formatPoints(999), "999"}, {formatPoints(1234567), "1\u202f234\u202f567"}, {formatPoints(-1000), "−1\u202f000"},
		{formatBytes(512), "512 B"}, {formatBytes(1536), "1.5 KiB"}, {formatBytes(3 << 30), "3.0 GiB"},
		{formatDuration(30_000), "0:30"}, {formatDuration(3_725_000), "1:02:05"},
		{formatRate(float64(2048)), "2.0 KiB/s"}, {formatRate(int64(10)), "10 B/s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestLedgerPaging(t *testing.T) {
	entries := make([]wire.LedgerEntry, 45)
	for i := range entries {
		entries[i].TxID = int64(i)
	}
	p1, p3, p4 := ledgerPage(entries, 1), ledgerPage(entries, 3), ledgerPage(entries, 4)
	if len(p1.Entries) != ledgerPageSize || p1.NextPage != 2 || p1.PrevPage != 0 {
		t.Errorf("page 1: %d entries, next %d, prev %d", len(p1.Entries), p1.NextPage, p1.PrevPage)
	}
	if len(p3.Entries) != 5 || p3.Entries[0].TxID != 40 || p3.NextPage != 0 || p3.PrevPage != 2 {
		t.Errorf("page 3: %d entries from %d, next %d, prev %d", len(p3.Entries), p3.Entries[0].TxID, p3.NextPage, p3.PrevPage)
	}
	if len(p4.Entries) != 0 || p4.NextPage != 0 {
		t.Errorf("page 4 past the end: %d entries, next %d", len(p4.Entries), p4.NextPage)
	}
}

// TestEveryTemplateParses: each page template renders its layout with an
// empty view (no field the layout needs is missing).
func TestEveryTemplateParses(t *testing.T) {
	tp, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"home", "signup", "login", "catalogue", "video", "dashboard", "ledger", "admin", "error"} {
		if tp.pages[name] == nil {
			t.Errorf("no page template %q", name)
		}
	}
}
