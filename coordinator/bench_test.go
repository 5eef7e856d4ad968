package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// benchNetwork is a coordinator with the two sample videos (4 renditions
// of 15 segments in all) and 1000 edges in 4 regions, each holding a shard
// of setsPerEdge random segments: every segment has ~1000*setsPerEdge/60
// holders. The clock is frozen so no edge expires mid-benchmark.
func benchNetwork(b *testing.B, setsPerEdge int) (*Coordinator, []wire.LookupRequest) {
	return benchNetworkConfig(b, setsPerEdge, Config{})
}

func benchNetworkConfig(b *testing.B, setsPerEdge int, cfg Config) (*Coordinator, []wire.LookupRequest) {
	fix := sampleStore(b)
	frozen := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Seed, cfg.Log, cfg.Now = 1, quietLog(), func() time.Time { return frozen }
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	origin := newTestNode().ID
	if err := c.AllowOrigin(b.Context(), origin); err != nil {
		b.Fatal(err)
	}
	call(c, wire.PathRegister, wire.RegisterRequest{NodeID: origin, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"})
	var videos []wire.PublishedVideo
	for _, id := range fix.ids {
		videos = append(videos, fix.published(b, id))
	}
	if _, ok := call(c, wire.PathPublish, wire.PublishRequest{OriginID: origin, Videos: videos}); !ok {
		b.Fatal("publish failed")
	}
	rng := rand.New(rand.NewSource(1))
	regions := []string{"eu", "us", "ap", "sa"}
	m := fix.mustManifest(b, 0)
	for i := range 1000 {
		id := newTestNode().ID
		call(c, wire.PathRegister, wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1", Region: regions[i%4]})
		var inv []wire.ShardSet
		for range setsPerEdge {
			r := rng.Intn(len(m.Renditions))
			inv = append(inv, set(fix.ids[rng.Intn(len(fix.ids))], r, rng.Intn(len(m.Renditions[r].Segments)), rng.Intn(32)))
		}
		call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: id, Full: true, Added: inv, ServedBytes: int64(rng.Intn(2_000_000))})
	}
	var reqs []wire.LookupRequest
	for i := range 256 {
		r := rng.Intn(len(m.Renditions))
		reqs = append(reqs, wire.LookupRequest{
			Video: fix.ids[i%len(fix.ids)], Rendition: r, From: rng.Intn(len(m.Renditions[r].Segments)),
			Count: 8, Region: regions[rng.Intn(4)],
		})
	}
	return c, reqs
}

// latencies collects per-operation durations from parallel workers, and
// the process CPU time spent: on a shared, noisy machine lookups per
// CPU-second (×2 for 2 cores) says more than wall-clock throughput.
type latencies struct {
	mu       sync.Mutex
	all      []time.Duration
	cpuStart time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (l *latencies) start(b *testing.B) {
	b.ResetTimer()
	l.cpuStart = processCPU()
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	slices.Sort(l.all)
	if len(l.all) > 0 {
		b.ReportMetric(float64(l.all[len(l.all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	if cpu := processCPU() - l.cpuStart; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "lookups/cpu-s")
	}
}

// BenchmarkLookup measures lookups of 8-segment windows with ~67 alive
// holders per segment (ranked, cut to the best 16, rendered as
// JSON), in-process and over a real loopback HTTP server with parallel
// clients. Report lookups/s and p99 with -cpu 2.
func BenchmarkLookup(b *testing.B) {
	c, reqs := benchNetwork(b, 4)
	benchLookup(b, c, reqs)
}

// BenchmarkLookupCrowded is the same with ~670 holders per segment (a
// catalogue of one very popular video), the worst case for ranking.
func BenchmarkLookupCrowded(b *testing.B) {
	c, reqs := benchNetwork(b, 40)
	benchLookup(b, c, reqs)
}

// BenchmarkLookupWithLimits is BenchmarkLookup for payable viewers: a
// store-backed coordinator, every lookup from one of 64 viewer keys bound
// to an account entitled to the (free) videos, so each answer carries one
// order limit per edge in it (~50 for an 8-segment window). Limits come
// from the cache after the first lookup of a (viewer, edge, video).
func BenchmarkLookupWithLimits(b *testing.B) {
	issuedSerials := map[wire.Serial]bool{}
	id := newTestNode()
	db := openStore(b, "sqlite:"+b.TempDir()+"/c.db", id.Key.Public().(ed25519.PublicKey))
	c, reqs := benchNetworkConfig(b, 4, Config{Store: db, Accounting: accounting.Config{Identity: id, AuditInterval: -1}})
	ctx := context.Background()
	acct, err := db.CreateAccount(ctx, "viewer", "password-viewer", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for i := range reqs {
		v := newTestNode().ID
		if i < 64 {
			if err := db.BindViewerKey(ctx, acct.ID, v, time.Now()); err != nil {
				b.Fatal(err)
			}
		} else {
			v = reqs[i%64].ViewerID
		}
		reqs[i].ViewerID = v
	}
	// Warm the limit cache: the steady state of a play is cache hits (a
	// limit is signed once per viewer, edge and video per 12 minutes).
	// Ties are ranked in a random order, so a viewer meets every holder of
	// its windows within a few lookups: warm until a pass signs nothing.
	for pass := 0; ; pass++ {
		seen := len(issuedSerials)
		for _, req := range reqs {
			resp, err := c.Lookup(req)
			if err != nil || len(resp.Limits) == 0 {
				b.Fatalf("no limits in a payable lookup: %v", err)
			}
			for _, l := range resp.Limits {
				issuedSerials[l.Serial] = true
			}
		}
		if pass > 0 && len(issuedSerials) == seen {
			break
		}
		if pass == 100 {
			b.Fatal("the limit cache does not settle")
		}
	}
	benchLookup(b, c, reqs)
}

func benchLookup(b *testing.B, c *Coordinator, reqs []wire.LookupRequest) {
	for _, enc := range []struct {
		name   string
		binary bool
	}{{"json", false}, {"binary", true}} {
		b.Run("service-"+enc.name, func(b *testing.B) {
			var lat latencies
			b.ReportAllocs()
			lat.start(b)
			b.RunParallel(func(pb *testing.PB) {
				sc := c.scratch.Get().(*lookupScratch)
				sc.prefetch, sc.binary = false, enc.binary
				var mine []time.Duration
				for i := 0; pb.Next(); i++ {
					start := time.Now()
					if err := c.renderLookup(context.Background(), &reqs[i%len(reqs)], sc); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				lat.add(mine)
			})
			lat.report(b)
		})
	}

	// Over HTTP the clients share the 2 cores with the server, so they send
	// pre-encoded requests and discard the bodies (checking the status):
	// decoding the answer would bill the viewers' work to the server.
	for _, accept := range []string{"application/json", wire.ContentTypeLookupBinary} {
		name := "http-json"
		if accept == wire.ContentTypeLookupBinary {
			name = "http-binary"
		}
		b.Run(name, func(b *testing.B) {
			srv := httptest.NewServer(c.Handler())
			defer srv.Close()
			hc := wire.NewHTTPClient()
			bodies := make([][]byte, len(reqs))
			for i, r := range reqs {
				bodies[i], _ = json.Marshal(r)
			}
			url := srv.URL + wire.PathLookup
			var lat latencies
			b.ReportAllocs()
			b.SetParallelism(8) // 8 clients per GOMAXPROCS, as many players would be
			lat.start(b)
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for i := 0; pb.Next(); i++ {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", accept)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n < 100 {
						b.Errorf("lookup: %d, %d bytes", resp.StatusCode, n)
						return
					}
					mine = append(mine, time.Since(start))
				}
				lat.add(mine)
			})
			lat.report(b)
		})
	}
}

// BenchmarkPlan is one placement round for 1000 edges and 2000 segments
// with demand (a catalogue of ~7 hours of 2 s segments being watched).
func BenchmarkPlan(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	st := PlacementState{Edges: edgesN(1000, 1_500_000_000, wire.DefaultUploadCapBytes, "eu", "us", "ap", "sa")}
	for s := range 2000 {
		sg := seg("v", s, rng.ExpFloat64()*0.05)
		sg.ShardBytes = 60_000
		sg.ByRegion = map[string]float64{"eu": sg.Rate / 2, "us": sg.Rate / 2}
		st.Segments = append(st.Segments, sg)
	}
	p := NewPlacer(1)
	b.ResetTimer()
	for b.Loop() {
		p.Plan(epoch, st)
	}
}
