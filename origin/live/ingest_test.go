package live

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// checkPublished verifies every entry of the coordinator's chain end to
// end as a viewer would: k shards rebuilt against the entry's root,
// decrypted with the chain's key, and decoded by ffprobe as H.264 (+AAC).
// It returns the decrypted segments of rendition 0, in order.
func checkPublished(t *testing.T, ti *testIngest, chain *content.LiveChain) [][]byte {
	t.Helper()
	ti.coord.mu.Lock()
	key := ti.coord.keyOf[chain.ID()]
	ti.coord.mu.Unlock()
	m := chain.Manifest()
	var plains [][]byte
	for _, e := range chain.Entries(0, 0) {
		for r := range e.Segments {
			ct, err := ti.SegmentCiphertext(chain.ID(), r, int(e.Seq))
			if err != nil {
				t.Fatalf("entry %d rendition %d: %v", e.Seq, r, err)
			}
			shards, err := content.EncodeShards(m.Params, ct)
			if err != nil {
				t.Fatal(err)
			}
			leaves := content.ShardLeaves(shards)
			var some []content.Shard
			for i := m.Params.NMax - m.Params.K; i < m.Params.NMax; i++ { // parity only: a real rebuild
				some = append(some, content.Shard{Index: i, Data: shards[i], Proof: content.InclusionProof(leaves, i)})
			}
			rebuilt, bad, err := content.Rebuild(m, r, int(e.Seq), some)
			if err != nil || len(bad) > 0 {
				t.Fatalf("entry %d rendition %d: rebuild: %v (bad %v)", e.Seq, r, err, bad)
			}
			plain, err := content.DecryptSegment(key, key.SegmentIV(r, int(e.Seq)), rebuilt)
			if err != nil {
				t.Fatal(err)
			}
			probe := ffprobeStreams(t, plain)
			if !strings.Contains(probe, "h264,320,180") || !strings.Contains(probe, "aac") {
				t.Fatalf("entry %d rendition %d decodes as %q, want h264 320x180 + aac", e.Seq, r, probe)
			}
			requirePicture(t, plain, fmt.Sprintf("entry %d rendition %d", e.Seq, r))
			if r == 0 {
				plains = append(plains, plain)
			}
		}
	}
	return plains
}

func ffprobeStreams(t *testing.T, ts []byte) string {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", "-")
	cmd.Stdin = bytes.NewReader(ts)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	return strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", ";")
}

// requirePicture fails when a segment's first frame is one flat colour:
// the transcode ran but encoded no picture (once: uniform grey from RTMP
// sources, when ffmpeg's 32-byte probe set the video up before the SPS).
// The test sources are colour bars, so their frames are never flat.
func requirePicture(t *testing.T, ts []byte, what string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "-", "-vframes", "1", "-vf", "scale=16:9", "-f", "rawvideo", "-pix_fmt", "gray", "-")
	cmd.Stdin = bytes.NewReader(ts)
	px, err := cmd.Output()
	if err != nil || len(px) != 16*9 {
		t.Fatalf("%s: decoding its first frame: %v (%d bytes)", what, err, len(px))
	}
	lo, hi := px[0], px[0]
	for _, v := range px {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 16 {
		t.Fatalf("%s: the first frame is flat (luma %d..%d): the transcode encoded no picture", what, lo, hi)
	}
}

// framemd5 is ffmpeg's per-frame digest list of a TS (video only).
func framemd5(t *testing.T, ts []byte) string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "-", "-map", "0:v", "-f", "framemd5", "-")
	cmd.Stdin = bytes.NewReader(ts)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("framemd5: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			f := strings.Split(l, ",")
			lines = append(lines, strings.TrimSpace(f[len(f)-1])) // the digest: timestamps differ by container offsets
		}
	}
	return strings.Join(lines, "\n")
}

func onlyChain(t *testing.T, ti *testIngest) *content.LiveChain {
	t.Helper()
	_, chains, _ := ti.coord.snapshot()
	if len(chains) != 1 {
		t.Fatalf("the coordinator holds %d chains, want 1", len(chains))
	}
	return chains[0]
}

// checkSealed checks the recording: an ordinary video of the store,
// published, with the live segments' frames.
func checkSealed(t *testing.T, ti *testIngest, b Broadcast, live [][]byte) {
	t.Helper()
	if b.State != wire.ChannelEnded || b.Recording == (content.VideoID{}) {
		t.Fatalf("broadcast %+v: want ended with a recording", b)
	}
	m, err := ti.store.Manifest(b.Recording)
	if err != nil {
		t.Fatalf("recording not in the store: %v", err)
	}
	key, err := ti.store.ContentKey(b.Recording)
	if err != nil {
		t.Fatal(err)
	}
	var rec, lv []byte
	for s := range m.Renditions[0].Segments {
		ct, err := ti.store.SegmentCiphertext(b.Recording, 0, s)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := content.DecryptSegment(key, key.SegmentIV(0, s), ct)
		if err != nil {
			t.Fatal(err)
		}
		rec = append(rec, plain...)
	}
	for _, p := range live {
		lv = append(lv, p...)
	}
	if len(m.Renditions[0].Segments) != len(live) {
		t.Fatalf("recording has %d segments, the live chain %d", len(m.Renditions[0].Segments), len(live))
	}
	a, z := framemd5(t, rec), framemd5(t, lv)
	if a == "" || a != z {
		t.Fatalf("the recording's frames differ from the live segments' (%d vs %d frame lines)", strings.Count(a, "\n"), strings.Count(z, "\n"))
	}
	_, _, published := ti.coord.snapshot()
	if published != 1 {
		t.Fatalf("%d videos published, want the recording", published)
	}
	if got := ti.coord.lastState(); got != wire.ChannelEnded {
		t.Fatalf("last channel state %q, want ended", got)
	}
}

func TestHLSPushPublishesAndSeals(t *testing.T) {
	ti := newTestIngest(t, 300*time.Millisecond)
	args := testSource(3.5)
	args = append(args, "-f", "hls", "-hls_time", "1", "-hls_segment_type", "mpegts", "-method", "PUT", ti.http.URL+"/live/"+testKey+"/index.m3u8")
	if out, err := runFFmpeg(t, ti.ffmpeg, args...); err != nil {
		t.Fatalf("ffmpeg HLS push: %v\n%s", err, out)
	}
	waitFor(t, "the broadcast sealed", func() bool {
		b, ok := ti.Broadcast(testChannel)
		return ok && b.State == wire.ChannelEnded
	})
	chain := onlyChain(t, ti)
	entries := chain.Entries(0, 0)
	if len(entries) < 3 {
		t.Fatalf("%d entries for 3.5 s of 1 s segments, want ≥ 3", len(entries))
	}
	live := checkPublished(t, ti, chain)
	b, _ := ti.Broadcast(testChannel)
	checkSealed(t, ti, b, live)
}

func TestRTMPPublishResumeAndSeal(t *testing.T) {
	ti := newTestIngest(t, time.Minute)
	url := "rtmp://" + ti.rtmp + "/live/" + testKey
	for run := range 2 {
		args := append(testSource(2.5), "-f", "flv", url)
		if out, err := runFFmpeg(t, ti.ffmpeg, args...); err != nil {
			t.Fatalf("ffmpeg RTMP publish %d: %v\n%s", run, err, out)
		}
		// The origin reads a publisher's first 2 s before it attaches
		// (gortmplib's track analysis), so ffmpeg may be gone before:
		// wait for this run's own drop report.
		waitFor(t, "the publisher's drop", func() bool {
			states, _, _ := ti.coord.snapshot()
			n := 0
			for _, st := range states {
				if st.State == wire.ChannelWaiting {
					n++
				}
			}
			return n == run+1
		})
	}
	b, err := ti.End(testChannel)
	if err != nil {
		t.Fatal(err)
	}
	chain := onlyChain(t, ti)
	entries := chain.Entries(0, 0)
	var discs []uint64
	for _, e := range entries {
		if e.Discontinuity {
			discs = append(discs, e.Seq)
		}
	}
	if len(entries) < 4 || len(discs) != 1 || discs[0] == 0 {
		t.Fatalf("%d entries with discontinuities at %v: want ≥ 4 on one chain, one discontinuity where the publisher resumed", len(entries), discs)
	}
	live := checkPublished(t, ti, chain)
	checkSealed(t, ti, b, live)
}

// TestRecipeBitExact runs the ladder recipe twice on one source segment:
// BTR replicas compare these digests.
func TestRecipeBitExact(t *testing.T) {
	ti := newTestIngest(t, time.Minute)
	src := filepath.Join(t.TempDir(), "src.ts")
	if out, err := runFFmpeg(t, ti.ffmpeg, append(testSource(1), "-f", "mpegts", src)[0:]...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	source, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rec := Recipe{Rungs: LadderFor(content.DefaultLadder, 320, 180), Audio: true}
	var digests [2][32]byte
	for i := range digests {
		outs, err := rec.Transcode(context.Background(), ti.ffmpeg, source)
		if err != nil {
			t.Fatal(err)
		}
		digests[i] = sha256.Sum256(bytes.Join(outs, nil))
	}
	if digests[0] != digests[1] {
		t.Fatalf("two runs of recipe %s differ: %x vs %x", rec.ID(), digests[0], digests[1])
	}
	if len(rec.ID()) != 64 {
		t.Fatalf("recipe id %q", rec.ID())
	}
}

// TestOwnerEndStopsThePublisher: AppendEntry answering ErrChannelEnded
// (the owner ended the channel on the coordinator) stops the publisher
// and seals what was published.
func TestOwnerEndStopsThePublisher(t *testing.T) {
	ti := newTestIngest(t, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, ti.ffmpeg, append(testSource(30), "-f", "flv", "rtmp://"+ti.rtmp+"/live/"+testKey)...)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first entry", func() bool {
		_, chains, _ := ti.coord.snapshot()
		return len(chains) == 1 && chains[0].Head() != nil
	})
	chain := onlyChain(t, ti)
	ti.coord.mu.Lock()
	ti.coord.ended[chain.ID()] = true
	ti.coord.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- pub.Wait() }()
	select {
	case <-done: // the origin closed the publisher's connection
	case <-ctx.Done():
		t.Fatal("the publisher was not stopped")
	}
	waitFor(t, "the seal", func() bool {
		b, ok := ti.Broadcast(testChannel)
		return ok && b.State == wire.ChannelEnded
	})
	b, _ := ti.Broadcast(testChannel)
	if b.Recording == (content.VideoID{}) {
		t.Fatal("no recording after the owner ended the broadcast")
	}
	if got := ti.coord.lastState(); got != wire.ChannelEnded {
		t.Fatalf("last state %q, want ended", got)
	}
}

// TestRevokedKeyStopsThePublisher: the key is asked about again while the
// publisher is live; once the coordinator refuses it the publisher is cut
// off and the channel says why.
func TestRevokedKeyStopsThePublisher(t *testing.T) {
	ti := newTestIngest(t, time.Minute, func(c *Config) { c.Reauth = 500 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, ti.ffmpeg, append(testSource(30), "-f", "flv", "rtmp://"+ti.rtmp+"/live/"+testKey)...)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first entry", func() bool {
		_, chains, _ := ti.coord.snapshot()
		return len(chains) == 1 && chains[0].Head() != nil
	})
	ti.coord.mu.Lock()
	delete(ti.coord.keys, testKey)
	ti.coord.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- pub.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("a publisher with a revoked key kept publishing")
	}
	assertChannelError(t, ti, "stream key refused")
}

// TestOwnerEndWhileWaiting: the owner ends the channel while the
// broadcast waits for its publisher; the origin learns it from the
// coordinator and seals at once, not at the end of the resume window.
func TestOwnerEndWhileWaiting(t *testing.T) {
	ti := newTestIngest(t, time.Hour, func(c *Config) { c.Reauth = 400 * time.Millisecond })
	if out, err := runFFmpeg(t, ti.ffmpeg, append(testSource(2.5), "-f", "flv", "rtmp://"+ti.rtmp+"/live/"+testKey)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	waitFor(t, "the drop", func() bool { return ti.coord.lastState() == wire.ChannelWaiting })
	ti.coord.mu.Lock()
	ti.coord.ownerEnded = true
	ti.coord.mu.Unlock()
	waitFor(t, "the seal", func() bool {
		b, ok := ti.Broadcast(testChannel)
		return ok && b.State == wire.ChannelEnded && b.Recording != (content.VideoID{})
	})
}
