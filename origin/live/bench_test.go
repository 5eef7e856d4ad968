package live

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
)

// BenchmarkLivePublishDelay publishes 8 s of 320x180 testsrc (1 s GOP,
// AAC) over RTMP per iteration and reports the publish delay (from the
// arrival of the keyframe that closed a segment to its entry accepted by
// the coordinator) as p50_ms and p95_ms over every segment of every
// iteration. The coordinator is this package's in-memory one (an entry
// append over loopback HTTP adds ~1 ms on the real one).
func BenchmarkLivePublishDelay(b *testing.B) {
	ffmpeg := testenv.RequireTool(b, "ffmpeg", "ffmpeg")
	var (
		mu     sync.Mutex
		delays []time.Duration
	)
	for b.Loop() {
		st, err := content.OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		in, err := New(Config{Store: st, Coordinator: newFakeCoordinator(), Resume: time.Minute, FFmpeg: ffmpeg, Registry: prometheus.NewRegistry(),
			OnPublished: func(_ content.VideoID, seq uint64, d time.Duration) {
				mu.Lock()
				delays = append(delays, d)
				mu.Unlock()
			}})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- in.ServeRTMP(ctx, ln) }()
		fctx, fcancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(fctx, ffmpeg, append(testSource(8), "-f", "flv", "rtmp://"+ln.Addr().String()+"/live/"+testKey)...).CombinedOutput()
		fcancel()
		if err != nil {
			b.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		if _, err := in.End(testChannel); err != nil {
			b.Fatal(err)
		}
		cancel()
		<-served
		in.Close()
	}
	slices.Sort(delays)
	if len(delays) == 0 {
		b.Fatal("no segment published")
	}
	q := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.95), "p95_ms")
	b.ReportMetric(float64(len(delays)), "segments")
}
