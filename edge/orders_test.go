package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// getShard GETs k from the edge's handler with optional order headers and
// returns the body and the decoded receipt.
func getShard(t *testing.T, h http.Handler, k content.ShardRef, limit *wire.OrderLimit, order *wire.Order) ([]byte, wire.ServedShardReceipt) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, shardPath(k), nil)
	if limit != nil {
		req.Header.Set(wire.HeaderOrderLimit, wire.EncodeHeader(limit))
	}
	if order != nil {
		req.Header.Set(wire.HeaderOrder, wire.EncodeHeader(order))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", shardPath(k), rec.Code, rec.Body)
	}
	rc, err := wire.CheckShardReceipt(rec.Header().Get(wire.HeaderReceipt), wire.NodeID(rec.Header().Get(wire.HeaderNode)), k, rec.Body.Bytes())
	if err != nil {
		t.Fatalf("receipt header: %v", err)
	}
	return rec.Body.Bytes(), *rc
}

func TestReceiptsVerifyAndAreSignedOnce(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k := f.key(1, 2, 5)
	mustStore(t, e, f, k, false)
	for range 5 {
		body, rc := getShard(t, e.Handler(), k, nil, nil)
		if _, err := content.DecodeShardMessage(body); err != nil {
			t.Fatal(err)
		}
		if err := wire.VerifyShardReceipt(&rc, body); err != nil || rc.Edge != e.ID() || rc.Video != f.id ||
			rc.Rendition != 1 || rc.Segment != 2 || rc.Shard != 5 {
			t.Fatalf("receipt %+v does not verify for this shard: %v", rc, err)
		}
	}
	if got := counter(t, e, "swarmcast_edge_receipts_signed_total"); got != 1 {
		t.Errorf("signed %v receipts for 5 responses of one cached shard, want 1", got)
	}
	if got := counter(t, e, "swarmcast_edge_unpaid_bytes_total"); got != float64(5*len(f.shards[k])) {
		t.Errorf("unpaid bytes %v, want every byte served without a limit (%d)", got, 5*len(f.shards[k]))
	}
}

func TestLyingEdgeReceiptProvesBadShard(t *testing.T) {
	f := sampleFixture(t)
	for _, fault := range []Fault{FlipBits, Truncate, WrongIndex} {
		t.Run(fault.String(), func(t *testing.T) {
			e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Fault = fault })
			k := f.key(0, 1, 3)
			mustStore(t, e, f, k, false)
			mustStore(t, e, f, f.key(0, 1, 4), false)
			body, rc := getShard(t, e.Handler(), k, nil, nil)
			if err := wire.ProveBadShard(f.m, &rc, body); err != nil {
				t.Fatalf("the lie is not provable from the receipt: %v", err)
			}
		})
	}
}

// orderParties are a coordinator and a viewer that sign limits and orders.
type orderParties struct {
	coordPub ed25519.PublicKey
	coord    ed25519.PrivateKey
	viewer   identity.Identity
}

func newOrderParties() orderParties {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	return orderParties{coordPub: pub, coord: priv, viewer: identity.New()}
}

func (p orderParties) limit(serial byte, edge wire.NodeID, maxBytes int64, expires time.Time) wire.OrderLimit {
	l := wire.OrderLimit{Serial: wire.Serial{serial}, Edge: edge, Viewer: p.viewer.ID, Video: content.VideoID{0x76}, MaxBytes: maxBytes, ExpiresUnixMs: expires.UnixMilli()}
	wire.SignOrderLimit(p.coord, &l)
	return l
}

func (p orderParties) order(serial byte, amount int64) *wire.Order {
	o := wire.Order{Serial: wire.Serial{serial}, Amount: amount}
	wire.SignOrder(p.viewer.Key, &o)
	return &o
}

func TestOrderBookKeepsLargestAndRejectsForgeries(t *testing.T) {
	p := newOrderParties()
	now := time.Unix(1_000_000, 0)
	b := newOrderBook("me", p.coordPub)
	l := p.limit(1, "me", 1000, now.Add(time.Minute))
	steps := []struct {
		name  string
		limit wire.OrderLimit
		order *wire.Order
		want  orderResult
	}{
		{"first request, no order", l, nil, orderNoOrder},
		{"first order", l, p.order(1, 100), orderAccepted},
		{"smaller order", l, p.order(1, 50), orderNotLarger},
		{"larger order", l, p.order(1, 300), orderAccepted},
		{"forged order", l, func() *wire.Order {
			o := wire.Order{Serial: wire.Serial{1}, Amount: 900}
			wire.SignOrder(identity.New().Key, &o)
			return &o
		}(), orderBadOrder},
		{"over the limit", l, p.order(1, 1001), orderOverLimit},
		{"limit for another edge", p.limit(2, "other", 1000, now.Add(time.Minute)), p.order(2, 10), orderWrongEdge},
		{"expired limit", p.limit(3, "me", 1000, now), p.order(3, 10), orderExpired},
		{"limit signed by someone else", func() wire.OrderLimit {
			l := p.limit(4, "me", 1000, now.Add(time.Minute))
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			wire.SignOrderLimit(other, &l)
			return l
		}(), p.order(4, 10), orderBadLimit},
		{"forged limit without an order", func() wire.OrderLimit {
			l := p.limit(6, "me", 1000, now.Add(time.Minute))
			l.Signature = make([]byte, ed25519.SignatureSize)
			return l
		}(), nil, orderBadLimit},
		{"same serial, inflated limit", func() wire.OrderLimit {
			l2 := l
			l2.MaxBytes = 1 << 40
			return l2
		}(), p.order(1, 5000), orderBadLimit},
	}
	for _, s := range steps {
		if got := b.offer(&s.limit, s.order, now); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
	}
	if len(b.pairs) != 1 || b.pairs[wire.Serial{1}].Order.Amount != 300 {
		t.Fatalf("book holds %+v, want only serial 1 at 300 bytes", b.pairs)
	}

	// Without any coordinator key nothing is kept, genuine or not: the
	// edge cannot tell them apart.
	u := newOrderBook("me", nil)
	forged := p.limit(5, "me", 1000, now.Add(time.Minute))
	forged.Signature = []byte("not a signature")
	genuine := p.limit(6, "me", 1000, now.Add(time.Minute))
	for _, l := range []wire.OrderLimit{forged, genuine} {
		if got := u.offer(&l, p.order(l.Serial[0], 10), now); got != orderUnverifiable {
			t.Errorf("without a coordinator key: %s, want %s", got, orderUnverifiable)
		}
		if got := u.offer(&l, nil, now); got != orderUnverifiable {
			t.Errorf("without a coordinator key, no order: %s, want %s", got, orderUnverifiable)
		}
	}
	// The key a coordinator names at registration makes its limits genuine.
	u.learnKey(0, p.coordPub)
	if got := u.offer(&genuine, p.order(6, 10), now); got != orderAccepted {
		t.Errorf("with the learnt key: %s, want accepted", got)
	}
	if got := u.offer(&forged, p.order(5, 10), now); got != orderBadLimit {
		t.Errorf("forged limit with the learnt key: %s, want %s", got, orderBadLimit)
	}
	if len(u.pairs) != 1 {
		t.Errorf("book holds %d pairs, want the genuine one", len(u.pairs))
	}
}

// One viewer key, even with genuine limits, holds at most its share of the
// book; other viewers are still paid.
func TestOrderBookBoundsOneViewer(t *testing.T) {
	p := newOrderParties()
	now := time.Unix(1_000_000, 0)
	b := newOrderBook("me", p.coordPub)
	for i := range maxPairsPerViewer + 10 {
		l := p.limit(0, "me", 1000, now.Add(time.Minute))
		l.Serial = wire.Serial{byte(i), byte(i >> 8), 0xee}
		wire.SignOrderLimit(p.coord, &l)
		o := wire.Order{Serial: l.Serial, Amount: 10}
		wire.SignOrder(p.viewer.Key, &o)
		want := orderAccepted
		if i >= maxPairsPerViewer {
			want = orderTooManyPairs
		}
		if got := b.offer(&l, &o, now); got != want {
			t.Fatalf("serial %d: %s, want %s", i, got, want)
		}
	}
	other := newOrderParties()
	other.coord, other.coordPub = p.coord, p.coordPub
	if got := b.offer(ptr(other.limit(1, "me", 1000, now.Add(time.Minute))), other.order(1, 10), now); got != orderAccepted {
		t.Errorf("another viewer after the first filled its share: %s, want accepted", got)
	}
	if len(b.pairs) != maxPairsPerViewer+1 || b.byViewer[p.viewer.ID] != maxPairsPerViewer {
		t.Errorf("book holds %d pairs (%d of the first viewer)", len(b.pairs), b.byViewer[p.viewer.ID])
	}
	// Settling frees the share.
	b.nextBatch(now.Add(2*time.Minute), true, mrand.New(mrand.NewSource(1)))
	if len(b.byViewer) != 0 {
		t.Errorf("per-viewer counts after settling everything: %v", b.byViewer)
	}
}

func TestOrderHeadersAndFinalOrdersOverHTTP(t *testing.T) {
	f := sampleFixture(t)
	p := newOrderParties()
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.CoordinatorKey, c.Now = p.coordPub, clock.Now })
	k := f.key(1, 0, 2)
	mustStore(t, e, f, k, false)
	l := p.limit(7, e.ID(), 1<<20, clock.Now().Add(time.Minute))
	getShard(t, e.Handler(), k, &l, nil)
	getShard(t, e.Handler(), k, &l, p.order(7, 500))
	other := p.limit(8, "someone-else", 1<<20, clock.Now().Add(time.Minute))
	getShard(t, e.Handler(), k, &other, p.order(8, 500)) // still served
	if got := counter(t, e, "swarmcast_edge_orders_total", "result", "wrong_edge"); got != 1 {
		t.Errorf("wrong_edge orders %v, want 1", got)
	}
	post := func(body string) int {
		req := httptest.NewRequest(http.MethodPost, wire.PathOrders, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	final, _ := json.Marshal(wire.SettlementPair{Limit: l, Order: *p.order(7, 900)})
	if code := post(string(final)); code != http.StatusOK {
		t.Fatalf("final order: %d", code)
	}
	otherFinal, _ := json.Marshal(wire.SettlementPair{Limit: other, Order: *p.order(8, 900)})
	for _, bad := range []string{"", "{", `{"limit":{},"order":{},"x":1}`, string(otherFinal), string(final) + "{}", strings.Repeat(" ", maxOrderBody+1)} {
		if code := post(bad); code/100 != 4 {
			t.Errorf("bad final order %.40q: status %d, want 4xx", bad, code)
		}
	}
	if n, bytes := e.unsettled(); n != 1 || bytes != 900 {
		t.Fatalf("unsettled %d pairs, %d bytes; want the one serial at 900", n, bytes)
	}
}

// testSettler is a coordinator's settle route that fails the first
// failFirst attempts.
type testSettler struct {
	mu        sync.Mutex
	failFirst int
	auth      []string
	batches   []wire.SettlementBatch
}

func (s *testSettler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.PathSettle {
		wire.WriteError(w, http.StatusNotFound, "no route")
		return
	}
	var b wire.SettlementBatch
	if !wire.DecodeJSON(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.batches = append(s.batches, b)
	if len(s.batches) <= s.failFirst {
		wire.WriteError(w, http.StatusServiceUnavailable, "database busy")
		return
	}
	wire.WriteJSON(w, wire.SettlementResult{BatchID: b.ID, Accepted: len(b.Pairs)})
}

func TestSettlesDueOrdersWithIdempotentRetry(t *testing.T) {
	p := newOrderParties()
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	settler := &testSettler{failFirst: 1}
	srv := httptest.NewServer(settler)
	defer srv.Close()
	dir := t.TempDir()
	id := identity.New()
	e := newTestEdge(t, dir, func(c *Config) {
		c.Identity, c.CoordinatorKey, c.Now, c.Coordinator, c.Token = id, p.coordPub, clock.Now, srv.URL, "edge-token"
	})
	for serial := byte(1); serial <= 3; serial++ {
		l := p.limit(serial, e.ID(), 1000, clock.Now().Add(time.Minute))
		if res := e.offerOrder(&l, p.order(serial, int64(serial)*100)); res != orderAccepted {
			t.Fatalf("order %d: %s", serial, res)
		}
	}
	// Serial 4 has reached its limit's MaxBytes: due at once.
	full := p.limit(4, e.ID(), 400, clock.Now().Add(time.Hour))
	e.offerOrder(&full, p.order(4, 400))
	ctx := context.Background()

	if err := e.settle(ctx, false); err == nil {
		t.Fatal("the first settlement attempt should have failed")
	}
	if len(settler.batches) != 1 || len(settler.batches[0].Pairs) != 1 || settler.batches[0].Pairs[0].Limit.Serial != (wire.Serial{4}) {
		t.Fatalf("first attempt %+v, want only the full serial 4 (the others' limits are live)", settler.batches)
	}
	// A restart between the failure and the retry keeps the batch.
	if err := e.saveOrders(); err != nil {
		t.Fatal(err)
	}
	e2 := newTestEdge(t, dir, func(c *Config) {
		c.Identity, c.CoordinatorKey, c.Now, c.Coordinator, c.Token = id, p.coordPub, clock.Now, srv.URL, "edge-token"
	})
	if n, bytes := e2.unsettled(); n != 3 || bytes != 600 {
		t.Fatalf("after restart: %d unsettled pairs, %d bytes; want 3 and 600", n, bytes)
	}
	if err := e2.settle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(settler.batches) != 2 || settler.batches[1].ID != settler.batches[0].ID {
		t.Fatalf("retry used batch id %q, want the failed batch's %q", settler.batches[len(settler.batches)-1].ID, settler.batches[0].ID)
	}
	// Once the limits expire the rest settles in one new batch.
	clock.Advance(2 * time.Minute)
	if err := e2.settle(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(settler.batches) != 3 || len(settler.batches[2].Pairs) != 3 || settler.batches[2].ID == settler.batches[0].ID {
		t.Fatalf("batches %+v, want a third, new batch of the 3 expired serials", settler.batches)
	}
	for _, a := range settler.auth {
		if a != "Bearer edge-token" {
			t.Errorf("settlement sent Authorization %q, want the edge's API token", a)
		}
	}
	if n, _ := e2.unsettled(); n != 0 {
		t.Errorf("%d pairs left after settling", n)
	}
	// A settled serial is never settled again, even with a larger order.
	if res := e2.offerOrder(&full, p.order(4, 400)); res != orderSettled {
		t.Errorf("order for a settled serial: %s", res)
	}
	if got := counter(t, e2, "swarmcast_edge_settlement_pairs_total", "result", "accepted"); got != 4 {
		t.Errorf("accepted pairs %v, want 4", got)
	}
	// Nothing due: no POST.
	if err := e2.settle(ctx, true); err != nil || len(settler.batches) != 3 {
		t.Errorf("settle with nothing due: %v, %d batches", err, len(settler.batches))
	}
}

func TestRunSettlesEverythingOnShutdown(t *testing.T) {
	p := newOrderParties()
	settler := &testSettler{}
	mux := http.NewServeMux()
	mux.Handle("POST "+wire.PathSettle, settler)
	mux.HandleFunc("POST "+wire.PathRegister, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, wire.RegisterResponse{HeartbeatIntervalMS: 1000})
	})
	mux.HandleFunc("POST "+wire.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) { wire.WriteJSON(w, wire.HeartbeatResponse{}) })
	mux.HandleFunc("POST "+wire.PathLeave, func(w http.ResponseWriter, r *http.Request) { wire.WriteJSON(w, struct{}{}) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	e := newTestEdge(t, dir, func(c *Config) {
		c.Coordinator, c.Advertise, c.CoordinatorKey, c.Token = srv.URL, "http://127.0.0.1:1", p.coordPub, "tok"
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	l := p.limit(9, e.ID(), 1<<20, time.Now().Add(time.Hour)) // live: only shutdown settles it
	if res := e.offerOrder(&l, p.order(9, 12345)); res != orderAccepted {
		t.Fatal(res)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	settler.mu.Lock()
	defer settler.mu.Unlock()
	if len(settler.batches) != 1 || len(settler.batches[0].Pairs) != 1 || settler.batches[0].Pairs[0].Order.Amount != 12345 {
		t.Fatalf("batches at shutdown %+v, want the one live order", settler.batches)
	}
	restarted := newTestEdge(t, dir, func(c *Config) { c.Identity = e.cfg.Identity })
	if n, _ := restarted.unsettled(); n != 0 {
		t.Errorf("%d unsettled pairs persisted after a clean settlement", n)
	}
}
