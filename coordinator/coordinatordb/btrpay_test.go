package coordinatordb

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// A credit is once per (chain, segment, worker) and atomic with its
// agreement; settling moves it into the ledger once; an exclusion forfeits
// what is unsettled and the owner sees it with the exclusion's id; live
// minutes add up and survive a reopen.
func TestWorkCreditsAndMinutes(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		owner, err := db.CreateAccount(ctx, "workowner", "correct horse battery", t0)
		if err != nil {
			t.Fatal(err)
		}
		other, err := db.CreateAccount(ctx, "someoneelse", "correct horse battery", t0)
		if err != nil {
			t.Fatal(err)
		}
		ch := LiveChannel{ID: "ch_0123456789abcdef", Name: "news", Owner: owner.ID, KeyHash: [32]byte{1}, SegmentMS: 1000, State: wire.ChannelIdle}
		if err := db.CreateLiveChannel(ctx, ch, t0); err != nil {
			t.Fatal(err)
		}
		chain := videoID(7)
		if err := db.PutLiveChain(ctx, LiveChainRecord{Chain: chain, Channel: ch.ID, Origin: newParty(1).id, Genesis: []byte("g"), Key: make([]byte, 16)}, t0); err != nil {
			t.Fatal(err)
		}
		w1, w2, w3 := newParty(2).id, newParty(3).id, newParty(4).id
		for _, w := range []wire.NodeID{w1, w2} {
			if err := db.BindWorker(ctx, owner.ID, w, t0); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.BindWorker(ctx, owner.ID, w1, t0); err != nil {
			t.Fatalf("binding again: %v", err)
		}
		if err := db.BindWorker(ctx, other.ID, w1, t0); !errors.Is(err, ErrWorkerTaken) {
			t.Fatalf("another account binding w1: %v", err)
		}
		credit := func(seg uint64, ev string) (WorkCreditResult, error) {
			return db.CreditWork(ctx, WorkCredit{Chain: chain, Segment: seg, Evidence: ev, Statement: []byte(ev), Workers: []wire.NodeID{w1, w2, w3}, Points: 5}, t0)
		}
		res, err := credit(1, "ev1")
		if err != nil || len(res.Credited) != 2 || !slices.Equal(res.Unbound, []wire.NodeID{w3}) {
			t.Fatalf("credit: %+v %v", res, err)
		}
		if res, err := credit(1, "ev1"); err != nil || len(res.Credited) != 0 || len(res.Already) != 2 {
			t.Fatalf("replayed credit: %+v %v", res, err)
		}
		if _, err := credit(1, "ev-other"); err == nil {
			t.Fatal("a second agreement for a paid segment was taken")
		}
		if _, err := credit(2, "ev2"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "btr_work_credits"); n != 4 {
			t.Fatalf("%d credits, want 4", n)
		}
		// w2 is excluded before anything settles: its 10 points go.
		if pts, err := db.ForfeitWork(ctx, w2, "xid", "commission", t0); err != nil || pts != 10 {
			t.Fatalf("forfeit: %d %v", pts, err)
		}
		if pts, err := db.ForfeitWork(ctx, w2, "xid", "commission", t0); err != nil || pts != 0 {
			t.Fatalf("forfeit again: %d %v", pts, err)
		}
		if pts, err := db.SettleWork(ctx, t0, t0.Add(time.Minute)); err != nil || pts != 10 {
			t.Fatalf("settle: %d %v", pts, err)
		}
		if pts, err := db.SettleWork(ctx, t0, t0.Add(time.Minute)); err != nil || pts != 0 {
			t.Fatalf("settle again: %d %v", pts, err)
		}
		if bal, _ := db.Balance(ctx, owner.ID); bal != 10 {
			t.Fatalf("balance %d, want 10 (w1's two segments)", bal)
		}
		mustCheckLedger(t, db)
		if pts, err := db.ForfeitWork(ctx, w1, "late", "omission", t0); err != nil || pts != 0 {
			t.Fatalf("settled points forfeited: %d %v", pts, err)
		}
		earn, forfeits, err := db.AccountWork(ctx, owner.ID)
		if err != nil || len(earn) != 2 || earn[0].Worker > earn[1].Worker {
			t.Fatalf("earnings %+v %v", earn, err)
		}
		for _, e := range earn {
			want := WorkerEarning{Worker: w1, Settled: 10, SettledSegs: 2}
			if e.Worker == w2 {
				want = WorkerEarning{Worker: w2, Forfeited: 10}
			}
			if e != want {
				t.Errorf("earning %+v, want %+v", e, want)
			}
		}
		if len(forfeits) != 1 || forfeits[0] != (WorkForfeit{Worker: w2, Chain: chain, Kind: "commission", Exclusion: "xid", Points: 10, Segments: 2}) {
			t.Fatalf("forfeits %+v", forfeits)
		}
		if st, err := db.WorkAgreement(ctx, chain, 1); err != nil || string(st) != "ev1" {
			t.Fatalf("agreement %q %v", st, err)
		}

		viewer := newParty(5).id
		for _, m := range []LiveMinutes{{WatchedMS: 2000, Segments: 2, NextSegment: 2}, {WatchedMS: 1000, Segments: 1, NextSegment: 3}} {
			m.Chain, m.Viewer, m.AccountID = chain, viewer, other.ID
			if err := db.AddLiveMinutes(ctx, m, t0); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		db = openDB(t, be.dsn, testConfig())
		all, err := db.AllLiveMinutes(ctx)
		if err != nil || len(all) != 1 || all[0] != (LiveMinutes{Chain: chain, Viewer: viewer, AccountID: other.ID, WatchedMS: 3000, Segments: 3, NextSegment: 3}) {
			t.Fatalf("minutes after reopen: %+v %v", all, err)
		}
	})
}
