package content

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/swarmcast/swarmcast/internal/sample"
)

// sampleHLS writes the bundled sample HLS directory into a temp dir.
func sampleHLS(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sample")
	if err := sample.WriteHLS(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ingestSample packages the sample into a fresh store. content keeps its own
// rather than using internal/samplestore: that package imports content, so
// these in-package tests cannot import it (an import cycle), and they need
// a fresh store per test anyway, since they test Ingest itself with varied
// Params and damage what it wrote.
func ingestSample(t testing.TB, p Params) (*Store, VideoID, string) {
	t.Helper()
	hls := sampleHLS(t)
	st, err := OpenStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Ingest(context.Background(), hls, IngestOptions{Params: p, Title: sample.Title})
	if err != nil {
		t.Fatalf("ingest sample: %v", err)
	}
	return st, id, hls
}

// requireErr fails unless err is non-nil and contains every phrase
// (case-insensitive).
func requireErr(t interface {
	Helper()
	Fatalf(string, ...any)
}, err error, phrases ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error mentioning %q, got nil", phrases)
	}
	msg := strings.ToLower(err.Error())
	for _, p := range phrases {
		if !strings.Contains(msg, strings.ToLower(p)) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// storeEntries lists every path (relative, slash-separated) in the store.
func storeEntries(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireNothingPartial asserts the store holds no video, no source index
// entry and no staging or temporary leftovers. publisher.key may exist: it
// is store-level state, not part of any video.
func requireNothingPartial(t testing.TB, dir string) {
	t.Helper()
	for _, e := range storeEntries(t, dir) {
		switch {
		case e == "videos" || e == "sources" || e == "tmp" || e == "publisher.key":
		default:
			t.Errorf("store %s: leftover %s after a failed operation", dir, e)
		}
	}
}

// failingWriter fails every write after the first `ok` ones with a
// disk-full error, and counts the attempts.
type failingWriter struct {
	ok    int64
	calls atomic.Int64
}

var errDiskFull = errors.New("write: no space left on device")

func (w *failingWriter) WriteFile(name string, data []byte, perm os.FileMode) error {
	if w.calls.Add(1) > w.ok {
		// A real full disk leaves a partially written file behind.
		_ = os.WriteFile(name, data[:len(data)/2], perm)
		return errDiskFull
	}
	return osWriter{}.WriteFile(name, data, perm)
}

// testKey is a deterministic publisher key.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// syntheticManifest builds a signed manifest with the given shape.
func syntheticManifest(key ed25519.PrivateKey, p Params, renditions, segments int) *Manifest {
	m := &Manifest{Title: "synthetic", Params: p, TargetDuration: 2_000_000}
	names := []string{"240p", "480p", "720p", "1080p"}
	for r := 0; r < renditions; r++ {
		rend := Rendition{Name: names[r%len(names)], Bandwidth: uint32(400_000 * (r + 1)), Width: uint16(426 * (r + 1)), Height: uint16(240 * (r + 1)), Codecs: "avc1.4d401e,mp4a.40.2"}
		for s := 0; s < segments; s++ {
			var root Hash
			root[0], root[1], root[2] = byte(r), byte(s>>8), byte(s)
			rend.Segments = append(rend.Segments, Segment{Duration: 2_000_000, Size: uint32(100_000 + 16*s), Root: LeafHash(root[:])})
		}
		m.Renditions = append(m.Renditions, rend)
	}
	m.Sign(key)
	return m
}
