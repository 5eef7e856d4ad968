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
func TestFetchShardOversizeIsALie(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, "liar")
		w.Write(bytes.Repeat([]byte{1}, 2000))
	}))
	defer srv.Close()
	b, node, err := FetchShard(t.Context(), srv.Client(), srv.URL, "v", 0, 0, 0, 1000)
	if !errors.Is(err, ErrOversize) || b != nil || node != "liar" {
		t.Fatalf("got %d bytes from %q, err %v; want ErrOversize naming the node", len(b), node, err)
	}
	if _, _, err := FetchShard(t.Context(), srv.Client(), srv.URL, "v", 0, 0, 0, 2000); err != nil {
		t.Fatalf("a body exactly at the limit: %v", err)
	}
}
