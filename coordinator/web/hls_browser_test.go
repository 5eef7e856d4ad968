package web

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/internal/sample"
)

// TestVendoredHLSPlaysInChromium is the early check that this chromium
// plays our MPEG-TS HLS through the vendored hls.js (Media Source
// Extensions with H.264/AAC in fMP4, which hls.js transmuxes TS into):
// the sample ladder, plain, from one origin.
func TestVendoredHLSPlaysInChromium(t *testing.T) {
	b := browsertest.Start(t)
	dir := t.TempDir()
	hls := filepath.Join(dir, "hls")
	if err := sample.WriteHLS(hls); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&App{}).Routes(mux)
	mux.Handle("GET /hls/", http.StripPrefix("/hls/", http.FileServer(http.Dir(hls))))
	mux.HandleFunc("GET /test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><video id="v" muted playsinline></video><script src="` + StaticURL("vendor/hls.js-1.7.4/hls.min.js") + `"></script>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s := b.NewSession("hls")
	s.MustDo("open the test page", chromedp.Navigate(srv.URL+"/test"))
	if !browsertest.MustEval[bool](s, `MediaSource.isTypeSupported('video/mp4; codecs="avc1.640028,mp4a.40.2"')`) {
		t.Fatal("this chromium's Media Source Extensions do not take H.264/AAC in MP4: hls.js cannot play our ladder (install Debian's chromium with its codecs)")
	}
	t.Logf("MediaSource.isTypeSupported('video/mp2t') = %v (hls.js transmuxes TS to fMP4, so false is fine)", browsertest.MustEval[bool](s, `MediaSource.isTypeSupported('video/mp2t')`))
	browsertest.MustEval[bool](s, `(() => {
		window.hlsErrors = [];
		const v = document.getElementById("v");
		const h = new Hls();
		h.on(Hls.Events.ERROR, (_e, d) => window.hlsErrors.push(d.details + (d.fatal ? " (fatal)" : "")));
		h.loadSource("/hls/master.m3u8");
		h.attachMedia(v);
		// As player.js does: start at the first buffered frame (TS starts
		// after 0), so playback does not stall in the gap at 0.
		h.once(Hls.Events.FRAG_BUFFERED, () => {
			if (v.buffered.length > 0 && v.currentTime < v.buffered.start(0)) v.currentTime = v.buffered.start(0);
			v.play();
		});
		return true;
	})()`)
	if err := s.WaitFor(`document.getElementById("v").currentTime >= 5`, 40*time.Second); err != nil {
		t.Fatalf("hls.js did not play 5 s of the sample: currentTime %v, errors %v: %v",
			browsertest.MustEval[float64](s, `document.getElementById("v").currentTime`), browsertest.MustEval[[]string](s, `window.hlsErrors`), err)
	}
	if errs := browsertest.MustEval[[]string](s, `window.hlsErrors`); len(errs) > 0 {
		t.Errorf("hls.js errors while playing: %v", errs)
	}
}
