package testnet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/internal/impair"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// startupBenchEnv + "_ROUNDS" sets BenchmarkStartupUnderRTT's rounds: a
// measurement (a few minutes), so a benchmark the test run never starts.
const startupBenchEnv = "SWARMCAST_BENCH_STARTUP"

// firstShardClock records when the first shard response's headers came
// back (RoundTrip returns at the first byte of the response).
type firstShardClock struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   time.Time
}

func (c *firstShardClock) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && strings.HasPrefix(r.URL.Path, strings.SplitN(wire.PathShard, "{", 2)[0]) {
		now := time.Now()
		c.mu.Lock()
		if c.at.IsZero() {
			c.at = now
		}
		c.mu.Unlock()
	}
	return resp, err
}

func (c *firstShardClock) first() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

// startupSample is one measured play.
type startupSample struct {
	ttfb, startup time.Duration
	originBytes   int64 // bytes every origin sent during the play (used or cancelled)
	edgeBytes     int64 // verified shard bytes the play used from edges
	usedOrigin    int64 // verified shard bytes the play used from the origin
}

// BenchmarkStartupUnderRTT measures a cold player's first-segment time to first
// byte and startup time (Play → first segment ready) with every link of the
// player (coordinator, edges, origin) behind an emulated round trip of 0,
// 50 and 150 ms, for several startup hedge delays; and what each costs in
// origin bytes. Run it with
//
//	go test -run '^$' -bench BenchmarkStartupUnderRTT -benchtime 1x -v -timeout 20m ./testnet
//
// (SWARMCAST_BENCH_STARTUP_ROUNDS sets the rounds, default 5).
// docs/PERFORMANCE.md "Startup under emulated RTT" holds the figures.
func BenchmarkStartupUnderRTT(b *testing.B) {
	t := b
	rounds := 5
	if r := os.Getenv(startupBenchEnv + "_ROUNDS"); r != "" {
		if _, err := fmt.Sscan(r, &rounds); err != nil || rounds < 1 {
			t.Fatalf("%s_ROUNDS=%q: want a positive count", startupBenchEnv, r)
		}
	}
	for _, sc := range []struct {
		name  string
		fault func(i int) edge.Fault
	}{
		{"honest edges", nil},
		// A quarter of the edges send a few bytes and stall: the startup
		// fetch must time them out or hedge to the origin.
		{"3 of 12 edges slow-drip", func(i int) edge.Fault {
			if i%4 == 1 {
				return edge.SlowDrip
			}
			return edge.Honest
		}},
	} {
		b.Run(sc.name, func(b *testing.B) { measureStartup(b, sc.fault, rounds) })
	}
}

// measureStartup runs BenchmarkStartupUnderRTT's plays on one network.
func measureStartup(t testing.TB, fault func(i int) edge.Fault, rounds int) {
	n := startNet(t, Config{Edges: 12, Videos: 1, Seed: 14, AuditInterval: -1, Fault: fault})
	video := n.Videos[0]
	nodes := n.AliveEdges()
	// Warm-up as in TestOffloadAfterWarmup: one edge's player watches, and
	// placement spreads shards until edges hold the video twice over.
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video)*2, 30*time.Second)

	rtts := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond}
	// 0 is the viewer's default: max(250 ms, 3 round trips).
	hedges := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	type config struct{ rtt, hedge time.Duration }
	samples := map[config][]startupSample{}
	ctx := context.Background()
	player := 0
	for round := range rounds {
		for _, rtt := range rtts {
			for _, hedge := range hedges {
				cfg := config{rtt, hedge}
				oneWay := impair.Profile{Latency: rtt / 2}
				dialer := &impair.Dialer{Up: oneWay, Down: oneWay, Seed: uint64(player)}
				tr := wire.NewHTTPClient().Transport.(*http.Transport)
				tr.DialContext = dialer.DialContext
				clock := &firstShardClock{base: tr}
				player++
				v, err := n.NewPlayer(fmt.Sprintf("rtt-player-%d", player), viewer.Config{
					HTTPClient: &http.Client{Transport: clock}, StartupHedge: hedge, Seed: int64(player),
				})
				if err != nil {
					t.Fatal(err)
				}
				before := n.OriginBytes()
				start := time.Now()
				q, err := v.Play(ctx, video, viewer.PlayOptions{Rendition: -1, Speed: 20, MaxSegments: 2})
				_ = v.Close()
				tr.CloseIdleConnections()
				if err != nil {
					t.Fatalf("round %d, rtt %v, hedge %v: %v", round, rtt, hedge, err)
				}
				samples[cfg] = append(samples[cfg], startupSample{
					ttfb: clock.first().Sub(start), startup: q.Startup,
					originBytes: n.OriginBytes() - before, edgeBytes: q.EdgeBytes, usedOrigin: q.OriginBytes,
				})
			}
		}
	}
	t.Logf("medians of %d rounds (a fresh player each play; 2 startup segments of the top rendition)", rounds)
	t.Logf("| RTT | hedge | first shard TTFB | startup | origin bytes sent per play | share of used bytes from the origin |")
	t.Logf("|---|---|---|---|---|---|")
	for _, rtt := range rtts {
		for _, hedge := range hedges {
			s := samples[config{rtt, hedge}]
			med := func(f func(startupSample) float64) float64 {
				xs := make([]float64, len(s))
				for i, x := range s {
					xs[i] = f(x)
				}
				slices.Sort(xs)
				return xs[len(xs)/2]
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			name := fmt.Sprintf("%d ms", hedge.Milliseconds())
			if hedge == 0 {
				name = "default"
			}
			t.Logf("| %d ms | %s | %.0f ms | %.0f ms | %.0f | %.0f %% |", rtt.Milliseconds(), name,
				med(func(x startupSample) float64 { return ms(x.ttfb) }),
				med(func(x startupSample) float64 { return ms(x.startup) }),
				med(func(x startupSample) float64 { return float64(x.originBytes) }),
				med(func(x startupSample) float64 {
					return 100 * float64(x.usedOrigin) / float64(max(1, x.usedOrigin+x.edgeBytes))
				}))
		}
	}
}
