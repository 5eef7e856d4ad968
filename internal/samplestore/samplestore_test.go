package samplestore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmcast/swarmcast/internal/sample"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveAll()
	os.Exit(code)
}

func TestStoreIngestsEachTitleOnce(t *testing.T) {
	st, ab := Store(t, "Alpha", "Beta")
	if ab[0] == ab[1] {
		t.Fatal("two titles gave one video id")
	}
	st2, a := Video(t, "Alpha")
	if st2 != st || a != ab[0] {
		t.Fatalf("second ask for Alpha: store %p id %v, want the shared store %p and %v", st2, a, st, ab[0])
	}
	listed, err := st.Videos()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Fatalf("store holds %d videos after asking for Alpha twice and Beta once, want 2", len(listed))
	}
	m, err := st.Manifest(ab[1])
	if err != nil {
		t.Fatal(err)
	}
	if m.Title != "Beta" {
		t.Fatalf("Beta's manifest is titled %q", m.Title)
	}
	_, def := Store(t)
	if def[0] == ab[0] || def[0] == ab[1] {
		t.Fatal("the default title reused another title's video")
	}
	if m, err := st.Manifest(def[0]); err != nil {
		t.Fatal(err)
	} else if m.Title != sample.Title {
		t.Fatalf("default title %q, want %q", m.Title, sample.Title)
	}
}

func TestHLSDirHoldsTheSample(t *testing.T) {
	if _, err := os.Stat(filepath.Join(HLSDir(t), "master.m3u8")); err != nil {
		t.Fatal(err)
	}
}
