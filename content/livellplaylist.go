package content

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Low-Latency HLS playlists (RFC 8216bis §4.4.3.7–8, §4.4.4.9, §4.4.5.3,
// §6.2.5.2) for chains with parts. The gateway serves verified plaintext
// on these playlists (no EXT-X-KEY): a part is encrypted on its own with
// PartIV in transit, and HLS has no way to give a part its own IV, so the
// gateway, which holds the key and has verified every byte against a
// signed part or entry, decrypts before serving. Standard chains keep
// LiveMediaPlaylist unchanged.

// ResourcePart is {r}/{s}.{p}.ts on a low-latency chain (ParseLivePlaybackPath).
const ResourcePart PlaybackResource = ResourceSegment + 100

// LivePartHoldBackParts is PART-HOLD-BACK in part targets: RFC 8216bis
// §4.4.3.8 requires at least twice, and recommends three times, the part
// target.
const LivePartHoldBackParts = 3

// LiveAdvancePartLimit is how many parts past the playlist's last one a
// blocking reload may ask for before it is a 400 (RFC 8216bis §6.2.5.2
// calls it the Advance Part Limit and sets it to 3).
const LiveAdvancePartLimit = 3

// LivePartHoldBack is the PART-HOLD-BACK of a part target (µs).
func LivePartHoldBack(partMicros uint32) time.Duration {
	return LivePartHoldBackParts * time.Duration(partMicros) * time.Microsecond
}

// LivePartPath is part p of segment s of rendition r, relative to the base.
func LivePartPath(r, s, p int) string { return strconv.Itoa(r) + "/" + partName(s, p) }

func partName(s, p int) string { return strconv.Itoa(s) + "." + strconv.Itoa(p) + ".ts" }

// ParseLivePlaybackPath is ParsePlaybackPath plus a low-latency chain's
// part paths, {r}/{s}.{p}.ts (Segment s, Part p).
func ParseLivePlaybackPath(rel string) (PlaybackPath, int, error) {
	rs, file, ok := strings.Cut(rel, "/")
	name, isTS := strings.CutSuffix(file, ".ts")
	ss, ps, isPart := strings.Cut(name, ".")
	if !ok || !isTS || !isPart {
		pp, err := ParsePlaybackPath(rel)
		return pp, 0, err
	}
	r, err := pathNumber(rs, "rendition", maxPathRendition)
	if err != nil {
		return PlaybackPath{}, 0, err
	}
	s, err := pathNumber(ss, "segment", maxPathSegment)
	if err != nil {
		return PlaybackPath{}, 0, err
	}
	p, err := pathNumber(ps, "part", MaxLiveParts)
	if err != nil {
		return PlaybackPath{}, 0, err
	}
	return PlaybackPath{Resource: ResourcePart, Rendition: r, Segment: s}, p, nil
}

// LiveLLPart is one part a low-latency playlist lists.
type LiveLLPart struct {
	Duration    uint32 // µs
	Independent bool
}

// LiveLLSegment is a segment of a low-latency window: complete (its entry
// verified and its bytes servable: an EXTINF line) or, only as the last
// one, in progress (parts only).
type LiveLLSegment struct {
	LiveWindowSegment
	Complete bool
	// Parts are the segment's verified parts, listed as EXT-X-PART lines
	// when the segment is among the newest (RFC 8216bis: parts of segments
	// older than the last few may be dropped from the playlist).
	Parts []LiveLLPart
}

// LiveLLWindow is what a low-latency media playlist of one rendition shows.
type LiveLLWindow struct {
	Rendition        int
	Segments         []LiveLLSegment // consecutive Seqs, oldest first
	DiscontinuitySeq int
	TargetDuration   uint32 // µs, the genesis'
	PartTarget       uint32 // µs, the genesis'
	Ended            bool
}

// LastPosition is the newest (segment, part) the window lists: part -1
// when the newest listed thing is a complete segment whose parts are not
// listed; ok false for an empty window.
func (w LiveLLWindow) LastPosition() (seq uint64, part int, ok bool) {
	if len(w.Segments) == 0 {
		return 0, 0, false
	}
	last := w.Segments[len(w.Segments)-1]
	return last.Seq, len(last.Parts) - 1, true
}

// livePartLines is how many of the newest segments list their parts: RFC
// 8216bis §4.4.4.9 asks for the parts of segments within three target
// durations of the end.
const livePartLines = 3

// LiveLLMediaPlaylist writes w as a low-latency media playlist: the
// standard live playlist's lines (without keys) plus EXT-X-PART-INF,
// EXT-X-SERVER-CONTROL with CAN-BLOCK-RELOAD and PART-HOLD-BACK, the parts
// of the newest segments and a preload hint for the next part.
func LiveLLMediaPlaylist(w LiveLLWindow) (string, error) {
	target := targetDurationSeconds(w.TargetDuration)
	for i, s := range w.Segments {
		if i > 0 && s.Seq != w.Segments[i-1].Seq+1 {
			return "", fmt.Errorf("live playlist: segment %d follows %d; a window is consecutive", s.Seq, w.Segments[i-1].Seq)
		}
		if s.Seq >= MaxLiveSegments {
			return "", fmt.Errorf("live playlist: segment %d beyond the %d a chain holds", s.Seq, MaxLiveSegments)
		}
		if !s.Complete && i != len(w.Segments)-1 {
			return "", fmt.Errorf("live playlist: segment %d is in progress but not the last", s.Seq)
		}
		target = max(target, (s.Duration+500_000)/1_000_000)
	}
	if w.PartTarget == 0 {
		return "", fmt.Errorf("live playlist: no part target (not a low-latency chain)")
	}
	var first uint64
	if len(w.Segments) > 0 {
		first = w.Segments[0].Seq
	}
	var b strings.Builder
	// Version 6: EXT-X-PART-INF and the parts' attributes need ≥ 6 (§7).
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%d\n", target)
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", float64(w.PartTarget)/1e6)
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f,HOLD-BACK=%.3f\n",
		LivePartHoldBack(w.PartTarget).Seconds(), (time.Duration(LiveHoldBackSegments*target) * time.Second).Seconds())
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", first)
	if w.DiscontinuitySeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", w.DiscontinuitySeq)
	}
	for i, s := range w.Segments {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", time.UnixMicro(s.ProgramTime).UTC().Format("2006-01-02T15:04:05.000Z"))
		if i >= len(w.Segments)-livePartLines {
			for p, part := range s.Parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.6f,URI=%q", float64(part.Duration)/1e6, partName(int(s.Seq), p))
				if part.Independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteString("\n")
			}
		}
		if s.Complete {
			fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", float64(s.Duration)/1e6, segmentName(int(s.Seq)))
		}
	}
	if w.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
		return b.String(), nil
	}
	if len(w.Segments) > 0 {
		// The next part: of the segment in progress, or part 0 of the next.
		last := w.Segments[len(w.Segments)-1]
		seq, part := last.Seq, len(last.Parts)
		if last.Complete {
			seq, part = last.Seq+1, 0
		}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=%q\n", partName(int(seq), part))
	}
	return b.String(), nil
}

// BlockingReload is a playlist request's _HLS_msn / _HLS_part (RFC 8216bis
// §6.2.5.2): wait until the playlist holds segment MSN (Part < 0) or part
// Part of it.
type BlockingReload struct {
	MSN  uint64
	Part int // -1: no _HLS_part
}

// ParseBlockingReload reads _HLS_msn and _HLS_part from a query. ok is
// false when the request does not block. An _HLS_part without _HLS_msn, or
// a value that is not a non-negative integer, is an error (a 400).
func ParseBlockingReload(msn, part string) (BlockingReload, bool, error) {
	if msn == "" {
		if part != "" {
			return BlockingReload{}, false, fmt.Errorf("_HLS_part without _HLS_msn: a blocking reload names its segment")
		}
		return BlockingReload{}, false, nil
	}
	m, err := strconv.ParseUint(msn, 10, 64)
	if err != nil || m >= MaxLiveSegments {
		return BlockingReload{}, false, fmt.Errorf("_HLS_msn %q: want a media sequence number 0..%d", msn, MaxLiveSegments-1)
	}
	br := BlockingReload{MSN: m, Part: -1}
	if part != "" {
		p, err := strconv.Atoi(part)
		if err != nil || p < 0 || p >= MaxLiveParts {
			return BlockingReload{}, false, fmt.Errorf("_HLS_part %q: want a part index 0..%d", part, MaxLiveParts-1)
		}
		br.Part = p
	}
	return br, true, nil
}

// ReloadDecision is what a blocking reload gets now.
type ReloadDecision int

const (
	ReloadServe      ReloadDecision = iota + 1 // the playlist holds what was asked: answer it
	ReloadWait                                 // not yet: wait (bounded) and decide again
	ReloadBadRequest                           // too far ahead of the playlist: 400
)

// DecideReload is RFC 8216bis §6.2.5.2 for window w: serve once the window
// holds the asked segment (complete) or part (a segment complete holds all
// its parts; a later segment holds everything before it), or the playlist
// is ended; 400 when the asked segment is more than two past the window's
// last, or the asked part more than LiveAdvancePartLimit past the last
// listed part; else wait. The caller bounds the wait (LiveReloadTimeout:
// then 503).
func DecideReload(w LiveLLWindow, req BlockingReload) ReloadDecision {
	if w.Ended {
		return ReloadServe
	}
	last, lastPart, ok := w.LastPosition()
	if !ok {
		return ReloadWait
	}
	complete := w.Segments[len(w.Segments)-1].Complete
	switch {
	case req.MSN < last:
		return ReloadServe
	case req.MSN == last:
		if complete || (req.Part >= 0 && req.Part <= lastPart) {
			return ReloadServe
		}
		if req.Part > lastPart+LiveAdvancePartLimit {
			return ReloadBadRequest
		}
		return ReloadWait
	case req.MSN > last+2:
		return ReloadBadRequest
	}
	// A part of a later segment: the parts between the window's last and
	// it count toward the Advance Part Limit (the segment in progress still
	// has about TargetDuration/PartTarget − lastPart − 1 to come).
	if req.Part >= 0 {
		perSegment := int(w.TargetDuration / max(w.PartTarget, 1))
		ahead := req.Part + 1 + int(req.MSN-last-1)*perSegment
		if !complete {
			ahead += max(0, perSegment-lastPart-1)
		}
		if ahead > LiveAdvancePartLimit {
			return ReloadBadRequest
		}
	}
	return ReloadWait
}

// LiveReloadTimeout bounds a blocking reload: RFC 8216bis §6.2.5.2 has the
// server answer 503 when the asked part has not appeared within three
// target durations.
func LiveReloadTimeout(targetMicros uint32) time.Duration {
	return 3 * time.Duration(targetDurationSeconds(targetMicros)) * time.Second
}
