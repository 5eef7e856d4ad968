package wire

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A source that sends more than a shard can hold is told apart from one
// that fails, so the viewer can ban it.
func TestGetShardOversizeIsALie(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, "liar")
		w.Write(bytes.Repeat([]byte{1}, 2000))
	}))
	defer srv.Close()
	req := ShardRequest{Base: srv.URL, Ref: testRef(), MaxBytes: 1000}
	resp, err := GetShard(t.Context(), srv.Client(), req)
	if !errors.Is(err, ErrOversize) || len(resp.Body) != 1001 || resp.Node != "liar" {
		t.Fatalf("got %d bytes from %q, err %v; want ErrOversize naming the node, with MaxBytes+1 bytes of evidence", len(resp.Body), resp.Node, err)
	}
	req.MaxBytes = 2000
	if _, err := GetShard(t.Context(), srv.Client(), req); err != nil {
		t.Fatalf("a body exactly at the limit: %v", err)
	}
}
