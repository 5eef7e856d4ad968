package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/swarmcast/swarmcast/wire"
)

// TestLedgerBalancesUnderRandomOperations drives random grants (in and out
// of bounds), unlocks (affordable or not, repeated), settlements (fresh,
// replayed with the same content, batch ids reused with other content,
// overlapping serials, self-dealing, several viewer keys per account,
// disqualified edges) against a model of every balance, and checks after
// every step that:
//   - every balance is exactly what the model says, the mint's is minus the
//     rest (the ledger sums to zero) and CheckLedger passes;
//   - no user balance is negative;
//   - no pair whose viewer key belongs to the edge's own account is accepted;
//   - no viewer account is paid for more than a video's playback budget,
//     however many keys it used.
func TestLedgerBalancesUnderRandomOperations(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		const budget = 3_000_000
		for i := range 4 {
			if err := db.PutVideo(ctx, VideoTerms{Video: videoID(i), Price: int64(i * 7), PlaybackBudgetBytes: budget}, t0); err != nil {
				t.Fatal(err)
			}
		}
		model := map[int64]int64{} // account -> balance, users and @revenue
		keyAccount := map[wire.NodeID]int64{}
		var edges []party
		edgeAccount := map[wire.NodeID]int64{}
		var viewerKeys []party
		var users []int64
		seed := byte(1)
		newKey := func() party { seed++; return newParty(seed) }
		for i := range 3 {
			a, err := db.CreateAccount(ctx, fmt.Sprintf("edge%d", i), "edge password", t0)
			if err != nil {
				t.Fatal(err)
			}
			e := newKey()
			if err := db.BindEdge(ctx, a.ID, e.id, t0); err != nil {
				t.Fatal(err)
			}
			passAudit(t, db, e.id)
			edges, edgeAccount[e.id], users = append(edges, e), a.ID, append(users, a.ID)
			// The edge's account plays too: its key may only be served by others.
			k := newKey()
			db.BindViewerKey(ctx, a.ID, k.id, t0)
			viewerKeys, keyAccount[k.id] = append(viewerKeys, k), a.ID
		}
		for i := range 3 {
			a, _ := db.CreateAccount(ctx, fmt.Sprintf("viewer%d", i), "viewer password", t0)
			users = append(users, a.ID)
			for range i + 1 { // 1, 2 and 3 keys: fresh keys buy no fresh budget
				k := newKey()
				db.BindViewerKey(ctx, a.ID, k.id, t0)
				viewerKeys, keyAccount[k.id] = append(viewerKeys, k), a.ID
			}
		}
		unbound := newKey()
		viewerKeys = append(viewerKeys, unbound)
		paidFor := map[usageKey]int64{}
		batches := map[string]*wire.SettlementBatch{}
		serial, batchN, run := uint64(0), 0, 0

		rapid.Check(t, func(rt *rapid.T) {
			run++
			now := t0.Add(time.Duration(run) * time.Second)
			for range rapid.IntRange(1, 8).Draw(rt, "steps") {
				switch rapid.IntRange(0, 5).Draw(rt, "op") {
				case 0: // grant, sometimes out of bounds
					u := rapid.SampledFrom(users).Draw(rt, "user")
					points := rapid.OneOf(rapid.Int64Range(1, 40), rapid.Int64Range(1, MaxGrantPoints),
						rapid.SampledFrom([]int64{0, -1, MaxGrantPoints + 1, math.MaxInt64, math.MinInt64})).Draw(rt, "points")
					err := db.Grant(ctx, u, points, "g", now)
					if inBounds := points >= 1 && points <= MaxGrantPoints; inBounds != (err == nil) {
						rt.Fatalf("grant of %d: %v", points, err)
					}
					if err == nil {
						model[u] += points
					}
				case 1:
					u := rapid.SampledFrom(users).Draw(rt, "user")
					v := videoID(rapid.IntRange(0, 4).Draw(rt, "video"))
					res, err := db.Unlock(ctx, u, v, now)
					var ie *InsufficientPointsError
					if err != nil && !errors.As(err, &ie) && !errors.Is(err, ErrUnknownVideo) {
						rt.Fatal(err)
					}
					if err == nil {
						model[u] -= res.Charged
						model[db.revenueID] += res.Charged
					}
				case 2, 3:
					e := rapid.SampledFrom(edges).Draw(rt, "edge")
					var b *wire.SettlementBatch
					switch {
					case batchN > 0 && rapid.Bool().Draw(rt, "replay"):
						b = batches[fmt.Sprintf("p%d", rapid.IntRange(0, batchN-1).Draw(rt, "old"))]
					default:
						b = &wire.SettlementBatch{ID: fmt.Sprintf("p%d", batchN), Edge: e.id}
						if batchN > 0 && rapid.Bool().Draw(rt, "reuse id") {
							b.ID = fmt.Sprintf("p%d", rapid.IntRange(0, batchN-1).Draw(rt, "reused"))
						}
						for range rapid.IntRange(0, 5).Draw(rt, "pairs") {
							if !rapid.Bool().Draw(rt, "reuse serial") {
								serial++
							}
							v := rapid.SampledFrom(viewerKeys).Draw(rt, "viewer")
							amount := rapid.Int64Range(0, 1_500_000).Draw(rt, "amount")
							b.Pairs = append(b.Pairs, pair(serial, e, v, videoID(rapid.IntRange(0, 4).Draw(rt, "video")), 1_000_000, amount, t0.Add(time.Hour)))
						}
					}
					stored, replay := batches[b.ID]
					res, err := db.Settle(ctx, b, now)
					var reused *BatchIDReusedError
					switch {
					// Other content, not another object: a fresh batch that
					// happens to equal the stored one (same edge, same pairs,
					// e.g. both empty) is a replay.
					case replay && !reflect.DeepEqual(stored, b):
						if !errors.As(err, &reused) || reused.OtherEdge != (stored.Edge != b.Edge) {
							rt.Fatalf("batch id %s reused with other content: %+v, %v; want *BatchIDReusedError", b.ID, res, err)
						}
						continue
					case err != nil:
						rt.Fatal(err)
					case replay != res.Replayed:
						rt.Fatalf("batch %s: replayed %v, want %v", b.ID, res.Replayed, replay)
					case replay:
						continue
					}
					batches[b.ID] = b
					batchN++
					var accepted int64
					for i, o := range res.Outcomes {
						l := &b.Pairs[i].Limit
						if o != Accepted {
							continue
						}
						if keyAccount[l.Viewer] == edgeAccount[b.Edge] {
							rt.Fatalf("pair %d: self-dealing accepted (viewer key of the edge's own account)", i)
						}
						if keyAccount[l.Viewer] == 0 {
							rt.Fatalf("pair %d: unbound viewer key accepted", i)
						}
						accepted += b.Pairs[i].Order.Amount
						paidFor[usageKey{keyAccount[l.Viewer], l.Video}] += b.Pairs[i].Order.Amount
					}
					if accepted != res.AcceptedBytes || res.CreditedPoints+res.FrozenPoints != PointsFor(accepted, 10) {
						rt.Fatalf("batch %s: accepted %d bytes, credited %d + frozen %d points: %+v", b.ID, accepted, res.CreditedPoints, res.FrozenPoints, res)
					}
					model[edgeAccount[b.Edge]] += res.CreditedPoints
				case 4:
					e := rapid.SampledFrom(edges).Draw(rt, "edge")
					if _, err := db.RecordBadShard(ctx, e.id, "random", now); err != nil {
						rt.Fatal(err)
					}
				case 5: // nothing for a self-dealing batch, whatever its size
					e := rapid.SampledFrom(edges).Draw(rt, "edge")
					var own party
					for _, k := range viewerKeys {
						if keyAccount[k.id] == edgeAccount[e.id] {
							own = k
						}
					}
					serial++
					b := &wire.SettlementBatch{ID: fmt.Sprintf("self%d", serial), Edge: e.id, Pairs: []wire.SettlementPair{
						pair(serial, e, own, videoID(rapid.IntRange(0, 3).Draw(rt, "video")), 1_000_000, rapid.Int64Range(1, 1_000_000).Draw(rt, "amount"), t0.Add(time.Hour))}}
					res, err := db.Settle(ctx, b, now)
					if err != nil || res.Accepted != 0 || res.CreditedPoints != 0 || res.FrozenPoints != 0 {
						rt.Fatalf("self-dealing batch: %+v, %v", res, err)
					}
				}
				checkModel(rt, db, model)
				for k, paid := range paidFor {
					if paid > budget {
						rt.Fatalf("account %d paid for %d bytes of video %s, budget %d", k.account, paid, k.video, budget)
					}
					if got, err := db.AccountUsage(ctx, k.account, k.video); err != nil || got != paid {
						rt.Fatalf("account %d usage of %s: %d (%v), want %d", k.account, k.video, got, err, paid)
					}
				}
			}
		})
	})
}

// checkModel fails unless every modelled balance is exact, the mint holds
// minus their sum, and the ledger's own checks pass.
func checkModel(rt *rapid.T, db *DB, model map[int64]int64) {
	ctx := context.Background()
	var circulating int64
	for acct, want := range model {
		got, err := db.Balance(ctx, acct)
		if err != nil || got != want {
			rt.Fatalf("account %d: balance %d (%v), model says %d", acct, got, err, want)
		}
		if want < 0 {
			rt.Fatalf("account %d below zero: %d", acct, want)
		}
		circulating += want
	}
	if mint, err := db.Balance(ctx, db.mintID); err != nil || mint != -circulating {
		rt.Fatalf("mint balance %d (%v), want %d", mint, err, -circulating)
	}
	if err := db.CheckLedger(ctx); err != nil {
		rt.Fatal(err)
	}
}

// TestSupplyBoundKeepsLedgerExact: with the points in circulation at the
// bound, the mint refuses to create more (grant or settlement), the refused
// posting writes nothing, and every balance and ledger sum stays an exact
// integer (SQLite would otherwise turn an overflowing sum into a float).
func TestSupplyBoundKeepsLedgerExact(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		f := newSettleFixture(t, db)
		rich, _ := db.CreateAccount(ctx, "rich", "rich password", t0)
		// Put all but 10 points of the supply in circulation in one posting
		// (no route can: grants are bounded far below this).
		if err := db.tx(ctx, func(tx *sql.Tx) error {
			_, err := db.post(ctx, tx, KindGrant, "test", t0, []posting{{account: db.mintID, amount: -(MaxSupply - 10)}, {account: rich.ID, amount: MaxSupply - 10}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Grant(ctx, f.viewerAcct.ID, 11, "over", t0); !errors.Is(err, ErrSupplyExhausted) {
			t.Fatalf("grant past the supply: %v, want ErrSupplyExhausted", err)
		}
		// A settlement that would mint past the bound is not written either.
		b := &wire.SettlementBatch{ID: "big", Edge: f.edge.id, Pairs: []wire.SettlementPair{pair(1, f.edge, f.viewer, f.free, 5_000_000, 5_000_000, f.expires)}}
		if _, err := db.Settle(ctx, b, t0); !errors.Is(err, ErrSupplyExhausted) {
			t.Fatalf("settle past the supply: %v, want ErrSupplyExhausted", err)
		}
		if n := count(t, db, "settlement_batches"); n != 0 {
			t.Fatalf("refused settlement left %d batches", n)
		}
		if err := db.Grant(ctx, f.viewerAcct.ID, 10, "last", t0); err != nil {
			t.Fatal(err)
		}
		if bal, _ := db.Balance(ctx, rich.ID); bal != MaxSupply-10 {
			t.Fatalf("rich balance %d", bal)
		}
		if mint, _ := db.Balance(ctx, db.mintID); mint != -MaxSupply {
			t.Fatalf("mint balance %d, want %d", mint, -MaxSupply)
		}
		mustCheckLedger(t, db)
		// Spending keeps working at the bound.
		if _, err := db.Unlock(ctx, f.viewerAcct.ID, f.paid, t0); err != nil {
			t.Fatal(err)
		}
		mustCheckLedger(t, db)
	})
}

// TestBoundsRefuseOverflowingAmounts: amounts beyond the documented bounds
// are refused with an error naming the bound, and nothing is written.
func TestBoundsRefuseOverflowingAmounts(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "sqlite:"+t.TempDir()+"/b.db", testConfig())
	f := newSettleFixture(t, db)
	for _, p := range []int64{math.MaxInt64, MaxGrantPoints + 1, 0, -5} {
		if err := db.Grant(ctx, f.viewerAcct.ID, p, "x", t0); err == nil {
			t.Fatalf("grant of %d accepted", p)
		}
	}
	if err := db.PutVideo(ctx, VideoTerms{Video: videoID(7), Price: math.MaxInt64}, t0); err == nil {
		t.Fatal("price of 2^63-1 accepted")
	}
	if err := db.PutVideo(ctx, VideoTerms{Video: videoID(7), PlaybackBudgetBytes: math.MaxInt64}, t0); err == nil {
		t.Fatal("budget of 2^63-1 bytes accepted")
	}
	huge := pair(1, f.edge, f.viewer, f.free, math.MaxInt64, math.MaxInt64, f.expires)
	r, err := db.Settle(ctx, &wire.SettlementBatch{ID: "huge", Edge: f.edge.id, Pairs: []wire.SettlementPair{huge, huge}}, t0)
	if err != nil || r.Accepted != 0 || r.Rejected[ReasonAmountOverLimit] != 2 {
		t.Fatalf("orders of 2^63-1 bytes: %+v %v", r, err)
	}
	if _, err := OpenConfig(ctx, "sqlite:"+t.TempDir()+"/p.db", Config{PointsPerMB: math.MaxInt64}); err == nil {
		t.Fatal("points per MB of 2^63-1 accepted")
	}
	if got := PointsFor(MaxBatchPairs*MaxOrderBytes, MaxPointsPerMB); got <= 0 {
		t.Fatalf("PointsFor at the bounds overflowed: %d", got)
	}
	if bal, _ := db.Balance(ctx, f.viewerAcct.ID); bal != 0 {
		t.Fatalf("balance %d after refused grants", bal)
	}
	mustCheckLedger(t, db)
}
