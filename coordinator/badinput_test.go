package coordinator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

func TestBadRequestsGet4xxWithMessage(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	edge := h.edge("eu", set(v, 0, 0, 1))
	unknownVideo := strings.Repeat("ef", 32)
	huge := `{"video":"` + strings.Repeat("a", wire.MaxJSONBody) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		phrase                   string
	}{
		{"lookup not json", "POST", wire.PathLookup, `{`, 400, "malformed"},
		{"lookup unknown field", "POST", wire.PathLookup, `{"video":"` + v.String() + `","bogus":1}`, 400, "unknown field"},
		{"lookup trailing data", "POST", wire.PathLookup, `{"video":"` + v.String() + `"} {}`, 400, "trailing"},
		{"lookup oversize", "POST", wire.PathLookup, huge, 413, "over"},
		{"lookup unknown video", "POST", wire.PathLookup, `{"video":"` + unknownVideo + `","count":1}`, 404, "not in the catalogue"},
		{"lookup rendition -1", "POST", wire.PathLookup, `{"video":"` + v.String() + `","rendition":-1,"count":1}`, 400, "rendition -1"},
		{"lookup rendition 9", "POST", wire.PathLookup, `{"video":"` + v.String() + `","rendition":9,"count":1}`, 400, "rendition 9"},
		{"lookup from -1", "POST", wire.PathLookup, `{"video":"` + v.String() + `","from":-1,"count":1}`, 400, "from -1"},
		{"lookup from past end", "POST", wire.PathLookup, `{"video":"` + v.String() + `","from":100000,"count":1}`, 400, "from 100000"},
		{"lookup count 0", "POST", wire.PathLookup, `{"video":"` + v.String() + `","count":0}`, 400, "count 0"},
		{"lookup count 65", "POST", wire.PathLookup, `{"video":"` + v.String() + `","count":65}`, 400, "count 65"},
		{"lookup long region", "POST", wire.PathLookup, `{"video":"` + v.String() + `","count":1,"region":"` + strings.Repeat("r", 65) + `"}`, 400, "region"},
		{"lookup wrong type", "POST", wire.PathLookup, `{"video":"` + v.String() + `","count":"1"}`, 400, "malformed"},
		{"register unsigned", "POST", wire.PathRegister, `{"node_id":"abc","role":"edge","addr":"http://127.0.0.1:1"}`, 401, "unsigned"},
		{"register bad role", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"boss","addr":"http://127.0.0.1:1"}`, 400, "role"},
		{"register bad addr", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"edge","addr":"x:1"}`, 400, "addr"},
		{"register addr with path", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"edge","addr":"http://127.0.0.1:1/x?y="}`, 400, "path"},
		{"register addr of another host", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"edge","addr":"http://10.0.0.1:1"}`, 400, "came from"},
		{"register host name", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"edge","addr":"http://localhost:1"}`, 400, "not an IP"},
		{"register negative cap", "POST", wire.PathRegister, `{"node_id":"` + string(edge) + `","role":"edge","addr":"http://127.0.0.1:1","disk_cap_bytes":-1}`, 400, "negative"},
		{"heartbeat unsigned", "POST", wire.PathHeartbeat, `{"node_id":"zz"}`, 401, "unsigned"},
		{"heartbeat shard out of range", "POST", wire.PathHeartbeat, `{"node_id":"` + string(edge) + `","added":[{"video":"` + v.String() + `","rendition":0,"segment":1,"shards":[2]},{"video":"` + v.String() + `","rendition":0,"segment":0,"shards":[32]}]}`, 400, "shard index 32"},
		{"heartbeat segment out of range", "POST", wire.PathHeartbeat, `{"node_id":"` + string(edge) + `","removed":[{"video":"` + v.String() + `","rendition":0,"segment":5000,"shards":[1]}]}`, 400, "segment 5000"},
		{"heartbeat negative shard unknown video", "POST", wire.PathHeartbeat, `{"node_id":"` + string(edge) + `","added":[{"video":"` + unknownVideo + `","rendition":0,"segment":0,"shards":[-1]}]}`, 400, "shard index -1"},
		{"leave unsigned", "POST", wire.PathLeave, `{"node_id":"` + strings.Repeat("0", 64) + `"}`, 401, "unsigned"},
		{"bad-shard no evidence", "POST", wire.PathBadShard, `{"node":"` + string(edge) + `","video":"` + v.String() + `"}`, 400, "evidence"},
		{"bad-shard unknown video", "POST", wire.PathBadShard, `{"node":"` + string(edge) + `","video":"` + unknownVideo + `","evidence":"AAAA"}`, 404, "not in the catalogue"},
		{"bad-shard bad shard index", "POST", wire.PathBadShard, `{"node":"` + string(edge) + `","video":"` + v.String() + `","shard":40,"evidence":"AAAA"}`, 400, "shard index 40"},
		{"bad-shard bad segment", "POST", wire.PathBadShard, `{"node":"` + string(edge) + `","video":"` + v.String() + `","segment":-3,"evidence":"AAAA"}`, 400, "segment -3"},
		{"bad-shard bad node", "POST", wire.PathBadShard, `{"node":"me","video":"` + v.String() + `","evidence":"AAAA"}`, 400, "node"},
		{"publish unsigned", "POST", wire.PathPublish, `[]`, 401, "unsigned"},
		{"manifest bad id", "GET", "/api/v1/videos/xyz/manifest", ``, 400, "64 hex"},
		{"key unknown id", "GET", "/api/v1/videos/" + unknownVideo + "/key", ``, 404, "not in the catalogue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := signingClient(http.DefaultClient, h.clock.Now).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body wire.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("status %d: error body is not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(body.Error, tc.phrase) {
				t.Fatalf("got %d %q, want %d mentioning %q", resp.StatusCode, body.Error, tc.status, tc.phrase)
			}
		})
	}

	// The rejected heartbeat applied none of its sets, and rejected lookups
	// counted no demand and no lookups.
	resp := h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 2})
	if got := sourcesOf(resp, 1); len(got) != 0 {
		t.Fatalf("rejected heartbeat left partial state: segment 1 sources %v", got)
	}
	if st := h.c.Stats(); st.Lookups != 1 || st.BadShards != 0 || st.BannedNodes != 0 {
		t.Fatalf("stats after bad requests = %+v", st)
	}
}

func TestLookupResponseIsValidJSON(t *testing.T) {
	// The hand-written renderer must agree with encoding/json on odd
	// addresses (quotes, unicode) and empty lists.
	h := newHarness(t)
	v := h.video(0)
	id := h.edge("eu")
	// Registration only takes canonical IP addresses now; the renderer
	// must still escape whatever the registry holds.
	h.c.mu.Lock()
	h.c.st.register(wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: `http://h/"q"\ü<>&`}, h.clock.Now(), 1)
	h.c.mu.Unlock()
	h.heartbeat(wire.HeartbeatRequest{NodeID: id, Full: true, Added: []wire.ShardSet{set(v, 1, 3, 31, 0, 7)}})
	req := wire.LookupRequest{Video: v, Rendition: 1, From: 2, Count: 3}
	viaHTTP := h.lookup(req)
	direct, err := h.c.Lookup(req)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(viaHTTP)
	b, _ := json.Marshal(direct)
	if !bytes.Equal(a, b) {
		t.Fatalf("HTTP and in-process lookups differ:\n%s\n%s", a, b)
	}
	if src := viaHTTP.Segments[1].Sources; len(src) != 1 || src[0].Addr != `http://h/"q"\ü<>&` {
		t.Fatalf("sources = %+v", src)
	}
}
