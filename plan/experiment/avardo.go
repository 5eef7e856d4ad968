package experiment

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/swarmcast/swarmcast/plan"
)

// AvardoConfig is one AVARDO experiment: a catalogue (synthetic, or a CSV
// trace when TracePath is set) on a data centre of Servers servers with Slots
// block slots each.
type AvardoConfig struct {
	Blocks int     // blocks in the synthetic catalogue
	Videos int     // videos the blocks belong to (Zipf is over videos); capped at Blocks
	Zipf   float64 // Zipf exponent of video popularity
	Seed   uint64  // seed for video lengths and popularity ranks

	// TracePath, if set, is a CSV trace (video,requests,size_mb) that
	// replaces the synthetic catalogue; Blocks, Videos, Zipf and Seed are
	// then ignored.
	TracePath string

	Slots   int // block slots per server
	Servers int // servers in the data centre

	BlockMB     float64 // block size (MB), > 0
	StreamGbps  float64 // streaming capacity of one server (Gb/s), > 0
	Utilisation float64 // utilisation cap of that capacity, in (0, 1]
	Hysteresis  float64 // fraction below the activation rate at which a server is popped again
}

// DefaultAvardoConfig is the paper's setup (docs/PLANNING.md).
func DefaultAvardoConfig() AvardoConfig {
	return AvardoConfig{Blocks: 300000, Videos: 3000, Zipf: 0.8, Seed: 1, Slots: 6000, Servers: 100,
		BlockMB: 100, StreamGbps: 25, Utilisation: 0.9, Hysteresis: 0.1}
}

// AvardoWorkload describes the catalogue an AvardoReport measured. The JSON
// keys are in alphabetical order, as the report has always printed them.
type AvardoWorkload struct {
	BlockMB float64  `json:"block_mb"`
	Blocks  int      `json:"blocks"`
	Seed    *uint64  `json:"seed,omitempty"` // synthetic catalogues only
	Servers int      `json:"servers"`
	Slots   int      `json:"slots"`
	Trace   string   `json:"trace,omitempty"`  // trace catalogues only: the file read
	Videos  *int     `json:"videos,omitempty"` // synthetic catalogues only
	Zipf    *float64 `json:"zipf,omitempty"`   // synthetic catalogues only
}

// AvardoReport is the outcome of RunAvardo: each scheme's capacity at every
// stack depth from MinServers to Servers, and AVARDO's thresholds.
type AvardoReport struct {
	Workload   AvardoWorkload `json:"workload"`
	MinServers int            `json:"min_servers"`
	// PerServer is the request rate one server sustains (requests/s).
	PerServer float64 `json:"per_server_rate"`
	// Schemes are avardo, uniform and hierarchical, in that order.
	Schemes        []AvardoScheme   `json:"schemes"`
	Thresholds     []plan.Threshold `json:"thresholds"`
	RuntimeSeconds float64          `json:"runtime_seconds"` // wall clock of RunAvardo
}

// AvardoScheme is one allocation's capacity per level, measured with the
// optimal (max-flow) dispatch.
type AvardoScheme struct {
	Scheme string       `json:"scheme"`
	Levels []plan.Level `json:"levels"`
	// DispatchCapacity is AVARDO's capacity with its closed-form dispatch
	// instead of the optimal (max-flow) dispatch, per level; AVARDO only.
	DispatchCapacity []float64 `json:"dispatch_capacity,omitempty"`
}

func (cfg AvardoConfig) check() error {
	switch {
	case cfg.TracePath == "" && cfg.Blocks < 0:
		return &ConfigError{"Blocks", cfg.Blocks, "≥ 0"}
	case cfg.TracePath == "" && cfg.Videos < 0:
		return &ConfigError{"Videos", cfg.Videos, "≥ 0"}
	case cfg.Slots < 0:
		return &ConfigError{"Slots", cfg.Slots, "≥ 0"}
	case cfg.Servers < 0:
		return &ConfigError{"Servers", cfg.Servers, "≥ 0"}
	case cfg.TracePath == "" && cfg.Blocks == 0:
		return plan.ErrNoBlocks
	}
	return nil
}

func (cfg AvardoConfig) checkRates() error {
	switch {
	case !(cfg.StreamGbps > 0):
		return &ConfigError{"StreamGbps", cfg.StreamGbps, "> 0"}
	case !(cfg.Utilisation > 0 && cfg.Utilisation <= 1):
		return &ConfigError{"Utilisation", cfg.Utilisation, "in (0, 1]"}
	case !(cfg.BlockMB > 0):
		return &ConfigError{"BlockMB", cfg.BlockMB, "> 0"}
	}
	return nil
}

// catalogue builds the workload the config names.
func (cfg AvardoConfig) catalogue() (*plan.Catalogue, AvardoWorkload, error) {
	w := AvardoWorkload{Slots: cfg.Slots, Servers: cfg.Servers, BlockMB: cfg.BlockMB}
	if cfg.TracePath != "" {
		f, err := os.Open(cfg.TracePath)
		if err != nil {
			return nil, w, fmt.Errorf("plan avardo: open trace: %w", err)
		}
		rows, err := plan.ParseTrace(f)
		f.Close()
		if err != nil {
			return nil, w, err
		}
		cat, err := plan.TraceCatalogue(rows, cfg.BlockMB)
		if err != nil {
			return nil, w, err
		}
		w.Trace, w.Blocks = cfg.TracePath, cat.Blocks()
		return cat, w, nil
	}
	videos, zipf, seed := min(cfg.Videos, cfg.Blocks), cfg.Zipf, cfg.Seed
	cat, err := plan.SyntheticCatalogue(plan.CatalogueSpec{Blocks: cfg.Blocks, Videos: videos, Zipf: zipf, Seed: seed})
	if err != nil {
		return nil, w, err
	}
	w.Videos, w.Zipf, w.Seed, w.Blocks = &videos, &zipf, &seed, cat.Blocks()
	return cat, w, nil
}

// RunAvardo builds AVARDO's allocation and the two baselines' for the
// config's catalogue and measures each at every stack depth.
func RunAvardo(cfg AvardoConfig) (*AvardoReport, error) {
	start := time.Now()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cat, workload, err := cfg.catalogue()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkRates(); err != nil {
		return nil, err
	}
	// A request streams one block, so a server sustains
	// utilisation × link rate / block size requests per second.
	perServer := cfg.Utilisation * cfg.StreamGbps * 1e9 / (cfg.BlockMB * 8e6)

	av, err := plan.NewAvardo(cat.Popularity, cfg.Servers, cfg.Slots)
	if err != nil {
		return nil, err
	}
	n0 := av.MinServers()
	rep := &AvardoReport{Workload: workload, MinServers: n0, PerServer: perServer}
	allocs := []struct {
		name  string
		build func() (*plan.Allocation, error)
	}{
		{"avardo", func() (*plan.Allocation, error) { return av.Allocation(), nil }},
		{"uniform", func() (*plan.Allocation, error) {
			return plan.UniformAllocation(cat.Popularity, cfg.Servers, cfg.Slots)
		}},
		{"hierarchical", func() (*plan.Allocation, error) {
			return plan.HierarchicalAllocation(cat.Popularity, cfg.Servers, cfg.Slots)
		}},
	}
	for _, a := range allocs {
		alloc, err := a.build()
		if err != nil {
			return nil, err
		}
		lv, err := plan.Capacities(cat.Popularity, alloc, n0, cfg.Servers, perServer)
		if err != nil {
			return nil, err
		}
		s := AvardoScheme{Scheme: a.name, Levels: lv}
		if a.name == "avardo" {
			for n := n0; n <= cfg.Servers; n++ {
				c, err := av.DispatchCapacity(n, perServer)
				if err != nil {
					return nil, err
				}
				s.DispatchCapacity = append(s.DispatchCapacity, c)
			}
		}
		rep.Schemes = append(rep.Schemes, s)
	}
	if rep.Thresholds, err = av.Thresholds(perServer, cfg.Hysteresis); err != nil {
		return nil, err
	}
	rep.RuntimeSeconds = time.Since(start).Seconds()
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *AvardoReport) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

// WriteTable writes one row per stack depth (capacity, each scheme's gap to
// the fluid bound, the rate above which the next server is pushed) and each
// scheme's worst gap.
func (r *AvardoReport) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "AVARDO: %d blocks, %d slots/server, %d servers, n0 = %d, %.3f req/s per server\n\n",
		r.Workload.Blocks, r.Workload.Slots, r.Workload.Servers, r.MinServers, r.PerServer)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "servers\tupper bound\tavardo\tgap\tclosed-form gap\tuniform gap\thierarchical gap\tpush next above\t")
	av, un, hi := r.Schemes[0], r.Schemes[1], r.Schemes[2]
	for i, l := range av.Levels {
		cf := 1 - av.DispatchCapacity[i]/l.UpperBound
		next := "-"
		if l.Servers < len(r.Thresholds) {
			next = fmt.Sprintf("%.1f", r.Thresholds[l.Servers].Activate)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.4f%%\t%.4f%%\t%.3f%%\t%.3f%%\t%s\t\n", l.Servers, l.UpperBound, l.Capacity,
			100*l.Gap, 100*cf, 100*un.Levels[i].Gap, 100*hi.Levels[i].Gap, next)
	}
	tw.Flush()
	for _, s := range r.Schemes {
		fmt.Fprintf(ew, "%-13s worst gap %.4f%%\n", s.Scheme, 100*s.WorstGap())
	}
	fmt.Fprintf(ew, "runtime %.2fs\n", r.RuntimeSeconds)
	return ew.err
}

// WorstGap is the scheme's largest gap to the fluid bound over all levels.
func (s AvardoScheme) WorstGap() float64 {
	worst := 0.0
	for _, l := range s.Levels {
		worst = math.Max(worst, l.Gap)
	}
	return worst
}

// serversNeeded returns, for a request rate, the fewest servers whose
// capacity covers it, or NaN if no level does.
func serversNeeded(levels []plan.Level, rate float64) float64 {
	for _, l := range levels {
		if l.Capacity >= rate {
			return float64(l.Servers)
		}
	}
	return math.NaN()
}

// writeJSON is the one JSON layout of every report: two-space indent, one
// trailing newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errWriter keeps the first write error so a table's many Fprintf calls
// need one check.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
