package viewer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/internal/identity"
)

// startCORSGateway serves a viewer of n that also allows web pages from
// extra origins.
func startCORSGateway(t *testing.T, n *testNetwork, extra ...string) string {
	t.Helper()
	v, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), Seed: 1, WebOrigins: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	srv := httptest.NewServer(v.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func do(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// A page of the coordinator's origin (or a configured one, say the
// coordinator's public name behind a proxy) reads every playback resource
// and /healthz across origins and gets its preflight answered, Chrome's
// private network access included; a page of any other origin gets no CORS
// header, no preflight and not the key; a program without Origin is served
// as before.
func TestGatewayCORS(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	const proxied = "https://Swarmcast.Example:443"
	base := startCORSGateway(t, n, proxied)
	vid := base + "/videos/" + n.id.String()
	key, _ := n.store.ContentKey(n.id)
	coordOrigin := strings.ToLower(n.coordURL)

	for _, origin := range []string{coordOrigin, "https://swarmcast.example", base} {
		for _, path := range []string{"/master.m3u8", "/0/index.m3u8", "/0/0.ts", "/key"} {
			resp, body := do(t, http.MethodGet, vid+path, map[string]string{"Origin": origin})
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
				t.Errorf("GET %s from %s: %d, Allow-Origin %q, Vary %q", path, origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Vary"))
			}
			if path == "/key" && !bytes.Equal(body, key[:]) {
				t.Errorf("key from %s: got %x", origin, body)
			}
		}
		resp, _ := do(t, http.MethodOptions, vid+"/0/0.ts", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range",
			"Access-Control-Request-Private-Network": "true",
		})
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
			h.Get("Access-Control-Allow-Private-Network") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "range") {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, h)
		}
	}
	resp, _ := do(t, http.MethodGet, base+"/healthz", map[string]string{"Origin": coordOrigin})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != coordOrigin {
		t.Errorf("/healthz from the coordinator's page: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	for _, origin := range []string{"https://evil.example", "null", coordOrigin + ".evil.example", "http://swarmcast.example", "https://swarmcast.example:8443"} {
		for _, path := range []string{"/master.m3u8", "/key", "/0/0.ts"} {
			resp, body := do(t, http.MethodGet, vid+path, map[string]string{"Origin": origin})
			if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, key[:]) {
				t.Errorf("GET %s from %s: %d (%d bytes), want 403 and no content", path, origin, resp.StatusCode, len(body))
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("GET %s from %s carries %s", path, origin, k)
				}
			}
		}
		resp, _ := do(t, http.MethodOptions, vid+"/key", map[string]string{"Origin": origin, "Access-Control-Request-Method": "GET"})
		if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Private-Network") != "" {
			t.Errorf("preflight from %s: %d %v, want refused without CORS headers", origin, resp.StatusCode, resp.Header)
		}
	}
	resp, body := do(t, http.MethodGet, vid+"/key", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, key[:]) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("key without Origin (ffmpeg): %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = do(t, http.MethodOptions, vid+"/key", map[string]string{"Origin": coordOrigin, "Access-Control-Request-Method": "POST"})
	if resp.StatusCode == http.StatusNoContent {
		t.Errorf("preflight for POST answered %d", resp.StatusCode)
	}
}

func TestNewRefusesBadWebOrigins(t *testing.T) {
	for _, o := range []string{"*", "null", "ftp://x.example", "https://user@x.example", "https://x.example?q", ""} {
		if _, err := New(Config{Coordinator: "http://127.0.0.1:1", WebOrigins: []string{o}}); err == nil || !strings.Contains(err.Error(), "web origin") {
			t.Errorf("WebOrigins %q: err %v, want a web origin error", o, err)
		}
	}
}

// Segments honour byte ranges: a 206 body is the slice of the 200 body
// Content-Range names, a range past the end is 416, HEAD gives the length.
func TestGatewaySegmentByteRanges(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	_, base := startGateway(t, n)
	url := base + "/videos/" + n.id.String() + "/1/3.ts"
	resp, full := do(t, http.MethodGet, url, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Accept-Ranges") != "bytes" || len(full) < 2000 {
		t.Fatalf("GET: %d, Accept-Ranges %q, %d bytes", resp.StatusCode, resp.Header.Get("Accept-Ranges"), len(full))
	}
	size := len(full)
	for _, c := range []struct {
		rng      string
		from, to int // the slice [from, to) of the full body
	}{
		{"bytes=0-0", 0, 1},
		{"bytes=188-1315", 188, 1316},
		{fmt.Sprintf("bytes=%d-", size-100), size - 100, size},
		{"bytes=-50", size - 50, size},
		{fmt.Sprintf("bytes=100-%d", size+5000), 100, size}, // clamped to the end
	} {
		resp, body := do(t, http.MethodGet, url, map[string]string{"Range": c.rng})
		wantRange := fmt.Sprintf("bytes %d-%d/%d", c.from, c.to-1, size)
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, full[c.from:c.to]) || resp.Header.Get("Content-Range") != wantRange {
			t.Errorf("Range %s: %d, Content-Range %q (want %q), %d bytes, slice equal %v", c.rng, resp.StatusCode, resp.Header.Get("Content-Range"), wantRange, len(body), bytes.Equal(body, full[c.from:min(c.to, size)]))
		}
	}
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+1, size+10)} {
		resp, _ := do(t, http.MethodGet, url, map[string]string{"Range": rng})
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
			t.Errorf("Range %s: %d, Content-Range %q; want 416 naming the size", rng, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
	resp, body := do(t, http.MethodHead, url, nil)
	if resp.StatusCode != 200 || resp.ContentLength != int64(size) || len(body) != 0 {
		t.Errorf("HEAD: %d, length %d, %d body bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
}
