package coordinator

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// TestBinaryLookupIsTheJSONAnswer: one ranked result rendered both ways,
// order limits included, decodes to the same answer; over HTTP a client
// that asks for JSON gets JSON, and one that asks for the binary answer
// gets it, with the same (reused) limits.
func TestBinaryLookupIsTheJSONAnswer(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	video := h.video(1)
	var edges []wire.NodeID
	for i := range 6 {
		edges = append(edges, h.edge("", set(video, 0, 0, i, i+10), set(video, 0, 1, i+20)))
	}
	// A node that leaves frees its slot (node.slot) and the next one to
	// register takes it: the node table must not confuse the two.
	gone := h.edge("", set(video, 0, 0, 30))
	if err := h.client.Leave(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	edges = append(edges, h.edge("", set(video, 0, 2, 31)))
	viewer := h.bindViewer(h.user("vera"))
	req := wire.LookupRequest{Video: video, Rendition: 0, From: 0, Count: 3, ViewerID: viewer.ID}

	sc := h.c.scratch.Get().(*lookupScratch)
	sc.binary, sc.prefetch = true, false
	var js, bin []byte
	if err := h.c.lookup(&req, sc, func(res *lookupResult) {
		js = res.appendJSON(nil)
		bin = res.appendBinary(nil, sc.nodes, &sc.marks)
	}); err != nil {
		t.Fatal(err)
	}
	limits, err := h.c.acct.OrderLimits(context.Background(), viewer.ID, video, sc.edges, sc.edgeSlots, nil)
	if err != nil {
		t.Fatal(err)
	}
	js, bin = appendLimits(js, limits), accounting.AppendBinaryLimits(bin, limits, sc.edgeAt)
	h.c.scratch.Put(sc)

	var fromJSON wire.LookupResponse
	if err := jsonStrict(js, &fromJSON); err != nil {
		t.Fatalf("JSON answer: %v: %s", err, js)
	}
	fromBinary, err := wire.DecodeLookupBinary(bin, viewer.ID, video)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromBinary, fromJSON) {
		t.Fatalf("binary answer differs from the JSON one:\nbinary %+v\n  json %+v", fromBinary, fromJSON)
	}
	if len(fromJSON.Limits) != len(edges) || len(fromJSON.Segments) != 3 {
		t.Fatalf("answer has %d limits and %d segments, want %d and 3", len(fromJSON.Limits), len(fromJSON.Segments), len(edges))
	}
	if len(bin)*3 > len(js) {
		t.Errorf("binary answer %d bytes, JSON %d: want at most a third", len(bin), len(js))
	}

	body, _ := json.Marshal(req)
	serials := map[wire.NodeID]wire.Serial{}
	for _, l := range fromJSON.Limits {
		serials[l.Edge] = l.Serial
	}
	for _, accept := range []string{"", "application/json", wire.ContentTypeLookupBinary} {
		r := h.want(h.do("POST", wire.PathLookup, "", body, func(r *http.Request) { r.Header.Set("Accept", accept) }), 200)
		var got wire.LookupResponse
		switch ct := r.header.Get("Content-Type"); {
		case accept == wire.ContentTypeLookupBinary && ct == wire.ContentTypeLookupBinary:
			got, err = wire.DecodeLookupBinary(r.body, viewer.ID, video)
		case accept != wire.ContentTypeLookupBinary && ct == "application/json":
			err = jsonStrict(r.body, &got)
		default:
			t.Fatalf("Accept %q: answered %s", accept, ct)
		}
		if err != nil {
			t.Fatalf("Accept %q: %v", accept, err)
		}
		if len(got.Limits) != len(edges) {
			t.Fatalf("Accept %q: %d limits, want %d", accept, len(got.Limits), len(edges))
		}
		for _, l := range got.Limits {
			if serials[l.Edge] != l.Serial || l.Viewer != viewer.ID || l.Video != video {
				t.Fatalf("Accept %q: limit %+v is not the cached one", accept, l)
			}
		}
	}
}
