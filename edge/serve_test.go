package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

func get(t testing.TB, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func shardPath(k content.ShardRef) string {
	return wire.ShardURL("", k)
}

func TestServesHeldShardsAnd404sOthers(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k := f.key(1, 4, 17)
	mustStore(t, e, f, k, false)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	b, node, err := fetchShard(context.Background(), srv.Client(), srv.URL, f.key(1, 4, 17))
	if err != nil {
		t.Fatal(err)
	}
	if node != e.ID() {
		t.Fatalf("node header %q", node)
	}
	if _, err := verifyMessage(f.m, k, b); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if e.BytesServed() != int64(len(b)) {
		t.Fatalf("BytesServed = %d, want %d", e.BytesServed(), len(b))
	}
	for path, status := range map[string]int{
		shardPath(f.key(1, 4, 16)):                         404,
		"/v1/shards/" + f.id.String() + "/1/4/256":         400,
		"/v1/shards/" + f.id.String() + "/1/-4/1":          400,
		"/v1/shards/xyz/1/4/1":                             400,
		"/v1/shards/" + strings.Repeat("0", 64) + "/0/0/0": 404,
	} {
		rec := get(t, e.Handler(), path)
		if rec.Code != status || !strings.Contains(rec.Header().Get("Content-Type"), "json") || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s, want %d with a JSON error", path, rec.Code, rec.Body, status)
		}
	}
}

func TestFaultsProduceShardsViewersReject(t *testing.T) {
	f := sampleFixture(t)
	for _, fault := range []Fault{FlipBits, Truncate, WrongIndex} {
		t.Run(fault.String(), func(t *testing.T) {
			for _, withSibling := range []bool{true, false} {
				e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Fault = fault })
				k := f.key(0, 2, 3)
				mustStore(t, e, f, k, false)
				if withSibling {
					mustStore(t, e, f, f.key(0, 2, 20), false)
				}
				rec := get(t, e.Handler(), shardPath(k))
				if rec.Code != 200 {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				msg, err := content.DecodeShardMessage(rec.Body.Bytes())
				if err == nil {
					if msg.Index != k.Shard {
						t.Fatalf("labelled %d, asked %d", msg.Index, k.Shard)
					}
					err = content.VerifyShard(f.m, k.Rendition, k.Segment, msg.Shard)
				}
				if err == nil {
					t.Fatalf("%v edge (sibling %v) sent a shard that verifies", fault, withSibling)
				}
				// Its own store is untouched.
				b, _ := e.readShard(k)
				if _, err := verifyMessage(f.m, k, b); err != nil {
					t.Fatalf("fault damaged the stored shard: %v", err)
				}
			}
		})
	}
}

func TestSlowDripStallsUntilTheRequestEnds(t *testing.T) {
	f := sampleFixture(t)
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		e := newTestEdge(t, dir, func(c *Config) { c.Fault = SlowDrip })
		k := f.key(0, 0, 1)
		mustStore(t, e, f, k, false)
		ctx, cancel := context.WithCancel(context.Background())
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, shardPath(k), nil).WithContext(ctx))
		}()
		time.Sleep(time.Hour) // fake time: the handler has all the time it wants
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("slow-drip handler returned before the request ended")
		default:
		}
		if rec.Body.Len() != slowDripBytes || !rec.Flushed {
			t.Fatalf("sent %d bytes (flushed %v), want %d flushed", rec.Body.Len(), rec.Flushed, slowDripBytes)
		}
		cancel()
		<-done
	})
}

// The cap bounds the sum of all concurrent responses: in fake time, N
// bytes take (N - burst)/cap seconds however many clients ask at once.
func TestUploadCapBoundsThroughput(t *testing.T) {
	f := sampleFixture(t)
	dir := t.TempDir()
	const capBytes = 40_000 // bytes per second
	synctest.Test(t, func(t *testing.T) {
		e := newTestEdge(t, dir, func(c *Config) { c.UploadCapBytes = capBytes })
		var keys []content.ShardRef
		for i := 0; i < 24; i++ {
			k := f.key(1, 5, i)
			mustStore(t, e, f, k, false)
			keys = append(keys, k)
		}
		start := time.Now()
		var wg sync.WaitGroup
		var total int64
		var mu sync.Mutex
		for _, k := range keys {
			wg.Go(func() {
				rec := get(t, e.Handler(), shardPath(k))
				mu.Lock()
				total += int64(rec.Body.Len())
				mu.Unlock()
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if total != e.BytesServed() || total < 10*capBytes/4 {
			t.Fatalf("served %d bytes (BytesServed %d)", total, e.BytesServed())
		}
		lower := time.Duration(float64(total-int64(e.burst)) / capBytes * float64(time.Second))
		upper := time.Duration(float64(total) / capBytes * float64(time.Second))
		if elapsed < lower || elapsed > upper {
			t.Fatalf("%d bytes took %v at %d B/s, want within [%v, %v]", total, elapsed, capBytes, lower, upper)
		}
		if counter(t, e, "swarmcast_edge_throttle_waits_total") == 0 {
			t.Fatal("no throttle waits counted")
		}
	})
}

func TestEdgeOnIPv6Loopback(t *testing.T) {
	testenv.RequireIPv6Loopback(t)
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k := f.key(0, 1, 2)
	mustStore(t, e, f, k, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Bind one address, advertise another name for it.
	srv, err := httpserve.Listen(ctx, "[::1]:0", "", e.Handler(), e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.Advertise, "http://[::1]:") {
		t.Fatalf("advertised %q", srv.Advertise)
	}
	b, _, err := fetchShard(ctx, http.DefaultClient, srv.Advertise, f.key(0, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyMessage(f.m, k, b); err != nil {
		t.Fatal(err)
	}
}

func TestBindAndAdvertiseDiffer(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	mustStore(t, e, f, f.key(0, 1, 2), false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := httpserve.Listen(ctx, "127.0.0.1:0", "http://edge.example:8443/", e.Handler(), e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Advertise != "http://edge.example:8443" {
		t.Fatalf("advertise %q", srv.Advertise)
	}
	if _, _, err := fetchShard(ctx, http.DefaultClient, "http://"+srv.Addr(), f.key(0, 1, 2)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEdgeServeShard(b *testing.B) {
	f := sampleFixture(b)
	e := newTestEdge(b, b.TempDir(), nil) // unlimited upload
	var keys []content.ShardRef
	for k := range f.shards {
		if k.Rendition == 1 && k.Segment < 4 {
			mustStore(b, e, f, k, false)
			keys = append(keys, k)
		}
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	hc := wire.NewHTTPClient()
	size := int64(len(f.shards[keys[0]]))
	b.SetBytes(size)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			i++
			resp, err := hc.Get(srv.URL + shardPath(k))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
