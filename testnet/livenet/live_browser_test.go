package livenet_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/testnet"
)

// TestLiveHLSJSPlaysThroughAnEdgesGateway: hls.js (the coordinator's
// vendored copy) in chromium plays a channel's live playlist through an
// edge's player gateway, joining at the live edge, while ffmpeg publishes.
func TestLiveHLSJSPlaysThroughAnEdgesGateway(t *testing.T) {
	b := browsertest.Start(t)
	n, ch, lat := liveNet(t, 1)
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	waitChain(t, n, ch.Channel.ID, 2, pub)
	// The test page and the gateway share one origin, so the page reads
	// the playlists without CORS; hls.js comes from the coordinator.
	gwHandler := n.AliveEdges()[0].Viewer.Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live-test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><video id="v" muted playsinline></video><script src="` + n.CoordinatorURL + web.StaticURL("vendor/hls.js-1.7.4/hls.min.js") + `"></script>`))
	})
	mux.Handle("/", gwHandler)
	srv, err := httpserve.Listen(t.Context(), "127.0.0.1:0", "", mux, n.Log())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	s := b.NewSession("live-hlsjs")
	s.MustDo("open the test page", chromedp.Navigate(srv.Advertise+"/live-test"))
	browsertest.MustEval[bool](s, `(() => {
		window.hlsErrors = [];
		const v = document.getElementById("v");
		const h = new Hls();
		window.hls = h;
		h.on(Hls.Events.ERROR, (_e, d) => window.hlsErrors.push(d.details + (d.fatal ? " (fatal)" : "")));
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
		t.Fatalf("hls.js did not play 5 s of the live channel: currentTime %v, errors %v: %v",
			browsertest.MustEval[float64](s, `document.getElementById("v").currentTime`), browsertest.MustEval[[]string](s, `window.hlsErrors`), err)
	}
	// The real player's own figures beside the gateway's (docs/LIVE.md
	// "Glass-to-glass latency"; written down in docs/PERFORMANCE.md, L8):
	// hls.latency is its distance behind the playlist's live edge, and
	// now − playingDate (the PROGRAM-DATE-TIME of the frame on screen) its
	// glass-to-glass. Logged, not asserted: a timing figure.
	player := browsertest.MustEval[[]float64](s, `[window.hls.latency, window.hls.playingDate ? Date.now() - window.hls.playingDate.getTime() : -1]`)
	p50, count := lat.Percentile(50)
	p95, _ := lat.Percentile(95)
	t.Logf("hls.js: latency %.2f s behind the live edge, glass-to-glass %.2f s (now − playingDate); the gateway's glass-to-glass p50 %v / p95 %v over %d segments",
		player[0], player[1]/1000, p50, p95, count)
	for _, e := range browsertest.MustEval[[]string](s, `window.hlsErrors`) {
		if len(e) > 8 && e[len(e)-8:] == "(fatal)" {
			t.Errorf("hls.js fatal error while playing live: %s", e)
		}
	}
}
