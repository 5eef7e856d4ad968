package origin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// fakeCoordinator records calls and can forget nodes or go down.
type fakeCoordinator struct {
	mu        sync.Mutex
	calls     []string
	published []wire.PublishedVideo
	unknown   bool // answer the next heartbeat with Unknown
	down      bool // answer everything with 503
	events    chan string
}

func newFakeCoordinator() *fakeCoordinator { return &fakeCoordinator{events: make(chan string, 1000)} }

func (f *fakeCoordinator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		wire.WriteError(w, http.StatusServiceUnavailable, "down")
		f.events <- "down"
		return
	}
	f.calls = append(f.calls, r.URL.Path)
	switch r.URL.Path {
	case wire.PathRegister:
		var req wire.RegisterRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		wire.WriteJSON(w, wire.RegisterResponse{HeartbeatIntervalMS: 5})
	case wire.PathHeartbeat:
		var req wire.HeartbeatRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		wire.WriteJSON(w, wire.HeartbeatResponse{Unknown: f.unknown})
		f.unknown = false
	case wire.PathPublish:
		var req wire.PublishRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		f.published = append(f.published, req.Videos...)
		wire.WriteJSON(w, struct{}{})
	case wire.PathLeave:
		wire.WriteJSON(w, struct{}{})
	default:
		wire.WriteError(w, 404, "no route")
	}
	f.events <- r.URL.Path
}

// await blocks until the coordinator has seen n more calls to path.
func (f *fakeCoordinator) await(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second) // a hang guard, not a timing assertion
	for n > 0 {
		select {
		case ev := <-f.events:
			if ev == path {
				n--
			}
		case <-deadline:
			t.Fatalf("coordinator never saw %s", path)
		}
	}
}

func TestRunRegistersPublishesAndRecovers(t *testing.T) {
	o, st, id, _ := newTestOrigin(t, 0)
	fc := newFakeCoordinator()
	cs := httptest.NewServer(fc)
	defer cs.Close()
	o.cfg.Coordinator = cs.URL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- o.Run(ctx) }()

	fc.await(t, wire.PathPublish, 1)
	fc.mu.Lock()
	if len(fc.published) != 1 || len(fc.published[0].Key) != 16 {
		t.Fatalf("published %+v", fc.published)
	}
	m, err := content.DecodeManifest(fc.published[0].Manifest)
	if err != nil || m.ID() != id {
		t.Fatalf("published manifest: %v", err)
	}
	key, _ := st.ContentKey(id)
	if string(fc.published[0].Key) != string(key[:]) {
		t.Fatal("published the wrong content key")
	}
	fc.unknown = true // the coordinator restarted and forgot us
	fc.mu.Unlock()
	fc.await(t, wire.PathRegister, 1)
	fc.await(t, wire.PathPublish, 1)

	fc.mu.Lock()
	fc.down = true
	fc.mu.Unlock()
	fc.await(t, "down", 1)
	fc.mu.Lock()
	fc.down = false
	fc.mu.Unlock()
	fc.await(t, wire.PathRegister, 1)
	fc.await(t, wire.PathPublish, 1)
	fc.await(t, wire.PathHeartbeat, 1)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.calls[0] != wire.PathRegister || fc.calls[1] != wire.PathPublish {
		t.Fatalf("first calls %v, want register then publish", fc.calls[:2])
	}
}

func TestRunNeedsCoordinatorAndAdvertise(t *testing.T) {
	o, _, _, _ := newTestOrigin(t, 0)
	o.cfg.Coordinator = ""
	if err := o.Run(context.Background()); err == nil {
		t.Fatal("Run without a coordinator URL succeeded")
	}
	o.cfg.Coordinator, o.cfg.Advertise = "http://127.0.0.1:1", ""
	if err := o.Run(context.Background()); err == nil {
		t.Fatal("Run without an advertised URL succeeded")
	}
}
