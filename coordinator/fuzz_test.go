package coordinator

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// fuzzCoordinator is a coordinator with the sample published and one edge
// holding shards, driven in-process. The video id comes back as hex, for
// splicing into JSON seeds.
func fuzzCoordinator(f *testing.F) (http.Handler, string, wire.NodeID) {
	fix := sampleStore(f)
	c, err := New(Config{Seed: 1, Log: quietLog(), Store: testStore(f), Accounting: accounting.Config{AuditInterval: -1}})
	if err != nil {
		f.Fatal(err)
	}
	origin, edge := newTestNode().ID, newTestNode().ID
	if err := c.AllowOrigin(f.Context(), origin); err != nil {
		f.Fatal(err)
	}
	call(c, wire.PathRegister, wire.RegisterRequest{NodeID: origin, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"})
	call(c, wire.PathRegister, wire.RegisterRequest{NodeID: edge, Role: wire.RoleEdge, Addr: "http://127.0.0.1:8"})
	if _, ok := call(c, wire.PathPublish, wire.PublishRequest{OriginID: origin, Videos: []wire.PublishedVideo{fix.published(f, fix.ids[0])}}); !ok {
		f.Fatal("publish failed")
	}
	v := fix.ids[0]
	call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: edge, Full: true, Added: []wire.ShardSet{set(v, 0, 0, 1, 2), set(v, 1, 3, 4)}})
	return c.Handler(), v.String(), edge
}

func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzLookupRequest feeds arbitrary bodies to the lookup route: never a
// panic, never a 5xx, and every 200 is a well-formed response.
func FuzzLookupRequest(f *testing.F) {
	h, v, edge := fuzzCoordinator(f)
	f.Add([]byte(`{"video":"` + v + `","rendition":0,"from":0,"count":4,"region":"eu"}`))
	f.Add([]byte(`{"video":"` + v + `","rendition":1,"from":3,"count":64,"exclude":["` + string(edge) + `"]}`))
	f.Add([]byte(`{"video":"` + v + `","rendition":1,"from":-1,"count":1}`))
	f.Add([]byte(`{"video":"","count":99999999999999999999}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, http.MethodPost, wire.PathLookup, body)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == http.StatusOK {
			var resp wire.LookupResponse
			if err := jsonStrict(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("200 with a malformed body %q: %v", rec.Body, err)
			}
		}
	})
}

// FuzzNodeRequests feeds arbitrary bodies to the other POST routes.
func FuzzNodeRequests(f *testing.F) {
	h, v, edge := fuzzCoordinator(f)
	routes := []string{wire.PathRegister, wire.PathHeartbeat, wire.PathLeave, wire.PathPublish, wire.PathBadShard, wire.PathPlayReport}
	f.Add(uint8(0), []byte(`{"node_id":"`+string(edge)+`","role":"edge","addr":"http://127.0.0.1:1","region":"eu"}`))
	f.Add(uint8(1), []byte(`{"node_id":"`+string(edge)+`","full":true,"added":[{"video":"`+v+`","rendition":0,"segment":2,"shards":[0,31]}],"served_bytes":-5}`))
	f.Add(uint8(2), []byte(`{"node_id":"`+string(edge)+`"}`))
	f.Add(uint8(3), []byte(`{"origin_id":"x","videos":[{"manifest":"U1dNRgE="}]}`))
	f.Add(uint8(4), []byte(`{"node":"`+string(edge)+`","video":"`+v+`","rendition":0,"segment":0,"shard":1,"evidence":"U1dTSAE="}`))
	f.Add(uint8(5), []byte(`{"video":"`+v+`","startup_ms":1e308,"bytes_by_source":{"a":-1}}`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := routes[int(route)%len(routes)]
		rec := serve(h, http.MethodPost, path, body)
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d for %q: %s", path, rec.Code, body, rec.Body)
		}
		// Whatever happened, lookups still work.
		if rec := serve(h, http.MethodPost, wire.PathLookup, []byte(`{"video":"`+v+`","count":4}`)); rec.Code != http.StatusOK {
			t.Fatalf("lookup after %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
	})
}
