package coordinator

import (
	"fmt"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Bounds of one play report that do not follow from the video.
const (
	// maxPlayWallMS bounds the wall-clock fields (startup, stall time): a
	// play that waited more than a day is not one play.
	maxPlayWallMS = 24 * 60 * 60 * 1000
	// maxPlaySources bounds BytesBySource's size (besides segments × n_max).
	maxPlaySources = 4096
	// playedSlackMS allows for rounding when a player sums segment
	// durations into PlayedMS.
	playedSlackMS = 1000
)

// checkPlayReport checks a play report's numbers against the video m it
// names: every field non-negative; PlayedMS at most the rendition's
// duration; Stalls at most one per segment; BadShards at most every shard
// of every segment; sources at most one per shard and each a node id; the
// bytes, in total, at most the video's playback budget (the same cap
// settlement pays within). Pure: it reads nothing but its arguments.
func checkPlayReport(rep *wire.PlayReport, m *content.Manifest) error {
	if rep.Rendition < 0 || rep.Rendition >= len(m.Renditions) {
		return fmt.Errorf("rendition %d does not exist (video %s has %d)", rep.Rendition, rep.Video, len(m.Renditions))
	}
	segs := m.Renditions[rep.Rendition].Segments
	var durationUS int64
	for _, s := range segs {
		durationUS += int64(s.Duration)
	}
	maxPlayed := float64(durationUS/1000 + playedSlackMS)
	// !(x >= 0) also refuses NaN, which JSON cannot carry but Go callers can.
	switch {
	case !(rep.StartupMS >= 0) || rep.StartupMS > maxPlayWallMS:
		return fmt.Errorf("startup_ms %v: want 0..%d", rep.StartupMS, maxPlayWallMS)
	case !(rep.StallMS >= 0) || rep.StallMS > maxPlayWallMS:
		return fmt.Errorf("stall_ms %v: want 0..%d", rep.StallMS, maxPlayWallMS)
	case !(rep.PlayedMS >= 0) || rep.PlayedMS > maxPlayed:
		return fmt.Errorf("played_ms %v: want 0..%.0f (the rendition plays %d ms)", rep.PlayedMS, maxPlayed, durationUS/1000)
	case rep.Stalls < 0 || rep.Stalls > len(segs):
		return fmt.Errorf("stalls %d: want 0..%d (at most one per segment)", rep.Stalls, len(segs))
	case rep.BadShards < 0 || rep.BadShards > len(segs)*m.Params.NMax:
		return fmt.Errorf("bad_shards %d: want 0..%d (every shard of every segment)", rep.BadShards, len(segs)*m.Params.NMax)
	}
	if maxSources := min(len(segs)*m.Params.NMax, maxPlaySources); len(rep.BytesBySource) > maxSources {
		return fmt.Errorf("bytes_by_source names %d sources: at most %d", len(rep.BytesBySource), maxSources)
	}
	budget := coordinatordb.PlaybackBudget(m)
	var total int64
	for id, b := range rep.BytesBySource {
		if err := wire.CheckNodeID(id); err != nil {
			return fmt.Errorf("bytes_by_source: %v", err)
		}
		if b < 0 || b > budget-total { // total stays ≤ budget: no overflow
			return fmt.Errorf("bytes_by_source: %d bytes from %s brings the total above the video's playback budget of %d bytes (or is negative)", b, id, budget)
		}
		total += b
	}
	return nil
}
