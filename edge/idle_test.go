package edge

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestPrefetchWaitsForIdleButNotForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g idleGate
		g.wait(context.Background()) // idle: returns at once

		g.enter()
		g.enter()
		done := make(chan time.Duration)
		start := time.Now()
		go func() {
			g.wait(context.Background())
			done <- time.Since(start)
		}()
		synctest.Wait()
		g.leave()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("prefetch went ahead while a request was still being served")
		default:
		}
		time.Sleep(100 * time.Millisecond)
		g.leave()
		if d := <-done; d != 100*time.Millisecond {
			t.Fatalf("waited %v, want until the edge was idle (100ms)", d)
		}

		g.enter() // busy for good: prefetching proceeds after maxIdleWait
		go func() {
			g.wait(context.Background())
			done <- time.Since(start)
		}()
		if d := <-done; d != 100*time.Millisecond+maxIdleWait {
			t.Fatalf("waited until %v, want %v", d, 100*time.Millisecond+maxIdleWait)
		}
	})
}
