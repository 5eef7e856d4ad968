package edge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

func TestRestartKeepsVerifiedCacheAndDropsCorruptFiles(t *testing.T) {
	f := sampleFixture(t)
	dir := t.TempDir()
	e := newTestEdge(t, dir, nil)
	for i := 0; i < 6; i++ {
		mustStore(t, e, f, f.key(0, 1, i), false)
	}
	mustStore(t, e, f, f.key(1, 2, 3), true)
	n, b := e.Stored()
	if n != 7 {
		t.Fatalf("stored %d shards, want 7", n)
	}

	// Clean restart: everything is back and verified.
	e2 := newTestEdge(t, dir, nil)
	if n2, b2 := e2.Stored(); n2 != n || b2 != b {
		t.Fatalf("after restart %d shards %d bytes, want %d, %d", n2, b2, n, b)
	}
	if _, err := e2.readShard(f.key(1, 2, 3)); err != nil {
		t.Fatalf("watched shard lost on restart: %v", err)
	}

	// Corrupt files in three ways: a flipped byte, a shard stored under
	// another index's name, and garbage; plus a stray non-shard file.
	flip := filepath.Join(dir, shardFile(f.key(0, 1, 0), true))
	data, _ := os.ReadFile(flip)
	data[len(data)-3] ^= 0xff
	os.WriteFile(flip, data, 0o644)
	os.Rename(filepath.Join(dir, shardFile(f.key(0, 1, 1), true)), filepath.Join(dir, shardFile(f.key(0, 1, 9), true)))
	os.WriteFile(filepath.Join(dir, shardFile(f.key(0, 1, 2), true)), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(dir, "shards", f.id.String(), "notes.txt"), []byte("x"), 0o644)

	e3 := newTestEdge(t, dir, nil)
	if n3, _ := e3.Stored(); n3 != 4 {
		t.Fatalf("after corruption %d shards survive, want 4 (3 good + watched)", n3)
	}
	for _, k := range []content.ShardRef{f.key(0, 1, 0), f.key(0, 1, 1), f.key(0, 1, 2), f.key(0, 1, 9)} {
		if _, err := e3.readShard(k); err == nil {
			t.Errorf("corrupted shard %d is still served", k.Shard)
		}
		if _, err := os.Stat(filepath.Join(dir, shardFile(k, true))); err == nil {
			t.Errorf("corrupted file of shard %d left on disk", k.Shard)
		}
	}
	if got := counter(t, e3, "swarmcast_edge_verify_failures_total", "where", "load"); got != 4 {
		t.Fatalf("verify failures on load = %v, want 4", got)
	}
	for i := 3; i < 6; i++ {
		b, err := e3.readShard(f.key(0, 1, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyMessage(f.m, f.key(0, 1, i), b); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRestartWithoutManifestDropsShards(t *testing.T) {
	f := sampleFixture(t)
	dir := t.TempDir()
	e := newTestEdge(t, dir, nil)
	mustStore(t, e, f, f.key(0, 0, 0), false)
	os.WriteFile(filepath.Join(dir, "manifests", f.id.String()), []byte("not a manifest"), 0o644)
	e2, err := New(Config{Dir: dir, Identity: e.cfg.Identity})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := e2.Stored(); n != 0 {
		t.Fatalf("%d shards kept without a valid manifest", n)
	}
}

func TestDiskCapEvictsDroppedFirstThenLeastRecentlyUsed(t *testing.T) {
	f := sampleFixture(t)
	size := int64(len(f.shards[f.key(0, 3, 0)]))
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.DiskCapBytes = 5 * size })
	for i := 0; i < 5; i++ {
		mustStore(t, e, f, f.key(0, 3, i), false)
	}
	if _, err := e.readShard(f.key(0, 3, 0)); err != nil { // 0 is now the most recent
		t.Fatal(err)
	}
	e.dropShards([]content.ShardRef{f.key(0, 3, 3)})

	held := func(i int) bool { _, ok := e.inv.held[f.key(0, 3, i)]; return ok }
	mustStore(t, e, f, f.key(0, 3, 5), false)
	if held(3) || !held(0) || !held(1) {
		t.Fatalf("first eviction should take the dropped shard 3: held 0:%v 1:%v 3:%v", held(0), held(1), held(3))
	}
	mustStore(t, e, f, f.key(0, 3, 6), false)
	if held(1) || !held(0) || !held(2) {
		t.Fatalf("second eviction should take the least recently used shard 1: held 0:%v 1:%v 2:%v", held(0), held(1), held(2))
	}
	if n, b := e.Stored(); n != 5 || b > 5*size {
		t.Fatalf("stored %d shards %d bytes, cap %d", n, b, 5*size)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, shardFile(f.key(0, 3, 1), true))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("evicted shard still on disk: %v", err)
	}
	if got := counter(t, e, "swarmcast_edge_evictions_total"); got != 2 {
		t.Fatalf("evictions = %v, want 2", got)
	}

	// A shard larger than the whole cap is skipped, not an error that
	// evicts everything.
	tiny := newTestEdge(t, t.TempDir(), func(c *Config) { c.DiskCapBytes = size - 1 })
	if err := tiny.storeShard(f.key(0, 3, 0), f.shards[f.key(0, 3, 0)], false); !errors.Is(err, errNoRoom) {
		t.Fatalf("oversize shard: %v, want errNoRoom", err)
	}

	// Mixed sizes never exceed the cap.
	mixed := newTestEdge(t, t.TempDir(), func(c *Config) { c.DiskCapBytes = 3*size + size/2 })
	for k, b := range f.shards {
		if k.Segment > 4 {
			continue
		}
		if err := mixed.storeShard(k, b, k.Shard%2 == 0); err != nil && !errors.Is(err, errNoRoom) {
			t.Fatal(err)
		}
		if _, used := mixed.Stored(); used > mixed.cfg.DiskCapBytes {
			t.Fatalf("cache holds %d bytes, cap %d", used, mixed.cfg.DiskCapBytes)
		}
	}
}

func TestWatchedShardsExpireAfterTTLAcrossRestarts(t *testing.T) {
	f := sampleFixture(t)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	mod := func(c *Config) { c.Now = clock.Now; c.WatchedTTL = time.Hour }
	e := newTestEdge(t, dir, mod)
	msgs := [][]byte{f.shards[f.key(0, 0, 0)], f.shards[f.key(0, 0, 5)], f.shards[f.key(0, 1, 0)]}
	e.keep(context.Background(), job{kind: jobKeep, seg: content.SegmentRef{Video: f.id, Rendition: 0, Segment: 0}, msgs: msgs})
	mustStore(t, e, f, f.key(0, 0, 9), false) // assigned: never expires
	if n, _ := e.Stored(); n != 3 {
		t.Fatalf("kept %d shards, want 3 (the one from another segment is refused)", n)
	}
	if got := counter(t, e, "swarmcast_edge_verify_failures_total", "where", "keep"); got != 1 {
		t.Fatalf("keep verify failures = %v, want 1", got)
	}

	clock.Advance(59 * time.Minute)
	e.expire()
	if n, _ := e.Stored(); n != 3 {
		t.Fatalf("expired before the TTL: %d shards left", n)
	}
	// A restart keeps the expiry clock (file mtimes).
	e = newTestEdge(t, dir, mod)
	clock.Advance(2 * time.Minute)
	e.expire()
	if n, _ := e.Stored(); n != 1 {
		t.Fatalf("after the TTL %d shards left, want only the assigned one", n)
	}
	if _, err := e.readShard(f.key(0, 0, 9)); err != nil {
		t.Fatal("the assigned shard expired")
	}
}

func TestFetchDirectiveAssignsWatchedShard(t *testing.T) {
	f := sampleFixture(t)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	e := newTestEdge(t, dir, func(c *Config) { c.Now = clock.Now; c.WatchedTTL = time.Hour })
	mustStore(t, e, f, f.key(0, 0, 0), true)
	e.applyDirectives(directives("fetch", f, 0, 0, 0))
	clock.Advance(2 * time.Hour)
	e.expire()
	if _, err := e.readShard(f.key(0, 0, 0)); err != nil {
		t.Fatal("an assigned shard expired")
	}
	if _, err := os.Stat(filepath.Join(dir, shardFile(f.key(0, 0, 0), true))); err != nil {
		t.Fatalf("assigned shard not renamed: %v", err)
	}
	// Dropped, it expires like a watched one.
	e.applyDirectives(directives("drop", f, 0, 0, 0))
	clock.Advance(2 * time.Hour)
	e.expire()
	if n, _ := e.Stored(); n != 0 {
		t.Fatalf("dropped shard kept past its TTL")
	}
}

func TestEvictionClearsTheMemoryCache(t *testing.T) {
	f := sampleFixture(t)
	size := int64(len(f.shards[f.key(0, 3, 0)]))
	e := newTestEdge(t, t.TempDir(), func(c *Config) { c.DiskCapBytes = 4 * size })
	mustStore(t, e, f, f.key(0, 3, 0), false)
	if _, err := e.readShard(f.key(0, 3, 0)); err != nil { // now in memory
		t.Fatal(err)
	}
	if e.hotBytes != size {
		t.Fatalf("memory cache holds %d bytes, want %d", e.hotBytes, size)
	}
	for i := 1; i <= 4; i++ {
		mustStore(t, e, f, f.key(0, 3, i), false)
	}
	if _, err := e.readShard(f.key(0, 3, 0)); !errors.Is(err, errNotHeld) {
		t.Fatalf("an evicted shard is still served from memory: %v", err)
	}
	if e.hotBytes != 0 || e.hotOrder.Len() != 0 {
		t.Fatalf("memory cache holds %d bytes after eviction", e.hotBytes)
	}
}
