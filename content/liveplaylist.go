package content

import (
	"fmt"
	"strings"
	"time"
)

// Live playlists: the playback layout of a chain is the VoD one
// (playlist.go: master.m3u8, {r}/index.m3u8, {r}/{seq}.ts, key, every URI
// relative) with the segment index being the entry's Seq, so a gateway
// serves a chain under /live/{chain}/ exactly as a video under
// /videos/{id}/. What differs is the media playlist: a sliding window of
// the segments the gateway can serve now, with no ENDLIST until the
// broadcast ends (RFC 8216 §6.2.2).

// LiveHoldBackSegments is how many target durations behind the end of the
// playlist a player should start (EXT-X-SERVER-CONTROL:HOLD-BACK). RFC
// 8216bis §4.4.3.8 requires at least three target durations; hls.js,
// ffmpeg (live_start_index -3) and VLC start about there anyway, so the
// advertised value is what players do and what the latency figure adds.
const LiveHoldBackSegments = 3

// LiveHoldBack is the hold-back a live playlist of target duration
// targetMicros advertises.
func LiveHoldBack(targetMicros uint32) time.Duration {
	return LiveHoldBackSegments * time.Duration(targetDurationSeconds(targetMicros)) * time.Second
}

// targetDurationSeconds is EXT-X-TARGETDURATION for micros: whole seconds,
// rounded up (every segment's duration rounded must not exceed it), ≥ 1.
func targetDurationSeconds(micros uint32) uint32 {
	return max(1, (micros+999_999)/1_000_000)
}

// LiveWindowSegment is one segment a live media playlist lists: the
// entry's position, timing and discontinuity flag, and the rendition's
// duration.
type LiveWindowSegment struct {
	Seq           uint64
	Duration      uint32 // µs
	ProgramTime   int64  // unix µs of the first frame (the entry's ProgramTime)
	Discontinuity bool
}

// LiveWindow is what a live media playlist of one rendition shows.
type LiveWindow struct {
	Rendition int
	// Segments are consecutive Seqs, oldest first (may be empty while the
	// gateway has nothing to serve yet).
	Segments []LiveWindowSegment
	// DiscontinuitySeq counts the discontinuities before Segments[0]
	// (EXT-X-DISCONTINUITY-SEQUENCE), so a player that reloads keeps its
	// timeline when a discontinuity slides out of the window.
	DiscontinuitySeq int
	// TargetDuration is the genesis' nominal duration (µs).
	TargetDuration uint32
	// Ended closes the playlist (EXT-X-ENDLIST): the broadcast is over
	// and Segments run to its last entry.
	Ended bool
}

// LiveMasterPlaylist is the master playlist of a chain: one variant per
// genesis rendition, BANDWIDTH the ladder's configured peak (a live
// rendition has no measured past to average), relative URIs.
func LiveMasterPlaylist(g *LiveGenesis) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, r := range g.Renditions {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", max(r.Bandwidth, 1))
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

// LiveMediaPlaylist writes w as a live media playlist: EXT-X-MEDIA-SEQUENCE
// is the first segment's Seq, each segment carries its key line (the IV
// derives from rendition and Seq, as in VoD), EXT-X-PROGRAM-DATE-TIME and,
// after a resume, EXT-X-DISCONTINUITY; EXT-X-SERVER-CONTROL advertises
// LiveHoldBack. The segments must be consecutive.
func LiveMediaPlaylist(w LiveWindow, key ContentKey) (string, error) {
	target := targetDurationSeconds(w.TargetDuration)
	for i, s := range w.Segments {
		if i > 0 && s.Seq != w.Segments[i-1].Seq+1 {
			return "", fmt.Errorf("live playlist: segment %d follows %d; a window is consecutive", s.Seq, w.Segments[i-1].Seq)
		}
		if s.Seq >= MaxLiveSegments {
			return "", fmt.Errorf("live playlist: segment %d beyond the %d a chain holds", s.Seq, MaxLiveSegments)
		}
		// RFC 8216 §4.3.3.1: every EXTINF rounded to the nearest integer
		// is at most the target duration.
		target = max(target, (s.Duration+500_000)/1_000_000)
	}
	var first uint64
	if len(w.Segments) > 0 {
		first = w.Segments[0].Seq
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n", target)
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:HOLD-BACK=%.3f\n", (time.Duration(LiveHoldBackSegments*target) * time.Second).Seconds())
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", first)
	if w.DiscontinuitySeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", w.DiscontinuitySeq)
	}
	for _, s := range w.Segments {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		iv := key.SegmentIV(w.Rendition, int(s.Seq))
		fmt.Fprintf(&b, "#EXT-X-KEY:METHOD=AES-128,URI=%q,IV=0x%x\n", keyFromMedia, iv[:])
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", time.UnixMicro(s.ProgramTime).UTC().Format("2006-01-02T15:04:05.000Z"))
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", float64(s.Duration)/1e6, segmentName(int(s.Seq)))
	}
	if w.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String(), nil
}
