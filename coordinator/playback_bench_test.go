package coordinator

import (
	"io"
	"net/http"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// BenchmarkFallbackSegment is the fallback's cost per segment against
// fetching the same segment from the origin directly (the reference): the
// entitlement check (session and entitlement lookups in SQLite) and the
// relay through the coordinator, over loopback. Compare the two
// sub-benchmarks' ns/op in one run: the ratio is the fallback's overhead.
func BenchmarkFallbackSegment(b *testing.B) {
	fix := sampleStore(b)
	_, originURL := startShardServer(b, fix, "honest")
	h := newStoreHarness(b, "sqlite:"+b.TempDir()+"/c.db", originURL, nil)
	video := h.video(0)
	m := h.fix.mustManifest(b, 0)
	top := len(m.Renditions) - 1
	session := h.user("bench")
	segs := len(m.Renditions[top].Segments)
	client := &http.Client{Transport: wire.NewHTTPClient().Transport}
	get := func(b *testing.B, url string, auth bool) int64 {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth {
			req.AddCookie(&http.Cookie{Name: wire.SessionCookieName, Value: session})
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return n
	}
	run := func(b *testing.B, url func(s int) string, auth bool) {
		var bytes int64
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			bytes += get(b, url(i%segs), auth)
		}
		b.SetBytes(bytes / int64(b.N))
	}
	b.Run("origin-direct", func(b *testing.B) {
		run(b, func(s int) string {
			return wire.SegmentURL(originURL, content.SegmentRef{Video: video, Rendition: top, Segment: s})
		}, false)
	})
	b.Run("fallback", func(b *testing.B) {
		run(b, func(s int) string { return h.srv.URL + watchPath(video, content.SegmentPath(top, s)) }, true)
	})
}
