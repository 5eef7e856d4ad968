package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Point is one curve sample: rates averaged over the sample's width,
// ending at Minute.
type Point struct {
	Minute           float64 `json:"minute"`
	OriginMbps       float64 `json:"origin_mbps"` // origin upload, to viewers and edges
	OriginToViewers  float64 `json:"origin_to_viewers_mbps"`
	OriginToEdges    float64 `json:"origin_to_edges_mbps"`
	EdgeToViewers    float64 `json:"edge_to_viewers_mbps"`
	EdgeToEdges      float64 `json:"edge_to_edges_mbps"`
	BaselineMbps     float64 `json:"baseline_mbps"` // active viewers × bitrate: the origin's load without edges
	ViewerOffload    float64 `json:"viewer_offload"`
	ActiveViewers    int     `json:"active_viewers"`
	AliveEdges       int     `json:"alive_edges"`
	CumulativeLookup int64   `json:"lookups_total"`
}

// CoordinatorLoad is the control plane's work.
type CoordinatorLoad struct {
	LookupsPerS     float64 `json:"lookups_per_s"`
	HeartbeatsPerS  float64 `json:"heartbeats_per_s"`
	PlacementRounds int     `json:"placement_rounds"`
	// Placement wall times of the real placer (machine-dependent; not in
	// golden files).
	PlacementMSAvg float64 `json:"placement_ms_avg"`
	PlacementMSMax float64 `json:"placement_ms_max"`
}

// Report is the outcome of one run. Fields marked wall-clock depend on the
// machine; everything else is a function of the scenario and the seed.
type Report struct {
	Scenario   string  `json:"scenario"`
	Seed       int64   `json:"seed"`
	SimulatedS float64 `json:"simulated_s"`

	OriginMbpsAvg          float64 `json:"origin_mbps_avg"`
	OriginToViewersMbpsAvg float64 `json:"origin_to_viewers_mbps_avg"`
	OriginToEdgesMbpsAvg   float64 `json:"origin_to_edges_mbps_avg"`
	BaselineMbpsAvg        float64 `json:"baseline_mbps_avg"`
	// OriginMbpsByOrigin splits the origin load when there are several.
	OriginMbpsByOrigin []float64 `json:"origin_mbps_by_origin,omitempty"`
	// Saving is 1 − origin/baseline over the run.
	Saving float64 `json:"saving"`
	// OriginMbpsAt40Min and SavingAt40Min are the curve's point ending at
	// minute 40 (the source experiment's instant), when the run reaches it.
	OriginMbpsAt40Min *float64 `json:"origin_mbps_at_40min,omitempty"`
	SavingAt40Min     *float64 `json:"saving_at_40min,omitempty"`
	// Offload is the share of bytes delivered to viewers that came from edges.
	Offload float64 `json:"offload"`

	Plays          int     `json:"plays"`
	Segments       int     `json:"segments"`
	FailedSegments int     `json:"failed_segments"`
	StartupP50MS   float64 `json:"startup_p50_ms"`
	StartupP95MS   float64 `json:"startup_p95_ms"`
	Stalls         int     `json:"stalls"`
	RebufferRatio  float64 `json:"rebuffer_ratio"`
	BadShards      int     `json:"bad_shards"`
	BannedEdges    int     `json:"banned_edges"`
	ChurnedEdges   int64   `json:"churned_edges"`

	Coordinator CoordinatorLoad `json:"coordinator"`
	// Explain decomposes the origin's bytes (Sim.Explain; omitted without).
	Explain *Explain `json:"origin_explained,omitempty"`
	Curve   []Point  `json:"curve"`

	WallSeconds float64 `json:"wall_seconds"` // wall-clock
	PeakRSSMB   float64 `json:"peak_rss_mb"`  // wall-clock (process peak, getrusage)
	// CPUSeconds is the process's user + system time during the run, on
	// every core (wall-clock; omitted where getrusage is missing): on a
	// shared machine the floor under wall_seconds.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`

	startups  []float64 // sorted, for the plots
	rebuffers []float64 // per finished play: stalled share, sorted
}

func (s *Sim) finish(wall time.Duration) {
	m := &s.m
	// Close the partial last bin only if it holds traffic the curve lacks.
	if m.binOriginViewers+m.binOriginEdges+m.binEdgeViewers+m.binEdgeEdges > 0 && s.now%s.sampleNS() != 0 {
		m.originViewers += m.binOriginViewers
		m.originEdges += m.binOriginEdges
		m.edgeViewers += m.binEdgeViewers
		m.edgeEdges += m.binEdgeEdges
	}
	r := s.report
	dur := float64(s.now) / 1e9
	r.SimulatedS = round3(dur)
	mbps := func(b float64) float64 { return round3(b * 8 / dur / 1e6) }
	r.OriginToViewersMbpsAvg = mbps(m.originViewers)
	r.OriginToEdgesMbpsAvg = mbps(m.originEdges)
	r.OriginMbpsAvg = mbps(m.originViewers + m.originEdges)
	if len(m.byOrigin) > 1 {
		for _, b := range m.byOrigin {
			r.OriginMbpsByOrigin = append(r.OriginMbpsByOrigin, mbps(b))
		}
	}
	base := 0.0
	for _, p := range m.points {
		base += p.BaselineMbps
	}
	if len(m.points) > 0 {
		base /= float64(len(m.points))
	}
	r.BaselineMbpsAvg = round3(base)
	if base > 0 {
		r.Saving = round3(1 - r.OriginMbpsAvg/base)
	}
	for _, p := range m.points {
		if p.Minute == 40 {
			o := p.OriginMbps
			r.OriginMbpsAt40Min = &o
			if p.BaselineMbps > 0 {
				sv := round3(1 - p.OriginMbps/p.BaselineMbps)
				r.SavingAt40Min = &sv
			}
		}
	}
	if tot := m.originViewers + m.edgeViewers; tot > 0 {
		r.Offload = round3(m.edgeViewers / tot)
	}
	r.Plays, r.Segments, r.FailedSegments = m.plays, m.segments, m.failedSegments
	r.startups = slices.Clone(m.startupsMS)
	slices.Sort(r.startups)
	r.StartupP50MS = round3(quantile(r.startups, 0.5))
	r.StartupP95MS = round3(quantile(r.startups, 0.95))
	r.Stalls = m.stalls
	r.rebuffers = slices.Clone(m.playRebuffer)
	slices.Sort(r.rebuffers)
	// Sessions still playing count what they played so far.
	playNS, stallNS := m.playNS, m.rebufferNS
	for _, v := range s.viewers {
		if v.active && v.started {
			playNS += max(0, s.now-v.playAt-v.stall)
			stallNS += v.stall
		}
	}
	if playNS+stallNS > 0 {
		r.RebufferRatio = round3(float64(stallNS) / float64(playNS+stallNS))
	}
	r.BadShards, r.BannedEdges, r.ChurnedEdges = m.badShards, m.bannedEdges, m.churned
	r.Coordinator = CoordinatorLoad{
		LookupsPerS:     round3(float64(m.lookups) / dur),
		HeartbeatsPerS:  round3(float64(m.heartbeats) / dur),
		PlacementRounds: m.placementRounds,
	}
	var sum, mx time.Duration
	for _, d := range m.placementWall {
		sum += d
		mx = max(mx, d)
	}
	if n := len(m.placementWall); n > 0 {
		r.Coordinator.PlacementMSAvg = round3(float64(sum) / float64(n) / 1e6)
		r.Coordinator.PlacementMSMax = round3(float64(mx) / 1e6)
	}
	r.Curve = m.points
	if s.x != nil {
		r.Explain = s.explainReport(mbps)
	}
	r.WallSeconds = round3(wall.Seconds())
	r.PeakRSSMB = peakRSSMB()
	r.CPUSeconds = round3(processCPUSeconds() - s.cpuAtStart)
}

// quantile of sorted xs (nearest rank), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// WithoutWallClock returns a copy with the machine-dependent fields zeroed
// (what golden files and determinism checks compare).
func (r *Report) WithoutWallClock() *Report {
	c := *r
	c.WallSeconds, c.PeakRSSMB, c.CPUSeconds = 0, 0, 0
	c.Coordinator.PlacementMSAvg, c.Coordinator.PlacementMSMax = 0, 0
	return &c
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the summary and the curve as aligned text.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("scenario", fmt.Sprintf("%s (seed %d, %.0f s simulated)", r.Scenario, r.Seed, r.SimulatedS))
	row("origin Mbit/s (avg)", fmt.Sprintf("%.1f = %.1f to viewers + %.1f to edges", r.OriginMbpsAvg, r.OriginToViewersMbpsAvg, r.OriginToEdgesMbpsAvg))
	if len(r.OriginMbpsByOrigin) > 0 {
		row("by origin Mbit/s (avg)", fmt.Sprint(r.OriginMbpsByOrigin))
	}
	row("without edges Mbit/s (avg)", fmt.Sprintf("%.1f", r.BaselineMbpsAvg))
	row("saving", fmt.Sprintf("%.1f%%", 100*r.Saving))
	if r.OriginMbpsAt40Min != nil && r.SavingAt40Min != nil {
		row("origin Mbit/s at 40 min", fmt.Sprintf("%.1f (saving %.1f%%)", *r.OriginMbpsAt40Min, 100**r.SavingAt40Min))
	}
	row("offload (viewer bytes from edges)", fmt.Sprintf("%.1f%%", 100*r.Offload))
	row("plays / segments / failed", fmt.Sprintf("%d / %d / %d", r.Plays, r.Segments, r.FailedSegments))
	row("startup p50 / p95 ms", fmt.Sprintf("%.0f / %.0f", r.StartupP50MS, r.StartupP95MS))
	row("rebuffer ratio / stalls", fmt.Sprintf("%.4f / %d", r.RebufferRatio, r.Stalls))
	row("bad shards / banned / churned edges", fmt.Sprintf("%d / %d / %d", r.BadShards, r.BannedEdges, r.ChurnedEdges))
	row("coordinator lookups/s, heartbeats/s", fmt.Sprintf("%.1f, %.1f", r.Coordinator.LookupsPerS, r.Coordinator.HeartbeatsPerS))
	row("placement rounds, ms avg / max", fmt.Sprintf("%d, %.1f / %.1f", r.Coordinator.PlacementRounds, r.Coordinator.PlacementMSAvg, r.Coordinator.PlacementMSMax))
	row("wall s, peak RSS MB", fmt.Sprintf("%.2f, %.0f", r.WallSeconds, r.PeakRSSMB))
	if r.CPUSeconds > 0 {
		row("process CPU s (user + sys)", fmt.Sprintf("%.2f", r.CPUSeconds))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minute\torigin Mbit/s\tto viewers\tto edges\tedges→viewers\tedges→edges\twithout edges\toffload\tactive\t")
	for _, p := range r.Curve {
		fmt.Fprintf(tw, "%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%d\t\n", p.Minute, p.OriginMbps, p.OriginToViewers, p.OriginToEdges, p.EdgeToViewers, p.EdgeToEdges, p.BaselineMbps, p.ViewerOffload, p.ActiveViewers)
	}
	return tw.Flush()
}
