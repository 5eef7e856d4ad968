package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
)

func testRef() content.ShardRef {
	var id content.VideoID
	id[0], id[31] = 0xab, 0x01
	return content.SegmentRef{Video: id, Rendition: 2, Segment: 17}.Shard(31)
}

// Every URL builder routes back, through the server's pattern, to the ref
// it was built from.
func TestRoutePatterns(t *testing.T) {
	ref := testRef()
	mux := http.NewServeMux()
	var gotShard content.ShardRef
	var gotSeg content.SegmentRef
	var gotVideo content.VideoID
	mux.HandleFunc("GET "+PathShard, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if gotShard, err = ParseShardRef(r); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET "+PathSegment, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if gotSeg, err = ParseSegmentRef(r); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET "+PathOriginManifest, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if gotVideo, err = ParseVideoParam(r); err != nil {
			t.Error(err)
		}
	})
	for _, u := range []string{ShardURL("", ref), SegmentURL("", ref.SegmentRef), OriginManifestURL("", ref.Video)} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s: %d", u, rec.Code)
		}
	}
	if gotShard != ref || gotSeg != ref.SegmentRef || gotVideo != ref.Video {
		t.Fatalf("parsed %v, %v, %v; want %v", gotShard, gotSeg, gotVideo, ref)
	}
	if want := "http://h/v1/shards/" + ref.Video.String() + "/2/17/31"; ShardURL("http://h", ref) != want {
		t.Fatalf("ShardURL = %s, want %s", ShardURL("http://h", ref), want)
	}
	for _, p := range []string{PathManifest, PathKey, PathUnlock, PathSetPrice} {
		if got := videoPath(p, "x"); strings.Contains(got, "{") || !strings.Contains(got, "/x") {
			t.Errorf("videoPath(%s) = %s", p, got)
		}
	}
}

func TestParseShardRefBounds(t *testing.T) {
	ref := testRef()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathShard, func(w http.ResponseWriter, r *http.Request) {
		if _, err := ParseShardRef(r); err != nil {
			WriteError(w, 400, "%v", err)
		}
	})
	base := "/v1/shards/" + ref.Video.String()
	for path, want := range map[string]int{
		base + "/0/0/0":       200,
		base + "/256/0/0":     400,
		base + "/0/-1/0":      400,
		base + "/0/0/256":     400,
		base + "/0/x/0":       400,
		"/v1/shards/ab/0/0/0": 400,
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}

// GetShard sends the order headers, returns the receipt, and hands back
// the oversize body as evidence.
func TestGetShard(t *testing.T) {
	ref := testRef()
	pub, key, _ := ed25519.GenerateKey(nil)
	edge := struct {
		ID  NodeID
		Key ed25519.PrivateKey
	}{NodeID(hex.EncodeToString(pub)), key}
	data := []byte("shard bytes")
	rc := SignShardReceipt(edge.Key, ref, data)
	receipt := EncodeReceiptHeader(&rc)
	var gotLimit, gotOrder string
	size := 100
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotLimit, gotOrder = r.Header.Get(HeaderOrderLimit), r.Header.Get(HeaderOrder)
		if r.URL.Path != ShardURL("", ref) {
			WriteError(w, 404, "no such shard %s", r.URL.Path)
			return
		}
		w.Header().Set(HeaderNode, string(edge.ID))
		w.Header().Set(HeaderReceipt, receipt)
		w.Write(bytes.Repeat([]byte{1}, size))
	}))
	defer srv.Close()
	req := ShardRequest{Base: srv.URL, Ref: ref, MaxBytes: 100, Limit: "L", Order: "O"}
	resp, err := GetShard(t.Context(), srv.Client(), req)
	if err != nil || len(resp.Body) != 100 || resp.Node != edge.ID || resp.Receipt != receipt || gotLimit != "L" || gotOrder != "O" {
		t.Fatalf("GetShard = %d bytes from %q, receipt %v, err %v; headers sent %q %q", len(resp.Body), resp.Node, resp.Receipt != "", err, gotLimit, gotOrder)
	}
	if _, err := CheckShardReceipt(resp.Receipt, edge.ID, ref, data); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if _, err := CheckShardReceipt(resp.Receipt, edge.ID, ref.SegmentRef.Shard(3), data); err == nil {
		t.Fatal("a receipt for another shard was accepted")
	}
	if _, err := CheckShardReceipt(resp.Receipt, edge.ID, ref, []byte("other")); err == nil {
		t.Fatal("a receipt over other bytes was accepted")
	}
	// An order goes only with a limit.
	if _, err := GetShard(t.Context(), srv.Client(), ShardRequest{Base: srv.URL, Ref: ref, MaxBytes: 100, Order: "O"}); err != nil || gotLimit != "" || gotOrder != "" {
		t.Fatalf("unpaid request sent %q %q (err %v)", gotLimit, gotOrder, err)
	}
	size = 2000
	resp, err = GetShard(t.Context(), srv.Client(), req)
	if !errors.Is(err, ErrOversize) || len(resp.Body) != 101 || resp.Node != edge.ID {
		t.Fatalf("oversize: %d bytes of evidence from %q, err %v", len(resp.Body), resp.Node, err)
	}
	_, err = GetShard(t.Context(), srv.Client(), ShardRequest{Base: srv.URL, Ref: ref.SegmentRef.Shard(1), MaxBytes: 100})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !IsNotFound(err) {
		t.Fatalf("missing shard: %v", err)
	}
}

func TestSendFinalOrder(t *testing.T) {
	var got SettlementPair
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != PathOrders {
			WriteError(w, 404, "wrong route")
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			WriteError(w, 400, "%v", err)
			return
		}
		if status != 200 {
			WriteError(w, status, "refused")
			return
		}
		WriteJSON(w, struct{}{})
	}))
	defer srv.Close()
	pair := SettlementPair{Order: Order{Amount: 42}}
	if err := SendFinalOrder(t.Context(), srv.Client(), srv.URL+"/", pair); err != nil || got.Order.Amount != 42 {
		t.Fatalf("SendFinalOrder: %v, edge got %+v", err, got)
	}
	status = 403
	var ae *APIError
	if err := SendFinalOrder(t.Context(), srv.Client(), srv.URL, pair); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("refused final order: %v", err)
	}
}

// The receipt header is the signature alone, and CheckShardReceipt rebuilds
// the receipt the edge signed: a full, transferable ServedShardReceipt.
// Anything but the edge's signature over exactly these bytes for exactly
// this shard is refused.
func TestCompactReceiptHeader(t *testing.T) {
	ref := testRef()
	pub, key, _ := ed25519.GenerateKey(nil)
	edge := NodeID(hex.EncodeToString(pub))
	body := []byte("an encoded shard message")
	rc := SignShardReceipt(key, ref, body)
	h := EncodeReceiptHeader(&rc)
	if len(h) != 86 {
		t.Fatalf("receipt header is %d characters, want 86 (a base64url signature)", len(h))
	}
	got, err := CheckShardReceipt(h, edge, ref, body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, rc) {
		t.Fatalf("rebuilt receipt %+v, signed %+v", *got, rc)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	flipped := []byte(h)
	flipped[10] ^= 'A' ^ 'B'
	for name, tc := range map[string]struct {
		header string
		edge   NodeID
	}{
		"another edge":   {h, NodeID(hex.EncodeToString(otherPub))},
		"flipped":        {string(flipped), edge},
		"short":          {h[:85], edge},
		"padded":         {h + "=", edge},
		"not base64":     {strings.Repeat("!", 86), edge},
		"old JSON value": {EncodeHeader(rc), edge},
	} {
		if _, err := CheckShardReceipt(tc.header, tc.edge, ref, body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzCheckShardReceipt feeds untrusted receipt headers and bodies: nothing
// panics, and only the edge's real signature over exactly the body passes.
func FuzzCheckShardReceipt(f *testing.F) {
	ref := testRef()
	pub, key, _ := ed25519.GenerateKey(rand.New(rand.NewSource(1)))
	edge := NodeID(hex.EncodeToString(pub))
	good := []byte("shard bytes")
	rc := SignShardReceipt(key, ref, good)
	f.Add(EncodeReceiptHeader(&rc), good)
	f.Add(EncodeReceiptHeader(&rc), []byte("other"))
	f.Add(EncodeHeader(rc), good)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		r, err := CheckShardReceipt(header, edge, ref, body)
		if err != nil {
			return
		}
		if VerifyShardReceipt(r, body) != nil || r.Ref() != ref || r.Edge != edge || !bytes.Equal(body, good) {
			t.Fatalf("accepted a receipt that is not the edge's over %q", body)
		}
	})
}

// muxShardRef routes path through a ServeMux with PathShard, as a server
// that does not parse shard paths itself does; ok is false if the mux did
// not route it there or ParseShardRef refused it.
func muxShardRef(path string) (ref content.ShardRef, ok bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathShard, func(w http.ResponseWriter, r *http.Request) {
		var err error
		ref, err = ParseShardRef(r)
		ok = err == nil
	})
	mux.ServeHTTP(httptest.NewRecorder(), &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Header: http.Header{}})
	return ref, ok
}

// ParseShardPath takes the plain form of every shard path and gives the
// ref the ServeMux route gives; what it refuses goes to the mux.
func TestParseShardPath(t *testing.T) {
	ref := testRef()
	if got, ok := ParseShardPath([]byte(ShardURL("", ref))); !ok || got != ref {
		t.Fatalf("ParseShardPath(%s) = %v, %v; want %v", ShardURL("", ref), got, ok, ref)
	}
	edges := content.SegmentRef{Video: ref.Video, Rendition: maxRenditionParam - 1, Segment: maxSegmentParam - 1}.Shard(content.MaxTotalShards - 1)
	if got, ok := ParseShardPath([]byte(ShardURL("", edges))); !ok || got != edges {
		t.Fatalf("largest indices: %v, %v; want %v", got, ok, edges)
	}
	base := "/v1/shards/" + ref.Video.String()
	for _, p := range []string{
		base + "/256/0/0", base + "/0/1048576/0", base + "/0/0/256", base + "/0/-1/0", base + "/0/+1/0",
		base + "/0/x/0", base + "/0/0/0/", base + "/0/0/", base + "/0//0", base + "0/0/0", "/v1/shards/ab/0/0/0",
		base[:len(base)-1] + "g/0/0/0", "/v1/shard/" + ref.Video.String() + "/0/0/0",
	} {
		if got, ok := ParseShardPath([]byte(p)); ok {
			t.Errorf("ParseShardPath(%s) = %v, want refused", p, got)
		}
	}
}

// FuzzParseShardPath: whatever ParseShardPath takes, the ServeMux route
// takes too, as the same ref.
func FuzzParseShardPath(f *testing.F) {
	ref := testRef()
	f.Add(ShardURL("", ref))
	f.Add("/v1/shards/" + ref.Video.String() + "/0/01/255")
	f.Add("/v1/shards/" + strings.ToUpper(ref.Video.String()) + "/1/2/3")
	f.Add("/v1/shards/x/1/2/3")
	f.Fuzz(func(t *testing.T, path string) {
		got, ok := ParseShardPath([]byte(path))
		if !ok {
			return
		}
		if want, muxOK := muxShardRef(path); !muxOK || want != got {
			t.Fatalf("ParseShardPath(%q) = %v; the mux route gives %v, %v", path, got, want, muxOK)
		}
	})
}
