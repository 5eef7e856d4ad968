package content

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// These tests check our output against real clients (ffmpeg/ffprobe). CI
// installs ffmpeg and fails them if it is missing; elsewhere they skip.
func needFFmpeg(t *testing.T) {
	t.Helper()
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	testenv.RequireTool(t, "ffprobe", "ffmpeg")
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// writeEncryptedRendition lays out what a player fetches for rendition r:
// a media playlist from MediaPlaylist, the key file and the ciphertext
// segments. It returns the playlist path.
func writeEncryptedRendition(t *testing.T, st *Store, id VideoID, m *Manifest, r int, dir string) string {
	t.Helper()
	key, err := st.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyName), key[:], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, strconv.Itoa(r)), 0o755); err != nil {
		t.Fatal(err)
	}
	for s := range m.Renditions[r].Segments {
		ct, err := st.SegmentCiphertext(id, r, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(SegmentPath(r, s))), ct, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pl, err := MediaPlaylist(m, r, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(MediaPlaylistPath(r)))
	if err := os.WriteFile(path, []byte(pl), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MasterPlaylistName), []byte(MasterPlaylist(m)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// -allowed_extensions ALL lets the local key file be read (over HTTP the
// key URI is not extension-checked).
var hlsInputFlags = []string{"-allowed_extensions", "ALL", "-protocol_whitelist", "file,crypto,data"}

type probeDoc struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, input string, extra ...string) probeDoc {
	t.Helper()
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-show_entries", "stream=codec_type,codec_name,width,height:format=duration", "-of", "json", input)
	var doc probeDoc
	if err := json.Unmarshal(run(t, "ffprobe", args...), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// ffprobe decrypts and reads every rendition of the packaged sample and
// finds the source's duration (30 s) within one segment.
func TestRealClientFFprobePlaysRenditions(t *testing.T) {
	needFFmpeg(t)
	st, id, _ := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for r, rend := range m.Renditions {
		pl := writeEncryptedRendition(t, st, id, m, r, dir)
		doc := ffprobe(t, pl, hlsInputFlags...)
		dur, err := strconv.ParseFloat(doc.Format.Duration, 64)
		if err != nil {
			t.Fatalf("rendition %d: ffprobe duration %q", r, doc.Format.Duration)
		}
		if dur < 30-SegmentSeconds || dur > 30+SegmentSeconds {
			t.Fatalf("rendition %d: ffprobe reports %.3f s, source is 30 s", r, dur)
		}
		var video, audio bool
		for _, s := range doc.Streams {
			switch s.CodecType {
			case "video":
				video = s.CodecName == "h264" && s.Width == int(rend.Width) && s.Height == int(rend.Height)
			case "audio":
				audio = s.CodecName == "aac"
			}
		}
		if !video || !audio {
			t.Fatalf("rendition %d (%dx%d): ffprobe streams %+v", r, rend.Width, rend.Height, doc.Streams)
		}
	}
	// Without the right key the same playlist must not decode: proves
	// ffprobe really decrypted above.
	var wrong ContentKey
	os.WriteFile(filepath.Join(dir, KeyName), wrong[:], 0o600)
	cmd := exec.Command("ffprobe", append(append([]string{"-v", "error"}, hlsInputFlags...), "-show_entries", "stream=codec_type", "-of", "csv", filepath.Join(dir, filepath.FromSlash(MediaPlaylistPath(0))))...)
	out, _ := cmd.Output()
	if strings.Contains(string(out), "video") {
		t.Fatalf("ffprobe found a video stream with the wrong key: %q", out)
	}
}

func framemd5(t *testing.T, input string, inputFlags ...string) string {
	t.Helper()
	args := append([]string{"-v", "error", "-nostdin"}, inputFlags...)
	args = append(args, "-i", input, "-map", "0", "-f", "framemd5", "-")
	out := run(t, "ffmpeg", args...)
	if bytes.Count(out, []byte("\n")) < 100 {
		t.Fatalf("framemd5 of %s has only %d lines", input, bytes.Count(out, []byte("\n")))
	}
	return string(out)
}

// A rendition rebuilt segment by segment from k random shards (parity
// included) decodes frame-for-frame like the packaged original, and ffmpeg
// decrypting our AES-128 playlist sees the same frames.
func TestRealClientFramemd5AfterRebuild(t *testing.T) {
	needFFmpeg(t)
	st, id, hls := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	const r = 1 // 360p
	var rebuilt, original []byte
	parityUsed := 0
	for s := range m.Renditions[r].Segments {
		ct, err := st.SegmentCiphertext(id, r, s)
		if err != nil {
			t.Fatal(err)
		}
		shards, err := EncodeShards(m.Params, ct)
		if err != nil {
			t.Fatal(err)
		}
		leaves := ShardLeaves(shards)
		var picked []Shard
		for _, i := range rng.Perm(m.Params.NMax)[:m.Params.K] {
			if i >= m.Params.K {
				parityUsed++
			}
			picked = append(picked, Shard{Index: i, Data: shards[i], Proof: InclusionProof(leaves, i)})
		}
		got, bad, err := Rebuild(m, r, s, picked)
		if err != nil || len(bad) > 0 {
			t.Fatalf("segment %d: rebuild: %v (bad %v)", s, err, bad)
		}
		plain, err := DecryptSegment(key, key.SegmentIV(r, s), got)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt = append(rebuilt, plain...)
		orig, err := os.ReadFile(filepath.Join(hls, "360p", fmt.Sprintf("seg%05d.ts", s)))
		if err != nil {
			t.Fatal(err)
		}
		original = append(original, orig...)
	}
	if parityUsed == 0 {
		t.Fatal("no parity shard was drawn; the test would not exercise decoding")
	}
	if !bytes.Equal(rebuilt, original) {
		t.Fatal("rebuilt rendition differs from the packaged TS")
	}
	os.WriteFile(filepath.Join(dir, "rebuilt.ts"), rebuilt, 0o644)
	os.WriteFile(filepath.Join(dir, "original.ts"), original, 0o644)
	want := framemd5(t, filepath.Join(dir, "original.ts"))
	if got := framemd5(t, filepath.Join(dir, "rebuilt.ts")); got != want {
		t.Fatal("framemd5 of the rebuilt rendition differs from the original")
	}
	pl := writeEncryptedRendition(t, st, id, m, r, dir)
	if got := framemd5(t, pl, hlsInputFlags...); got != want {
		t.Fatal("framemd5 of ffmpeg-decrypted HLS differs from the original")
	}
}

// makeClip renders a test pattern + tone with ffmpeg.
func makeClip(t *testing.T, name string, size string, seconds int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	d := strconv.Itoa(seconds)
	run(t, "ffmpeg", "-v", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=25:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", path)
	return path
}

// A real file goes through the ffmpeg ladder: no upscaling, ~2 s segments,
// progress reported, and a clean store after truncated or non-video input.
func TestRealClientIngestVideoFile(t *testing.T) {
	needFFmpeg(t)
	clip := makeClip(t, "clip.mkv", "640x360", 6)
	st := openTestStore(t)
	var transcodeCalls int
	var last float64
	id, err := st.Ingest(context.Background(), clip, IngestOptions{Progress: func(stage string, done, total float64) {
		if stage == "transcode" {
			if transcodeCalls == 0 {
				// Another process opening the store mid-ingest (say,
				// `swarmcast verify`) must not sweep live staging.
				if _, err := OpenStore(st.Dir()); err != nil {
					t.Error(err)
				}
			}
			transcodeCalls++
			if done > total || done < 0 {
				t.Errorf("transcode progress %.2f/%.2f", done, total)
			}
			last = done
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if transcodeCalls == 0 || last < 5.9 {
		t.Fatalf("transcode progress: %d calls, last %.2f s of 6", transcodeCalls, last)
	}
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	var heights []int
	for r, rend := range m.Renditions {
		heights = append(heights, int(rend.Height))
		if rend.Height > 360 || rend.Width > 640 {
			t.Errorf("rendition %s is %dx%d: upscaled from a 640x360 source", rend.Name, rend.Width, rend.Height)
		}
		segs := rend.Segments
		for i, s := range segs {
			d := float64(s.Duration) / 1e6
			if d > SegmentSeconds+0.1 || (i < len(segs)-1 && d < SegmentSeconds-0.1) {
				t.Errorf("rendition %s segment %d lasts %.3f s, want ~%d s", rend.Name, i, d, SegmentSeconds)
			}
		}
		if total := m.Duration(r).Seconds(); total < 5.8 || total > 6.2 {
			t.Errorf("rendition %s lasts %.2f s, want 6", rend.Name, total)
		}
	}
	// 240p from the ladder plus a rung at the source's own 360p.
	if fmt.Sprint(heights) != "[240 360]" {
		t.Errorf("ladder heights %v, want [240 360]", heights)
	}
	if err := st.VerifyVideo(id, nil); err != nil {
		t.Fatal(err)
	}
	// Only the finished video and its source index remain.
	for _, e := range storeEntries(t, st.Dir()) {
		if strings.HasPrefix(e, "tmp/") {
			t.Errorf("leftover %s after a successful ingest", e)
		}
	}
	// Idempotent for files too.
	if id2, err := st.Ingest(context.Background(), clip, IngestOptions{}); err != nil || id2 != id {
		t.Fatalf("re-ingest: %s %v, want %s", id2, err, id)
	}

	// Truncated: the container promises 6 s but the data stops half way.
	b, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(t.TempDir(), "cut.mkv")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	st2 := openTestStore(t)
	_, err = st2.Ingest(context.Background(), trunc, IngestOptions{})
	requireErr(t, err, "cut.mkv is truncated", "promises 6.0 s")
	requireNothingPartial(t, st2.Dir())
}

func TestRealClientNotAVideo(t *testing.T) {
	needFFmpeg(t)
	st := openTestStore(t)
	dir := t.TempDir()

	text := filepath.Join(dir, "notes.mp4")
	os.WriteFile(text, []byte("these are my holiday notes, not a movie\n"), 0o644)
	_, err := st.Ingest(context.Background(), text, IngestOptions{})
	requireErr(t, err, "notes.mp4 is not a readable video")
	requireNothingPartial(t, st.Dir())

	// An MP4 cut before its index (moov at the end) cannot even be probed.
	clip := makeClip(t, "clip.mp4", "320x240", 2)
	b, _ := os.ReadFile(clip)
	cut := filepath.Join(dir, "cut.mp4")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	_, err = st.Ingest(context.Background(), cut, IngestOptions{})
	requireErr(t, err, "cut.mp4 is not a readable video", "truncated")
	requireNothingPartial(t, st.Dir())

	audio := filepath.Join(dir, "tone.m4a")
	run(t, "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", audio)
	_, err = st.Ingest(context.Background(), audio, IngestOptions{})
	requireErr(t, err, "tone.m4a is not a video", "no video stream")
	requireNothingPartial(t, st.Dir())
}
