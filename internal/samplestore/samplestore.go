// Package samplestore gives tests the bundled sample clip ingested into a
// content.Store once per test binary: ingest is the slow part of most role
// tests, and each role's tests need a real, signed video.
//
// The store and the HLS directory are shared by every test in the binary, so
// callers only read them. A test that damages or extends a store packages
// its own (content's tests do: they test Ingest itself).
package samplestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/sample"
)

var (
	mu    sync.Mutex // guards everything below; held across an ingest, so parallel tests wait for it
	dir   string     // the binary's temp dir holding hls/ and store/; "" until first use
	store *content.Store
	ids   = map[string]content.VideoID{} // title -> video id in store
)

// Store returns the binary's shared store holding the sample ingested under
// each title (sample.Title if none is given), and the titles' video ids in
// order. A title is ingested on its first request, so the store holds every
// title any test in the binary has asked for; distinct titles are distinct
// videos with distinct keys.
func Store(tb testing.TB, titles ...string) (*content.Store, []content.VideoID) {
	tb.Helper()
	if len(titles) == 0 {
		titles = []string{sample.Title}
	}
	mu.Lock()
	defer mu.Unlock()
	if err := prepareLocked(); err != nil {
		tb.Fatalf("samplestore: %v", err)
	}
	out := make([]content.VideoID, len(titles))
	for i, title := range titles {
		id, ok := ids[title]
		if !ok {
			var err error
			id, err = store.Ingest(context.Background(), filepath.Join(dir, "hls"), content.IngestOptions{Title: title})
			if err != nil {
				tb.Fatalf("samplestore: ingest the sample as %q: %v", title, err)
			}
			ids[title] = id
		}
		out[i] = id
	}
	return store, out
}

// Video is Store for one title.
func Video(tb testing.TB, title string) (*content.Store, content.VideoID) {
	tb.Helper()
	st, ids := Store(tb, title)
	return st, ids[0]
}

// HLSDir returns the sample's HLS directory (master.m3u8 and one directory
// per rendition), written once per binary.
func HLSDir(tb testing.TB) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if err := prepareLocked(); err != nil {
		tb.Fatalf("samplestore: %v", err)
	}
	return filepath.Join(dir, "hls")
}

// RemoveAll deletes the binary's shared directory. TestMain calls it after
// m.Run: the directory outlives any one test, so t.TempDir cannot own it.
func RemoveAll() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	dir, store = "", nil
	clear(ids)
}

// Main is a test binary's TestMain for packages that use the shared store:
// it runs the tests, removes the directory and exits with their code.
func Main(m *testing.M) {
	code := m.Run()
	RemoveAll()
	os.Exit(code)
}

// prepareLocked writes the sample HLS and opens the store on first use.
func prepareLocked() error {
	if store != nil {
		return nil
	}
	d, err := os.MkdirTemp("", "swarmcast-sample-")
	if err != nil {
		return err
	}
	if err := sample.WriteHLS(filepath.Join(d, "hls")); err != nil {
		os.RemoveAll(d)
		return fmt.Errorf("write the sample HLS: %w", err)
	}
	st, err := content.OpenStore(filepath.Join(d, "store"))
	if err != nil {
		os.RemoveAll(d)
		return err
	}
	dir, store = d, st
	return nil
}
