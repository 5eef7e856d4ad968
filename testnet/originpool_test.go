package testnet

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// TestOriginPoolDispatch plays the catalogue with placement switched off, so
// every shard comes from an origin, and checks that origins serve only as
// the coordinator's AVARDO pool dispatches: with a huge per-origin capacity
// the base origin alone serves everything; with a tiny one the whole stack
// is on and every origin serves its share.
func TestOriginPoolDispatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perServer float64
		want      int // origins on, and origins that served bytes
	}{{"huge capacity", 1e9, 1}, {"tiny capacity", 1e-6, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			const edges, origins = 2, 3
			n := startNet(t, Config{Edges: edges, Origins: origins, Videos: 2, PlacementInterval: time.Hour, OriginPerServerRate: tc.perServer})
			if err := n.WaitFor(func(s wire.Stats) bool { return s.Nodes >= edges+origins }); err != nil {
				t.Fatal(err)
			}
			for _, v := range n.Videos {
				playAll(t, n.Edges(), v, 16)
			}
			stack, depth := n.Coordinator.OriginPoolActive()
			if len(stack) != origins || depth != tc.want {
				t.Fatalf("pool stack %d origins, %d on; want %d, %d on", len(stack), depth, origins, tc.want)
			}
			used := 0
			for _, o := range n.Origins {
				pos, _ := slices.BinarySearch(stack, o.Origin.ID())
				served := o.Origin.BytesServed()
				t.Logf("origin at stack position %d served %d bytes", pos, served)
				if served == 0 {
					continue
				}
				used++
				if pos >= depth {
					t.Errorf("origin at stack position %d served %d bytes but only %d origins are on", pos, served, depth)
				}
			}
			if used != tc.want {
				t.Errorf("%d origins served bytes, want %d", used, tc.want)
			}
		})
	}
}
