package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxIdleWait bounds how long prefetching yields to serving, so a node
// that is never idle still prefetches its assignment, slowly.
const maxIdleWait = time.Second

// idleGate tracks requests being served so prefetching can wait for a
// moment when the edge is idle. Serving is two atomic adds per request
// (no lock, no allocation: it runs on every shard response); only a
// waiting prefetcher takes the lock and makes a channel, closed when busy
// drops to 0.
//
// Why no wake-up is lost: a waiter increments waiters before it reads
// busy, and a leaver decrements busy before it reads waiters (sequentially
// consistent atomics), so at least one of them sees the other: either the
// waiter sees busy == 0 and returns, or the leaver sees a waiter and
// closes its channel under the lock (made before the waiter unlocked).
type idleGate struct {
	busy    atomic.Int64 // requests being served
	waiters atomic.Int32 // prefetchers in wait

	mu   sync.Mutex
	idle chan struct{} // a waiter's, closed when busy drops to 0; nil if nobody waits
}

func (g *idleGate) enter() { g.busy.Add(1) }

func (g *idleGate) leave() {
	if g.busy.Add(-1) != 0 || g.waiters.Load() == 0 {
		return
	}
	g.mu.Lock()
	if g.busy.Load() == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// wait returns when no request is being served, after maxIdleWait at
// most, or when ctx ends.
func (g *idleGate) wait(ctx context.Context) {
	if g.busy.Load() == 0 {
		return
	}
	g.mu.Lock()
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	if g.busy.Load() == 0 {
		g.mu.Unlock()
		return
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	t := time.NewTimer(maxIdleWait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}
