package coordinatordb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// benchBatchPairs is the batch size an edge submits in the benchmarks.
const benchBatchPairs = 100

// BenchmarkSettle measures settled orders per second through Settle
// (signature checks, serial, budget, flows, ledger credit, one transaction
// per batch of 100 pairs) on each backend.
func BenchmarkSettle(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchSettle(b, "sqlite:"+b.TempDir()+"/bench.db") })
	b.Run("postgres", func(b *testing.B) { benchSettle(b, freshPostgres(b)) })
}

func benchSettle(b *testing.B, dsn string) {
	ctx := context.Background()
	db := openDB(b, dsn, testConfig())
	f := newSettleFixture(b, db)
	db.PutVideo(ctx, VideoTerms{Video: videoID(2), PlaybackBudgetBytes: 1 << 62}, t0)
	serial := uint64(0)
	orders := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		batch := &wire.SettlementBatch{ID: fmt.Sprintf("bench%d", i), Edge: f.edge.id}
		for range benchBatchPairs {
			serial++
			batch.Pairs = append(batch.Pairs, pair(serial, f.edge, f.viewer, videoID(2), 32<<20, 32<<20, f.expires))
		}
		b.StartTimer()
		r, err := db.Settle(ctx, batch, t0.Add(time.Minute))
		if err != nil || r.Accepted != benchBatchPairs {
			b.Fatalf("%+v %v", r, err)
		}
		orders += r.Accepted
	}
	b.ReportMetric(float64(orders)/b.Elapsed().Seconds(), "orders/s")
}

// Order granularity for the cost figures: a viewer holds one limit per edge
// per 32 MiB (so a settled GB is 1e9/32 MiB ≈ 29.8 pairs, 2 verifications
// each at the coordinator), and signs a cumulative Order every 256 KiB
// received (the edge verifies each before sending more: 3815 per GB).
const (
	benchLimitBytes = 32 << 20
	benchOrderBytes = 256 << 10
)

// BenchmarkVerifyPerGB measures the ed25519 cost of CheckPair and converts
// it to CPU milliseconds per settled gigabyte (coordinator) and per served
// gigabyte (edge, verifying each incremental order).
func BenchmarkVerifyPerGB(b *testing.B) {
	edge, viewer := newParty(1), newParty(2)
	p := pair(1, edge, viewer, videoID(1), benchLimitBytes, benchLimitBytes, t0.Add(time.Hour))
	keys := testConfig().CoordinatorKeys
	for b.Loop() {
		if r := CheckPair(&p, edge.id, keys, t0, time.Hour); r != Accepted {
			b.Fatal(r)
		}
	}
	nsPerPair := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(nsPerPair*(1e9/benchLimitBytes)/1e6, "coord-ms/GB")
	b.ReportMetric(nsPerPair/2*(1e9/benchOrderBytes)/1e6, "edge-ms/GB")
}
