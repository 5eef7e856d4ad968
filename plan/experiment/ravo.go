package experiment

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/plan/lp"
)

// RavoConfig is one RAVO experiment: an instance, the cluster counts to run
// RAVO with, and the references to compare it against.
type RavoConfig struct {
	Spec     plan.RavoSpec
	Clusters []int // RAVO runs once per entry, each ≥ 1
	Draws    int   // independent roundings per video; the cheapest is kept
	// Exact also computes the optimum by enumeration; it is skipped above
	// MaxExactRegions regions (2^regions copy sets per video).
	Exact    bool
	Solver   lp.Solver // nil: lp.Auto
	Progress io.Writer // the LP bound's progress line is redrawn here; nil: silent
}

// MaxExactRegions is the largest instance RunRavo enumerates exactly.
const MaxExactRegions = 14

// DefaultRavoConfig is the setup of docs/PLANNING.md.
func DefaultRavoConfig() RavoConfig {
	return RavoConfig{Spec: plan.DefaultRavoSpec(), Clusters: []int{1, 4, 10, 20, 50, 100, 200}, Draws: 8, Exact: true}
}

// RavoReport is the outcome of RunRavo: the LP lower bound and one row per
// scheme (baselines, the exact optimum, then RAVO per cluster count).
type RavoReport struct {
	Spec           plan.RavoSpec `json:"spec"`
	LPBound        float64       `json:"lp_bound"`
	LPSeconds      float64       `json:"lp_seconds"`
	Schemes        []RavoRow     `json:"schemes"`
	RuntimeSeconds float64       `json:"runtime_seconds"`
}

// RavoRow is one scheme's plan cost.
type RavoRow struct {
	Scheme         string        `json:"scheme"`
	Clusters       int           `json:"clusters,omitempty"` // RAVO only
	Cost           plan.RavoCost `json:"cost"`
	Ratio          float64       `json:"ratio_to_lp"`
	RuntimeSeconds float64       `json:"runtime_seconds"`
}

// RunRavo solves the LP bound, runs the baselines (and the exact optimum if
// asked), then RAVO once per cluster count.
func RunRavo(cfg RavoConfig) (*RavoReport, error) {
	start := time.Now()
	for _, g := range cfg.Clusters {
		if g < 1 {
			return nil, &ConfigError{"Clusters", g, "≥ 1"}
		}
	}
	solver := cfg.Solver
	if solver == nil {
		solver = lp.Auto{}
	}
	in, err := plan.NewRavoInstance(cfg.Spec)
	if err != nil {
		return nil, err
	}
	rep := &RavoReport{Spec: cfg.Spec}
	t0 := time.Now()
	if rep.LPBound, err = in.LPBoundProgress(solver, 1000, progress(cfg.Progress, "ravo: LP bound, videos")); err != nil {
		return nil, err
	}
	rep.LPSeconds = time.Since(t0).Seconds()
	add := func(p *plan.RavoPlan, clusters int, secs float64) {
		rep.Schemes = append(rep.Schemes, RavoRow{Scheme: p.Scheme, Clusters: clusters, Cost: p.Cost,
			Ratio: p.Cost.Total / rep.LPBound, RuntimeSeconds: secs})
	}
	for _, baseline := range []func(*plan.RavoInstance) (*plan.RavoPlan, error){plan.LocalGreedy, plan.GreedyAdd} {
		t := time.Now()
		p, err := baseline(in)
		if err != nil {
			return nil, err
		}
		add(p, 0, time.Since(t).Seconds())
	}
	if cfg.Exact && cfg.Spec.Regions <= MaxExactRegions {
		t := time.Now()
		p, err := plan.ExactRavo(in)
		if err != nil {
			return nil, err
		}
		add(p, 0, time.Since(t).Seconds())
	}
	for _, g := range cfg.Clusters {
		t := time.Now()
		r, err := plan.Ravo(in, plan.RavoOptions{Clusters: g, Draws: cfg.Draws, Seed: cfg.Spec.Seed, Solver: solver})
		if err != nil {
			return nil, err
		}
		add(r.Plan, g, time.Since(t).Seconds())
	}
	rep.RuntimeSeconds = time.Since(start).Seconds()
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *RavoReport) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

// WriteTable writes one row per scheme: cost by kind, total, ratio to the LP
// bound and runtime.
func (r *RavoReport) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	s := r.Spec
	fmt.Fprintf(ew, "RAVO: %d regions, %d videos, Zipf %.2f, delay bound %.0f ms; LP lower bound %.2f (%.1fs)\n\n",
		s.Regions, s.Videos, s.Zipf, s.DelayBound, r.LPBound, r.LPSeconds)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scheme\tclusters\tstorage\tlink\tprocessing\ttotal\t× LP\truntime (s)\t")
	for _, row := range r.Schemes {
		g := "-"
		if row.Clusters > 0 {
			g = strconv.Itoa(row.Clusters)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f\t%.3f\t\n", row.Scheme, g, row.Cost.Storage, row.Cost.Link,
			row.Cost.Processing, row.Cost.Total, row.Ratio, row.RuntimeSeconds)
	}
	tw.Flush()
	fmt.Fprintf(ew, "runtime %.2fs\n", r.RuntimeSeconds)
	return ew.err
}
