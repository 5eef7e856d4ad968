package coordinatordb

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var hostile = []string{
	"'; DROP TABLE accounts; --",
	`" OR 1=1 --`,
	"Robert'); DELETE FROM ledger_entries; --",
	"\x00nul byte",
	"ünïcödé ☃ \u202e",
	"?", "$1", "%s%n",
}

func TestMigrationsIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		// Concurrent first starts migrate once.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				db, err := OpenConfig(ctx, be.dsn, testConfig())
				if err != nil {
					t.Error(err)
					return
				}
				db.Close()
			})
		}
		wg.Wait()
		for range 3 {
			db, err := OpenConfig(ctx, be.dsn, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			// Every embedded migration applied once (counted from the
			// files, so a new migration needs no edit here).
			ms, err := db.migrations()
			if err != nil {
				t.Fatal(err)
			}
			last := ms[len(ms)-1].version
			v, err := db.SchemaVersion(ctx)
			if err != nil || v != last || last < 10 {
				t.Fatalf("schema version %d, %v; want %d (at least 10)", v, err, last)
			}
			if n := count(t, db, "schema_migrations"); n != int64(len(ms)) {
				t.Fatalf("%d migration rows, want %d", n, len(ms))
			}
			if n := count(t, db, "accounts"); n != 2 {
				t.Fatalf("%d accounts after reopen, want the 2 system accounts", n)
			}
			db.Close()
		}
	})
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "/tmp/x.db"} {
		if _, err := Open(context.Background(), dsn); err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

func TestUsernameValidation(t *testing.T) {
	for _, ok := range []string{"bob", "a_b.c-d", "x12", strings.Repeat("a", 32)} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range append([]string{"", "ab", strings.Repeat("a", 33), "Bob", "_bob", "bo b", "@mint", "bob\n"}, hostile...) {
		var ue *UsernameError
		if err := ValidateUsername(bad); !errors.As(err, &ue) {
			t.Errorf("%q accepted (err %v)", bad, err)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	p := PasswordParams{Time: 1, MemKiB: 1024, Threads: 1}
	h := HashPassword("correct horse", p)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "correct horsE") || CheckPassword(h, "") {
		t.Fatal("CheckPassword gives wrong answers")
	}
	if h2 := HashPassword("correct horse", p); h2 == h {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	for _, corrupt := range []string{"", "$argon2id$", "$argon2i$v=19$m=1024,t=1,p=1$AAAA$AAAA", strings.Replace(h, "m=1024", "m=999999999", 1)} {
		if CheckPassword(corrupt, "correct horse") {
			t.Errorf("corrupt hash %q accepted", corrupt)
		}
	}
	if d := (PasswordParams{}).withDefaults(); d.Time != 3 || d.MemKiB != 64*1024 || d.Threads != 2 {
		t.Fatalf("default params %+v", d)
	}
}

func TestAccountsAndSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		a, err := db.CreateAccount(ctx, "alice", "alice password", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateAccount(ctx, "alice", "other password", t0); !errors.Is(err, ErrUsernameTaken) {
			t.Fatalf("duplicate sign-up: %v", err)
		}
		var pe *PasswordError
		if _, err := db.CreateAccount(ctx, "bob", "short", t0); !errors.As(err, &pe) {
			t.Fatalf("short password: %v", err)
		}
		if _, err := db.Login(ctx, "alice", "wrong password", t0); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if _, err := db.Login(ctx, "nobody", "alice password", t0); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("unknown user: %v", err)
		}
		if _, err := db.Login(ctx, "@mint", "!", t0); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("system account login: %v", err)
		}
		s, err := db.Login(ctx, "alice", "alice password", t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Token) != 64 || s.AccountID != a.ID {
			t.Fatalf("session %+v", s)
		}
		var stored string
		if err := db.sql.QueryRow("SELECT token_sha256 FROM sessions").Scan(&stored); err != nil || stored == s.Token || stored != tokenHash(s.Token) {
			t.Fatalf("sessions table holds %q (err %v); want only the SHA-256 of the token", stored, err)
		}
		got, err := db.SessionAccount(ctx, s.Token, t0.Add(time.Hour))
		if err != nil || got.ID != a.ID || got.Username != "alice" || got.Role != RoleUser {
			t.Fatalf("session account %+v, %v", got, err)
		}
		if _, err := db.SessionAccount(ctx, s.Token, s.ExpiresAt); !errors.Is(err, ErrSessionInvalid) {
			t.Fatalf("expired session: %v", err)
		}
		if err := db.SetRole(ctx, a.ID, RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.SessionAccount(ctx, s.Token, t0); got.Role != RoleAdmin {
			t.Fatalf("role %q after SetRole(admin)", got.Role)
		}
		if err := db.SetRole(ctx, db.MintAccountID(), RoleAdmin); !errors.Is(err, ErrNotFound) {
			t.Fatalf("promoting the mint: %v", err)
		}
		s2, _ := db.Login(ctx, "alice", "alice password", t0.Add(time.Hour))
		if n, err := db.PruneExpired(ctx, s.ExpiresAt); err != nil || n != 1 {
			t.Fatalf("prune at the first expiry removed %d rows (%v); want the expired session (the login cleared the failure)", n, err)
		}
		if _, err := db.SessionAccount(ctx, s2.Token, s.ExpiresAt); err != nil {
			t.Fatalf("prune removed a live session: %v", err)
		}
		if err := db.Logout(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SessionAccount(ctx, s.Token, t0); !errors.Is(err, ErrSessionInvalid) {
			t.Fatalf("session after logout: %v", err)
		}
	})
}

func TestHostileStringsAreInert(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		a, err := db.CreateAccount(ctx, "dave", "dave password", t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hostile {
			if _, err := db.CreateAccount(ctx, h, "password123", t0); err == nil {
				t.Errorf("account %q created", h)
			}
			if _, err := db.Login(ctx, h, h, t0); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("login as %q: %v", h, err)
			}
			if _, err := db.SessionAccount(ctx, h, t0); !errors.Is(err, ErrSessionInvalid) {
				t.Errorf("session %q: %v", h, err)
			}
			err := db.Grant(ctx, a.ID, 1, h, t0)
			if strings.ContainsRune(h, 0) {
				if err == nil {
					t.Errorf("memo with NUL accepted")
				}
				continue
			}
			if err != nil {
				t.Fatalf("grant with memo %q: %v", h, err)
			}
		}
		// A hostile password is just a password.
		pw := "'; DROP TABLE accounts; --"
		if _, err := db.CreateAccount(ctx, "eve", pw, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Login(ctx, "eve", pw, t0); err != nil {
			t.Fatal(err)
		}
		entries, err := db.Entries(ctx, a.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		memos := map[string]bool{}
		for _, e := range entries {
			memos[e.Memo] = true
		}
		for _, h := range hostile {
			if !memos[h] && !strings.ContainsRune(h, 0) {
				t.Errorf("memo %q not stored verbatim", h)
			}
		}
		if n := count(t, db, "accounts"); n != 4 {
			t.Fatalf("%d accounts, want 4", n)
		}
		mustCheckLedger(t, db)
	})
}

func TestEdgeBinding(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		a, _ := db.CreateAccount(ctx, "frank", "frank password", t0)
		b, _ := db.CreateAccount(ctx, "grace", "grace password", t0)
		e1, e2 := newParty(1), newParty(2)
		tok, err := db.CreateAPIToken(ctx, a.ID, e1.id, t0)
		if err != nil {
			t.Fatal(err)
		}
		// Rebinding issues a new token and revokes the old one.
		old := tok
		if tok, err = db.CreateAPIToken(ctx, a.ID, e1.id, t0); err != nil {
			t.Fatalf("second token for the same edge: %v", err)
		}
		if _, _, err := db.APITokenEdge(ctx, old); !errors.Is(err, ErrAPITokenInvalid) {
			t.Fatalf("the token before rebinding still works: %v", err)
		}
		var be1 *EdgeBindingError
		if _, err := db.CreateAPIToken(ctx, a.ID, e2.id, t0); !errors.As(err, &be1) || be1.Bound != e1.id || !strings.Contains(err.Error(), "one edge") {
			t.Fatalf("second node on one account: %v", err)
		}
		if _, err := db.CreateAPIToken(ctx, b.ID, e1.id, t0); !errors.As(err, &be1) || !be1.OtherUser {
			t.Fatalf("another account's node: %v", err)
		}
		if _, err := db.CreateAPIToken(ctx, b.ID, "not-hex", t0); err == nil {
			t.Fatal("malformed node id bound")
		}
		acct, node, err := db.APITokenEdge(ctx, tok)
		if err != nil || acct.ID != a.ID || node != e1.id {
			t.Fatalf("APITokenEdge: %+v %s %v", acct, node, err)
		}
		if got, err := db.EdgeAccount(ctx, e1.id); err != nil || got.ID != a.ID {
			t.Fatalf("EdgeAccount: %+v %v", got, err)
		}
		if err := db.RevokeAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.APITokenEdge(ctx, tok); !errors.Is(err, ErrAPITokenInvalid) {
			t.Fatalf("revoked token: %v", err)
		}
		v := newParty(9)
		if err := db.BindViewerKey(ctx, a.ID, v.id, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.BindViewerKey(ctx, a.ID, v.id, t0); err != nil {
			t.Fatalf("rebinding to the same account: %v", err)
		}
		if err := db.BindViewerKey(ctx, b.ID, v.id, t0); err == nil {
			t.Fatal("viewer key stolen by another account")
		}
	})
}
