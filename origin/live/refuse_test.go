package live

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// assertNothingPublished: a refused source leaves the store and the
// coordinator as they were.
func assertNothingPublished(t *testing.T, ti *testIngest) {
	t.Helper()
	if files := storeFiles(t, ti.store); len(files) != 0 {
		t.Errorf("a refused source left files in the store: %v", files)
	}
	_, chains, published := ti.coord.snapshot()
	if len(chains) != 0 || published != 0 {
		t.Errorf("a refused source reached the coordinator: %d chains, %d videos", len(chains), published)
	}
}

// assertChannelError: the channel's state says why (an error report
// mentioning want).
func assertChannelError(t *testing.T, ti *testIngest, want string) {
	t.Helper()
	waitFor(t, "a channel error saying "+want, func() bool {
		states, _, _ := ti.coord.snapshot()
		for _, st := range states {
			if st.State == wire.ChannelError && strings.Contains(st.Error, want) {
				return true
			}
		}
		return false
	})
}

// putSegment encodes one second of the test source with codec args and
// PUTs it as an HLS-push segment; it returns the answer.
func putSegment(t *testing.T, ti *testIngest, key string, codec ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg.ts")
	if out, err := runFFmpeg(t, ti.ffmpeg, append(testSource(1, codec...), "-f", "mpegts", path)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	seg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, ti.http.URL+"/live/"+key+"/index0.ts", bytes.NewReader(seg))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(body), nil
}

func TestRefusedSources(t *testing.T) {
	cases := []struct {
		name      string
		publish   func(ti *testIngest) (string, error) // ffmpeg output / answer
		toUser    string                               // the publisher is told (empty: not checkable)
		stateSays string                               // the channel state says (empty: no channel known)
	}{
		{"rtmp wrong key", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(1), "-f", "flv", "rtmp://"+ti.rtmp+"/live/sk_wrong")...)
		}, "", ""},
		{"hls wrong key", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(1), "-f", "hls", "-hls_time", "1", "-method", "PUT", ti.http.URL+"/live/sk_wrong/index.m3u8")...)
		}, "", ""},
		{"hls wrong key, one segment", func(ti *testIngest) (string, error) {
			return putSegment(t, ti, "sk_wrong", "-c:v", "libx264", "-g", "25", "-c:a", "aac")
		}, "403 Forbidden", ""},
		{"hls mpeg4 video, one segment", func(ti *testIngest) (string, error) {
			return putSegment(t, ti, testKey, "-c:v", "mpeg4", "-c:a", "aac")
		}, "H.264", "H.264"},
		{"hls mpeg4 video", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(2, "-c:v", "mpeg4", "-c:a", "aac"), "-f", "hls", "-hls_time", "1", "-method", "PUT", ti.http.URL+"/live/"+testKey+"/index.m3u8")...)
		}, "", "H.264"},
		{"rtmp mpeg4 video", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(2, "-c:v", "mpeg4", "-c:a", "aac"), "-f", "flv", "rtmp://"+ti.rtmp+"/live/"+testKey)...)
		}, "", "H.264"},
		{"rtmp no keyframe within the segment", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(3, "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-c:a", "aac"), "-f", "flv", "rtmp://"+ti.rtmp+"/live/"+testKey)...)
		}, "", "-g"},
		{"hls no keyframe within the segment", func(ti *testIngest) (string, error) {
			return runFFmpeg(t, ti.ffmpeg, append(testSource(3, "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-c:a", "aac"), "-f", "hls", "-hls_time", "1", "-method", "PUT", ti.http.URL+"/live/"+testKey+"/index.m3u8")...)
		}, "", "keyframe"},
		{"hls garbage bytes", func(ti *testIngest) (string, error) {
			junk := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range junk {
				junk[i] = byte(r.Uint32())
			}
			req, _ := http.NewRequest(http.MethodPut, ti.http.URL+"/live/"+testKey+"/index0.ts", bytes.NewReader(junk))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.Status + " " + string(body), nil
		}, "not an MPEG-TS segment", "MPEG-TS"},
		{"rtmp garbage bytes", func(ti *testIngest) (string, error) {
			c, err := net.Dial("tcp", ti.rtmp)
			if err != nil {
				return "", err
			}
			defer c.Close()
			junk := bytes.Repeat([]byte("garbage!"), 1000)
			_, _ = c.Write(junk)
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.Copy(io.Discard, c) // the origin closes the connection
			return "", err
		}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ti := newTestIngest(t, time.Minute)
			out, _ := tc.publish(ti)
			if tc.toUser != "" && !strings.Contains(out, tc.toUser) {
				t.Errorf("the publisher was told %q, want it to mention %q", out, tc.toUser)
			}
			if tc.stateSays != "" {
				assertChannelError(t, ti, tc.stateSays)
			}
			// Let anything in flight land before looking (bounded).
			waitFor(t, "no source attached", func() bool {
				b, ok := ti.Broadcast(testChannel)
				return !ok || b.State != wire.ChannelPublishing
			})
			assertNothingPublished(t, ti)
		})
	}
}
