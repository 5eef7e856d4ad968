package sim

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// Scenario describes one simulated network and workload. Units are in the
// field names (seconds, Mbit/s, GB = 10^9 bytes); a zero field takes the
// default named in its comment. Scenario files are JSON (one Scenario
// object; unknown fields are refused so a typo does not silently fall back
// to a default).
type Scenario struct {
	Name string `json:"name"`
	Seed int64  `json:"seed"` // default 1; --seed overrides it
	// DurationS is the simulated time.
	DurationS float64 `json:"duration_s"`
	// SampleS is the width of one curve point; default 60.
	SampleS float64 `json:"sample_s,omitempty"`
	// SegmentS is the length of one simulated segment; default 2 (the
	// ingest's HLS segment). At scale a larger value moves one sim segment
	// per batch of real segments (a fluid, batch-granularity model).
	SegmentS float64 `json:"segment_s,omitempty"`
	// K and NMax are the erasure code; default content.DefaultParams (8 of 32).
	K    int `json:"k,omitempty"`
	NMax int `json:"n_max,omitempty"`

	Titles      TitleSpec       `json:"titles"`
	Edges       EdgeSpec        `json:"edges"`
	Viewers     ViewerSpec      `json:"viewers"`
	Origin      OriginSpec      `json:"origin"`
	Coordinator CoordinatorSpec `json:"coordinator"`
	// Flash, if set, adds a flash crowd on one title.
	Flash *FlashSpec `json:"flash,omitempty"`
}

// TitleSpec is the catalogue.
type TitleSpec struct {
	Count       int     `json:"count"`
	DurationS   float64 `json:"duration_s"`
	BitrateMbps float64 `json:"bitrate_mbps"`
	// Zipf is the popularity exponent; 0 = uniform.
	Zipf float64 `json:"zipf,omitempty"`
}

// EdgeSpec is the user-run caches.
type EdgeSpec struct {
	Count      int     `json:"count"`
	UploadMbps float64 `json:"upload_mbps"`
	DiskGB     float64 `json:"disk_gb"`
	// Multipliers are applied round-robin to upload and disk (the source
	// experiment's 0.2/0.5/1); default [1].
	Multipliers  []float64 `json:"multipliers,omitempty"`
	DownlinkMbps float64   `json:"downlink_mbps,omitempty"` // default 100
	Regions      int       `json:"regions,omitempty"`       // default 1
	LatencyMS    float64   `json:"latency_ms,omitempty"`    // one way, to anyone
	Loss         float64   `json:"loss,omitempty"`          // per transfer: probability of one retransmission timeout
	// LiarFraction of edges serve bad shards to viewers.
	LiarFraction float64 `json:"liar_fraction,omitempty"`
	// ChurnPerHour is the fraction of edges that leave per hour (each is
	// replaced at once by a fresh, empty edge, so the count stays).
	ChurnPerHour float64 `json:"churn_per_hour,omitempty"`
}

// ViewerSpec is the players and the workload.
type ViewerSpec struct {
	Count int `json:"count"`
	// Mode "continuous" (the source experiment: viewer i joins at
	// i·JoinIntervalS and watches random titles back to back) or
	// "sessions" (each viewer alternates idle and watching periods,
	// exponentially distributed, thinned by the diurnal curve).
	Mode          string  `json:"mode"`
	JoinIntervalS float64 `json:"join_interval_s,omitempty"`
	SessionMeanS  float64 `json:"session_mean_s,omitempty"`
	IdleMeanS     float64 `json:"idle_mean_s,omitempty"`
	// DiurnalPeriodS and DiurnalSwing modulate session starts: the start
	// rate goes from peak/swing to peak over one period (0 = flat).
	DiurnalPeriodS float64 `json:"diurnal_period_s,omitempty"`
	DiurnalSwing   float64 `json:"diurnal_swing,omitempty"`
	DownlinkMbps   float64 `json:"downlink_mbps,omitempty"` // default 50
	LatencyMS      float64 `json:"latency_ms,omitempty"`
	Loss           float64 `json:"loss,omitempty"`
	// PlayersAreEdges makes viewer i the built-in player of edge i (the
	// product's one cache + one player per account): what it watches, its
	// edge keeps and can regenerate from.
	PlayersAreEdges bool `json:"players_are_edges,omitempty"`
}

// OriginSpec is the origin server.
type OriginSpec struct {
	// Count origins (default 1), each with UplinkMbps. With Count > 1 and
	// PerServerRate (segment requests per second one origin serves) the
	// coordinator's origin pool routes segments to origins.
	Count         int     `json:"count,omitempty"`
	PerServerRate float64 `json:"per_server_rate,omitempty"`
	UplinkMbps    float64 `json:"uplink_mbps,omitempty"` // per origin; 0 = unlimited
	LatencyMS     float64 `json:"latency_ms,omitempty"`
}

// CoordinatorSpec overrides the coordinator's and edge's timing; defaults
// are the real defaults (coordinator.Config, edge.DefaultPrefetchOriginDelay).
type CoordinatorSpec struct {
	HeartbeatS           float64 `json:"heartbeat_s,omitempty"`
	PlacementS           float64 `json:"placement_s,omitempty"`
	DemandHalfLifeS      float64 `json:"demand_half_life_s,omitempty"`
	PrefetchOriginDelayS float64 `json:"prefetch_origin_delay_s,omitempty"`
	// NoPlacement turns placement off (edges then hold only what their
	// players watched): the "no caches" and "watch-only" baselines.
	NoPlacement bool `json:"no_placement,omitempty"`
	// PlacementCells shards placement (default 1, today's single placer):
	// edge i belongs to cell i mod PlacementCells, and each cell places its
	// own edges over the demand of the viewers they host, as coordinators
	// sharding the edges between them would.
	PlacementCells int `json:"placement_cells,omitempty"`
	// PlacementMinViewers is the coordinator's PlacementMinViewers (distinct
	// viewers a segment needs before it is replicated); default
	// coordinator.DefaultPlacementMinViewers (1: any demand is replicated).
	PlacementMinViewers int `json:"placement_min_viewers,omitempty"`
	// PredictLeadS is the coordinator's PredictLead in seconds (demand
	// predicted along the playhead, DemandTracker.SetPrediction); 0 takes
	// coordinator.DefaultPredictLead(placement_s), negative turns it off
	// (placement on measured demand alone, as before 2026-12-02).
	PredictLeadS float64 `json:"predict_lead_s,omitempty"`
}

// FlashSpec is a flash crowd: Viewers extra starts on Title spread over
// [AtS, AtS+OverS).
type FlashSpec struct {
	AtS     float64 `json:"at_s"`
	OverS   float64 `json:"over_s"`
	Viewers int     `json:"viewers"`
	Title   int     `json:"title"`
}

//go:embed testdata/scenarios/*.json
var builtin embed.FS

// Builtin lists the named scenarios.
func Builtin() []string {
	ents, _ := builtin.ReadDir("testdata/scenarios")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	slices.Sort(out)
	return out
}

// Load returns a built-in scenario by name, or reads a scenario file.
func Load(nameOrPath string) (*Scenario, error) {
	b, err := builtin.ReadFile(path.Join("testdata/scenarios", nameOrPath+".json"))
	if err != nil {
		b, err = os.ReadFile(nameOrPath)
		if err != nil {
			return nil, fmt.Errorf("scenario %q is neither a built-in (%s) nor a readable file: %w", nameOrPath, strings.Join(Builtin(), ", "), err)
		}
	}
	return Parse(b)
}

// Parse decodes and validates a scenario file.
func Parse(b []byte) (*Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Validate reports the first field out of range, naming it.
func (sc *Scenario) Validate() error {
	bad := func(field string, want string) error {
		return fmt.Errorf("scenario %q: %s: want %s", sc.Name, field, want)
	}
	switch {
	case !(sc.DurationS > 0):
		return bad("duration_s", "> 0")
	case sc.SampleS < 0, sc.SegmentS < 0:
		return bad("sample_s and segment_s", ">= 0")
	case sc.K < 0 || sc.NMax < 0 || (sc.K > 0 && sc.NMax > 0 && sc.NMax < sc.K) || sc.NMax > 256:
		return bad("k, n_max", "0 < k <= n_max <= 256")
	case sc.Titles.Count < 1 || !(sc.Titles.DurationS > 0) || !(sc.Titles.BitrateMbps > 0):
		return bad("titles", "count >= 1, duration_s > 0 and bitrate_mbps > 0")
	case sc.Titles.Zipf < 0:
		return bad("titles.zipf", ">= 0")
	case sc.Edges.Count < 0 || sc.Edges.UploadMbps < 0 || sc.Edges.DiskGB < 0:
		return bad("edges", "count, upload_mbps and disk_gb >= 0")
	case sc.Edges.LiarFraction < 0 || sc.Edges.LiarFraction > 1 || sc.Edges.Loss < 0 || sc.Edges.Loss >= 1 || sc.Viewers.Loss < 0 || sc.Viewers.Loss >= 1:
		return bad("liar_fraction and loss", "in [0, 1)")
	case sc.Origin.Count < 0 || sc.Origin.PerServerRate < 0 || sc.Origin.UplinkMbps < 0:
		return bad("origin", "count, per_server_rate and uplink_mbps >= 0")
	case sc.Coordinator.PlacementCells < 0:
		return bad("coordinator.placement_cells", ">= 0")
	case sc.Edges.ChurnPerHour < 0:
		return bad("edges.churn_per_hour", ">= 0")
	case sc.Viewers.Count < 1:
		return bad("viewers.count", ">= 1")
	case sc.Viewers.Mode != "continuous" && sc.Viewers.Mode != "sessions":
		return bad("viewers.mode", `"continuous" or "sessions"`)
	case sc.Viewers.Mode == "sessions" && !(sc.Viewers.SessionMeanS > 0 && sc.Viewers.IdleMeanS >= 0):
		return bad("viewers.session_mean_s", "> 0 in sessions mode")
	case sc.Viewers.DiurnalSwing != 0 && sc.Viewers.DiurnalSwing < 1:
		return bad("viewers.diurnal_swing", ">= 1 (or 0 for none)")
	case sc.Viewers.PlayersAreEdges && sc.Viewers.Count > sc.Edges.Count:
		return bad("viewers.count", "<= edges.count when players_are_edges")
	case sc.Flash != nil && (sc.Flash.Title < 0 || sc.Flash.Title >= sc.Titles.Count || sc.Flash.Viewers < 0 || sc.Flash.OverS < 0):
		return bad("flash", "a title in the catalogue, viewers >= 0, over_s >= 0")
	}
	for _, m := range sc.Edges.Multipliers {
		if !(m > 0) {
			return bad("edges.multipliers", "every multiplier > 0")
		}
	}
	return nil
}
