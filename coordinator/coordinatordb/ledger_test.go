package coordinatordb

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestUnlock(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		a, _ := db.CreateAccount(ctx, "henry", "henry password", t0)
		paid, free := videoID(1), videoID(2)
		if err := db.PutVideo(ctx, VideoTerms{Video: paid, Price: 30, PlaybackBudgetBytes: 1 << 20}, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.PutVideo(ctx, VideoTerms{Video: free, Price: 0, PlaybackBudgetBytes: 1 << 20}, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.Grant(ctx, a.ID, 20, "welcome", t0); err != nil {
			t.Fatal(err)
		}
		entries := count(t, db, "ledger_entries")
		_, err := db.Unlock(ctx, a.ID, paid, t0)
		var ie *InsufficientPointsError
		if !errors.As(err, &ie) || err.Error() != "insufficient points: have 20, need 30" {
			t.Fatalf("unlock with 20 of 30 points: %v", err)
		}
		if n := count(t, db, "ledger_entries"); n != entries {
			t.Fatalf("failed unlock wrote %d ledger entries", n-entries)
		}
		if n := count(t, db, "entitlements"); n != 0 {
			t.Fatal("failed unlock left an entitlement")
		}
		if ok, _ := db.Entitled(ctx, a.ID, paid); ok {
			t.Fatal("entitled without paying")
		}
		if ok, err := db.Entitled(ctx, a.ID, free); !ok || err != nil {
			t.Fatalf("free video not watchable: %v", err)
		}
		db.Grant(ctx, a.ID, 15, "top-up", t0)
		r, err := db.Unlock(ctx, a.ID, paid, t0)
		if err != nil || r.Charged != 30 || r.AlreadyEntitled {
			t.Fatalf("unlock: %+v %v", r, err)
		}
		r, err = db.Unlock(ctx, a.ID, paid, t0)
		if err != nil || r.Charged != 0 || !r.AlreadyEntitled {
			t.Fatalf("re-watch: %+v %v", r, err)
		}
		if bal, _ := db.Balance(ctx, a.ID); bal != 5 {
			t.Fatalf("balance %d, want 5", bal)
		}
		if bal, _ := db.Balance(ctx, db.RevenueAccountID()); bal != 30 {
			t.Fatalf("revenue %d, want 30", bal)
		}
		if r, err := db.Unlock(ctx, a.ID, free, t0); err != nil || r.Charged != 0 {
			t.Fatalf("free unlock: %+v %v", r, err)
		}
		if _, err := db.Unlock(ctx, a.ID, videoID(3), t0); !errors.Is(err, ErrUnknownVideo) {
			t.Fatalf("unknown video: %v", err)
		}
		mustCheckLedger(t, db)
	})
}

func TestLedgerIsAppendOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		a, _ := db.CreateAccount(ctx, "ivan", "ivan password", t0)
		db.Grant(ctx, a.ID, 5, "x", t0)
		for _, stmt := range []string{
			"UPDATE ledger_entries SET amount = amount + 1",
			"DELETE FROM ledger_entries",
			"UPDATE ledger_transactions SET memo = 'y'",
			"DELETE FROM ledger_transactions",
		} {
			if _, err := db.sql.Exec(stmt); err == nil {
				t.Errorf("%s succeeded", stmt)
			}
		}
		mustCheckLedger(t, db)
	})
}

func TestCheckLedgerDetectsDrift(t *testing.T) {
	db := openDB(t, "sqlite:"+t.TempDir()+"/x.db", testConfig())
	ctx := context.Background()
	a, _ := db.CreateAccount(ctx, "judy", "judy password", t0)
	db.Grant(ctx, a.ID, 5, "x", t0)
	db.sql.Exec("UPDATE balances SET points = 6 WHERE account_id = ?", a.ID)
	if err := db.CheckLedger(ctx); err == nil {
		t.Fatal("a cached balance that disagrees with the entries went unnoticed")
	}
}

// TestConcurrentUnlocksNeverOverspend races two Store instances unlocking
// videos for one account that can afford only two of them.
func TestConcurrentUnlocksNeverOverspend(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db1 := openDB(t, be.dsn, testConfig())
		db2 := openDB(t, be.dsn, testConfig())
		a, _ := db1.CreateAccount(ctx, "kate", "kate password", t0)
		db1.Grant(ctx, a.ID, 25, "", t0)
		for i := range 6 {
			db1.PutVideo(ctx, VideoTerms{Video: videoID(i), Price: 10, PlaybackBudgetBytes: 1}, t0)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		charged := 0
		for w, db := range []*DB{db1, db2, db1, db2} {
			wg.Go(func() {
				for i := range 6 {
					r, err := db.Unlock(ctx, a.ID, videoID((i+w)%6), t0)
					var ie *InsufficientPointsError
					if err != nil && !errors.As(err, &ie) {
						t.Error(err)
						return
					}
					if err == nil && r.Charged > 0 {
						mu.Lock()
						charged++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if bal, _ := db2.Balance(ctx, a.ID); charged != 2 || bal != 5 {
			t.Fatalf("%d unlocks charged, balance %d; want 2 and 5", charged, bal)
		}
		if n := count(t, db1, "entitlements"); n != 2 {
			t.Fatalf("%d entitlements, want 2", n)
		}
		mustCheckLedger(t, db1)
	})
}
