package edge

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

// fixture is a packaged sample video and every shard of it, encoded.
type fixture struct {
	id     content.VideoID
	m      *content.Manifest
	raw    []byte                      // signed manifest bytes
	shards map[content.ShardRef][]byte // ShardMessage bytes
}

var (
	fixtureOnce sync.Once
	theFixture  *fixture
	fixtureErr  error
)

// sampleFixture is the shared sample video with every shard encoded, built
// once per test binary.
func sampleFixture(t testing.TB) *fixture {
	t.Helper()
	st, id := samplestore.Video(t, "edge test")
	fixtureOnce.Do(func() {
		m, err := st.Manifest(id)
		if err != nil {
			fixtureErr = err
			return
		}
		f := &fixture{id: id, m: m, raw: m.Encode(), shards: make(map[content.ShardRef][]byte)}
		for r := range m.Renditions {
			for s := range m.Renditions[r].Segments {
				ct, err := st.SegmentCiphertext(id, r, s)
				if err != nil {
					fixtureErr = err
					return
				}
				shards, err := content.EncodeShards(m.Params, ct)
				if err != nil {
					fixtureErr = err
					return
				}
				leaves := content.ShardLeaves(shards)
				for i, d := range shards {
					msg := content.ShardMessage{Video: id, Rendition: r, Segment: s,
						Shard: content.Shard{Index: i, Data: d, Proof: content.InclusionProof(leaves, i)}}
					f.shards[content.SegmentRef{Video: id, Rendition: r, Segment: s}.Shard(i)] = msg.Encode()
				}
			}
		}
		theFixture = f
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return theFixture
}

func (f *fixture) key(r, s, i int) content.ShardRef {
	return content.SegmentRef{Video: f.id, Rendition: r, Segment: s}.Shard(i)
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestEdge opens an edge over dir with the fixture's manifest cached.
func newTestEdge(t testing.TB, dir string, mod func(*Config)) *Edge {
	t.Helper()
	f := sampleFixture(t)
	cfg := Config{Dir: dir, Identity: identity.New(), UploadCapBytes: -1}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.saveManifest(f.id, f.raw); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustStore(t testing.TB, e *Edge, f *fixture, k content.ShardRef, watched bool) {
	t.Helper()
	if err := e.storeShard(k, f.shards[k], watched); err != nil {
		t.Fatal(err)
	}
}

func counter(t testing.TB, e *Edge, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// fetchShard GETs one shard from an edge, unpaid, as a prefetching edge does.
func fetchShard(ctx context.Context, hc *http.Client, base string, k content.ShardRef) ([]byte, wire.NodeID, error) {
	resp, err := wire.GetShard(ctx, hc, wire.ShardRequest{Base: base, Ref: k, MaxBytes: 1 << 20})
	return resp.Body, resp.Node, err
}
