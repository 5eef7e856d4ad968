package edge

import (
	"context"
	"sync"
	"time"
)

// maxIdleWait bounds how long prefetching yields to serving, so a node
// that is never idle still prefetches its assignment, slowly.
const maxIdleWait = time.Second

// idleGate tracks requests being served so prefetching can wait for a
// moment when the edge is idle. Serving allocates nothing: only a waiting
// prefetcher makes a channel, closed when busy drops to 0.
type idleGate struct {
	mu   sync.Mutex
	busy int           // requests being served
	idle chan struct{} // a waiter's, closed when busy drops to 0; nil if nobody waits
}

func (g *idleGate) enter() {
	g.mu.Lock()
	g.busy++
	g.mu.Unlock()
}

func (g *idleGate) leave() {
	g.mu.Lock()
	g.busy--
	if g.busy == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// wait returns when no request is being served, after maxIdleWait at
// most, or when ctx ends.
func (g *idleGate) wait(ctx context.Context) {
	g.mu.Lock()
	if g.busy == 0 {
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
