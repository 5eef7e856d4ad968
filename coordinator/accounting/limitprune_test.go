package accounting

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Pruning a cache larger than one step (pruneStepLimits) gives what one
// pass would: every limit past its renewal dropped, every pair with an
// expired verdict and no limit deleted, the others kept; readers take the
// lock between steps (run with -race: no unsynchronised access).
func TestPruneInStepsIsOnePrune(t *testing.T) {
	lc := newLimitCache()
	now := time.Unix(100, 0)
	const pairs = 3 * pruneStepLimits / 2 // each with 2 limits: several steps
	for i := range pairs {
		var el edgeLimits
		// Even pairs: both limits past renewal; odd: one still reusable.
		el.put(1, cachedLimit{renewAtNS: now.UnixNano() - 1})
		renew := now.UnixNano() - 1
		if i%2 == 1 {
			renew = now.UnixNano() + int64(time.Minute)
		}
		el.put(2, cachedLimit{renewAtNS: renew})
		until := now // expired verdict
		if i%4 == 0 {
			until = now.Add(time.Minute) // current verdict: kept without limits
		}
		key := grantKey{wire.NodeID(fmt.Sprintf("viewer-%d", i)), content.VideoID{}}
		lc.entries[key] = &viewerVideo{grant: grant{ok: true, until: until}, limits: el}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a lookup's reads while pruning
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			lc.mu.RLock()
			_ = lc.entries[grantKey{wire.NodeID(fmt.Sprintf("viewer-%d", i%pairs)), content.VideoID{}}]
			lc.mu.RUnlock()
		}
	}()
	lc.prune(now)
	close(stop)
	wg.Wait()
	for i := range pairs {
		e := lc.entries[grantKey{wire.NodeID(fmt.Sprintf("viewer-%d", i)), content.VideoID{}}]
		wantLimits := i % 2 // odd pairs keep their reusable limit
		switch {
		case wantLimits == 0 && i%4 != 0:
			if e != nil {
				t.Fatalf("pair %d: no limit left and its verdict expired, but kept", i)
			}
		case e == nil:
			t.Fatalf("pair %d deleted, want kept with %d limits", i, wantLimits)
		case len(e.limits.keys) != wantLimits:
			t.Fatalf("pair %d: %d limits after pruning, want %d", i, len(e.limits.keys), wantLimits)
		}
	}
}
