package content

import (
	"strings"
	"testing"
)

func llWindow(lastComplete bool, lastParts int) LiveLLWindow {
	parts := func(n int) []LiveLLPart {
		var ps []LiveLLPart
		for i := range n {
			ps = append(ps, LiveLLPart{Duration: 250_000, Independent: i == 0})
		}
		return ps
	}
	w := LiveLLWindow{Rendition: 0, TargetDuration: 1_000_000, PartTarget: 250_000}
	for s := uint64(10); s <= 13; s++ {
		seg := LiveLLSegment{LiveWindowSegment: LiveWindowSegment{Seq: s, Duration: 1_000_000, ProgramTime: 1_700_000_000_000_000 + int64(s)*1_000_000},
			Complete: true, Parts: parts(4)}
		if s == 13 {
			seg.Complete, seg.Parts = lastComplete, parts(lastParts)
		}
		w.Segments = append(w.Segments, seg)
	}
	return w
}

func TestLiveLLMediaPlaylist(t *testing.T) {
	pl, err := LiveLLMediaPlaylist(llWindow(false, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#EXT-X-VERSION:6\n",
		"#EXT-X-PART-INF:PART-TARGET=0.250\n",
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750,HOLD-BACK=3.000\n",
		"#EXT-X-MEDIA-SEQUENCE:10\n",
		"#EXT-X-PART:DURATION=0.250000,URI=\"13.0.ts\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.250000,URI=\"13.1.ts\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.2.ts\"\n",
		"#EXTINF:1.000000,\n12.ts\n",
	} {
		if !strings.Contains(pl, want) {
			t.Fatalf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if strings.Contains(pl, "EXT-X-KEY") || strings.Contains(pl, "13.ts") || strings.Contains(pl, "10.0.ts") {
		t.Fatalf("keys, the unfinished segment or an old segment's parts listed:\n%s", pl)
	}
	// A complete last segment: the hint is the next segment's first part.
	pl, _ = LiveLLMediaPlaylist(llWindow(true, 4))
	if !strings.HasSuffix(pl, "13.ts\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.ts\"\n") {
		t.Fatalf("hint after a complete segment:\n%s", pl)
	}
	w := llWindow(false, 1)
	w.Segments[1].Complete = false
	if _, err := LiveLLMediaPlaylist(w); err == nil {
		t.Fatal("an unfinished segment before the last was written")
	}
}

func TestDecideReload(t *testing.T) {
	inProgress := llWindow(false, 2) // last listed: 13.1
	complete := llWindow(true, 4)    // last listed: 13 whole
	for _, c := range []struct {
		name string
		w    LiveLLWindow
		req  BlockingReload
		want ReloadDecision
	}{
		{"older segment", inProgress, BlockingReload{MSN: 12, Part: -1}, ReloadServe},
		{"listed part", inProgress, BlockingReload{MSN: 13, Part: 1}, ReloadServe},
		{"next part", inProgress, BlockingReload{MSN: 13, Part: 2}, ReloadWait},
		{"unfinished segment whole", inProgress, BlockingReload{MSN: 13, Part: -1}, ReloadWait},
		{"three parts ahead", inProgress, BlockingReload{MSN: 13, Part: 4}, ReloadWait},
		{"four parts ahead", inProgress, BlockingReload{MSN: 13, Part: 5}, ReloadBadRequest},
		{"next segment's first part", inProgress, BlockingReload{MSN: 14, Part: 0}, ReloadWait},
		{"next segment's third part", inProgress, BlockingReload{MSN: 14, Part: 2}, ReloadBadRequest},
		{"complete segment", complete, BlockingReload{MSN: 13, Part: -1}, ReloadServe},
		{"after complete: next part", complete, BlockingReload{MSN: 14, Part: 0}, ReloadWait},
		{"after complete: 3 ahead", complete, BlockingReload{MSN: 14, Part: 2}, ReloadWait},
		{"after complete: 4 ahead", complete, BlockingReload{MSN: 14, Part: 3}, ReloadBadRequest},
		{"two segments ahead", complete, BlockingReload{MSN: 15, Part: -1}, ReloadWait},
		{"three segments ahead", complete, BlockingReload{MSN: 16, Part: -1}, ReloadBadRequest},
		{"empty window", LiveLLWindow{TargetDuration: 1_000_000, PartTarget: 250_000}, BlockingReload{MSN: 99, Part: -1}, ReloadWait},
		{"ended", LiveLLWindow{Ended: true}, BlockingReload{MSN: 99, Part: -1}, ReloadServe},
	} {
		if got := DecideReload(c.w, c.req); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestParseBlockingReloadAndPartPaths(t *testing.T) {
	if _, _, err := ParseBlockingReload("", "2"); err == nil {
		t.Fatal("_HLS_part without _HLS_msn accepted (a 400 by RFC 8216bis)")
	}
	for _, bad := range [][2]string{{"-1", ""}, {"x", ""}, {"3", "-1"}, {"3", "64"}} {
		if _, _, err := ParseBlockingReload(bad[0], bad[1]); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	if br, ok, err := ParseBlockingReload("12", "3"); err != nil || !ok || br != (BlockingReload{MSN: 12, Part: 3}) {
		t.Fatalf("12/3: %+v %v %v", br, ok, err)
	}
	if _, ok, err := ParseBlockingReload("", ""); ok || err != nil {
		t.Fatal("a plain reload blocks")
	}
	pp, part, err := ParseLivePlaybackPath("1/12.3.ts")
	if err != nil || pp.Resource != ResourcePart || pp.Rendition != 1 || pp.Segment != 12 || part != 3 {
		t.Fatalf("part path: %+v %d %v", pp, part, err)
	}
	if pp, _, err := ParseLivePlaybackPath("1/12.ts"); err != nil || pp.Resource != ResourceSegment {
		t.Fatalf("segment path: %+v %v", pp, err)
	}
	for _, bad := range []string{"1/12.03.ts", "1/12.64.ts", "1/x.1.ts", "1/12.1.1.ts"} {
		if _, _, err := ParseLivePlaybackPath(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
	if LivePartPath(1, 12, 3) != "1/12.3.ts" {
		t.Fatal(LivePartPath(1, 12, 3))
	}
}
