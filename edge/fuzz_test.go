package edge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzShardPath drives arbitrary request paths through the handler: every
// answer is a 2xx or a 4xx, never a 5xx or a panic.
func FuzzShardPath(f *testing.F) {
	fx := sampleFixture(f)
	e := newTestEdge(f, f.TempDir(), nil)
	mustStore(f, e, fx, fx.key(0, 0, 0), false)
	for _, s := range []string{
		shardPath(fx.key(0, 0, 0)),
		shardPath(fx.key(0, 0, 1)),
		"/v1/shards/" + fx.id.String() + "/255/1048575/255",
		"/v1/shards/" + fx.id.String() + "/0/0/256",
		"/v1/shards/" + fx.id.String() + "/-0/+0/0x0",
		"/v1/shards/" + fx.id.String() + "/0/0/0/extra",
		"/v1/shards/00/0/0/0",
	} {
		f.Add(s)
	}
	h := e.Handler()
	f.Fuzz(func(t *testing.T, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t?#%") || strings.HasPrefix(path, "/metrics") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://edge"+path, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	})
}
