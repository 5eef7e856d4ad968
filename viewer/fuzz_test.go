package viewer

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// FuzzGatewayPath checks that the gateway's path parser never panics, that
// what it accepts is canonical, and that the gateway never answers a path
// with a 5xx (unknown videos are 404s, malformed paths 4xx).
func FuzzGatewayPath(f *testing.F) {
	id := strings.Repeat("ab", 32)
	for _, p := range []string{
		"/", "/videos/" + id + "/master.m3u8", "/videos/" + id + "/key",
		"/videos/" + id + "/0/index.m3u8", "/videos/" + id + "/1/14.ts",
		"/videos/" + id + "/0/-1.ts", "/videos/" + id + "/00/1.ts", "/videos/" + id + "/0/1.ts/",
		"/videos//master.m3u8", "/videos/" + id, "/videos/" + id + "/999/0.ts", "/favicon.ico",
		"/videos/" + id + "/0/99999999999999999999.ts", "/videos/" + id + "/0/+1.ts",
		"/live/" + id + "/master.m3u8", "/live/ch_0123456789abcdef/0/index.m3u8", "/live/ch_/key", "/live/" + id + "/0/1048575.ts",
	} {
		f.Add(p)
	}
	// A coordinator that knows no video: every video route must be a 404.
	coord := http.NewServeMux()
	coord.HandleFunc("GET "+wire.PathVideos, func(w http.ResponseWriter, r *http.Request) { wire.WriteJSON(w, []wire.VideoInfo{}) })
	coord.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { wire.WriteError(w, http.StatusNotFound, "unknown") })
	csrv := httptest.NewServer(coord)
	f.Cleanup(csrv.Close)
	v, err := New(Config{Coordinator: csrv.URL, Identity: identity.New()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	gw := v.Gateway()

	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseGatewayPath(p)
		if err == nil {
			canon := "/"
			if !rt.index {
				base := fmt.Sprintf("/videos/%s/", rt.video)
				switch rt.res.Resource {
				case content.ResourceMaster:
					canon = base + content.MasterPlaylistName
				case content.ResourceKey:
					canon = base + content.KeyName
				case content.ResourceMedia:
					canon = base + content.MediaPlaylistPath(rt.res.Rendition)
				case content.ResourceSegment:
					canon = base + content.SegmentPath(rt.res.Rendition, rt.res.Segment)
				default:
					t.Fatalf("%q parsed to resource %d", p, rt.res.Resource)
				}
			}
			if !strings.EqualFold(canon, p) {
				t.Fatalf("accepted %q as %q", p, canon)
			}
		}
		// A local player: loopback peer and Host, so the request reaches
		// the route parser (others are refused before it).
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.URL.Path = p
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %q: %d %s", p, rec.Code, rec.Body)
		}
		if err != nil && rec.Code/100 != 4 {
			t.Fatalf("GET %q: parse error %v but status %d", p, err, rec.Code)
		}
	})
}

// FuzzLivePath checks that the live path parser never panics and that what
// it accepts is canonical: one resource, one path.
func FuzzLivePath(f *testing.F) {
	id := strings.Repeat("cd", 32)
	for _, p := range []string{
		id + "/master.m3u8", id + "/key", id + "/1/index.m3u8", id + "/0/5123.ts", "ch_0123456789abcdef/master.m3u8",
		"ch_0123456789ABCDEF/key", "ch_0123/key", id + "/0/01.ts", "/master.m3u8", id,
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		lt, err := parseLivePath(p)
		if err != nil {
			return
		}
		name := lt.chain.String()
		if lt.channel != "" {
			name = string(lt.channel)
		}
		var rel string
		switch lt.res.Resource {
		case content.ResourceMaster:
			rel = content.MasterPlaylistName
		case content.ResourceKey:
			rel = content.KeyName
		case content.ResourceMedia:
			rel = content.MediaPlaylistPath(lt.res.Rendition)
		case content.ResourceSegment:
			rel = content.SegmentPath(lt.res.Rendition, lt.res.Segment)
		default:
			t.Fatalf("%q parsed to resource %d", p, lt.res.Resource)
		}
		if canon := name + "/" + rel; !strings.EqualFold(canon, p) || (lt.channel != "" && canon != p) {
			t.Fatalf("accepted %q as %q", p, canon)
		}
	})
}
