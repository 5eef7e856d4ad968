package coordinatordb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// settleFixture is an edge run by an account, a viewer bound to another
// account, one paid and one free video.
type settleFixture struct {
	db           *DB
	edge, viewer party
	edgeAcct     Account
	viewerAcct   Account
	paid, free   content.VideoID
	expires      time.Time
}

func newSettleFixture(t testing.TB, db *DB) *settleFixture {
	ctx := context.Background()
	f := &settleFixture{db: db, edge: newParty(1), viewer: newParty(2), expires: t0.Add(time.Hour)}
	var err error
	if f.edgeAcct, err = db.CreateAccount(ctx, "edgeop", "edge password", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateAPIToken(ctx, f.edgeAcct.ID, f.edge.id, t0); err != nil {
		t.Fatal(err)
	}
	passAudit(t, db, f.edge.id)
	f.viewerAcct, _ = db.CreateAccount(ctx, "watcher", "viewer password", t0)
	db.BindViewerKey(ctx, f.viewerAcct.ID, f.viewer.id, t0)
	db.PutVideo(ctx, VideoTerms{Video: videoID(1), Price: 10, PlaybackBudgetBytes: 10_000_000}, t0)
	db.PutVideo(ctx, VideoTerms{Video: videoID(2), Price: 0, PlaybackBudgetBytes: 10_000_000}, t0)
	f.paid, f.free = videoID(1), videoID(2)
	return f
}

func TestSettleAcceptsAndCredits(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		f := newSettleFixture(t, db)
		b := &wire.SettlementBatch{ID: "b1", Edge: f.edge.id, Pairs: []wire.SettlementPair{
			pair(1, f.edge, f.viewer, videoID(2), 5_000_000, 2_000_000, f.expires),
			pair(2, f.edge, f.viewer, videoID(2), 5_000_000, 1_500_000, f.expires),
		}}
		r, err := db.Settle(ctx, b, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if r.Accepted != 2 || r.AcceptedBytes != 3_500_000 || r.CreditedPoints != 35 || len(r.Rejected) != 0 || r.Replayed {
			t.Fatalf("result %+v", r)
		}
		if bal, _ := db.Balance(ctx, f.edgeAcct.ID); bal != 35 {
			t.Fatalf("edge balance %d, want 35", bal)
		}
		again, err := db.Settle(ctx, b, t0.Add(2*time.Minute))
		if err != nil || !again.Replayed || again.CreditedPoints != 35 || again.Accepted != 2 {
			t.Fatalf("replay: %+v %v", again, err)
		}
		if bal, _ := db.Balance(ctx, f.edgeAcct.ID); bal != 35 {
			t.Fatalf("edge balance %d after replay, want 35", bal)
		}
		flows, err := db.FlowsToViewer(ctx, f.viewer.id, t0, t0.Add(time.Hour))
		if err != nil || len(flows) != 1 || flows[0].Edge != f.edge.id || flows[0].Bytes != 3_500_000 || flows[0].Video != f.free {
			t.Fatalf("flows to viewer: %+v %v", flows, err)
		}
		flows, _ = db.FlowsFromEdge(ctx, f.edge.id, t0, t0.Add(time.Hour))
		if len(flows) != 1 || flows[0].Viewer != f.viewer.id {
			t.Fatalf("flows from edge: %+v", flows)
		}
		if flows, _ := db.FlowsFromEdge(ctx, f.edge.id, t0.Add(2*time.Hour), t0.Add(3*time.Hour)); len(flows) != 0 {
			t.Fatalf("flows outside the window: %+v", flows)
		}
		if u, _ := db.AccountUsage(ctx, f.viewerAcct.ID, f.free); u != 3_500_000 {
			t.Fatalf("viewer usage %d", u)
		}
		mustCheckLedger(t, db)
	})
}

func TestSettleRejections(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		f := newSettleFixture(t, db)
		other := newParty(3)
		stranger := newParty(4) // viewer key bound to no account
		own := newParty(5)      // viewer key of the edge's own account
		if err := db.BindViewerKey(ctx, f.edgeAcct.ID, own.id, t0); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Minute)

		badLimit := pair(10, f.edge, f.viewer, videoID(2), 100, 50, f.expires)
		badLimit.Limit.MaxBytes = 1 << 40 // tampered after signing
		badOrder := pair(11, f.edge, f.viewer, videoID(2), 100, 50, f.expires)
		badOrder.Order.Amount = 99 // tampered after signing
		wrongSerial := pair(12, f.edge, f.viewer, videoID(2), 100, 50, f.expires)
		wrongSerial.Order = pair(13, f.edge, f.viewer, videoID(2), 100, 50, f.expires).Order
		cases := []struct {
			p    wire.SettlementPair
			want Reason
		}{
			{pair(1, f.edge, f.viewer, videoID(2), 100, 60, f.expires), Accepted},
			{badLimit, ReasonBadLimitSignature},
			{badOrder, ReasonBadOrderSignature},
			{wrongSerial, ReasonBadOrderSignature},
			{pair(14, other, f.viewer, videoID(2), 100, 50, f.expires), ReasonWrongEdge},
			{pair(15, f.edge, f.viewer, videoID(2), 100, 101, f.expires), ReasonAmountOverLimit},
			{pair(16, f.edge, f.viewer, videoID(2), 100, 0, f.expires), ReasonZeroAmount},
			{pair(17, f.edge, f.viewer, videoID(2), 100, 50, now.Add(-time.Hour-time.Millisecond)), ReasonLimitExpired},
			{pair(18, f.edge, f.viewer, videoID(9), 100, 50, f.expires), ReasonUnknownVideo},
			{pair(19, f.edge, f.viewer, videoID(1), 100, 50, f.expires), ReasonNotEntitled},
			{pair(20, f.edge, stranger, videoID(1), 100, 50, f.expires), ReasonNotEntitled},
			{pair(1, f.edge, f.viewer, videoID(2), 100, 70, f.expires), ReasonSerialReused}, // same serial within the batch
			{pair(21, f.edge, f.viewer, videoID(2), 20_000_000, 10_000_000, f.expires), ReasonBeyondPlayback},
			{pair(22, f.edge, stranger, videoID(2), 100, 40, f.expires), ReasonNotEntitled}, // free video, but no account to budget
			{pair(23, f.edge, own, videoID(2), 100, 40, f.expires), ReasonSelfDealing},
		}
		b := &wire.SettlementBatch{ID: "mixed", Edge: f.edge.id}
		for _, c := range cases {
			b.Pairs = append(b.Pairs, c.p)
		}
		r, err := db.Settle(ctx, b, now)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			if r.Outcomes[i] != c.want {
				t.Errorf("pair %d: %q, want %q", i, r.Outcomes[i], c.want)
			}
		}
		if r.Accepted != 1 || r.AcceptedBytes != 60 || r.CreditedPoints != 0 {
			t.Fatalf("totals %+v", r)
		}
		counts, _ := db.RejectionCounts(ctx)
		if counts[ReasonNotEntitled] != 3 || counts[ReasonSelfDealing] != 1 || counts[ReasonBadOrderSignature] != 2 || counts[ReasonBeyondPlayback] != 1 || counts[ReasonSerialReused] != 1 {
			t.Fatalf("rejection counts %v", counts)
		}
		// Serials are once-only across batches too, and an over-budget
		// serial stays spent.
		r2, err := db.Settle(ctx, &wire.SettlementBatch{ID: "again", Edge: f.edge.id, Pairs: []wire.SettlementPair{cases[0].p, cases[12].p}}, now)
		if err != nil || r2.Rejected[ReasonSerialReused] != 2 {
			t.Fatalf("resubmitted serials: %+v %v", r2, err)
		}
		// After unlocking, the paid video settles.
		db.Grant(ctx, f.viewerAcct.ID, 10, "", now)
		if _, err := db.Unlock(ctx, f.viewerAcct.ID, videoID(1), now); err != nil {
			t.Fatal(err)
		}
		r3, _ := db.Settle(ctx, &wire.SettlementBatch{ID: "paid", Edge: f.edge.id, Pairs: []wire.SettlementPair{
			pair(30, f.edge, f.viewer, videoID(1), 3_000_000, 3_000_000, f.expires)}}, now)
		if r3.Accepted != 1 || r3.CreditedPoints != 30 {
			t.Fatalf("entitled settle %+v", r3)
		}
		mustCheckLedger(t, db)
	})
}

func TestSettleBadInput(t *testing.T) {
	db := openDB(t, "sqlite:"+t.TempDir()+"/x.db", testConfig())
	ctx := context.Background()
	f := newSettleFixture(t, db)
	for _, b := range []*wire.SettlementBatch{
		{ID: "", Edge: f.edge.id},
		{ID: "has space", Edge: f.edge.id},
		{ID: "x", Edge: "nothex"},
		{ID: "x", Edge: f.edge.id, Pairs: make([]wire.SettlementPair, MaxBatchPairs+1)},
	} {
		if _, err := db.Settle(ctx, b, t0); err == nil {
			t.Errorf("batch %q/%q with %d pairs accepted", b.ID, b.Edge, len(b.Pairs))
		}
	}
	unbound := newParty(7)
	_, err := db.Settle(ctx, &wire.SettlementBatch{ID: "u", Edge: unbound.id, Pairs: []wire.SettlementPair{pair(1, unbound, f.viewer, videoID(2), 10, 10, f.expires)}}, t0)
	if !errors.Is(err, ErrEdgeNotBound) {
		t.Fatalf("unbound edge: %v", err)
	}
	if n := count(t, db, "settlement_batches"); n != 0 {
		t.Fatalf("refused batches left %d rows", n)
	}
	// Another edge cannot replay someone else's batch id into their result.
	db.Settle(ctx, &wire.SettlementBatch{ID: "shared", Edge: f.edge.id}, t0)
	other := newParty(8)
	acct, _ := db.CreateAccount(ctx, "otherop", "other password", t0)
	db.BindEdge(ctx, acct.ID, other.id, t0)
	if _, err := db.Settle(ctx, &wire.SettlementBatch{ID: "shared", Edge: other.id}, t0); err == nil {
		t.Fatal("batch id reused by another edge")
	}
}

func TestSettleFrozenWhenDisqualified(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		f := newSettleFixture(t, db)
		if _, err := db.RecordBadShard(ctx, f.edge.id, "shard 3 of video x segment 2", t0); err != nil {
			t.Fatal(err)
		}
		r, err := db.Settle(ctx, &wire.SettlementBatch{ID: "f", Edge: f.edge.id, Pairs: []wire.SettlementPair{
			pair(1, f.edge, f.viewer, videoID(2), 5_000_000, 5_000_000, f.expires)}}, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if r.Accepted != 1 || r.CreditedPoints != 0 || r.FrozenPoints != 50 {
			t.Fatalf("frozen result %+v", r)
		}
		if bal, _ := db.Balance(ctx, f.edgeAcct.ID); bal != 0 {
			t.Fatalf("disqualified edge credited %d", bal)
		}
		batches, err := db.EdgeBatches(ctx, f.edge.id, 10)
		if err != nil || len(batches) != 1 || batches[0].FrozenReason == "" {
			t.Fatalf("owner's view: %+v %v", batches, err)
		}
		t.Logf("frozen reason: %s", batches[0].FrozenReason)
		credited, frozen, _ := db.EdgeEarnings(ctx, f.edge.id)
		if credited != 0 || frozen != 50 {
			t.Fatalf("earnings %d/%d", credited, frozen)
		}
		mustCheckLedger(t, db)
	})
}

// TestConcurrentSettleCountsOnce runs two Store instances (as two
// coordinator processes would) on one database, settling the same batches
// and overlapping serials at once.
func TestConcurrentSettleCountsOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db1 := openDB(t, be.dsn, testConfig())
		db2 := openDB(t, be.dsn, testConfig())
		f := newSettleFixture(t, db1)
		const batches = 20
		var wg sync.WaitGroup
		results := make([][]BatchResult, 2)
		errs := make(chan error, 4*batches)
		for w, db := range []*DB{db1, db2, db1, db2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range batches {
					// Batch i has serials i and i+1: the same batch races on
					// its id, neighbouring batches race on a serial.
					b := &wire.SettlementBatch{ID: fmt.Sprintf("c%d", i), Edge: f.edge.id, Pairs: []wire.SettlementPair{
						pair(uint64(i), f.edge, f.viewer, videoID(2), 1_000_000, 100_000, f.expires),
						pair(uint64(i+1), f.edge, f.viewer, videoID(2), 1_000_000, 100_000, f.expires),
					}}
					r, err := db.Settle(ctx, b, t0.Add(time.Minute))
					if err != nil {
						errs <- err
						return
					}
					if w < 2 {
						results[w] = append(results[w], r)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := count(t, db1, "settlement_batches"); n != batches {
			t.Fatalf("%d batch rows, want %d", n, batches)
		}
		if n := count(t, db1, "settled_serials"); n != batches+1 {
			t.Fatalf("%d serial rows, want %d", n, batches+1)
		}
		var accepted int64
		if err := db1.sql.QueryRow("SELECT SUM(accepted_bytes) FROM settlement_batches").Scan(&accepted); err != nil {
			t.Fatal(err)
		}
		if accepted != (batches+1)*100_000 {
			t.Fatalf("accepted %d bytes, want each serial once: %d", accepted, (batches+1)*100_000)
		}
		bal, _ := db2.Balance(ctx, f.edgeAcct.ID)
		var wantPoints int64
		for i := range batches {
			r, _ := db2.Batch(ctx, fmt.Sprintf("c%d", i))
			wantPoints += PointsFor(r.AcceptedBytes, 10)
		}
		if bal != wantPoints {
			t.Fatalf("edge balance %d, want %d (each batch credited once)", bal, wantPoints)
		}
		credited, _, _ := db2.EdgeEarnings(ctx, f.edge.id)
		if bal != credited {
			t.Fatalf("balance %d != credited %d", bal, credited)
		}
		if u, _ := db2.AccountUsage(ctx, f.viewerAcct.ID, f.free); u != accepted {
			t.Fatalf("usage %d != accepted %d", u, accepted)
		}
		mustCheckLedger(t, db2)
	})
}

func TestSettleLargeBatchChecksInParallel(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) { testSettleLargeBatch(t, be) })
}

func testSettleLargeBatch(t *testing.T, be backend) {
	ctx := context.Background()
	db := openDB(t, be.dsn, testConfig())
	f := newSettleFixture(t, db)
	b := &wire.SettlementBatch{ID: "large", Edge: f.edge.id}
	for i := range 60 {
		p := pair(uint64(i), f.edge, f.viewer, videoID(2), 1000, 1000, f.expires)
		switch i % 5 {
		case 1:
			p.Order.Amount-- // breaks the viewer signature
		case 2:
			// A validly signed limit for a video the store does not know.
			// (A hostile id cannot get this far: it is not a VideoID,
			// so the batch's JSON does not decode; see below.)
			p.Limit.Video = videoID(100 + i)
			wire.SignOrderLimit(coordinatorKey, &p.Limit)
		}
		b.Pairs = append(b.Pairs, p)
	}
	r, err := db.Settle(ctx, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range r.Outcomes {
		want := map[int]Reason{1: ReasonBadOrderSignature, 2: ReasonUnknownVideo}[i%5]
		if o != want {
			t.Errorf("pair %d: %q, want %q", i, o, want)
		}
	}
	if r.Accepted != 36 || r.Rejected[ReasonBadOrderSignature] != 12 || r.Rejected[ReasonUnknownVideo] != 12 {
		t.Fatalf("%+v", r)
	}
	if n := count(t, db, "accounts"); n != 4 {
		t.Fatalf("accounts table damaged: %d rows", n)
	}
	for _, h := range hostile {
		body, _ := json.Marshal(map[string]any{"id": "hostile", "pairs": []any{map[string]any{"limit": map[string]string{"video": h}}}})
		var hb wire.SettlementBatch
		if err := json.Unmarshal(body, &hb); err == nil {
			t.Errorf("a settlement batch naming video %q decoded", h)
		}
	}
}

// Several edges settling at once, for the same viewers and videos (what
// happens when a network's edges shut down together): every batch succeeds
// and is counted once. On PostgreSQL two such transactions can deadlock on
// the rows they share; Settle runs the aborted one again.
func TestManyEdgesSettleAtOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dbs := []*DB{openDB(t, be.dsn, testConfig()), openDB(t, be.dsn, testConfig())}
		f := newSettleFixture(t, dbs[0])
		viewers := []party{f.viewer, newParty(3)}
		acct, _ := dbs[0].CreateAccount(ctx, "watcher2", "viewer password", t0)
		dbs[0].BindViewerKey(ctx, acct.ID, viewers[1].id, t0)
		const edges, batches = 6, 8
		var parties []party
		for e := range edges {
			p := newParty(byte(10 + e))
			a, err := dbs[0].CreateAccount(ctx, fmt.Sprintf("edge%d", e), "edge password", t0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dbs[0].CreateAPIToken(ctx, a.ID, p.id, t0); err != nil {
				t.Fatal(err)
			}
			passAudit(t, dbs[0], p.id)
			parties = append(parties, p)
		}
		var wg sync.WaitGroup
		errs := make(chan error, edges*batches)
		for e, p := range parties {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range batches {
					// Each batch touches both viewers' budgets, in an order
					// that differs between edges.
					v0, v1 := viewers[(e+i)%2], viewers[(e+i+1)%2]
					serial := uint64(1000*e + 10*i)
					b := &wire.SettlementBatch{ID: fmt.Sprintf("m%d-%d", e, i), Edge: p.id, Pairs: []wire.SettlementPair{
						pair(serial, p, v0, videoID(2), 1_000_000, 50_000, f.expires),
						pair(serial+1, p, v1, videoID(2), 1_000_000, 50_000, f.expires),
					}}
					r, err := dbs[e%2].Settle(ctx, b, t0.Add(time.Minute))
					if err != nil {
						errs <- fmt.Errorf("edge %d batch %d: %w", e, i, err)
						return
					}
					if r.Accepted != 2 {
						errs <- fmt.Errorf("edge %d batch %d: %d of 2 accepted (%v)", e, i, r.Accepted, r.Rejected)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := count(t, dbs[0], "settlement_batches"); n != edges*batches {
			t.Fatalf("%d batches stored, want %d", n, edges*batches)
		}
		mustCheckLedger(t, dbs[1])
	})
}
