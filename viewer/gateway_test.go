package viewer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

func startGateway(t *testing.T, n *testNetwork) (*Viewer, string) {
	t.Helper()
	v := newTestViewer(t, n, nil, nil)
	srv := httptest.NewServer(v.Gateway())
	t.Cleanup(srv.Close)
	return v, srv.URL
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestGatewayServesHLS(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	_, base := startGateway(t, n)
	vid := base + "/videos/" + n.id.String()

	code, body := get(t, vid+"/master.m3u8")
	if code != 200 || !strings.Contains(string(body), "#EXT-X-STREAM-INF") || !strings.Contains(string(body), "\n0/index.m3u8\n") || strings.Contains(string(body), "\n/") {
		t.Fatalf("master: %d %s", code, body)
	}
	code, body = get(t, vid+"/1/index.m3u8")
	if code != 200 || !strings.Contains(string(body), "METHOD=AES-128") || !strings.Contains(string(body), "\n14.ts\n") || !strings.Contains(string(body), `URI="../key"`) || strings.Contains(string(body), "\n/") {
		t.Fatalf("media playlist: %d %s", code, body)
	}
	code, key := get(t, vid+"/key")
	want, _ := n.store.ContentKey(n.id)
	if code != 200 || !bytes.Equal(key, want[:]) {
		t.Fatalf("key: %d %x", code, key)
	}
	for s := range n.man.Renditions[1].Segments {
		code, body = get(t, vid+"/1/"+strconv.Itoa(s)+".ts")
		ct, _ := n.store.SegmentCiphertext(n.id, 1, s)
		if code != 200 || !bytes.Equal(body, ct) {
			t.Fatalf("segment %d: status %d, %d bytes, equal to stored ciphertext: %v", s, code, len(body), bytes.Equal(body, ct))
		}
	}
	code, body = get(t, base+"/")
	if code != 200 || !strings.Contains(string(body), n.id.String()+"/master.m3u8") {
		t.Fatalf("index: %d %s", code, body)
	}

	for path, wantCode := range map[string]int{
		"/nope":                   404,
		"/videos/xyz/master.m3u8": 404,
		"/videos/" + strings.Repeat("0", 64) + "/master.m3u8": 404, // unknown video
		"/videos/" + n.id.String() + "/9/index.m3u8":          404, // no such rendition
		"/videos/" + n.id.String() + "/0/999.ts":              404, // no such segment
		"/videos/" + n.id.String() + "/0/-1.ts":               404,
		"/videos/" + n.id.String() + "/0/01.ts":               404,
		"/videos/" + n.id.String() + "/0/1.mp4":               404,
		"/videos/" + n.id.String() + "/a/index.m3u8":          404,
		"/videos/" + n.id.String() + "/0/0/0.ts":              404,
	} {
		if code, body := get(t, base+path); code != wantCode || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", path, code, body, wantCode)
		}
	}
	resp, err := http.Post(vid+"/key", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST key: %d, want 405", resp.StatusCode)
	}
}

// TestGatewayPlaysInFFmpeg is the real-client check: ffmpeg opens the
// gateway's playlists, fetches the key and decrypts, and the decoded frames
// equal those of the packaged sample rendition.
func TestGatewayPlaysInFFmpeg(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n := newTestNetwork(t, mixedEdges)
	_, base := startGateway(t, n)
	vid := base + "/videos/" + n.id.String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, ffmpeg, append([]string{"-nostdin", "-v", "error"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	frames := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	got := frames(run("-i", vid+"/0/index.m3u8", "-f", "framemd5", "-"))
	want := frames(run("-i", filepath.Join(n.hlsDir, "240p", "index.m3u8"), "-f", "framemd5", "-"))
	if got == "" || got != want {
		t.Fatalf("framemd5 of the gateway's rendition 0 differs from the packaged 240p (%d vs %d bytes)", len(got), len(want))
	}
	ts := run("-i", vid+"/master.m3u8", "-map", "0", "-c", "copy", "-f", "mpegts", "-")
	if len(ts) < 188*100 || ts[0] != 0x47 {
		t.Fatalf("remux of the master playlist produced %d bytes, not MPEG-TS", len(ts))
	}
}
