package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/swarmcast/swarmcast/plan"
)

func init() { subcommands = append(subcommands, newPlanCommand) }

func newPlanCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Plan content placement and server use: AVARDO, RAVO, COCOS against their baselines",
		Long: "plan runs the planning algorithms on a synthetic workload (or a CSV trace), measures them\n" +
			"against their baselines and bounds, prints tables, and with --plot writes PNG figures.\n" +
			"See docs/PLANNING.md for what each algorithm does and how the numbers were measured.",
	}
	cmd.AddCommand(newPlanAvardoCommand(), newPlanRavoCommand(), newPlanCocosCommand())
	return cmd
}

// avardoReport is the JSON written by `plan avardo --json`.
type avardoReport struct {
	Workload       map[string]any `json:"workload"`
	MinServers     int            `json:"min_servers"`
	PerServer      float64        `json:"per_server_rate"`
	Schemes        []schemeReport `json:"schemes"`
	Thresholds     []plan.Threshold
	RuntimeSeconds float64 `json:"runtime_seconds"`
}

type schemeReport struct {
	Scheme string       `json:"scheme"`
	Levels []plan.Level `json:"levels"`
	// DispatchCapacity is AVARDO's capacity with its closed-form dispatch
	// instead of the optimal (max-flow) dispatch, per level.
	DispatchCapacity []float64 `json:"dispatch_capacity,omitempty"`
}

func newPlanAvardoCommand() *cobra.Command {
	var (
		blocks, videos, slots, servers int
		zipf, blockMB, gbps, util, hys float64
		seed                           uint64
		trace, plotDir                 string
		asJSON                         bool
	)
	cmd := &cobra.Command{
		Use:   "avardo",
		Short: "Block allocation, stack thresholds and dispatch for one auto-scaling data centre",
		Example: "  swarmcast plan avardo --blocks 300000 --slots 6000 --servers 100 --zipf 1.0 --seed 1\n" +
			"  swarmcast plan avardo --trace requests.csv --block-mb 100 --slots 6000 --servers 100 --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			var cat *plan.Catalogue
			var err error
			workload := map[string]any{"slots": slots, "servers": servers, "block_mb": blockMB}
			if trace != "" {
				f, err := os.Open(trace)
				if err != nil {
					return fmt.Errorf("plan avardo: open trace: %w", err)
				}
				rows, err := plan.ParseTrace(f)
				f.Close()
				if err != nil {
					return err
				}
				if cat, err = plan.TraceCatalogue(rows, blockMB); err != nil {
					return err
				}
				workload["trace"] = trace
			} else {
				if blocks < 0 || videos < 0 || slots < 0 || servers < 0 {
					return fmt.Errorf("plan avardo: sizes must be ≥ 0 (blocks %d, videos %d, slots %d, servers %d)", blocks, videos, slots, servers)
				}
				if blocks == 0 {
					return plan.ErrNoBlocks
				}
				v := min(videos, blocks)
				if cat, err = plan.SyntheticCatalogue(plan.CatalogueSpec{Blocks: blocks, Videos: v, Zipf: zipf, Seed: seed}); err != nil {
					return err
				}
				workload["videos"], workload["zipf"], workload["seed"] = v, zipf, seed
			}
			workload["blocks"] = cat.Blocks()
			if !(gbps > 0) || !(util > 0 && util <= 1) || !(blockMB > 0) {
				return fmt.Errorf("plan avardo: need --stream-gbps > 0, 0 < --utilisation ≤ 1, --block-mb > 0")
			}
			// A request streams one block, so a server sustains
			// utilisation × link rate / block size requests per second.
			perServer := util * gbps * 1e9 / (blockMB * 8e6)

			av, err := plan.NewAvardo(cat.Popularity, servers, slots)
			if err != nil {
				return err
			}
			n0 := av.MinServers()
			rep := avardoReport{Workload: workload, MinServers: n0, PerServer: perServer}
			allocs := []struct {
				name  string
				build func() (*plan.Allocation, error)
			}{
				{"avardo", func() (*plan.Allocation, error) { return av.Allocation(), nil }},
				{"uniform", func() (*plan.Allocation, error) { return plan.UniformAllocation(cat.Popularity, servers, slots) }},
				{"hierarchical", func() (*plan.Allocation, error) { return plan.HierarchicalAllocation(cat.Popularity, servers, slots) }},
			}
			for _, a := range allocs {
				alloc, err := a.build()
				if err != nil {
					return err
				}
				lv, err := plan.Capacities(cat.Popularity, alloc, n0, servers, perServer)
				if err != nil {
					return err
				}
				sr := schemeReport{Scheme: a.name, Levels: lv}
				if a.name == "avardo" {
					for n := n0; n <= servers; n++ {
						c, err := av.DispatchCapacity(n, perServer)
						if err != nil {
							return err
						}
						sr.DispatchCapacity = append(sr.DispatchCapacity, c)
					}
				}
				rep.Schemes = append(rep.Schemes, sr)
			}
			if rep.Thresholds, err = av.Thresholds(perServer, hys); err != nil {
				return err
			}
			rep.RuntimeSeconds = time.Since(start).Seconds()
			if plotDir != "" {
				if err := plotAvardo(plotDir, &rep); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printAvardo(cmd.OutOrStdout(), &rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&blocks, "blocks", 300000, "number of video blocks in the catalogue")
	f.IntVar(&videos, "videos", 3000, "number of videos the blocks belong to (Zipf is over videos)")
	f.IntVar(&slots, "slots", 6000, "block slots per server")
	f.IntVar(&servers, "servers", 100, "servers in the data centre")
	f.Float64Var(&zipf, "zipf", 0.8, "Zipf exponent of video popularity")
	f.Uint64Var(&seed, "seed", 1, "seed for video lengths and popularity ranks")
	f.StringVar(&trace, "trace", "", "CSV trace with columns video,requests,size_mb (replaces the synthetic catalogue)")
	f.Float64Var(&blockMB, "block-mb", 100, "block size in MB")
	f.Float64Var(&gbps, "stream-gbps", 25, "streaming capacity of one server in Gb/s")
	f.Float64Var(&util, "utilisation", 0.9, "utilisation cap of a server's streaming capacity")
	f.Float64Var(&hys, "hysteresis", 0.1, "fraction below the activation rate at which a server is popped again")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

func printAvardo(w io.Writer, rep *avardoReport) {
	fmt.Fprintf(w, "AVARDO: %v blocks, %v slots/server, %v servers, n0 = %d, %.3f req/s per server\n\n",
		rep.Workload["blocks"], rep.Workload["slots"], rep.Workload["servers"], rep.MinServers, rep.PerServer)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "servers\tupper bound\tavardo\tgap\tclosed-form gap\tuniform gap\thierarchical gap\tactivate at\t")
	av, un, hi := rep.Schemes[0], rep.Schemes[1], rep.Schemes[2]
	for i, l := range av.Levels {
		cf := 1 - av.DispatchCapacity[i]/l.UpperBound
		act := 0.0
		if l.Servers < len(rep.Thresholds) {
			act = rep.Thresholds[l.Servers].Activate
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.4f%%\t%.4f%%\t%.3f%%\t%.3f%%\t%.1f\t\n", l.Servers, l.UpperBound, l.Capacity,
			100*l.Gap, 100*cf, 100*un.Levels[i].Gap, 100*hi.Levels[i].Gap, act)
	}
	tw.Flush()
	for _, s := range rep.Schemes {
		worst := 0.0
		for _, l := range s.Levels {
			worst = math.Max(worst, l.Gap)
		}
		fmt.Fprintf(w, "%-13s worst gap %.4f%%\n", s.Scheme, 100*worst)
	}
	fmt.Fprintf(w, "runtime %.2fs\n", rep.RuntimeSeconds)
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

func plotAvardo(dir string, rep *avardoReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan: create plot directory: %w", err)
	}
	// Figure 1: capacity against active servers.
	p := plot.New()
	p.Title.Text = "AVARDO: user capacity per auto-scaling level"
	p.X.Label.Text = "active servers"
	p.Y.Label.Text = "capacity (requests/s)"
	var lines []any
	bound := plotter.XYs{}
	for _, l := range rep.Schemes[0].Levels {
		bound = append(bound, plotter.XY{X: float64(l.Servers), Y: l.UpperBound})
	}
	lines = append(lines, "fluid upper bound", bound)
	for _, s := range rep.Schemes {
		xy := plotter.XYs{}
		for _, l := range s.Levels {
			xy = append(xy, plotter.XY{X: float64(l.Servers), Y: l.Capacity})
		}
		lines = append(lines, s.Scheme, xy)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, "avardo-capacity.png")); err != nil {
		return err
	}
	// Figure 2: active servers against request rate (the paper's figure).
	p = plot.New()
	p.Title.Text = "AVARDO: active servers against request rate"
	p.X.Label.Text = "request rate λ (requests/s)"
	p.Y.Label.Text = "active servers"
	top := rep.Schemes[0].Levels[len(rep.Schemes[0].Levels)-1].UpperBound
	lines = lines[:0]
	opt := plotter.XYs{}
	for r := 0.0; r <= top; r += top / 200 {
		opt = append(opt, plotter.XY{X: r, Y: math.Max(float64(rep.MinServers), math.Ceil(r/rep.PerServer))})
	}
	lines = append(lines, "super optimum", opt)
	for _, s := range rep.Schemes {
		xy := plotter.XYs{}
		for r := 0.0; r <= top; r += top / 200 {
			if n := serversNeeded(s.Levels, r); !math.IsNaN(n) {
				xy = append(xy, plotter.XY{X: r, Y: n})
			}
		}
		lines = append(lines, s.Scheme, xy)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, "avardo-servers.png")); err != nil {
		return err
	}
	// Figure 3: optimality gap per level.
	p = plot.New()
	p.Title.Text = "Optimality gap to the fluid bound"
	p.X.Label.Text = "active servers"
	p.Y.Label.Text = "gap (%)"
	lines = lines[:0]
	for _, s := range rep.Schemes {
		xy := plotter.XYs{}
		for _, l := range s.Levels {
			xy = append(xy, plotter.XY{X: float64(l.Servers), Y: 100 * l.Gap})
		}
		lines = append(lines, s.Scheme, xy)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	p.Legend.Top = true
	return p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, "avardo-gap.png"))
}

func newPlanRavoCommand() *cobra.Command {
	return &cobra.Command{Use: "ravo", Short: "Video placement and resources for a geo-distributed VoD cloud",
		RunE: func(*cobra.Command, []string) error { return fmt.Errorf("plan ravo: not built yet") }}
}

func newPlanCocosCommand() *cobra.Command {
	return &cobra.Command{Use: "cocos", Short: "Minimum-cost live overlay trees under an origin-to-end delay bound",
		RunE: func(*cobra.Command, []string) error { return fmt.Errorf("plan cocos: not built yet") }}
}
