package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// adminBenchNetwork is a coordinator with nodes nodes (all edges but
// one origin, each holding one shard of 20 random segments and with a
// reputation row) and videos videos of 3 renditions × 150 segments (a
// 5-minute title in 2 s segments), a ledger of ledgerTxs grants, an
// hour of load buckets, and an admin session. The clock is frozen.
func adminBenchNetwork(b *testing.B, nodes, videos, ledgerTxs int) (*Coordinator, string) {
	b.Helper()
	frozen := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	store := testStore(b)
	ctx := context.Background()
	if _, err := accounting.BootstrapAdmin(ctx, store, "root", rootPassword, frozen); err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{Seed: 1, Log: quietLog(), Now: func() time.Time { return frozen }, Store: store, Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	m := &content.Manifest{Params: content.DefaultParams(), TargetDuration: 2_000_000}
	for r := range 3 {
		rend := content.Rendition{Name: fmt.Sprintf("r%d", r), Bandwidth: 1_000_000, Width: 640, Height: 360}
		for range 150 {
			rend.Segments = append(rend.Segments, content.Segment{Duration: 2_000_000, Size: 250_000})
		}
		m.Renditions = append(m.Renditions, rend)
	}
	var ids []content.VideoID
	c.mu.Lock()
	for i := range videos {
		var seed [8]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		id := content.VideoID(sha256.Sum256(seed[:]))
		vm := *m
		vm.Title = fmt.Sprintf("Title %04d", i)
		c.st.addVideo(coordinatordb.CatalogueVideo{ID: id}, &vm)
		ids = append(ids, id)
	}
	for i := range nodes {
		role := wire.RoleEdge
		if i == 0 {
			role = wire.RoleOrigin
		}
		n := c.st.register(wire.RegisterRequest{NodeID: newTestNode().ID, Role: role, Addr: "http://127.0.0.1:1", Region: "eu"}, frozen, rng.Uint64())
		if role == wire.RoleEdge {
			for range 20 {
				key := content.SegmentRef{Video: ids[rng.Intn(len(ids))], Rendition: rng.Intn(3), Segment: rng.Intn(150)}
				c.st.setHolding(n, key, maskOf(rng.Intn(32)))
			}
			n.servedTotal = rng.Int63n(1 << 30)
		}
	}
	c.mu.Unlock()
	for id := range c.st.nodes {
		if _, err := store.RecordUptime(ctx, id, true, frozen); err != nil {
			b.Fatal(err)
		}
	}
	for i := range ledgerTxs {
		if err := store.Grant(ctx, 1+int64(i%2), 1, "bench", frozen); err != nil { // the mint and revenue accounts
			b.Fatal(err)
		}
	}
	c.overviewMu.Lock()
	c.overview = NewLoadOverview(defaultOverviewBucket, defaultOverviewWindow, frozen.Add(-time.Hour))
	for i := range 360 {
		at := frozen.Add(-time.Hour + time.Duration(i)*defaultOverviewBucket)
		c.overview.RecordServed(wire.RoleEdge, rng.Int63n(1<<28), at)
		c.overview.RecordServed(wire.RoleOrigin, rng.Int63n(1<<26), at)
		c.overview.RecordPlay(1<<20, 1<<18, 60_000, at)
	}
	c.overview.Advance(frozen)
	c.overviewMu.Unlock()

	rec := httptest.NewRecorder()
	login, _ := json.Marshal(wire.Credentials{Username: "root", Password: rootPassword})
	req := httptest.NewRequest("POST", wire.PathLogin, bytes.NewReader(login))
	req.Header.Set("Content-Type", "application/json")
	c.Handler().ServeHTTP(rec, req)
	var sess wire.LoginResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	return c, sess.Token
}

// BenchmarkAdminAPI measures the admin overview, node table (a default
// page of 500 and all 10^4) and video table at 10^4 nodes and 10^3 videos,
// in-process through the real handler (admin session check included),
// with a ledger of 0 and of 20,000 transactions: the cost must not follow
// the ledger.
//
//	go test -run '^$' -bench BenchmarkAdminAPI -benchmem -count 5 ./coordinator/
func BenchmarkAdminAPI(b *testing.B) {
	for _, ledger := range []int{0, 20_000} {
		// One network at a time: its store closes when this level ends, so
		// the next is not measured beside a dead one's heap.
		b.Run(fmt.Sprintf("ledger=%d", ledger), func(b *testing.B) {
			c, token := adminBenchNetwork(b, 10_000, 1_000, ledger)
			h := c.Handler()
			for _, path := range []string{
				wire.PathAdminOverview,
				wire.PathAdminNodes,
				wire.PathAdminNodes + "?limit=10000",
				wire.PathAdminVideos,
			} {
				b.Run(path, func(b *testing.B) {
					req := httptest.NewRequest("GET", path, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					var size int
					cpu := processCPU()
					for b.Loop() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
						}
						size = rec.Body.Len()
					}
					// Process CPU per request says more than wall time on a
					// shared, loaded machine.
					b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
					b.ReportMetric(float64(size), "json-bytes")
				})
			}
		})
	}
}

// BenchmarkAdminEventLatency measures an admin event stream's update
// latency on loopback: from a bucket closing (PublishOverview: advance,
// encode the overview with an hour of points, fan out) to each
// subscriber's client having read the whole event, with 1 and 64
// (maxEventSubscribers) streams open over a real HTTP server. Reports the
// median and p95 over all deliveries.
//
//	go test -run '^$' -bench BenchmarkAdminEventLatency -count 5 ./coordinator/
func BenchmarkAdminEventLatency(b *testing.B) {
	for _, subs := range []int{1, maxEventSubscribers} {
		b.Run(fmt.Sprintf("streams=%d", subs), func(b *testing.B) {
			store := testStore(b)
			ctx := context.Background()
			clock := newFakeClock()
			if _, err := accounting.BootstrapAdmin(ctx, store, "root", rootPassword, clock.Now()); err != nil {
				b.Fatal(err)
			}
			c, err := New(Config{Seed: 1, Log: quietLog(), Now: clock.Now, Store: store, Accounting: accounting.Config{AuditInterval: -1}})
			if err != nil {
				b.Fatal(err)
			}
			for i := range 360 { // an hour of history in every snapshot
				c.overview.RecordServed(wire.RoleEdge, int64(i+1)<<20, clock.Now())
				clock.Advance(defaultOverviewBucket)
				c.overview.Advance(clock.Now())
			}
			srv := httptest.NewServer(c.Handler())
			defer srv.Close()
			client := wire.NewCoordinatorClient(srv.URL, srv.Client())
			sess, err := client.Login(ctx, wire.Credentials{Username: "root", Password: rootPassword})
			if err != nil {
				b.Fatal(err)
			}
			received := make(chan time.Time, subs*4)
			streamCtx, stop := context.WithCancel(ctx)
			defer stop()
			for range subs {
				req, _ := http.NewRequestWithContext(streamCtx, "GET", srv.URL+wire.PathAdminEvents, nil)
				req.Header.Set("Authorization", "Bearer "+sess.Token)
				resp, err := srv.Client().Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("subscribe: %v %v", resp, err)
				}
				go func() {
					defer resp.Body.Close()
					rd := bufio.NewReaderSize(resp.Body, 1<<16)
					first := true
					for {
						line, err := rd.ReadSlice('\n')
						if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
							return
						}
						if len(line) == 1 { // the blank line ending an event
							if !first {
								received <- time.Now()
							}
							first = false // the snapshot sent on subscribing
						}
					}
				}()
			}
			// Real sockets, so no fake time: poll until the server has
			// registered every stream, bounded at 10 s.
			for deadline := time.Now().Add(10 * time.Second); c.events.subscribers() < subs; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d event streams registered after 10 s", c.events.subscribers(), subs)
				}
			}
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				clock.Advance(defaultOverviewBucket)
				start := time.Now()
				c.PublishOverview()
				for range subs {
					lat = append(lat, (<-received).Sub(start))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds()), "p95-µs")
		})
	}
}
