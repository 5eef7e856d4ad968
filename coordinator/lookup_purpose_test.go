package coordinator

import (
	"context"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// An edge's prefetch lookup is answered like any other but is not viewer
// demand: otherwise placement would feed on its own directives.
func TestPrefetchLookupsAreNotDemand(t *testing.T) {
	h := newHarness(t)
	demanded := func() int {
		h.c.demandMu.Lock()
		defer h.c.demandMu.Unlock()
		h.c.applyQueuedDemandLocked()
		h.c.demand.Fold(h.clock.Now())
		n := 0
		for _, d := range h.c.demand.Demand() {
			if !d.Predicted {
				n++ // what viewers asked for (a viewer's lookup also predicts past it)
			}
		}
		return n
	}
	req := wire.LookupRequest{Video: h.video(0), Rendition: 0, From: 0, Count: 4}
	if _, err := h.client.PrefetchLookup(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := demanded(); n != 0 {
		t.Fatalf("a prefetch lookup created demand for %d segments", n)
	}
	h.lookup(req)
	if n := demanded(); n != 4 {
		t.Fatalf("a viewer lookup of 4 segments created demand for %d", n)
	}
}
