package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/wire"
)

// The entries long-poll in fake time: it answers at once when entries from
// SEQ exist, wakes on the next append, waits exactly wait_ms when nothing
// comes, answers at once for a sealed chain, refuses wait_ms over 10 s, and
// past MaxWaiters answers 503 rather than queue.
func TestLiveEntriesLongPoll(t *testing.T) {
	store := testStore(t) // opened outside the bubble: its pool is not the bubble's
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		admin, err := accounting.BootstrapAdmin(ctx, store, "root", rootPassword, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Seed: 1, Log: quietLog(), Store: store, Accounting: accounting.Config{AuditInterval: -1}, Live: live.Config{MaxWaiters: 1}})
		if err != nil {
			t.Fatal(err)
		}
		handler := c.Handler()
		o := liveOrigin{id: newTestNode()}
		if err := c.AllowOrigin(ctx, o.id.ID); err != nil {
			t.Fatal(err)
		}
		signer := wire.NewNodeSigner(o.id.Key, time.Now)
		body, _ := json.Marshal(wire.RegisterRequest{NodeID: o.id.ID, Role: wire.RoleOrigin, Addr: "http://192.0.2.1:7100"})
		req := httptest.NewRequest("POST", wire.PathRegister, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signer.SignRequest(req, body)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("register: %d %s", rec.Code, rec.Body)
		}
		lv := c.Live()
		created, err := lv.CreateChannel(ctx, admin.ID, wire.CreateChannelRequest{Name: "poll"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lv.AuthorizeIngest(o.id.ID, created.StreamKey); err != nil {
			t.Fatal(err)
		}
		tc := newTestChain(t, o, created.Channel.ID)
		chain := tc.g.ID()
		if _, err := lv.StartChain(ctx, o.id.ID, wire.LiveStartRequest{Genesis: tc.g.Encode(), Key: tc.key[:]}); err != nil {
			t.Fatal(err)
		}

		type answer struct {
			code    int
			entries [][]byte
			header  http.Header
			after   time.Duration
		}
		poll := func(query string) <-chan answer {
			out := make(chan answer, 1)
			start := time.Now()
			go func() {
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, httptest.NewRequest("GET", expandChain(wire.PathLiveEntries, chain)+query, nil))
				a := answer{code: rec.Code, header: rec.Header(), after: time.Since(start)}
				if rec.Code == 200 {
					var err error
					if a.entries, err = wire.DecodeLiveEntries(rec.Body.Bytes()); err != nil {
						t.Error(err)
					}
				}
				out <- a
			}()
			return out
		}

		// Nothing yet: waits; the append wakes it at once.
		waiting := poll("?from=0&wait_ms=5000")
		synctest.Wait()
		select {
		case a := <-waiting:
			t.Fatalf("answered before any entry: %+v", a)
		default:
		}
		// A second long-poll past MaxWaiters (1) is refused, not queued.
		if a := <-poll("?from=0&wait_ms=5000"); a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.after != 0 {
			t.Fatalf("long-poll past the bound: %+v, want an immediate 503 with Retry-After", a)
		}
		e0 := tc.entry(o, 0, 1)
		if err := lv.AppendEntry(ctx, o.id.ID, chain, e0.Encode()); err != nil {
			t.Fatal(err)
		}
		tc.entries = append(tc.entries, e0)
		if a := <-waiting; a.code != 200 || len(a.entries) != 1 || !bytes.Equal(a.entries[0], e0.Encode()) || a.after != 0 {
			t.Fatalf("woken long-poll: %+v", a)
		}

		// Entries from SEQ exist: at once, without waiting.
		if a := <-poll("?from=0&wait_ms=5000"); a.code != 200 || len(a.entries) != 1 || a.after != 0 {
			t.Fatalf("held entries: %+v", a)
		}
		// Nothing comes: empty after exactly wait_ms.
		if a := <-poll("?from=1&wait_ms=2500"); a.code != 200 || len(a.entries) != 0 || a.after != 2500*time.Millisecond {
			t.Fatalf("idle long-poll: %+v, want empty after 2.5 s", a)
		}
		// Bad wait_ms and from.
		if a := <-poll("?from=1&wait_ms=10001"); a.code != http.StatusBadRequest {
			t.Fatalf("wait_ms over 10 s: %+v", a)
		}
		if a := <-poll("?wait_ms=10"); a.code != http.StatusBadRequest {
			t.Fatalf("no from: %+v", a)
		}
		// The seal wakes a waiting poll; after it polls answer at once.
		waiting = poll("?from=1&wait_ms=9000")
		synctest.Wait()
		if _, err := lv.EndChannel(ctx, admin, created.Channel.ID); err != nil {
			t.Fatal(err)
		}
		if a := <-waiting; a.code != 200 || len(a.entries) != 0 || a.after != 0 {
			t.Fatalf("poll woken by the end: %+v", a)
		}
		if a := <-poll("?from=1&wait_ms=9000"); a.code != 200 || a.after != 0 {
			t.Fatalf("poll of a sealed chain: %+v", a)
		}
	})
}

// expandChain fills a route's {chain} with chain's hex.
func expandChain(pattern string, chain content.VideoID) string {
	return strings.Replace(pattern, "{chain}", chain.String(), 1)
}
