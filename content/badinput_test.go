package content

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestIngestSampleAndVerify(t *testing.T) {
	st, id, _ := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Params != DefaultParams() {
		t.Fatalf("params %+v, want defaults", m.Params)
	}
	if len(m.Renditions) != 2 || m.Renditions[0].Height != 240 || m.Renditions[1].Height != 360 {
		t.Fatalf("renditions %+v", m.Renditions)
	}
	for r := range m.Renditions {
		if n := len(m.Renditions[r].Segments); n != 15 {
			t.Fatalf("rendition %d: %d segments, want 15", r, n)
		}
		if d := m.Duration(r).Seconds(); d < 29.9 || d > 30.1 {
			t.Fatalf("rendition %d lasts %.2fs, want 30", r, d)
		}
	}
	calls := 0
	if err := st.VerifyVideo(id, func(done, total int) {
		calls++
		if done != calls || total != 30 {
			t.Fatalf("progress %d/%d at call %d", done, total, calls)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if calls != 30 {
		t.Fatalf("progress called %d times, want 30", calls)
	}
	// Stored ciphertext decrypts to the sample's bytes.
	key, err := st.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := st.SegmentCiphertext(id, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := DecryptSegment(key, key.SegmentIV(1, 3), ct)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(sampleHLS(t), "360p", "seg00003.ts"))
	if !bytes.Equal(pt, want) {
		t.Fatal("stored segment does not decrypt to the source segment")
	}
	ids, err := st.Videos()
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("Videos() = %v, %v", ids, err)
	}
}

// Re-ingesting the same input returns the same id without repackaging.
func TestIngestIdempotent(t *testing.T) {
	st, id, hls := ingestSample(t, Params{})
	vdir := st.videoDir(id)
	before, err := os.Stat(filepath.Join(vdir, "manifest"))
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]int{}
	id2, err := st.Ingest(context.Background(), hls, IngestOptions{Title: "Swarmcast sample (testsrc2 + 440 Hz)",
		Progress: func(stage string, _, _ float64) { stages[stage]++ }})
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id {
		t.Fatalf("re-ingest gave %s, want %s", id2, id)
	}
	if stages["package"] != 0 {
		t.Fatalf("re-ingest repackaged (%d package progress calls)", stages["package"])
	}
	after, err := os.Stat(filepath.Join(vdir, "manifest"))
	if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("manifest file was rewritten")
	}
	// A different k is a different video, packaged anew.
	stages = map[string]int{}
	id3, err := st.Ingest(context.Background(), hls, IngestOptions{Params: Params{K: 4, NMax: 12}, Title: "Swarmcast sample (testsrc2 + 440 Hz)",
		Progress: func(stage string, _, _ float64) { stages[stage]++ }})
	if err != nil {
		t.Fatal(err)
	}
	if id3 == id || stages["package"] != 30 {
		t.Fatalf("k=4 ingest: id %s (first %s), %d package calls", id3, id, stages["package"])
	}
	// Idempotence survives reopening the store.
	st2, err := OpenStore(st.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if id4, err := st2.Ingest(context.Background(), hls, IngestOptions{Title: "Swarmcast sample (testsrc2 + 440 Hz)"}); err != nil || id4 != id {
		t.Fatalf("after reopen: %s, %v", id4, err)
	}
}

func TestIngestBadParams(t *testing.T) {
	hls := sampleHLS(t)
	for _, tc := range []struct {
		p       Params
		phrases []string
	}{
		{Params{K: 0, NMax: 8}, []string{"k=0 out of range", "between 1 and 128"}},
		{Params{K: 129, NMax: 200}, []string{"k=129 out of range"}},
		{Params{K: 8, NMax: 8}, []string{"n_max=8 out of range", "between k+1=9 and 256"}},
		{Params{K: 8, NMax: 257}, []string{"n_max=257 out of range"}},
		{Params{K: -1, NMax: 4}, []string{"k=-1 out of range"}},
	} {
		st := openTestStore(t)
		_, err := st.Ingest(context.Background(), hls, IngestOptions{Params: tc.p})
		requireErr(t, err, tc.phrases...)
		requireNothingPartial(t, st.Dir())
		if _, err := EncodeShards(tc.p, []byte("x")); err == nil {
			t.Errorf("EncodeShards accepted %+v", tc.p)
		}
	}
}

func TestIngestEmptyAndMissing(t *testing.T) {
	st := openTestStore(t)
	empty := filepath.Join(t.TempDir(), "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := st.Ingest(context.Background(), empty, IngestOptions{})
	requireErr(t, err, "empty.mp4 is an empty file", "not a video")
	requireNothingPartial(t, st.Dir())

	_, err = st.Ingest(context.Background(), filepath.Join(t.TempDir(), "nope.mp4"), IngestOptions{})
	requireErr(t, err, "nope.mp4 does not exist", "give a video file")
	requireNothingPartial(t, st.Dir())

	_, err = st.Ingest(context.Background(), t.TempDir(), IngestOptions{})
	requireErr(t, err, "no .m3u8 playlist")
	requireNothingPartial(t, st.Dir())
}

// Broken HLS directories are refused with the problem named.
func TestIngestBadHLS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(t *testing.T, dir string)
		phrases []string
	}{
		{"missing segment", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "360p", "seg00007.ts"))
		}, []string{"segment seg00007.ts is missing", "index.m3u8"}},
		{"empty segment", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "240p", "seg00002.ts"), nil, 0o644)
		}, []string{"segment seg00002.ts is empty"}},
		{"missing media playlist", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "240p", "index.m3u8"))
		}, []string{"media playlist", "no such file"}},
		{"live playlist", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "#EXT-X-ENDLIST", "")
		}, []string{"no #EXT-X-ENDLIST", "live or unfinished"}},
		{"escaping URI", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "seg00001.ts", "../../etc/passwd")
		}, []string{"outside the HLS directory"}},
		{"remote URI", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "seg00001.ts", "http://example.com/seg00001.ts")
		}, []string{"is remote"}},
		{"already encrypted", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-KEY:METHOD=AES-128,URI=\"k\"")
		}, []string{"already encrypted"}},
		{"fmp4", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-MAP:URI=\"init.mp4\"")
		}, []string{"fMP4", "not supported"}},
		{"bad duration", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "240p", "index.m3u8"), "#EXTINF:2.000000,", "#EXTINF:abc,")
		}, []string{"bad EXTINF duration"}},
		{"not a playlist", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "master.m3u8"), []byte("hello\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n"), 0o644)
		}, []string{"not #EXTM3U"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sampleHLS(t)
			tc.mutate(t, dir)
			st := openTestStore(t)
			_, err := st.Ingest(context.Background(), dir, IngestOptions{})
			requireErr(t, err, tc.phrases...)
			requireNothingPartial(t, st.Dir())
		})
	}
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(s, old, new, -1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A full disk at any point of an ingest leaves nothing behind and says so.
func TestIngestDiskFull(t *testing.T) {
	hls := sampleHLS(t)
	// Count the writes of a successful ingest (publisher key, 30 segments,
	// content key, manifest, source index).
	probe := openTestStore(t)
	counter := &failingWriter{ok: 1 << 30}
	probe.fs = counter
	if _, err := probe.Ingest(context.Background(), hls, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	total := counter.calls.Load()
	if total != 34 {
		t.Fatalf("a sample ingest made %d writes, want 34", total)
	}
	for _, ok := range []int64{0, 1, 2, 15, 31, 32, total - 1} {
		st := openTestStore(t)
		st.fs = &failingWriter{ok: ok}
		_, err := st.Ingest(context.Background(), hls, IngestOptions{})
		requireErr(t, err, "disk full", "nothing was saved")
		requireNothingPartial(t, st.Dir())
		// The same store ingests fine once space is back.
		st.fs = osWriter{}
		id, err := st.Ingest(context.Background(), hls, IngestOptions{})
		if err != nil {
			t.Fatalf("after freeing space (failed at write %d): %v", ok+1, err)
		}
		if err := st.VerifyVideo(id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Manifest damage is caught by DecodeManifest, by the store and by fsck.
func TestManifestCorruption(t *testing.T) {
	st, id, _ := ingestSample(t, Params{})
	path := filepath.Join(st.videoDir(id), "manifest")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeManifest(good)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Encode(), good) || m.ID() != id {
		t.Fatal("manifest does not re-encode to its stored bytes")
	}
	// Every single-byte corruption is rejected (stride keeps it quick).
	for i := 0; i < len(good); i += 1 + i/64 {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, err := DecodeManifest(bad); err == nil {
			t.Fatalf("corrupted byte %d accepted", i)
		}
	}
	// Through the store: corrupt one signed byte (in the title).
	bad := bytes.Clone(good)
	bad[4+1+32+2] ^= 0x20
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = st.Manifest(id)
	requireErr(t, err, "videos/"+id.String()+"/manifest", "bad signature", "altered after signing")
	requireErr(t, st.VerifyVideo(id, nil), "bad signature")
	// Truncation.
	os.WriteFile(path, good[:len(good)-1], 0o644)
	requireErr(t, st.VerifyVideo(id, nil), "truncated")
	// A valid manifest of another video under this id.
	other := syntheticManifest(testKey(3), DefaultParams(), 1, 2)
	os.WriteFile(path, other.Encode(), 0o644)
	requireErr(t, st.VerifyVideo(id, nil), "not to its id", "replaced or corrupted")
	os.WriteFile(path, good, 0o644)
	if err := st.VerifyVideo(id, nil); err != nil {
		t.Fatal(err)
	}
}

func TestManifestSignatures(t *testing.T) {
	alice, mallory := testKey(1), testKey(2)
	m := syntheticManifest(alice, DefaultParams(), 2, 3)
	enc := m.Encode()
	if _, err := DecodeManifest(enc); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(alice.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("verify with the signer's key: %v", err)
	}
	// Signed by another key: rejected when a trusted publisher is given.
	forged := syntheticManifest(mallory, DefaultParams(), 2, 3)
	dec, err := DecodeManifest(forged.Encode())
	if err != nil {
		t.Fatal(err) // self-consistent, so it decodes...
	}
	requireErr(t, dec.Verify(alice.Public().(ed25519.PublicKey)), "not by the trusted publisher")
	// Wrong signature: mallory's signature with alice's publisher field.
	swapped := *m
	swapped.Signature = forged.Signature
	_, err = DecodeManifest(swapped.Encode())
	requireErr(t, err, "bad signature")
	// Alice's manifest with mallory's key claimed as publisher.
	claimed := *m
	claimed.Publisher = mallory.Public().(ed25519.PublicKey)
	_, err = DecodeManifest(claimed.Encode())
	requireErr(t, err, "bad signature")
	// Zeroed signature.
	zero := bytes.Clone(enc)
	clear(zero[len(zero)-64:])
	_, err = DecodeManifest(zero)
	requireErr(t, err, "bad signature")
	// Altered after signing, with the rendition root left stale.
	stale := syntheticManifest(alice, DefaultParams(), 1, 3)
	stale.Renditions[0].Segments[1].Root[0] ^= 1
	_, err = DecodeManifest(stale.Encode())
	requireErr(t, err, "root does not match")
	// k / n_max out of range in a signed manifest.
	badK := syntheticManifest(alice, Params{K: 8, NMax: 300}, 1, 1)
	_, err = DecodeManifest(badK.Encode())
	requireErr(t, err, "out of range")
	// Garbage.
	_, err = DecodeManifest([]byte("not a manifest at all"))
	requireErr(t, err, "not a Swarmcast manifest")
	_, err = DecodeManifest(nil)
	requireErr(t, err, "truncated")
	v2 := bytes.Clone(enc)
	v2[4] = 2
	_, err = DecodeManifest(v2)
	requireErr(t, err, "version 2 not supported", "upgrade")
	_, err = DecodeManifest(append(bytes.Clone(enc), 0))
	requireErr(t, err, "1 unexpected trailing bytes")
}

// PutVideo refuses segments that do not match the manifest, storing nothing.
func TestPutVideoRejectsMismatch(t *testing.T) {
	st := openTestStore(t)
	c := makeCoded(t, DefaultParams(), bytes.Repeat([]byte{7}, 5000))
	bad := bytes.Clone(c.ct)
	bad[100] ^= 1
	_, err := st.PutVideo(c.m, [][][]byte{{bad}}, &c.key)
	requireErr(t, err, "rendition 0 segment 0", "does not match the manifest's root")
	requireNothingPartial(t, st.Dir())
	_, err = st.PutVideo(c.m, [][][]byte{{c.ct[:len(c.ct)-16]}}, &c.key)
	requireErr(t, err, "manifest says")
	var wrong ContentKey
	_, err = st.PutVideo(c.m, [][][]byte{{c.ct}}, &wrong)
	requireErr(t, err, "content key does not match")
	requireNothingPartial(t, st.Dir())
	id, err := st.PutVideo(c.m, [][][]byte{{c.ct}}, &c.key)
	if err != nil || id != c.m.ID() {
		t.Fatalf("put: %s %v", id, err)
	}
	// fsck catches a corrupted segment file and names it.
	seg := segmentFile(st.videoDir(id), 0, 0)
	os.WriteFile(seg, bad, 0o644)
	requireErr(t, st.VerifyVideo(id, nil), "videos/"+id.String()+"/r0/000000.seg", "corrupted")
	os.Remove(seg)
	requireErr(t, st.VerifyVideo(id, nil), "000000.seg: missing")
	_, err = st.SegmentCiphertext(id, 0, 0)
	requireErr(t, err, "not in this store")
	_, err = st.Manifest(VideoID{1})
	requireErr(t, err, "unknown video id")
}

func TestOpenStoreSweepsStaging(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if _, err := OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "tmp", "put-deadbeef", "r0")
	os.MkdirAll(leftover, 0o755)
	os.WriteFile(filepath.Join(leftover, "000000.seg"), []byte("x"), 0o644)
	if _, err := OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	requireNothingPartial(t, dir)
}

func TestPublisherKeyCorrupted(t *testing.T) {
	st := openTestStore(t)
	k1, err := st.PublisherKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := st.PublisherKey()
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("publisher key not stable: %v", err)
	}
	os.WriteFile(filepath.Join(st.Dir(), "publisher.key"), []byte("zz\n"), 0o600)
	_, err = st.PublisherKey()
	requireErr(t, err, "publisher.key is corrupted", "restore it from backup")
}

// OpenStore sweeps staging of crashed runs but never that of a live one.
func TestOpenStoreKeepsLiveStaging(t *testing.T) {
	st := openTestStore(t)
	live, release, err := st.newStaging("put-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(live, "000000.seg"), []byte("x"), 0o644)
	tmp := filepath.Join(st.Dir(), "tmp")
	// A crashed run: directory with an unheld lock, directory without a
	// lock, and a lock without a directory.
	os.MkdirAll(filepath.Join(tmp, "put-crashed1", "r0"), 0o755)
	os.WriteFile(filepath.Join(tmp, "put-crashed1.lock"), nil, 0o600)
	os.MkdirAll(filepath.Join(tmp, "transcode-crashed2"), 0o755)
	os.WriteFile(filepath.Join(tmp, "put-crashed3.lock"), nil, 0o600)
	if _, err := OpenStore(st.Dir()); err != nil {
		t.Fatal(err)
	}
	entries := storeEntries(t, tmp)
	want := []string{filepath.Base(live), filepath.Base(live) + "/000000.seg", filepath.Base(live) + ".lock"}
	if strings.Join(entries, " ") != strings.Join(want, " ") {
		t.Fatalf("tmp/ after sweep = %v, want only the live staging %v", entries, want)
	}
	release()
	requireNothingPartial(t, st.Dir())
}
