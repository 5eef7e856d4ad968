package coordinatordb

import (
	"context"
	"strings"
	"testing"
)

// TestCheckLedgerDetectsRejectionTotalDrift: a cached rejection total that
// disagrees with the batches' rejections is reported, in both directions
// (a total without rejections, rejections without a total).
func TestCheckLedgerDetectsRejectionTotalDrift(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := openDB(t, be.dsn, testConfig())
		ctx := context.Background()
		mustCheckLedger(t, db)
		if _, err := db.sql.ExecContext(ctx, db.q("INSERT INTO rejection_totals (reason, count) VALUES (?, ?)"), string(ReasonSelfDealing), 3); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckLedger(ctx); err == nil || !strings.Contains(err.Error(), "rejection total") {
			t.Fatalf("a rejection total without rejections: %v", err)
		}
		counts, err := db.RejectionCounts(ctx)
		if err != nil || counts[ReasonSelfDealing] != 3 {
			t.Fatalf("RejectionCounts %v, %v: want the cached total 3", counts, err)
		}
	})
}
