package live

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// TestLowLatencyPartsConcatenateToSegments: a channel with 250 ms parts
// publishes, over real ffmpeg, signed parts that verify against the
// genesis, chain within their segment, start with the only independent
// part, and whose plaintext concatenated is byte for byte the segment its
// entry commits to; the recording seals as for a standard channel.
func TestLowLatencyPartsConcatenateToSegments(t *testing.T) {
	ti := newTestIngest(t, 300*time.Millisecond)
	ti.coord.mu.Lock()
	ch := ti.coord.keys[testKey]
	ch.PartMS = 250
	ti.coord.keys[testKey] = ch
	ti.coord.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathLivePart, ti.HandleLivePart)
	parts := httptest.NewServer(mux)
	defer parts.Close()

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
	g := chain.Genesis()
	if g.PartTarget != 250_000 {
		t.Fatalf("genesis part target %dµs, want 250000", g.PartTarget)
	}
	ti.coord.mu.Lock()
	key := ti.coord.keyOf[chain.ID()]
	ti.coord.mu.Unlock()
	held := content.NewLiveParts(g, 8)
	entries := chain.Entries(0, 0)
	if len(entries) < 3 {
		t.Fatalf("%d entries, want ≥ 3", len(entries))
	}
	for _, e := range entries {
		var joined [][]byte = make([][]byte, len(g.Renditions))
		var total uint32
		n := 0
		for ; ; n++ {
			resp, err := http.Get(wire.LivePartURL(parts.URL, chain.ID(), e.Seq, n, 100))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("part %d.%d: %d %s", e.Seq, n, resp.StatusCode, body)
			}
			msg, err := wire.DecodeLivePartMessage(body)
			if err != nil {
				t.Fatal(err)
			}
			p, err := content.DecodeLivePart(msg.Part, g, chain.ID())
			if err != nil {
				t.Fatal(err)
			}
			if err := held.Add(p); err != nil {
				t.Fatalf("part %d.%d: %v", e.Seq, n, err)
			}
			if p.ProgramTime != e.ProgramTime {
				t.Fatalf("part %d.%d dates its segment %d, the entry %d", e.Seq, n, p.ProgramTime, e.ProgramTime)
			}
			total += p.Duration
			for r, ct := range msg.Pieces {
				if err := p.CheckPiece(r, ct); err != nil {
					t.Fatal(err)
				}
				plain, err := content.DecryptSegment(key, key.PartIV(r, int(e.Seq), n), ct)
				if err != nil {
					t.Fatal(err)
				}
				joined[r] = append(joined[r], plain...)
			}
			if p.Last {
				n++
				break
			}
		}
		if e.Seq+1 < uint64(len(entries)) && n < 3 {
			t.Fatalf("segment %d (%dµs) has %d parts of 250 ms, want ≥ 3", e.Seq, e.Segments[0].Duration, n)
		}
		if d := int64(total) - int64(e.Segments[0].Duration); d < -1000 || d > 1000 {
			t.Fatalf("segment %d: parts last %dµs in all, the segment %dµs", e.Seq, total, e.Segments[0].Duration)
		}
		for r := range g.Renditions {
			ct, err := ti.SegmentCiphertext(chain.ID(), r, int(e.Seq))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := content.DecryptSegment(key, key.SegmentIV(r, int(e.Seq)), ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, joined[r]) {
				t.Fatalf("segment %d rendition %d: its %d parts join to %d bytes that differ from the %d-byte segment", e.Seq, r, n, len(joined[r]), len(plain))
			}
		}
		if parts := held.Segment(e.Seq); !parts[0].Independent || !parts[len(parts)-1].Last {
			t.Fatalf("segment %d: first part independent %v, last part marked %v", e.Seq, parts[0].Independent, parts[len(parts)-1].Last)
		}
	}
	// The sealed chain answers a part past its end at once: nothing comes.
	resp, err := http.Get(wire.LivePartURL(parts.URL, chain.ID(), entries[len(entries)-1].Seq+1, 0, 2000))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a part after the sealed end: %d, want 204", resp.StatusCode)
	}
	b, _ := ti.Broadcast(testChannel)
	checkSealed(t, ti, b, checkPublished(t, ti, chain))
	for _, bad := range []string{"x/0", fmt.Sprint(entries[0].Seq, "/64"), fmt.Sprint(content.MaxLiveSegments, "/0")} {
		resp, err := http.Get(parts.URL + "/v1/live/parts/" + chain.ID().String() + "/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
