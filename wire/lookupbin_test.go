package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
)

func testNodeID(b byte) NodeID { return NodeID(hex.EncodeToString(bytes.Repeat([]byte{b}, 32))) }

// sampleLookupResponse has every part of an answer: sources with several
// shards, a node listed in two segments, per-segment origins, fallback
// origins and two signed limits.
func sampleLookupResponse(t testing.TB) (LookupResponse, NodeID, content.VideoID) {
	_, key, _ := ed25519.GenerateKey(nil)
	viewer := testNodeID(0xee)
	var video content.VideoID
	video[0], video[31] = 1, 2
	e1, e2, o := testNodeID(1), testNodeID(2), testNodeID(0xa0)
	resp := LookupResponse{
		Segments: []SegmentSources{
			{Segment: 7, Sources: []Source{{NodeID: e1, Addr: "http://127.0.0.1:7001", Shards: []int{0, 5, 130}}, {NodeID: e2, Addr: "http://[::1]:7002", Shards: []int{3}}}},
			{Segment: 8, Sources: []Source{{NodeID: e2, Addr: "http://[::1]:7002", Shards: []int{4}}}, Origins: []Source{{NodeID: o, Addr: "http://127.0.0.1:7100"}}},
			{Segment: 9, Sources: []Source{}},
		},
		Origins: []Source{{NodeID: o, Addr: "http://127.0.0.1:7100"}},
	}
	for i, e := range []NodeID{e1, e2} {
		l := OrderLimit{Edge: e, Viewer: viewer, Video: video, MaxBytes: 64 << 20, ExpiresUnixMs: 1_800_000_000_000 + int64(i)}
		l.Serial[0] = byte(i + 1)
		SignOrderLimit(key, &l)
		resp.Limits = append(resp.Limits, l)
	}
	return resp, viewer, video
}

// The binary answer decodes to exactly the answer encoded, limits with the
// request's viewer and video, and is much smaller than its JSON.
func TestLookupBinaryRoundTrip(t *testing.T) {
	resp, viewer, video := sampleLookupResponse(t)
	b, err := EncodeLookupBinary(&resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLookupBinary(b, viewer, video)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, resp) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, resp)
	}
	js, _ := json.Marshal(resp)
	if len(b)*2 > len(js) {
		t.Errorf("binary answer %d bytes, JSON %d: want at most half", len(b), len(js))
	}
	// Every truncation is refused, never a partial answer.
	for n := range len(b) {
		if _, err := DecodeLookupBinary(b[:n], viewer, video); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded", n, len(b))
		}
	}
	if _, err := DecodeLookupBinary(append(b, 0), viewer, video); err == nil || !strings.Contains(err.Error(), "after the end") {
		t.Fatalf("trailing byte: %v", err)
	}
}

// A limit for an edge the answer does not list cannot be encoded, and an
// index past the node table cannot be decoded.
func TestLookupBinaryRefusesDanglingNodes(t *testing.T) {
	resp, viewer, video := sampleLookupResponse(t)
	resp.Limits[0].Edge = testNodeID(9)
	if _, err := EncodeLookupBinary(&resp); err == nil {
		t.Fatal("encoded a limit for an unlisted edge")
	}
	// magic, 1 node, no segments, 1 origin naming node 1 (of 1).
	b := AppendLookupMagic(nil)
	b = append(b, 1)
	b = AppendLookupNode(b, testNodeID(1), "http://127.0.0.1:1")
	b = append(b, 0, 1, 1, 0)
	if _, err := DecodeLookupBinary(b, viewer, video); err == nil || !strings.Contains(err.Error(), "origin 1, limit 0") {
		t.Fatalf("dangling origin index: %v", err)
	}
	b[len(b)-2] = 0 // now node 0: valid
	if _, err := DecodeLookupBinary(b, viewer, video); err != nil {
		t.Fatal(err)
	}
}

// The client asks for the binary answer and reads either encoding, so a
// coordinator (or a stand-in) answering JSON still works.
func TestLookupClientReadsBothEncodings(t *testing.T) {
	resp, viewer, video := sampleLookupResponse(t)
	for _, binary := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Accept"), ContentTypeLookupBinary) {
				t.Errorf("Accept %q does not ask for the binary answer", r.Header.Get("Accept"))
			}
			if binary {
				b, _ := EncodeLookupBinary(&resp)
				w.Header().Set("Content-Type", ContentTypeLookupBinary)
				_, _ = w.Write(b)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(resp)
		}))
		got, err := NewCoordinatorClient(srv.URL, nil).Lookup(t.Context(), LookupRequest{Video: video, Count: 3, ViewerID: viewer})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, resp) {
			t.Fatalf("binary %v: got %+v\nwant %+v", binary, got, resp)
		}
	}
}

// FuzzDecodeLookupBinary: untrusted answers never panic or allocate beyond
// their size, and whatever decodes re-encodes to an answer that decodes
// the same.
func FuzzDecodeLookupBinary(f *testing.F) {
	resp, viewer, video := sampleLookupResponse(f)
	b, _ := EncodeLookupBinary(&resp)
	f.Add(b)
	f.Add(AppendLookupMagic(nil))
	f.Add(append(AppendLookupMagic(nil), 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeLookupBinary(b, viewer, video)
		if err != nil {
			return
		}
		again, err := EncodeLookupBinary(&got)
		if err != nil {
			t.Fatalf("decoded answer does not re-encode: %v", err)
		}
		back, err := DecodeLookupBinary(again, viewer, video)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoded answer decodes differently: %v", err)
		}
	})
}
