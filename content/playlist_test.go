package content

import (
	"bufio"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
)

// playlistURIs are the URIs a playlist names: its URI lines and the URI
// attributes of its tags.
func playlistURIs(t *testing.T, pl string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(pl))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
		case strings.HasPrefix(l, "#"):
			if _, after, ok := strings.Cut(l, `URI="`); ok {
				u, _, ok := strings.Cut(after, `"`)
				if !ok {
					t.Fatalf("unterminated URI attribute in %q", l)
				}
				out = append(out, u)
			}
		default:
			out = append(out, l)
		}
	}
	return out
}

// streamInf reads BANDWIDTH and AVERAGE-BANDWIDTH off each EXT-X-STREAM-INF.
func streamInf(t *testing.T, master string) (peak, avg []uint64) {
	t.Helper()
	for _, l := range strings.Split(master, "\n") {
		rest, ok := strings.CutPrefix(l, "#EXT-X-STREAM-INF:")
		if !ok {
			continue
		}
		attrs := parseAttributes(rest)
		p, err1 := strconv.ParseUint(attrs["BANDWIDTH"], 10, 64)
		a, err2 := strconv.ParseUint(attrs["AVERAGE-BANDWIDTH"], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("EXT-X-STREAM-INF without numeric BANDWIDTH and AVERAGE-BANDWIDTH: %q", l)
		}
		peak, avg = append(peak, p), append(avg, a)
	}
	return peak, avg
}

// For every rendition of the sample: the declared BANDWIDTH is at least
// every segment's bitrate (RFC 8216 §4.3.4.2), the average is at most the
// peak, the segment that sets the peak meets it within rounding, and
// RESOLUTION and CODECS survive.
func TestMasterPlaylistDeclaresMeasuredBitrates(t *testing.T) {
	st, id, _ := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	master := MasterPlaylist(m)
	t.Logf("master playlist of the sample:\n%s", master)
	peak, avg := streamInf(t, master)
	if len(peak) != len(m.Renditions) {
		t.Fatalf("%d EXT-X-STREAM-INF for %d renditions:\n%s", len(peak), len(m.Renditions), master)
	}
	raisedOne := false
	for r, rend := range m.Renditions {
		var highest float64
		for s, seg := range rend.Segments {
			bps := float64(seg.Size) * 8 / (float64(seg.Duration) / 1e6)
			if bps > float64(peak[r]) {
				t.Errorf("rendition %d segment %d: %.0f bit/s above the declared BANDWIDTH %d", r, s, bps, peak[r])
			}
			highest = max(highest, bps)
		}
		if float64(peak[r]) > highest+1 {
			t.Errorf("rendition %d: BANDWIDTH %d above the peak segment bitrate %.1f (+1 for rounding)", r, peak[r], highest)
		}
		if avg[r] > peak[r] || avg[r] == 0 {
			t.Errorf("rendition %d: AVERAGE-BANDWIDTH %d, want 1..BANDWIDTH (%d)", r, avg[r], peak[r])
		}
		if peak[r] > uint64(rend.Bandwidth) {
			raisedOne = true // ffmpeg's figure was below the real peak
		}
		want := "RESOLUTION=" + strconv.Itoa(int(rend.Width)) + "x" + strconv.Itoa(int(rend.Height)) + `,CODECS="` + rend.Codecs + `"`
		if !strings.Contains(master, want) {
			t.Errorf("rendition %d: master lacks %s:\n%s", r, want, master)
		}
	}
	if !raisedOne {
		t.Errorf("no rendition's measured peak exceeds ffmpeg's declared bandwidth; the sample was expected to show the undercount (240p: 228800 declared)")
	}
}

// Every URI in the master and media playlists is relative (none starts
// with "/" or names a scheme), and resolved against where the playlist is
// served, each lands on a path ParsePlaybackPath reads back as the
// resource meant.
func TestPlaylistsUseRelativeURIs(t *testing.T) {
	st, id, _ := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://127.0.0.1:9/some/prefix/videos/" + id.String() + "/")
	resolve := func(playlist, uri string) PlaybackPath {
		t.Helper()
		if strings.HasPrefix(uri, "/") || strings.Contains(uri, ":") {
			t.Fatalf("%s names %q: not a relative URI", playlist, uri)
		}
		from, _ := url.Parse(base.String() + playlist)
		u, err := from.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		rel, ok := strings.CutPrefix(u.Path, base.Path)
		if !ok {
			t.Fatalf("%s: %q resolves to %s, outside the video's base %s", playlist, uri, u.Path, base.Path)
		}
		p, err := ParsePlaybackPath(rel)
		if err != nil {
			t.Fatalf("%s: %q resolves to %q: %v", playlist, uri, rel, err)
		}
		return p
	}
	for r, uri := range playlistURIs(t, MasterPlaylist(m)) {
		if got := resolve(MasterPlaylistName, uri); got != (PlaybackPath{Resource: ResourceMedia, Rendition: r}) {
			t.Fatalf("master URI %d %q names %+v", r, uri, got)
		}
	}
	for r, rend := range m.Renditions {
		pl, err := MediaPlaylist(m, r, key)
		if err != nil {
			t.Fatal(err)
		}
		uris := playlistURIs(t, pl)
		if len(uris) != 2*len(rend.Segments) {
			t.Fatalf("rendition %d: %d URIs for %d segments (want a key and a segment each)", r, len(uris), len(rend.Segments))
		}
		for s := range rend.Segments {
			if got := resolve(MediaPlaylistPath(r), uris[2*s]); got != (PlaybackPath{Resource: ResourceKey}) {
				t.Fatalf("rendition %d segment %d: key URI %q names %+v", r, s, uris[2*s], got)
			}
			if got := resolve(MediaPlaylistPath(r), uris[2*s+1]); got != (PlaybackPath{Resource: ResourceSegment, Rendition: r, Segment: s}) {
				t.Fatalf("rendition %d segment %d: URI %q names %+v", r, s, uris[2*s+1], got)
			}
		}
	}
}

func TestParsePlaybackPathRefuses(t *testing.T) {
	for _, p := range []string{"", "/", "master.m3u8/", "/master.m3u8", "keys", "0", "0/", "0/index.m3u", "00/index.m3u8",
		"-1/index.m3u8", "+1/index.m3u8", "256/index.m3u8", "0/01.ts", "0/1048576.ts", "0/1.ts/x", "0/x.ts", "../key", "0/../key", "a/index.m3u8"} {
		if got, err := ParsePlaybackPath(p); err == nil {
			t.Errorf("ParsePlaybackPath(%q) = %+v, want an error", p, got)
		}
	}
}

func TestBitratesRoundUpWithoutOverflow(t *testing.T) {
	m := &Manifest{Renditions: []Rendition{{Segments: []Segment{
		{Duration: 3, Size: 1},          // 8/3e-6 = 2,666,666.67 bit/s → 2,666,667
		{Duration: 2_000_000, Size: 16}, // 64 bit/s
	}}}}
	peak, avg := m.Bitrates(0)
	if peak != 2_666_667 {
		t.Errorf("peak %d, want 2666667", peak)
	}
	if want := uint64(1 + (17*8*1_000_000-1)/2_000_003); avg != want {
		t.Errorf("average %d, want %d", avg, want)
	}
	// A long video: total bytes × 8·10⁶ overflows 64 bits.
	big := &Manifest{Renditions: []Rendition{{}}}
	for range 1 << 12 {
		big.Renditions[0].Segments = append(big.Renditions[0].Segments, Segment{Duration: 1_000_000, Size: 1 << 31})
	}
	peak, avg = big.Bitrates(0)
	if peak != 1<<34 || avg != 1<<34 {
		t.Errorf("long video: peak %d, average %d, want both %d", peak, avg, uint64(1)<<34)
	}
}

// FuzzParsePlaybackPath: any string either is refused or names a resource
// whose canonical path is the string itself (one path per resource).
func FuzzParsePlaybackPath(f *testing.F) {
	for _, s := range []string{"master.m3u8", "key", "0/index.m3u8", "3/17.ts", "0/01.ts", "../key", "1/2/3.ts", "255/1048575.ts"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlaybackPath(s)
		if err != nil {
			return
		}
		var canon string
		switch p.Resource {
		case ResourceMaster:
			canon = MasterPlaylistName
		case ResourceKey:
			canon = KeyName
		case ResourceMedia:
			canon = MediaPlaylistPath(p.Rendition)
		case ResourceSegment:
			canon = SegmentPath(p.Rendition, p.Segment)
		default:
			t.Fatalf("%q parsed to resource %d", s, p.Resource)
		}
		if canon != s || path.Clean(s) != s {
			t.Fatalf("%q parsed to %+v whose path is %q", s, p, canon)
		}
	})
}
