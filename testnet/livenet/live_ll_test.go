package livenet_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// TestLiveLowLatencyPlaysInHLSJSAndFFmpeg: a Low-Latency HLS channel (1 s
// segments, 250 ms parts) published over RTMP by real ffmpeg. Through an
// edge's gateway, ffmpeg (a standard player: full segments of the same
// playlist) reads 10 s with an advancing burned-in clock, and hls.js in
// chromium in lowLatencyMode plays 5 s loading parts with blocking
// reloads; every part the gateway served verified against its signed part.
func TestLiveLowLatencyPlaysInHLSJSAndFFmpeg(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	b := browsertest.Start(t)
	parts := &testnet.LiveLatencies{}
	n := testnet.StartForTest(t, testnet.Config{Edges: 1, Seed: 13, AuditInterval: -1, Live: true,
		OnLivePartServable: func(s viewer.LivePartServable) { parts.Record(s.Latency()) }})
	ch, err := n.Admin.CreateChannel(t.Context(), wire.CreateChannelRequest{Name: "testnet ll", SegmentMS: 1000, PartMS: 250})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	waitChain(t, n, ch.Channel.ID, 2, pub)
	gw := gatewayOf(t, n, 0)
	media := gw + "/live/" + string(ch.Channel.ID) + "/0/index.m3u8"
	resp, err := http.Get(media)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"#EXT-X-PART-INF:PART-TARGET=0.250", "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750", "#EXT-X-PART:", "INDEPENDENT=YES", "#EXT-X-PRELOAD-HINT:TYPE=PART"} {
		if !strings.Contains(body.String(), want) {
			t.Fatalf("the low-latency playlist lacks %q:\n%s", want, body.String())
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	times, err := testnet.ReadBurnedClock(ctx, ffmpeg, gw+"/live/"+string(ch.Channel.ID)+"/master.m3u8", 10*time.Second)
	checkAdvancingClock(t, "low-latency playlist", times, err)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ll-test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><video id="v" muted playsinline></video><script src="` + n.CoordinatorURL + web.StaticURL("vendor/hls.js-1.7.4/hls.min.js") + `"></script>`))
	})
	mux.Handle("/", n.AliveEdges()[0].Viewer.Handler())
	srv, err := httpserve.Listen(t.Context(), "127.0.0.1:0", "", mux, n.Log())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	s := b.NewSession("ll-hlsjs")
	s.MustDo("open the test page", chromedp.Navigate(srv.Advertise+"/ll-test"))
	browsertest.MustEval[bool](s, `(() => {
		window.hlsErrors = []; window.partsLoaded = 0; window.blockingReloads = 0;
		const v = document.getElementById("v");
		const h = new Hls({lowLatencyMode: true});
		window.hls = h;
		h.on(Hls.Events.ERROR, (_e, d) => window.hlsErrors.push(d.details + (d.fatal ? " (fatal)" : "")));
		h.on(Hls.Events.FRAG_LOADED, (_e, d) => { if (d.part) window.partsLoaded++; });
		h.on(Hls.Events.LEVEL_LOADING, (_e, d) => { if (d.url.includes("_HLS_msn=")) window.blockingReloads++; });
		h.loadSource("/live/`+string(ch.Channel.ID)+`/master.m3u8");
		h.attachMedia(v);
		h.once(Hls.Events.FRAG_BUFFERED, () => {
			if (v.buffered.length > 0 && v.currentTime < v.buffered.start(0)) v.currentTime = v.buffered.start(0);
			v.play();
		});
		window.startedAt = null;
		v.addEventListener("playing", () => { if (window.startedAt === null) window.startedAt = v.currentTime; });
		return true;
	})()`)
	if err := s.WaitFor(`window.startedAt !== null && document.getElementById("v").currentTime >= window.startedAt + 5`, 60*time.Second); err != nil {
		t.Fatalf("hls.js (lowLatencyMode) did not play 5 s of the channel: currentTime %v, errors %v: %v",
			browsertest.MustEval[float64](s, `document.getElementById("v").currentTime`), browsertest.MustEval[[]string](s, `window.hlsErrors`), err)
	}
	if got := browsertest.MustEval[float64](s, `window.partsLoaded`); got < 4 {
		t.Errorf("hls.js loaded %v parts in lowLatencyMode, want ≥ 4 (it played full segments only)", got)
	}
	if got := browsertest.MustEval[float64](s, `window.blockingReloads`); got < 2 {
		t.Errorf("hls.js made %v blocking reloads, want ≥ 2", got)
	}
	t.Logf("hls.js: %v parts, latency %.2f s (target %.2f s); gateway part glass-to-glass p95 %v over %d parts",
		browsertest.MustEval[float64](s, `window.partsLoaded`), browsertest.MustEval[float64](s, `window.hls.latency`),
		browsertest.MustEval[float64](s, `window.hls.targetLatency || 0`), p95(parts), count(parts))
	for _, e := range browsertest.MustEval[[]string](s, `window.hlsErrors`) {
		if strings.HasSuffix(e, "(fatal)") {
			t.Errorf("hls.js fatal error while playing low-latency: %s", e)
		}
	}
	if count(parts) == 0 {
		t.Error("the gateway verified no part")
	}
}

func p95(l *testnet.LiveLatencies) time.Duration {
	d, _ := l.Percentile(95)
	return d
}

func count(l *testnet.LiveLatencies) int {
	_, n := l.Percentile(50)
	return n
}
