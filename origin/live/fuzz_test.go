package live

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzHLSPushSegment feeds untrusted bytes to the HLS-push segment route
// (the MPEG-TS demuxer, the track checks, the frame path into the
// segmenter): no input may panic the origin, and every answer is an
// accepted segment or a refusal that says why.
func FuzzHLSPushSegment(f *testing.F) {
	f.Add([]byte("garbage"))
	f.Add(bytes.Repeat([]byte{0x47, 0x40, 0x00, 0x10}, 47))
	ti := newTestIngest(f, time.Minute)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPut, "/live/"+testKey+"/index0.ts", bytes.NewReader(body))
		req.SetPathValue("key", testKey)
		req.SetPathValue("file", "index0.ts")
		rec := httptest.NewRecorder()
		ti.HandleHLSPush(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
		case rec.Code/100 == 4 && rec.Body.Len() > 0:
		default:
			t.Fatalf("answer %d %q: want 201 or a 4xx that says why", rec.Code, rec.Body.String())
		}
		// Each input is its own publisher.
		ti.mu.Lock()
		sess := ti.hls[testKey]
		ti.mu.Unlock()
		if sess != nil {
			ti.endHLS(sess, nil)
		}
	})
}
