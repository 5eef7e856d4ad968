package coordinatordb

import (
	"context"
	"strings"
	"testing"
)

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		user, pass, phrase string // phrase "" means accepted
	}{
		{"alice", "four unrelated words", ""},
		{"alice", "correct-horse-battery", ""},
		{"alice", "short", "want 10"},
		{"alice", strings.Repeat("x", maxPasswordLen+1), "want 10"},
		{"alice", "password123", "common"},
		{"alice", "PASSWORD1234", "common"},
		{"alice", "qwertyuiop", "common"},
		{"alice", "1234567890", "common"},
		{"alice", "Sunshine2026!!", "common"},
		{"alice", "change-me-please", "common"},
		{"alice", "alice-rules-ok", "username"},
		{"alice", "xxALICExxxxx", "username"},
		{"bob.the-builder", "bob.the-builder", "username"},
	} {
		err := ValidatePassword(tc.user, tc.pass)
		switch {
		case tc.phrase == "" && err != nil:
			t.Errorf("%q for %s refused: %v", tc.pass, tc.user, err)
		case tc.phrase != "" && (err == nil || !strings.Contains(err.Error(), tc.phrase)):
			t.Errorf("%.20q for %s: %v, want a refusal mentioning %q", tc.pass, tc.user, err, tc.phrase)
		}
	}
	if n := len(commonPasswords()); n < 400 {
		t.Fatalf("common-password list has %d entries", n)
	}
}

// TestDummyHashHasTheStoreCost: an unknown username costs Login one
// argon2id evaluation at the store's configured cost, exactly like a known
// one (before, the dummy hash used an eighth of the memory and a third of
// the passes, so unknown names answered several times faster).
func TestDummyHashHasTheStoreCost(t *testing.T) {
	for _, p := range []PasswordParams{{}, {Time: 1, MemKiB: 1024, Threads: 1}} {
		db := openDB(t, "sqlite:"+t.TempDir()+"/d.db", Config{Password: p})
		a, err := db.CreateAccount(context.Background(), "timing", "some long password", t0)
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := db.sql.QueryRow("SELECT password_hash FROM accounts WHERE id = ?", a.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		params := func(h string) string { return strings.Join(strings.Split(h, "$")[1:4], "$") }
		if got, want := params(db.dummyHash()), params(stored); got != want {
			t.Fatalf("dummy hash cost %s, real accounts' %s", got, want)
		}
	}
}
