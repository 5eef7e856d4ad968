package origin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzShardPath drives arbitrary request paths through the handler: every
// answer is a 2xx or a 4xx, never a 5xx or a panic.
func FuzzShardPath(f *testing.F) {
	o, _, id, _ := newTestOrigin(f, 1<<20)
	for _, s := range []string{
		"/v1/shards/" + id.String() + "/0/0/0",
		"/v1/shards/" + id.String() + "/1/3/31",
		"/v1/shards/" + id.String() + "/0/0/32",
		"/v1/shards/" + id.String() + "/255/1048575/255",
		"/v1/segments/" + id.String() + "/0/1",
		"/v1/manifests/" + id.String(),
		"/v1/shards/00/0/0/0",
		"/v1/shards/" + id.String() + "/-0/+1/0x1",
		"/v1/shards/" + id.String() + "/0/0/0/extra",
	} {
		f.Add(s)
	}
	h := o.Handler()
	f.Fuzz(func(t *testing.T, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t?#%") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://origin"+path, nil)
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
