package content

import (
	"strings"
	"testing"
	"time"
)

func TestLiveMediaPlaylistSlidingWindow(t *testing.T) {
	var key ContentKey
	key[0] = 7
	t0 := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC).UnixMicro()
	w := LiveWindow{Rendition: 1, TargetDuration: 1_000_000, DiscontinuitySeq: 2}
	for s := uint64(40); s < 43; s++ {
		w.Segments = append(w.Segments, LiveWindowSegment{Seq: s, Duration: 1_000_000, ProgramTime: t0 + int64(s-40)*1_000_000, Discontinuity: s == 42})
	}
	pl, err := LiveMediaPlaylist(w, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#EXT-X-TARGETDURATION:1\n", "#EXT-X-SERVER-CONTROL:HOLD-BACK=3.000\n", "#EXT-X-MEDIA-SEQUENCE:40\n",
		"#EXT-X-DISCONTINUITY-SEQUENCE:2\n", "#EXT-X-PROGRAM-DATE-TIME:2026-12-01T14:00:00.000Z\n#EXTINF:1.000000,\n40.ts\n",
		"#EXT-X-DISCONTINUITY\n#EXT-X-KEY", "#EXT-X-PROGRAM-DATE-TIME:2026-12-01T14:00:02.000Z\n#EXTINF:1.000000,\n42.ts\n",
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	iv := key.SegmentIV(1, 41)
	if !strings.Contains(pl, "IV=0x"+hexOf(iv[:])) {
		t.Errorf("segment 41's IV is not rendition 1's IV of segment 41:\n%s", pl)
	}
	if strings.Contains(pl, "ENDLIST") || strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Errorf("a live window has no ENDLIST and one discontinuity:\n%s", pl)
	}
	w.Ended = true
	if pl, _ := LiveMediaPlaylist(w, key); !strings.HasSuffix(pl, "42.ts\n#EXT-X-ENDLIST\n") {
		t.Errorf("an ended window ends with ENDLIST:\n%s", pl)
	}
	w.Segments[1].Seq = 44
	if _, err := LiveMediaPlaylist(w, key); err == nil || !strings.Contains(err.Error(), "consecutive") {
		t.Errorf("a window with a hole: err %v, want a refusal", err)
	}
	// A segment longer than the nominal target raises TARGETDURATION.
	long := LiveWindow{TargetDuration: 1_000_000, Segments: []LiveWindowSegment{{Seq: 0, Duration: 2_600_000}}}
	if pl, _ := LiveMediaPlaylist(long, key); !strings.Contains(pl, "#EXT-X-TARGETDURATION:3\n") || !strings.Contains(pl, "HOLD-BACK=9.000") {
		t.Errorf("a 2.6 s segment needs TARGETDURATION 3 and HOLD-BACK 9:\n%s", pl)
	}
	if got := LiveHoldBack(1_000_000); got != 3*time.Second {
		t.Errorf("hold-back of 1 s segments %v, want 3s", got)
	}
}

func TestLiveMasterPlaylist(t *testing.T) {
	g := &LiveGenesis{Renditions: []LiveRendition{
		{Name: "240p", Bandwidth: 400_000, Width: 426, Height: 240, Codecs: "avc1.42c01e,mp4a.40.2"},
		{Name: "720p", Bandwidth: 2_500_000},
	}}
	pl := LiveMasterPlaylist(g)
	want := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS=\"avc1.42c01e,mp4a.40.2\"\n0/index.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=2500000\n1/index.m3u8\n"
	if pl != want {
		t.Errorf("master playlist:\n%s\nwant:\n%s", pl, want)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
