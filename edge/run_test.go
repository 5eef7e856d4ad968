package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// fakeCoordinator records calls; heartbeat answers come from a queue.
type fakeCoordinator struct {
	f       *fixture
	mu      sync.Mutex
	answers []wire.HeartbeatResponse // next heartbeat answers, in order
	lookup  wire.LookupResponse
	reports []wire.BadShardReport
	purpose []string // lookup purpose headers seen
	calls   chan call
	giveUp  time.Time // hang guard for the whole test, not a timing assertion
	// drained is signalled when a heartbeat takes the last queued answer.
	drained chan struct{}
	// key is the limit-signing key named in registration answers (hex).
	key string
}

type call struct {
	path string
	hb   wire.HeartbeatRequest
	reg  wire.RegisterRequest
}

func (fc *fakeCoordinator) answer(r wire.HeartbeatResponse) {
	fc.mu.Lock()
	if fc.drained == nil {
		fc.drained = make(chan struct{}, 1)
	}
	fc.answers = append(fc.answers, r)
	fc.mu.Unlock()
}

func (fc *fakeCoordinator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := call{path: r.URL.Path}
	switch {
	case r.URL.Path == wire.PathRegister:
		if !wire.DecodeJSON(w, r, &c.reg) {
			return
		}
		wire.WriteJSON(w, wire.RegisterResponse{HeartbeatIntervalMS: 2, CoordinatorKey: fc.key})
	case r.URL.Path == wire.PathHeartbeat:
		if !wire.DecodeJSON(w, r, &c.hb) {
			return
		}
		fc.mu.Lock()
		var resp wire.HeartbeatResponse
		if len(fc.answers) > 0 {
			resp, fc.answers = fc.answers[0], fc.answers[1:]
			if len(fc.answers) == 0 {
				select {
				case fc.drained <- struct{}{}:
				default:
				}
			}
		}
		fc.mu.Unlock()
		wire.WriteJSON(w, resp)
	case r.URL.Path == wire.PathLeave:
		var req wire.LeaveRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		wire.WriteJSON(w, struct{}{})
	case r.URL.Path == wire.PathLookup:
		var req wire.LookupRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		fc.mu.Lock()
		fc.purpose = append(fc.purpose, r.Header.Get(wire.HeaderLookupPurpose))
		resp := fc.lookup
		fc.mu.Unlock()
		wire.WriteJSON(w, resp)
	case r.URL.Path == wire.PathBadShard:
		var rep wire.BadShardReport
		if !wire.DecodeJSON(w, r, &rep) {
			return
		}
		fc.mu.Lock()
		fc.reports = append(fc.reports, rep)
		fc.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	case strings.HasSuffix(r.URL.Path, "/manifest"):
		w.Write(fc.f.raw)
	default:
		wire.WriteError(w, 404, "no route %s", r.URL.Path)
		return
	}
	fc.calls <- c
}

// next returns the next call to path, skipping others.
func (fc *fakeCoordinator) next(t *testing.T, path string) call {
	t.Helper()
	deadline := time.After(time.Until(fc.giveUp))
	for {
		select {
		case c := <-fc.calls:
			if c.path == path {
				return c
			}
		case <-deadline:
			t.Fatalf("coordinator never saw %s", path)
		}
	}
}

// fakeOrigin serves every shard of the fixture.
func fakeOrigin(f *fixture) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathShard, func(w http.ResponseWriter, r *http.Request) {
		ref, err := wire.ParseShardRef(r)
		b, ok := f.shards[ref]
		if err != nil || !ok {
			wire.WriteError(w, 404, "no")
			return
		}
		w.Header().Set(wire.HeaderNode, "origin")
		w.Write(b)
	})
	return mux
}

func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func hasShards(sets []wire.ShardSet, seg int, shards ...int) bool {
	for _, s := range sets {
		if s.Segment == seg && s.Rendition == 0 {
			for _, i := range shards {
				if !slices.Contains(s.Shards, i) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func TestRunFollowsDirectivesReportsInventoryAndLeaves(t *testing.T) {
	f := sampleFixture(t)
	liar := newTestEdge(t, t.TempDir(), func(c *Config) { c.Fault = FlipBits })
	honest := newTestEdge(t, t.TempDir(), nil)
	mustStore(t, liar, f, f.key(0, 3, 0), false)
	mustStore(t, honest, f, f.key(0, 3, 0), false)
	mustStore(t, honest, f, f.key(0, 3, 1), false)

	fc := &fakeCoordinator{f: f, calls: make(chan call, 10000), giveUp: time.Now().Add(time.Minute)}
	fc.lookup = wire.LookupResponse{
		Segments: []wire.SegmentSources{{Segment: 3, Sources: []wire.Source{
			{NodeID: liar.ID(), Addr: serve(t, liar.Handler()), Shards: []int{0}},
			{NodeID: honest.ID(), Addr: serve(t, honest.Handler()), Shards: []int{0, 1}},
		}}},
		Origins: []wire.Source{{NodeID: "origin", Addr: serve(t, fakeOrigin(f))}},
	}
	coord := serve(t, fc)

	dir := t.TempDir()
	e := newTestEdge(t, dir, func(c *Config) {
		c.Coordinator = coord
		c.Advertise = "http://edge.example"
		c.Region = "eu"
		c.PrefetchOriginDelay = -1 // this test wants shard 2 from the origin at once
	})
	mustStore(t, e, f, f.key(0, 0, 7), false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()

	reg := fc.next(t, wire.PathRegister).reg
	if reg.Role != wire.RoleEdge || reg.Addr != "http://edge.example" || reg.Region != "eu" || reg.DiskCapBytes != wire.DefaultDiskCapBytes {
		t.Fatalf("register %+v", reg)
	}
	hb := fc.next(t, wire.PathHeartbeat).hb
	if !hb.Full || !hasShards(hb.Added, 0, 7) || hb.UsedBytes == 0 {
		t.Fatalf("first heartbeat %+v, want the full inventory", hb)
	}

	// Assign three shards: 0 from edges (the liar is asked first), 1 from
	// an edge, 2 only from the origin.
	fc.answer(wire.HeartbeatResponse{Directives: directives(wire.ActionFetch, f, 0, 3, 0, 1, 2)})
	reported := map[int]bool{} // shards of segment 3 reported added so far
	for len(reported) < 3 {
		hb = fc.next(t, wire.PathHeartbeat).hb
		if hb.Full {
			t.Fatal("unexpected full heartbeat")
		}
		for _, s := range hb.Added {
			if s.Rendition == 0 && s.Segment == 3 {
				for _, i := range s.Shards {
					reported[i] = true
				}
			}
		}
	}
	if got := counter(t, e, "swarmcast_edge_prefetched_shards_total", "source", "edge"); got != 2 {
		t.Errorf("prefetched from edges = %v, want 2", got)
	}
	if got := counter(t, e, "swarmcast_edge_prefetched_shards_total", "source", "origin"); got != 1 {
		t.Errorf("prefetched from the origin = %v, want 1", got)
	}
	if got := counter(t, e, "swarmcast_edge_verify_failures_total", "where", "prefetch"); got != 1 {
		t.Errorf("prefetch verify failures = %v, want 1", got)
	}
	fc.mu.Lock()
	if len(fc.reports) != 1 || fc.reports[0].Node != liar.ID() || len(fc.reports[0].Evidence) == 0 {
		t.Errorf("bad-shard reports %+v, want one naming the liar", fc.reports)
	}
	if len(fc.purpose) == 0 || fc.purpose[0] != wire.LookupPurposePrefetch {
		t.Errorf("lookup purposes %v", fc.purpose)
	}
	fc.mu.Unlock()
	for i := 0; i < 3; i++ {
		b, err := e.readShard(f.key(0, 3, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyMessage(f.m, f.key(0, 3, i), b); err != nil {
			t.Fatal(err)
		}
	}

	// The coordinator forgets the edge: it registers again and sends
	// everything.
	fc.answer(wire.HeartbeatResponse{Unknown: true})
	fc.next(t, wire.PathRegister)
	hb = fc.next(t, wire.PathHeartbeat).hb
	if !hb.Full || !hasShards(hb.Added, 3, 0, 1, 2) || !hasShards(hb.Added, 0, 7) {
		t.Fatalf("heartbeat after re-registering %+v, want full inventory", hb)
	}

	cancel()
	fc.next(t, wire.PathLeave)
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

func TestRunNeedsCoordinatorAndAdvertise(t *testing.T) {
	e := newTestEdge(t, t.TempDir(), nil)
	if err := e.Run(context.Background()); err == nil {
		t.Fatal("Run without a coordinator succeeded")
	}
	e.cfg.Coordinator = "http://127.0.0.1:1"
	if err := e.Run(context.Background()); err == nil {
		t.Fatal("Run without an advertised URL succeeded")
	}
}

// An unreachable coordinator does not stop the edge from shutting down.
func TestRunStopsWhileCoordinatorIsDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Coordinator = url; c.Advertise = "http://x" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
