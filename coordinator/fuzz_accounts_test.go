package coordinator

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// FuzzAccountBodies feeds arbitrary bodies to the account and settlement
// routes of a store-backed coordinator, authenticated as a user and as an
// edge: never a panic, never a 5xx.
func FuzzAccountBodies(f *testing.F) {
	h := newStoreHarness(f, "sqlite:"+f.TempDir()+"/c.db", "", nil)
	user := h.user("fuzzer")
	edge, api := h.boundEdge("fuzzedge", "")
	h.passAudit(edge.ID) // so settlement reaches the pairs instead of refusing the edge
	f.Add(uint8(0), []byte(`{"username":"abc","password":"password1"}`))
	f.Add(uint8(1), []byte(`{"username":"fuzzer","password":"password-fuzzer"}`))
	f.Add(uint8(2), []byte(`{"node_id":"`+string(edge.ID)+`"}`))
	f.Add(uint8(3), []byte(`{"viewer_id":"`+string(edge.ID)+`"}`))
	f.Add(uint8(4), []byte(`{"id":"b1","edge":"`+string(edge.ID)+`","pairs":[{"limit":{"serial":"00000000000000000000000000000000","edge":"`+string(edge.ID)+`","max_bytes":5},"order":{"amount":9}}]}`))
	f.Add(uint8(5), []byte(`{"username":"fuzzer","points":-1}`))
	f.Add(uint8(6), []byte(`{"price":9223372036854775807}`))
	f.Add(uint8(7), []byte(`{"viewer_id":"`+string(edge.ID)+`","account":1,"gateway":"http://127.0.0.1:1","unix_ms":1,"signature":"AAAA"}`))
	f.Add(uint8(7), []byte(`{"viewer_id":"`+string(edge.ID)+`","gateway":"http://[::1]:99999"}`))
	f.Add(uint8(4), []byte(`null`))
	f.Add(uint8(0), []byte(``))
	routes := []struct{ path, token string }{
		{wire.PathSignup, ""}, {wire.PathLogin, ""}, {wire.PathBindEdge, user}, {wire.PathBindViewer, user},
		{wire.PathSettle, api}, {wire.PathGrant, h.admin}, {videoPath(wire.PathSetPrice, h.video(0)), h.admin},
		{wire.PathPlayers, user},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+rt.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if rt.token != "" {
			req.Header.Set("Authorization", "Bearer "+rt.token)
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: %d %s", rt.path, body, resp.StatusCode, b)
		}
	})
}
