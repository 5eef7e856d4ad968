package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

// fixture is the sample ingested under two titles into one store, shared by
// every test in the binary (ingest is the slow part).
type fixture struct {
	store *content.Store
	ids   []content.VideoID
}

func TestMain(m *testing.M) {
	if os.Getenv(killLoopChildEnv) != "" {
		os.Exit(runKillLoopChild())
	}
	samplestore.Main(m)
}

func sampleStore(t testing.TB) fixture {
	t.Helper()
	st, ids := samplestore.Store(t, "Alpha", "Beta")
	return fixture{store: st, ids: ids}
}

// published returns the publish entry (manifest bytes and key) of a video.
func (f fixture) published(t testing.TB, id content.VideoID) wire.PublishedVideo {
	t.Helper()
	m, err := f.store.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.store.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return wire.PublishedVideo{Manifest: m.Encode(), Key: key[:]}
}

// shardMessage builds the real encoded shard idx of a segment.
func (f fixture) shardMessage(t testing.TB, id content.VideoID, r, s, idx int) []byte {
	t.Helper()
	m, err := f.store.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := f.store.SegmentCiphertext(id, r, s)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := content.EncodeShards(m.Params, ct)
	if err != nil {
		t.Fatal(err)
	}
	leaves := content.ShardLeaves(shards)
	msg := content.ShardMessage{Video: id, Rendition: r, Segment: s, Shard: content.Shard{
		Index: idx, Data: shards[idx], Proof: content.InclusionProof(leaves, idx),
	}}
	return msg.Encode()
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a coordinator behind a real loopback server, on a fake clock.
type harness struct {
	t      testing.TB
	c      *Coordinator
	clock  *fakeClock
	srv    *httptest.Server
	client *wire.CoordinatorClient
	origin identity.Identity
	fix    fixture
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHarness starts a coordinator, registers an origin and publishes the
// sample videos.
func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with its Config changed by configure.
func newHarnessWith(t testing.TB, configure func(*Config)) *harness {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{Seed: 1, Now: clock.Now, Log: quietLog(), Store: testStore(t), Accounting: accounting.Config{AuditInterval: -1}}
	if configure != nil {
		configure(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	h := &harness{t: t, c: c, clock: clock, srv: srv, client: wire.NewCoordinatorClient(srv.URL, signingClient(srv.Client(), clock.Now)), origin: newTestNode(), fix: sampleStore(t)}
	ctx := context.Background()
	if err := h.c.AllowOrigin(ctx, h.origin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: h.origin.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	var videos []wire.PublishedVideo
	for _, id := range h.fix.ids {
		videos = append(videos, h.fix.published(t, id))
	}
	if err := h.client.Publish(ctx, wire.PublishRequest{OriginID: h.origin.ID, Videos: videos}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) video(i int) content.VideoID { return h.fix.ids[i] }

// edge registers an edge in region with the given inventory (a full
// heartbeat) and returns its id.
func (h *harness) edge(region string, inventory ...wire.ShardSet) wire.NodeID {
	h.t.Helper()
	id := newTestNode().ID
	ctx := context.Background()
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1", Region: region}); err != nil {
		h.t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: id, Full: true, Added: inventory})
	return id
}

func (h *harness) heartbeat(req wire.HeartbeatRequest) wire.HeartbeatResponse {
	h.t.Helper()
	resp, err := h.client.Heartbeat(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func (h *harness) lookup(req wire.LookupRequest) wire.LookupResponse {
	h.t.Helper()
	resp, err := h.client.Lookup(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// sourcesOf lists the node ids of a lookup's sources for segment seg.
func sourcesOf(resp wire.LookupResponse, seg int) []wire.NodeID {
	for _, s := range resp.Segments {
		if s.Segment == seg {
			var out []wire.NodeID
			for _, src := range s.Sources {
				out = append(out, src.NodeID)
			}
			return out
		}
	}
	return nil
}

// requireAPIError fails unless err is an *wire.APIError with status whose
// message mentions every phrase.
func requireAPIError(t testing.TB, err error, status int, phrases ...string) {
	t.Helper()
	var ae *wire.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error %d, got %v", status, err)
	}
	if ae.Status != status {
		t.Fatalf("want status %d, got %d: %s", status, ae.Status, ae.Message)
	}
	for _, p := range phrases {
		if !strings.Contains(strings.ToLower(ae.Message), strings.ToLower(p)) {
			t.Fatalf("error %q does not mention %q", ae.Message, p)
		}
	}
}

func set(video content.VideoID, r, s int, shards ...int) wire.ShardSet {
	return wire.ShardSet{Video: video, Rendition: r, Segment: s, Shards: shards}
}

var _ = fmt.Sprint

func (f fixture) mustManifest(t testing.TB, i int) *content.Manifest {
	t.Helper()
	m, err := f.store.Manifest(f.ids[i])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// call POSTs body to the handler in-process and returns the response body
// and whether the status was 200.
// call serves one POST in process, from 127.0.0.1, signed as the node the
// body names when the test holds its key (newTestNode).
func call(c *Coordinator, path string, body any) ([]byte, bool) {
	b, _ := json.Marshal(body)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Content-Type", "application/json")
	signersFor(c).sign(req)
	c.Handler().ServeHTTP(rec, req)
	return rec.Body.Bytes(), rec.Code == http.StatusOK
}

func bytesContains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// jsonStrict decodes b into v, rejecting unknown fields.
func jsonStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

// testStore is a fresh SQLite store in a temporary directory, accepting
// limits of any coordinator identity the test did not choose (the
// coordinator signs with a fresh key when Config.Identity is zero, so
// settlement tests that need a known key use openStore).
func testStore(tb testing.TB) *coordinatordb.DB {
	tb.Helper()
	return openStore(tb, "sqlite:"+filepath.Join(tb.TempDir(), "coordinator.db"), nil)
}
