package origin

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// An origin registers and publishes to every coordinator; one that is down
// delays no other, and is caught up once it is back.
func TestRunPublishesToEveryCoordinator(t *testing.T) {
	o, _, id, _ := newTestOrigin(t, 0)
	primary, second := newFakeCoordinator(), newFakeCoordinator()
	second.down = true
	ps, ss := httptest.NewServer(primary), httptest.NewServer(second)
	defer ps.Close()
	defer ss.Close()
	o.cfg.Coordinator = ps.URL
	o.cfg.Coordinators = []string{ps.URL, ss.URL}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- o.Run(ctx) }()

	second.await(t, "down", 1)
	primary.await(t, wire.PathPublish, 1)
	primary.await(t, wire.PathHeartbeat, 1)

	second.mu.Lock()
	second.down = false
	second.mu.Unlock()
	second.await(t, wire.PathRegister, 1)
	second.await(t, wire.PathPublish, 1)
	second.mu.Lock()
	if len(second.published) != 1 || string(second.published[0].Manifest) == "" {
		t.Errorf("second coordinator got %d videos, want 1", len(second.published))
	}
	second.mu.Unlock()
	primary.mu.Lock()
	if len(primary.published) != 1 {
		t.Errorf("primary got %d videos, want 1 (published once, %s)", len(primary.published), id)
	}
	primary.mu.Unlock()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
}

func TestCoordinatorURLs(t *testing.T) {
	got := wire.CoordinatorURLs("http://a/", []string{"", " http://b ", "http://a", "http://b/"})
	if len(got) != 2 || got[0] != "http://a" || got[1] != "http://b" {
		t.Fatalf("coordinatorURLs = %q, want [http://a http://b]", got)
	}
}
