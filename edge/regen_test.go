package edge

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// An edge holding k shards of a segment serves every other index of it,
// with a proof that verifies against the manifest; with k-1 it serves none.
func TestRegeneratesAnyShardFromK(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k := f.m.Params.K
	for i := 0; i < k-1; i++ {
		mustStore(t, e, f, f.key(0, 2, i), true)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	get := func(i int) (*content.ShardMessage, int) {
		b, _, err := fetchShard(t.Context(), srv.Client(), srv.URL, f.key(0, 2, i))
		if err != nil {
			if wire.IsNotFound(err) {
				return nil, http.StatusNotFound
			}
			t.Fatal(err)
		}
		msg, err := content.DecodeShardMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		return msg, http.StatusOK
	}
	if _, code := get(k + 3); code != http.StatusNotFound {
		t.Fatalf("with %d of k=%d shards, a missing index answered %d, want 404", k-1, k, code)
	}
	mustStore(t, e, f, f.key(0, 2, k-1), true)
	for _, i := range []int{k, k + 3, f.m.Params.NMax - 1} {
		msg, code := get(i)
		if code != http.StatusOK {
			t.Fatalf("index %d: %d", i, code)
		}
		if msg.Index != i || msg.Segment != 2 {
			t.Fatalf("asked index %d of segment 2, got %d of %d", i, msg.Index, msg.Segment)
		}
		if err := content.VerifyShard(f.m, 0, 2, msg.Shard); err != nil {
			t.Fatalf("regenerated shard %d does not verify: %v", i, err)
		}
	}
	if got := counter(t, e, "swarmcast_edge_regenerated_segments_total"); got != 1 {
		t.Errorf("segments regenerated = %v, want 1 (cached after the first)", got)
	}
	// Nothing regenerated is stored or reported.
	if n, _ := e.Stored(); n != k {
		t.Errorf("stored %d shards, want the %d kept", n, k)
	}
}

// A directed shard no edge holds waits PrefetchOriginDelay before the
// origin may supply it.
func TestOriginDueAfterDelay(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.Now = clock.Now; c.PrefetchOriginDelay = 10 * time.Second })
	k := content.ShardRef{Shard: 5}
	if e.originDue(k) {
		t.Fatal("origin due at the first attempt")
	}
	clock.t = clock.t.Add(9 * time.Second)
	if e.originDue(k) {
		t.Fatal("origin due before the delay")
	}
	clock.t = clock.t.Add(time.Second)
	if !e.originDue(k) {
		t.Fatal("origin not due after the delay")
	}
}
