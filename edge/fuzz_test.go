package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// FuzzShardPath drives arbitrary request paths through the handler: every
// answer is a 2xx or a 4xx, never a 5xx or a panic.
func FuzzShardPath(f *testing.F) {
	fx := sampleFixture(f)
	e := newTestEdge(f, f.TempDir(), nil)
	mustStore(f, e, fx, fx.key(0, 0, 0), false)
	for _, s := range []string{
		shardPath(fx.key(0, 0, 0)),
		shardPath(fx.key(0, 0, 1)),
		"/v1/shards/" + fx.id.String() + "/255/1048575/255",
		"/v1/shards/" + fx.id.String() + "/0/0/256",
		"/v1/shards/" + fx.id.String() + "/-0/+0/0x0",
		"/v1/shards/" + fx.id.String() + "/0/0/0/extra",
		"/v1/shards/00/0/0/0",
	} {
		f.Add(s)
	}
	h := e.Handler()
	f.Fuzz(func(t *testing.T, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t?#%") || strings.HasPrefix(path, "/metrics") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://edge"+path, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	})
}

// FuzzOrders drives arbitrary order headers and final-order bodies through
// the handler: shard requests are always served, a final order is a 2xx or
// a 4xx, and nothing but a validly signed order enters the book.
func FuzzOrders(f *testing.F) {
	fx := sampleFixture(f)
	p := newOrderParties()
	e := newTestEdge(f, f.TempDir(), func(c *Config) { c.CoordinatorKey = p.coordPub })
	k := fx.key(0, 0, 0)
	mustStore(f, e, fx, k, false)
	l := p.limit(1, e.ID(), 1<<20, time.Now().Add(time.Hour))
	final, _ := json.Marshal(wire.SettlementPair{Limit: l, Order: *p.order(1, 100)})
	f.Add(wire.EncodeHeader(l), wire.EncodeHeader(p.order(1, 10)), string(final))
	f.Add("e30", "", `{"limit":{"serial":"00"},"order":{}}`)
	f.Add(strings.Repeat("A", 5000), "!!", "[]")
	h := e.Handler()
	f.Fuzz(func(t *testing.T, limitHdr, orderHdr, body string) {
		req := httptest.NewRequest(http.MethodGet, shardPath(k), nil)
		req.Header.Set(wire.HeaderOrderLimit, limitHdr)
		req.Header.Set(wire.HeaderOrder, orderHdr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("shard request with order headers %q / %q: %d", limitHdr, orderHdr, rec.Code)
		}
		req = httptest.NewRequest(http.MethodPost, wire.PathOrders, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("final order %q: %d %s", body, rec.Code, rec.Body)
		}
		e.ordersMu.Lock()
		defer e.ordersMu.Unlock()
		for _, pair := range e.orders.pairs {
			if wire.VerifyOrderLimit(p.coordPub, &pair.Limit) != nil || wire.VerifyOrder(&pair.Limit, &pair.Order) != nil {
				t.Fatalf("an unverified pair entered the book: %+v", pair)
			}
		}
	})
}
