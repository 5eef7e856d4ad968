package coordinator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// TestHotLookupAnswersAsHandler: the coordinator served by
// httpserve.ListenSplit answers lookups from ServeHotLookup (net/http
// never sees them) with what handleLookup answers: the same status,
// content type, sources, reused order limits, lookup and demand counts,
// for binary and JSON answers and prefetch lookups; every refusal goes to
// net/http, which gives its usual message, with nothing counted twice.
func TestHotLookupAnswersAsHandler(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	video := h.video(1)
	for i := range 6 {
		h.edge("", set(video, 0, 0, i, i+10), set(video, 0, 1, i+20))
	}
	viewer := h.bindViewer(h.user("vera"))
	var viaNetHTTP atomic.Int64
	rest := h.c.Handler()
	split, err := httpserve.ListenSplit(t.Context(), "127.0.0.1:0", "", h.c.ServeHotLookup, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viaNetHTTP.Add(1)
		rest.ServeHTTP(w, r)
	}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer split.Close()

	post := func(base, ct, accept, purpose string, body []byte) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", base+wire.PathLookup, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if purpose != "" {
			req.Header.Set(wire.HeaderLookupPurpose, purpose)
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
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	decode := func(ct string, b []byte, viewer wire.NodeID) wire.LookupResponse {
		t.Helper()
		var got wire.LookupResponse
		var err error
		if ct == wire.ContentTypeLookupBinary {
			got, err = wire.DecodeLookupBinary(b, viewer, video)
		} else {
			err = jsonStrict(b, &got)
		}
		if err != nil {
			t.Fatalf("%s answer: %v", ct, err)
		}
		// Ties rank in a random order per lookup: compare as sets.
		for i := range got.Segments {
			slices.SortFunc(got.Segments[i].Sources, func(a, b wire.Source) int { return strings.Compare(string(a.NodeID), string(b.NodeID)) })
		}
		slices.SortFunc(got.Limits, func(a, b wire.OrderLimit) int { return strings.Compare(string(a.Edge), string(b.Edge)) })
		return got
	}
	demanded := func() int {
		h.c.demandMu.Lock()
		defer h.c.demandMu.Unlock()
		h.c.applyQueuedDemandLocked()
		h.c.demand.Fold(h.clock.Now())
		return len(h.c.demand.Demand())
	}

	for _, tc := range []struct {
		name, accept, purpose string
		viewer                wire.NodeID
	}{
		{"binary, payable", wire.ContentTypeLookupBinary, "", viewer.ID},
		{"JSON, payable", "application/json", "", viewer.ID},
		{"no Accept, anonymous", "", "", ""},
		{"binary, prefetch", wire.ContentTypeLookupBinary, wire.LookupPurposePrefetch, ""},
	} {
		body, _ := json.Marshal(wire.LookupRequest{Video: video, Rendition: 0, From: 0, Count: 2, ViewerID: tc.viewer})
		lookups, demand := h.c.lookups.Load(), demanded()
		s1, ct1, b1 := post(h.srv.URL, "application/json", tc.accept, tc.purpose, body)
		s2, ct2, b2 := post(split.Advertise, "application/json", tc.accept, tc.purpose, body)
		if s1 != 200 || s2 != 200 || ct1 != ct2 {
			t.Fatalf("%s: net/http %d %s, hot %d %s", tc.name, s1, ct1, s2, ct2)
		}
		if a, b := decode(ct1, b1, tc.viewer), decode(ct2, b2, tc.viewer); !reflectEqual(a, b) {
			t.Fatalf("%s: answers differ:\nnet/http %+v\n     hot %+v", tc.name, a, b)
		}
		if n := h.c.lookups.Load() - lookups; n != 2 {
			t.Fatalf("%s: %d lookups counted for 2", tc.name, n)
		}
		if tc.purpose == wire.LookupPurposePrefetch && demanded() != demand {
			t.Fatalf("%s: a prefetch lookup created demand", tc.name)
		}
		if viaNetHTTP.Load() != 0 {
			t.Fatalf("%s: the split server sent a plain lookup to net/http", tc.name)
		}
	}
	if demanded() == 0 {
		t.Fatal("viewer lookups on either path recorded no demand")
	}

	long := make([]wire.NodeID, 80)
	for i := range long {
		long[i] = wire.NodeID(strings.Repeat("ab", 32))
	}
	longBody, _ := json.Marshal(wire.LookupRequest{Video: video, Count: 2, Exclude: long})
	goodBody, _ := json.Marshal(wire.LookupRequest{Video: video, Count: 2})
	for _, tc := range []struct {
		name, ct string
		body     []byte
		status   int
	}{
		{"unknown video", "application/json", []byte(`{"video":"` + strings.Repeat("0", 64) + `","rendition":0,"from":0,"count":2}`), 404},
		{"count out of range", "application/json", []byte(`{"video":"` + video.String() + `","rendition":0,"from":0,"count":0}`), 400},
		{"not JSON", "application/json", []byte(`{"video":`), 400},
		{"unknown field", "application/json", []byte(`{"video":"` + video.String() + `","count":2,"bogus":1}`), 400},
		{"content type with a charset", "application/json; charset=utf-8", goodBody, 200},
		{"wrong content type", "text/plain", goodBody, 415},
		{"long exclude list", "application/json", longBody, 200},
	} {
		before := viaNetHTTP.Load()
		lookups := h.c.lookups.Load()
		s1, ct1, b1 := post(h.srv.URL, tc.ct, "", "", tc.body)
		s2, ct2, b2 := post(split.Advertise, tc.ct, "", "", tc.body)
		if s1 != tc.status || s2 != s1 || ct1 != ct2 {
			t.Fatalf("%s: net/http %d %s %s, split %d %s %s; want %d", tc.name, s1, ct1, b1, s2, ct2, b2, tc.status)
		}
		if s1 != 200 && !bytes.Equal(b1, b2) {
			t.Fatalf("%s: refusals differ: net/http %s, split %s", tc.name, b1, b2)
		}
		if viaNetHTTP.Load() != before+1 {
			t.Fatalf("%s: the hot path answered a request it should leave to net/http", tc.name)
		}
		if want := map[bool]int64{true: 2, false: 0}[s1 == 200]; h.c.lookups.Load()-lookups != want {
			t.Fatalf("%s: %d lookups counted, want %d", tc.name, h.c.lookups.Load()-lookups, want)
		}
	}
}
