package content

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// The playback layout, the one every HLS server of a video uses (the
// player gateway under /videos/{id}/, the coordinator's fallback under
// /watch/{id}/): relative to the video's base,
//
//	master.m3u8          master playlist
//	{r}/index.m3u8       media playlist of rendition r
//	{r}/{s}.ts           ciphertext of segment s of rendition r
//	key                  the 16-byte AES-128 content key
//
// Every URI a playlist carries is relative (RFC 8216 §4.1 resolves it
// against the playlist's own URI), so the same playlists work under any
// path prefix or behind any proxy.
const (
	MasterPlaylistName = "master.m3u8"
	MediaPlaylistName  = "index.m3u8"
	KeyName            = "key"
	// keyFromMedia is the key's URI relative to a media playlist.
	keyFromMedia = "../" + KeyName
)

// Bounds of the numbers a playback path may carry (the manifest's own
// bounds are checked afterwards, against the video).
const (
	maxPathRendition = 256
	maxPathSegment   = 1 << 20
)

// PlaybackResource says what a playback path names.
type PlaybackResource int

const (
	ResourceMaster PlaybackResource = iota + 1
	ResourceKey
	ResourceMedia
	ResourceSegment
)

// PlaybackPath is a parsed path under a video's playback base.
type PlaybackPath struct {
	Resource  PlaybackResource
	Rendition int // ResourceMedia and ResourceSegment
	Segment   int // ResourceSegment
}

// MediaPlaylistPath is rendition r's media playlist, relative to the base.
func MediaPlaylistPath(r int) string { return strconv.Itoa(r) + "/" + MediaPlaylistName }

// SegmentPath is a segment's ciphertext, relative to the base.
func SegmentPath(r, s int) string { return strconv.Itoa(r) + "/" + segmentName(s) }

func segmentName(s int) string { return strconv.Itoa(s) + ".ts" }

// ParsePlaybackPath parses rel, a path relative to a video's playback base
// (no leading slash): master.m3u8, key, {r}/index.m3u8 or {r}/{s}.ts, with
// r and s canonical decimal numbers. It does not check them against a
// manifest (Manifest.CheckSegment does).
func ParsePlaybackPath(rel string) (PlaybackPath, error) {
	switch rel {
	case MasterPlaylistName:
		return PlaybackPath{Resource: ResourceMaster}, nil
	case KeyName:
		return PlaybackPath{Resource: ResourceKey}, nil
	}
	rs, file, ok := strings.Cut(rel, "/")
	if !ok || strings.Contains(file, "/") {
		return PlaybackPath{}, fmt.Errorf("no such resource %q: want %s, %s, {rendition}/%s or {rendition}/{segment}.ts", rel, MasterPlaylistName, KeyName, MediaPlaylistName)
	}
	r, err := pathNumber(rs, "rendition", maxPathRendition)
	if err != nil {
		return PlaybackPath{}, err
	}
	if file == MediaPlaylistName {
		return PlaybackPath{Resource: ResourceMedia, Rendition: r}, nil
	}
	ss, ok := strings.CutSuffix(file, ".ts")
	if !ok {
		return PlaybackPath{}, fmt.Errorf("%q: want %s or {segment}.ts", file, MediaPlaylistName)
	}
	s, err := pathNumber(ss, "segment", maxPathSegment)
	if err != nil {
		return PlaybackPath{}, err
	}
	return PlaybackPath{Resource: ResourceSegment, Rendition: r, Segment: s}, nil
}

// pathNumber parses a canonical decimal in 0..limit-1 (no sign, no
// leading zeros), so one resource has one path.
func pathNumber(s, what string, limit int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= limit || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("%s %q: want an integer in 0..%d", what, s, limit-1)
	}
	return n, nil
}

// Bitrates are rendition r's peak and average bit rates in bit/s, rounded
// up, as RFC 8216 §4.3.4.2 defines BANDWIDTH and AVERAGE-BANDWIDTH: the
// peak is the largest segment bitrate (size·8 / duration), the average the
// total bits over the total duration. The sizes are the ciphertext's,
// at most 16 bytes of padding above the media, so both are upper bounds of
// what a player downloads. A rendition without segments has 0, 0.
func (m *Manifest) Bitrates(r int) (peak, average uint64) {
	var totalBytes, totalMicros uint64
	for _, s := range m.Renditions[r].Segments {
		if s.Duration == 0 {
			continue // DecodeManifest refuses these; a hand-built manifest gets no division by zero
		}
		peak = max(peak, ceilBitsPerSecond(uint64(s.Size), uint64(s.Duration)))
		totalBytes += uint64(s.Size)
		totalMicros += uint64(s.Duration)
	}
	if totalMicros > 0 {
		average = ceilBitsPerSecond(totalBytes, totalMicros)
	}
	return peak, average
}

// ceilBitsPerSecond is ⌈bytes·8·10⁶ / micros⌉ in 128-bit arithmetic (a
// long video's total bytes times 8·10⁶ overflows 64 bits). The quotient is
// at most the peak segment bitrate, which fits: a segment is < 2³² bytes
// and ≥ 1 µs.
func ceilBitsPerSecond(bytes, micros uint64) uint64 {
	hi, lo := bits.Mul64(bytes, 8_000_000)
	if hi >= micros {
		return ^uint64(0) // cannot happen for decoded manifests (see above); saturate
	}
	q, rem := bits.Div64(hi, lo, micros)
	if rem != 0 {
		q++
	}
	return q
}

// MasterPlaylist writes the master playlist of the playback layout:
// relative URIs, BANDWIDTH the measured peak and AVERAGE-BANDWIDTH the
// average bitrate of each rendition (Bitrates), with its RESOLUTION and
// CODECS.
func MasterPlaylist(m *Manifest) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, r := range m.Renditions {
		peak, avg := m.Bitrates(i)
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d", peak, avg)
		if r.Width > 0 && r.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", r.Width, r.Height)
		}
		if r.Codecs != "" {
			fmt.Fprintf(&b, ",CODECS=%q", r.Codecs)
		}
		fmt.Fprintf(&b, "\n%s\n", MediaPlaylistPath(i))
	}
	return b.String()
}

// MediaPlaylist writes the VoD media playlist of rendition r in the
// playback layout, with one EXT-X-KEY per segment (the IV changes every
// segment) and relative segment and key URIs.
func MediaPlaylist(m *Manifest, r int, key ContentKey) (string, error) {
	if r < 0 || r >= len(m.Renditions) {
		return "", fmt.Errorf("rendition %d does not exist (video has %d)", r, len(m.Renditions))
	}
	segs := m.Renditions[r].Segments
	var maxDur uint32
	for _, s := range segs {
		maxDur = max(maxDur, s.Duration)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", (maxDur+999_999)/1_000_000)
	for i, s := range segs {
		iv := key.SegmentIV(r, i)
		fmt.Fprintf(&b, "#EXT-X-KEY:METHOD=AES-128,URI=%q,IV=0x%x\n", keyFromMedia, iv[:])
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", float64(s.Duration)/1e6, segmentName(i))
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String(), nil
}

// Content types of the playback layout's resources.
const (
	PlaylistContentType = "application/vnd.apple.mpegurl"
	SegmentContentType  = "video/mp2t"
)
