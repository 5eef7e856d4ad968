package coordinatordb

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/swarmcast/swarmcast/wire"
)

// TestLedgerBalancesUnderRandomOperations drives random sign-ups, grants,
// unlocks (affordable or not, repeated), settlements (fresh, replayed,
// overlapping serials, disqualified edges) and checks after every step that
// the ledger sums to zero, every transaction balances, cached balances match
// the entries, and no user balance is negative.
func TestLedgerBalancesUnderRandomOperations(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		for i := range 4 {
			db.PutVideo(ctx, VideoTerms{Video: videoID(i), Price: int64(i * 7), PlaybackBudgetBytes: 3_000_000}, t0)
		}
		edges := []party{newParty(1), newParty(2), newParty(3)}
		for i, e := range edges {
			a, _ := db.CreateAccount(ctx, fmt.Sprintf("edge%d", i), "edge password", t0)
			db.BindEdge(ctx, a.ID, e.id, t0)
		}
		viewers := []party{newParty(10), newParty(11), newParty(12)}
		var users []int64
		for i, v := range viewers {
			a, _ := db.CreateAccount(ctx, fmt.Sprintf("viewer%d", i), "viewer password", t0)
			db.BindViewerKey(ctx, a.ID, v.id, t0)
			users = append(users, a.ID)
		}
		serial, batchN, run := uint64(0), 0, 0
		rapid.Check(t, func(rt *rapid.T) {
			run++
			now := t0.Add(time.Duration(run) * time.Second)
			steps := rapid.IntRange(1, 8).Draw(rt, "steps")
			for range steps {
				switch rapid.IntRange(0, 4).Draw(rt, "op") {
				case 0:
					u := rapid.SampledFrom(users).Draw(rt, "user")
					if err := db.Grant(ctx, u, rapid.Int64Range(1, 40).Draw(rt, "points"), "g", now); err != nil {
						rt.Fatal(err)
					}
				case 1:
					u := rapid.SampledFrom(users).Draw(rt, "user")
					v := videoID(rapid.IntRange(0, 4).Draw(rt, "video"))
					_, err := db.Unlock(ctx, u, v, now)
					var ie *InsufficientPointsError
					if err != nil && !errors.As(err, &ie) && !errors.Is(err, ErrUnknownVideo) {
						rt.Fatal(err)
					}
				case 2, 3:
					e := rapid.SampledFrom(edges).Draw(rt, "edge")
					b := &wire.SettlementBatch{ID: fmt.Sprintf("p%d", batchN), Edge: e.id}
					if batchN > 0 && rapid.Bool().Draw(rt, "replay") {
						b.ID = fmt.Sprintf("p%d", rapid.IntRange(0, batchN-1).Draw(rt, "old"))
					} else {
						batchN++
					}
					for range rapid.IntRange(0, 5).Draw(rt, "pairs") {
						if !rapid.Bool().Draw(rt, "reuse") {
							serial++
						}
						v := rapid.SampledFrom(viewers).Draw(rt, "viewer")
						amount := rapid.Int64Range(0, 1_500_000).Draw(rt, "amount")
						b.Pairs = append(b.Pairs, pair(serial, e, v, videoID(rapid.IntRange(0, 4).Draw(rt, "video")), 1_000_000, amount, t0.Add(time.Hour)))
					}
					_, err := db.Settle(ctx, b, now)
					if err != nil && !errors.Is(err, ErrBatchIDReused) {
						rt.Fatal(err)
					}
				case 4:
					e := rapid.SampledFrom(edges).Draw(rt, "edge")
					if _, err := db.RecordBadShard(ctx, e.id, "random", now); err != nil {
						rt.Fatal(err)
					}
				}
				if err := db.CheckLedger(ctx); err != nil {
					rt.Fatal(err)
				}
				var neg int64
				if err := db.sql.QueryRow("SELECT COUNT(*) FROM balances b JOIN accounts a ON a.id = b.account_id WHERE a.role <> 'system' AND b.points < 0").Scan(&neg); err != nil || neg != 0 {
					rt.Fatalf("%d user accounts below zero (%v)", neg, err)
				}
			}
		})
	})
}
