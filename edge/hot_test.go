package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// hotServer serves e as cmd/swarmcast and testnet do: httpserve.ListenHot
// with ServeHot first and Handler for the rest.
func hotServer(t testing.TB, e *Edge) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := httpserve.ListenHot(ctx, "127.0.0.1:0", "", e.ServeHot, e.Handler(), e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		_ = srv.Wait()
	})
	return srv.Advertise
}

type answer struct {
	status int
	body   string
	header map[string]string
}

func ask(t *testing.T, method, url string, h http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, body: string(b), header: map[string]string{}}
	for _, k := range []string{"Content-Type", "Content-Length", wire.HeaderNode, wire.HeaderReceipt, "X-Content-Type-Options"} {
		a.header[k] = resp.Header.Get(k)
	}
	return a
}

// The hot path answers every shard request as serveShard does (status,
// body, headers: a viewer or an audit cannot tell them apart), takes the
// same orders and counts the same metrics; what it does not take falls
// through to serveShard untouched.
func TestHotPathAnswersAsServeShard(t *testing.T) {
	f := sampleFixture(t)
	p := newOrderParties()
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	id := identity.New() // both edges sign with one key: ed25519 is deterministic
	mk := func() *Edge {
		e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Identity, c.CoordinatorKey, c.Now = id, p.coordPub, clock.Now })
		for _, k := range []content.ShardRef{f.key(1, 0, 2), f.key(1, 0, 3), f.key(0, 2, 1)} {
			mustStore(t, e, f, k, false)
		}
		return e
	}
	plain, hot := mk(), mk()
	plainSrv := httptest.NewServer(plain.Handler())
	defer plainSrv.Close()
	hotURL := hotServer(t, hot)

	k := f.key(1, 0, 2)
	l := p.limit(7, id.ID, 1<<20, clock.Now().Add(time.Minute))
	other := p.limit(8, "someone-else", 1<<20, clock.Now().Add(time.Minute))
	paid := func(l *wire.OrderLimit, o *wire.Order) http.Header {
		h := http.Header{}
		h.Set(wire.HeaderOrderLimit, wire.EncodeHeader(l))
		if o != nil {
			h.Set(wire.HeaderOrder, wire.EncodeHeader(o))
		}
		return h
	}
	cases := []struct {
		method, path string
		header       http.Header
	}{
		{"GET", shardPath(k), nil},
		{"GET", shardPath(k), nil}, // the cached receipt
		{"GET", shardPath(f.key(1, 0, 3)), paid(&l, nil)},
		{"GET", shardPath(k), paid(&l, p.order(7, 500))},
		{"GET", shardPath(k), paid(&other, p.order(8, 500))},
		{"GET", shardPath(k), http.Header{wire.HeaderOrderLimit: {"not base64"}}},
		{"GET", shardPath(f.key(0, 2, 1)), nil},
		{"HEAD", shardPath(k), nil},
		{"GET", shardPath(f.key(1, 4, 16)), nil}, // not held
		{"GET", shardPath(content.SegmentRef{Rendition: 0}.Shard(0)), nil},
		{"GET", "/v1/shards/" + f.id.String() + "/1/4/256", nil},
		{"GET", "/v1/shards/" + f.id.String() + "/1/-4/1", nil},
		{"GET", "/v1/shards/" + f.id.String() + "/01/0/2", nil},
		{"GET", "/v1/shards/xyz/1/4/1", nil},
		{"POST", shardPath(k), nil},
		{"GET", wire.PathHealth, nil},
	}
	for _, c := range cases {
		want := ask(t, c.method, plainSrv.URL+c.path, c.header)
		got := ask(t, c.method, hotURL+c.path, c.header)
		if got.status != want.status || got.body != want.body {
			t.Errorf("%s %s: hot %d (%d bytes), serveShard %d (%d bytes) %.200s", c.method, c.path, got.status, len(got.body), want.status, len(want.body), want.body)
		}
		for h, v := range want.header {
			if got.header[h] != v {
				t.Errorf("%s %s: %s %q, serveShard sends %q", c.method, c.path, h, got.header[h], v)
			}
		}
	}
	if plain.BytesServed() != hot.BytesServed() || hot.BytesServed() == 0 {
		t.Errorf("BytesServed %d on the hot path, %d through serveShard", hot.BytesServed(), plain.BytesServed())
	}
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"swarmcast_edge_requests_total", []string{"code", "200"}},
		{"swarmcast_edge_requests_total", []string{"code", "404"}},
		{"swarmcast_edge_requests_total", []string{"code", "400"}},
		{"swarmcast_edge_served_bytes_total", nil},
		{"swarmcast_edge_shards_served_total", nil},
		{"swarmcast_edge_unpaid_bytes_total", nil},
		{"swarmcast_edge_receipts_signed_total", nil},
		{"swarmcast_edge_orders_total", []string{"result", "accepted"}},
		{"swarmcast_edge_orders_total", []string{"result", "wrong_edge"}},
		{"swarmcast_edge_orders_total", []string{"result", "malformed"}},
		{"swarmcast_edge_orders_total", []string{"result", "no_order"}},
	} {
		if a, b := counter(t, hot, m.name, m.labels...), counter(t, plain, m.name, m.labels...); a != b {
			t.Errorf("%s%v: %v on the hot path, %v through serveShard", m.name, m.labels, a, b)
		}
	}
	if got := counter(t, hot, "swarmcast_edge_orders_total", "result", "accepted"); got == 0 {
		t.Error("the hot path accepted no order")
	}
}

// A corrupt cached copy is never vouched for on the hot path either: it
// falls through, and serveShard drops it and answers 404 without a receipt.
func TestHotPathNeverSignsCorruptBytes(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k := f.key(1, 1, 4)
	bad := []byte(string(f.shards[k]))
	bad[len(bad)/2] ^= 0x40
	if err := e.storeShard(k, bad, false); err != nil {
		t.Fatal(err)
	}
	a := ask(t, "GET", hotServer(t, e)+shardPath(k), nil)
	if a.status != http.StatusNotFound || a.header[wire.HeaderReceipt] != "" || counter(t, e, "swarmcast_edge_receipts_signed_total") != 0 {
		t.Fatalf("corrupt copy: %d, receipt %q; want 404 and nothing signed", a.status, a.header[wire.HeaderReceipt])
	}
	if _, _, err := e.readShardReceipt(k); err == nil {
		t.Fatal("the corrupt copy is still held")
	}
}

// Under an upload cap the hot path paces bodies through the shared bucket
// (the waits are counted) and still delivers every byte, verified.
func TestHotPathPacesUnderTheUploadCap(t *testing.T) {
	f := sampleFixture(t)
	const capBytes = 40_000 // bytes per second: the burst holds ~3 shards, the rest wait
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.UploadCapBytes = capBytes })
	var keys []content.ShardRef
	for i := 0; i < 6; i++ {
		k := f.key(1, 3, i)
		mustStore(t, e, f, k, false)
		keys = append(keys, k)
	}
	base := hotServer(t, e)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	for _, k := range keys {
		wg.Go(func() {
			b, _, err := fetchShard(t.Context(), http.DefaultClient, base, k)
			if err == nil {
				_, err = verifyMessage(f.m, k, b)
			}
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += int64(len(b))
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != e.BytesServed() || counter(t, e, "swarmcast_edge_shards_served_total") != float64(len(keys)) {
		t.Fatalf("received %d bytes, BytesServed %d, shards served %v", total, e.BytesServed(), counter(t, e, "swarmcast_edge_shards_served_total"))
	}
	if counter(t, e, "swarmcast_edge_throttle_waits_total") == 0 {
		t.Fatal("no throttle waits counted: the cap was not applied")
	}
}

// BenchmarkEdgeServeHot is BenchmarkEdgeServeShard over the production
// server (httpserve.ListenHot); allocs/op include the client's.
func BenchmarkEdgeServeHot(b *testing.B) {
	f := sampleFixture(b)
	e := newTestEdge(b, b.TempDir(), nil)
	var keys []content.ShardRef
	for k := range f.shards {
		if k.Rendition == 1 && k.Segment < 4 {
			mustStore(b, e, f, k, false)
			keys = append(keys, k)
		}
	}
	benchShardServer(b, hotServer(b, e), keys, int64(len(f.shards[keys[0]])))
}

func benchShardServer(b *testing.B, base string, keys []content.ShardRef, size int64) {
	hc := wire.NewHTTPClient()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			i++
			resp, err := hc.Get(base + shardPath(k))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkEdgeShardHandler measures the handlers alone, no network:
// serveShard through net/http's interfaces (a discarding ResponseWriter)
// and ServeHot on a reused fasthttp.RequestCtx, as the server reuses it.
// allocs/op is the handler's own.
func BenchmarkEdgeShardHandler(b *testing.B) {
	f := sampleFixture(b)
	e := newTestEdge(b, b.TempDir(), nil)
	k := f.key(1, 2, 3)
	mustStore(b, e, f, k, false)
	path := shardPath(k)
	b.Run("net-http", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest(http.MethodGet, path, nil)
		h := e.Handler()
		b.ReportAllocs()
		b.SetBytes(int64(len(f.shards[k])))
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
	b.Run("hot", func(b *testing.B) {
		var c fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI(path)
		c.Init(&req, nil, nil)
		b.ReportAllocs()
		b.SetBytes(int64(len(f.shards[k])))
		for b.Loop() {
			c.Response.Reset()
			if !e.ServeHot(&c) {
				b.Fatal("not served")
			}
		}
	})
}

// BenchmarkEdgeShardHandlerCapped is the hot handler as `bench serve`
// runs the edge: the upload cap lifted (10 Tbit/s here; the handler alone
// outruns the bench's 100 Gbit/s), so the limiter takes
// every response's bytes but never makes one wait. allocs/op is the
// handler's own.
func BenchmarkEdgeShardHandlerCapped(b *testing.B) {
	f := sampleFixture(b)
	e := newTestEdge(b, b.TempDir(), func(c *Config) { c.UploadCapBytes = 10e12 / 8 })
	k := f.key(1, 2, 3)
	mustStore(b, e, f, k, false)
	var c fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI(shardPath(k))
	c.Init(&req, nil, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(f.shards[k])))
	for b.Loop() {
		c.Response.Reset()
		if !e.ServeHot(&c) {
			b.Fatal("not served")
		}
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
