package origin

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

func TestMain(m *testing.M) { samplestore.Main(m) }

// newTestOrigin serves the shared sample store (one video) over loopback,
// as cmd/swarmcast does: httpserve.ListenHot with ServeHot, then Handler.
func newTestOrigin(t testing.TB, cacheBytes int64) (*Origin, *content.Store, content.VideoID, *testServer) {
	t.Helper()
	st, id := samplestore.Video(t, "origin test")
	o, err := New(Config{Store: st, Identity: identity.New(), CacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := httpserve.ListenHot(context.Background(), "127.0.0.1:0", "", o.ServeHot, o.Handler(), o.log)
	if err != nil {
		t.Fatal(err)
	}
	srv := &testServer{URL: hs.Advertise, srv: hs}
	t.Cleanup(srv.Close)
	o.cfg.Advertise = srv.URL
	return o, st, id, srv
}

// testServer is an origin's server for a test; Close waits for every
// handler to finish.
type testServer struct {
	URL  string
	srv  *httpserve.Server
	once sync.Once
}

func (s *testServer) Close() {
	s.once.Do(func() {
		_ = s.srv.Close()
		_ = s.srv.Wait()
	})
}

func fetchShard(t testing.TB, base string, id content.VideoID, r, s, i int) (*content.ShardMessage, http.Header) {
	t.Helper()
	resp, err := http.Get(wire.ShardURL(base, content.SegmentRef{Video: id, Rendition: r, Segment: s}.Shard(i)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("shard %d/%d/%d: %d %s", r, s, i, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != wire.ContentTypeShard {
		t.Fatalf("content type %q", ct)
	}
	msg, err := content.DecodeShardMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return msg, resp.Header
}

func TestServesEveryShardWithValidProof(t *testing.T) {
	o, st, id, srv := newTestOrigin(t, 0)
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	for r := range m.Renditions {
		for _, s := range []int{0, len(m.Renditions[r].Segments) - 1} {
			for i := 0; i < m.Params.NMax; i++ {
				msg, hdr := fetchShard(t, srv.URL, id, r, s, i)
				if hdr.Get(wire.HeaderNode) != string(o.ID()) {
					t.Fatalf("node header %q, want %q", hdr.Get(wire.HeaderNode), o.ID())
				}
				if msg.Video != id || msg.Rendition != r || msg.Segment != s || msg.Index != i {
					t.Fatalf("message labelled %v/%d/%d/%d, asked %v/%d/%d/%d", msg.Video, msg.Rendition, msg.Segment, msg.Index, id, r, s, i)
				}
				if err := content.VerifyShard(m, r, s, msg.Shard); err != nil {
					t.Fatalf("shard %d/%d/%d: %v", r, s, i, err)
				}
				want += int64(len(msg.Encode()))
			}
		}
	}
	srv.Close() // waits for the handlers to finish counting
	if got := o.BytesServed(); got != want {
		t.Fatalf("BytesServed = %d, want %d", got, want)
	}
}

// With no cache room, data shards come from ciphertext ranges while the
// leaves stay cached; they must still verify and rebuild.
func TestRandomKShardsRebuildSegment(t *testing.T) {
	for _, cache := range []int64{0, 1} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			_, st, id, srv := newTestOrigin(t, cache)
			m, _ := st.Manifest(id)
			rng := rand.New(rand.NewPCG(1, uint64(cache)))
			for r := range m.Renditions {
				for s := range m.Renditions[r].Segments {
					var shards []content.Shard
					for _, i := range rng.Perm(m.Params.NMax)[:m.Params.K] {
						msg, _ := fetchShard(t, srv.URL, id, r, s, i)
						shards = append(shards, msg.Shard)
					}
					// Ask for data shards again now that the leaves are cached.
					msg, _ := fetchShard(t, srv.URL, id, r, s, 0)
					if err := content.VerifyShard(m, r, s, msg.Shard); err != nil {
						t.Fatal(err)
					}
					got, bad, err := content.Rebuild(m, r, s, shards)
					if err != nil || len(bad) != 0 {
						t.Fatalf("rebuild %d/%d: bad %v err %v", r, s, bad, err)
					}
					ct, _ := st.SegmentCiphertext(id, r, s)
					if string(got) != string(ct) {
						t.Fatalf("rebuilt segment %d/%d differs from the stored ciphertext", r, s)
					}
				}
			}
		})
	}
}

func TestConcurrentRequestsEncodeOnce(t *testing.T) {
	o, st, id, srv := newTestOrigin(t, 0)
	m, _ := st.Manifest(id)
	var wg sync.WaitGroup
	for i := 0; i < m.Params.NMax; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(wire.ShardURL(srv.URL, content.SegmentRef{Video: id, Rendition: 0, Segment: 1}.Shard(i)))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if got := counterValue(t, o, "swarmcast_origin_segment_encodes_total"); got != 1 {
		t.Fatalf("segment encoded %v times for %d concurrent requests, want once", got, m.Params.NMax)
	}
}

func TestCacheStaysWithinBound(t *testing.T) {
	const bound = 100_000
	o, st, id, srv := newTestOrigin(t, bound)
	m, _ := st.Manifest(id)
	for s := range m.Renditions[1].Segments {
		fetchShard(t, srv.URL, id, 1, s, m.Params.NMax-1)
		if used := o.encoded.usedBytes(); used > bound {
			t.Fatalf("parity cache holds %d bytes, bound %d", used, bound)
		}
	}
}

func TestSegmentRanges(t *testing.T) {
	o, st, id, srv := newTestOrigin(t, 0)
	ct, err := st.SegmentCiphertext(id, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	url := wire.SegmentURL(srv.URL, content.SegmentRef{Video: id, Rendition: 0, Segment: 2})
	get := func(rangeHdr string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get("")
	if resp.StatusCode != 200 || string(b) != string(ct) {
		t.Fatalf("whole segment: %d, %d bytes, want %d", resp.StatusCode, len(b), len(ct))
	}
	resp, b = get("bytes=100-299")
	if resp.StatusCode != http.StatusPartialContent || string(b) != string(ct[100:300]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = get(fmt.Sprintf("bytes=-%d", 50))
	if resp.StatusCode != http.StatusPartialContent || string(b) != string(ct[len(ct)-50:]) {
		t.Fatalf("suffix range: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, _ = get(fmt.Sprintf("bytes=%d-", len(ct)+10))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: %d, want 416", resp.StatusCode)
	}
	srv.Close()
	if want := int64(len(ct) + 200 + 50); o.BytesServed() != want {
		t.Fatalf("BytesServed = %d, want %d", o.BytesServed(), want)
	}
}

func TestManifestEndpoint(t *testing.T) {
	_, _, id, srv := newTestOrigin(t, 0)
	b, err := wire.FetchOriginManifest(context.Background(), http.DefaultClient, srv.URL, id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := content.DecodeManifest(b)
	if err != nil || m.ID() != id {
		t.Fatalf("manifest: %v (id %v)", err, m)
	}
}

func TestBadInput(t *testing.T) {
	_, st, id, srv := newTestOrigin(t, 0)
	m, _ := st.Manifest(id)
	unknown := strings.Repeat("ab", 32)
	cases := []struct {
		path   string
		status int
		phrase string
	}{
		{"/v1/shards/" + unknown + "/0/0/0", 404, "not on this origin"},
		{"/v1/shards/xyz/0/0/0", 400, "video id"},
		{"/v1/shards/" + id.String() + "/9/0/0", 404, "rendition 9"},
		{"/v1/shards/" + id.String() + "/0/9999/0", 404, "segment 9999"},
		{fmt.Sprintf("/v1/shards/%s/0/0/%d", id, m.Params.NMax), 404, "does not exist"},
		{"/v1/shards/" + id.String() + "/0/0/256", 400, "shard"},
		{"/v1/shards/" + id.String() + "/0/0/-1", 400, "shard"},
		{"/v1/shards/" + id.String() + "/0/x/0", 400, "segment"},
		{"/v1/segments/" + unknown + "/0/0", 404, "not on this origin"},
		{"/v1/segments/" + id.String() + "/0/99999", 404, "segment"},
		{"/v1/manifests/" + unknown, 404, "not on this origin"},
		{"/v1/manifests/zz", 400, "video id"},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.phrase) || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
			t.Errorf("%s: %d %s, want %d mentioning %q", c.path, resp.StatusCode, b, c.status, c.phrase)
		}
	}
}

func counterValue(t testing.TB, o *Origin, name string) float64 {
	t.Helper()
	mfs, err := o.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
