package experiment

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/plan/lp"
)

// CocosConfig is one COCOS experiment, optionally swept over delay bounds
// and channel counts (every pair is run).
type CocosConfig struct {
	Spec       plan.CocosSpec
	Substreams int // k: candidate trees cut from the LP
	Candidates int // cheapest delay-feasible in-edges per server kept in the LP (0 = all)
	// DelayBounds (ms) to sweep; empty: Spec.DelayBound, truncated to whole
	// ms as the command always has.
	DelayBounds []int
	// Channels counts to sweep; empty: Spec.Channels.
	Channels []int
	Solver   lp.Solver // nil: lp.Auto
	Progress io.Writer // a progress line per sweep point is redrawn here; nil: silent
}

// DefaultCocosConfig is the paper's setup: 100 servers, 60 channels, 800 ms,
// k = 10.
func DefaultCocosConfig() CocosConfig {
	return CocosConfig{Spec: plan.PaperCocosSpec(), Substreams: 10, Candidates: 8}
}

// CocosReport is the outcome of RunCocos: for every sweep point, COCOS
// then Nearest Peer then Prim, three rows each.
type CocosReport struct {
	Spec           plan.CocosSpec `json:"spec"`
	Substreams     int            `json:"substreams"`
	Runs           []CocosRow     `json:"runs"`
	RuntimeSeconds float64        `json:"runtime_seconds"`

	// sweptDelays and sweptChannels say which axis WritePNG draws.
	sweptDelays, sweptChannels bool
}

// CocosRow is one scheme's trees at one sweep point. LPBound is COCOS's LP
// at that point, repeated on the baselines' rows for their ratio.
type CocosRow struct {
	Scheme     string  `json:"scheme"`
	DelayBound float64 `json:"delay_bound_ms"`
	Channels   int     `json:"channels"`
	Cost       float64 `json:"cost"` // per second
	LPBound    float64 `json:"lp_bound,omitempty"`
	Violations int     `json:"delay_violations"`
	MaxDelay   float64 `json:"max_delay_ms"`
	Seconds    float64 `json:"runtime_seconds"`
}

// RunCocos runs COCOS and its two baselines at every (delay bound, channel
// count) pair.
func RunCocos(cfg CocosConfig) (*CocosReport, error) {
	start := time.Now()
	solver := cfg.Solver
	if solver == nil {
		solver = lp.Auto{}
	}
	delays := cfg.DelayBounds
	if len(delays) == 0 {
		delays = []int{int(cfg.Spec.DelayBound)}
	}
	channels := cfg.Channels
	if len(channels) == 0 {
		channels = []int{cfg.Spec.Channels}
	}
	for _, d := range delays {
		if d < 1 {
			return nil, &ConfigError{"DelayBounds", d, "≥ 1 ms"}
		}
	}
	for _, c := range channels {
		if c < 1 {
			return nil, &ConfigError{"Channels", c, "≥ 1"}
		}
	}
	rep := &CocosReport{Spec: cfg.Spec, Substreams: cfg.Substreams,
		sweptDelays: len(delays) > 1, sweptChannels: len(channels) > 1}
	for _, d := range delays {
		for _, c := range channels {
			s := cfg.Spec
			s.DelayBound, s.Channels = float64(d), c
			in, err := plan.NewCocosInstance(s)
			if err != nil {
				return nil, err
			}
			t := time.Now()
			co, err := plan.Cocos(in, plan.CocosOptions{Substreams: cfg.Substreams, Candidates: cfg.Candidates, Solver: solver,
				Progress: progress(cfg.Progress, fmt.Sprintf("cocos: Δ = %d ms, channels", d))})
			if err != nil {
				return nil, err
			}
			type timed struct {
				r    *plan.CocosResult
				secs float64
			}
			rows := []timed{{co, time.Since(t).Seconds()}}
			for _, baseline := range []func(*plan.CocosInstance) *plan.CocosResult{plan.NearestPeer, plan.DelayBoundedPrim} {
				t = time.Now()
				r := baseline(in)
				rows = append(rows, timed{r, time.Since(t).Seconds()})
			}
			for _, x := range rows {
				rep.Runs = append(rep.Runs, CocosRow{Scheme: x.r.Scheme, DelayBound: float64(d), Channels: c, Cost: x.r.Cost,
					LPBound: co.LPBound, Violations: x.r.Violations, MaxDelay: x.r.MaxDelay, Seconds: x.secs})
			}
		}
	}
	rep.RuntimeSeconds = time.Since(start).Seconds()
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *CocosReport) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

// WriteTable writes one row per scheme and sweep point: cost, ratio to the
// LP, COCOS's saving against the scheme, delay violations and runtime.
func (r *CocosReport) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	s := r.Spec
	fmt.Fprintf(ew, "COCOS: %d servers, rates N(%.1f, %.1f) Mb/s, prices N(%.2f, %.2f)/Mbit, Zipf %.1f, k = %d\n\n",
		s.Servers, s.RateMean, s.RateStd, s.PriceMean, s.PriceStd, s.Zipf, r.Substreams)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "delay bound\tchannels\tscheme\tcost/s\t× LP\tvs this scheme, COCOS saves\tviolations\tmax delay (ms)\truntime (s)\t")
	// Runs come in threes per sweep point, COCOS first (see CocosReport).
	for i := 0; i+3 <= len(r.Runs); i += 3 {
		co := r.Runs[i]
		for _, row := range r.Runs[i : i+3] {
			fmt.Fprintf(tw, "%.0f\t%d\t%s\t%.3f\t%.3f\t%.1f%%\t%d\t%.0f\t%.2f\t\n", row.DelayBound, row.Channels, row.Scheme, row.Cost,
				row.Cost/row.LPBound, 100*(1-co.Cost/row.Cost), row.Violations, row.MaxDelay, row.Seconds)
		}
	}
	tw.Flush()
	fmt.Fprintf(ew, "runtime %.2fs\n", r.RuntimeSeconds)
	return ew.err
}
