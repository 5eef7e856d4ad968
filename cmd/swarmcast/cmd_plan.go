package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/plan/lp"
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
	Workload       map[string]any   `json:"workload"`
	MinServers     int              `json:"min_servers"`
	PerServer      float64          `json:"per_server_rate"`
	Schemes        []schemeReport   `json:"schemes"`
	Thresholds     []plan.Threshold `json:"thresholds"`
	RuntimeSeconds float64          `json:"runtime_seconds"`
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
	fmt.Fprintln(tw, "servers\tupper bound\tavardo\tgap\tclosed-form gap\tuniform gap\thierarchical gap\tpush next above\t")
	av, un, hi := rep.Schemes[0], rep.Schemes[1], rep.Schemes[2]
	for i, l := range av.Levels {
		cf := 1 - av.DispatchCapacity[i]/l.UpperBound
		act := "-"
		if l.Servers < len(rep.Thresholds) {
			act = fmt.Sprintf("%.1f", rep.Thresholds[l.Servers].Activate)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.4f%%\t%.4f%%\t%.3f%%\t%.3f%%\t%s\t\n", l.Servers, l.UpperBound, l.Capacity,
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

// planServersNeeded returns, for a request rate, the fewest servers whose
// capacity covers it, or NaN if no level does.
func planServersNeeded(levels []plan.Level, rate float64) float64 {
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
	capacity := figure{title: "AVARDO: user capacity per auto-scaling level", x: "active servers", y: "capacity (requests/s)", legendLeft: true}
	if err := capacity.save(dir, "avardo-capacity.png", lines...); err != nil {
		return err
	}
	// Figure 2: active servers against request rate (the paper's figure).
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
			if n := planServersNeeded(s.Levels, r); !math.IsNaN(n) {
				xy = append(xy, plotter.XY{X: r, Y: n})
			}
		}
		lines = append(lines, s.Scheme, xy)
	}
	servers := figure{title: "AVARDO: active servers against request rate", x: "request rate λ (requests/s)", y: "active servers", legendLeft: true, noPoints: true}
	if err := servers.save(dir, "avardo-servers.png", lines...); err != nil {
		return err
	}
	// Figure 3: optimality gap per level.
	lines = lines[:0]
	for _, s := range rep.Schemes {
		xy := plotter.XYs{}
		for _, l := range s.Levels {
			xy = append(xy, plotter.XY{X: float64(l.Servers), Y: 100 * l.Gap})
		}
		lines = append(lines, s.Scheme, xy)
	}
	gap := figure{title: "Optimality gap to the fluid bound", x: "active servers", y: "gap (%)"}
	return gap.save(dir, "avardo-gap.png", lines...)
}

// planProgress returns a callback that redraws "label done/total" on stderr and
// ends the line when done reaches total.
func planProgress(cmd *cobra.Command, label string) func(done, total int) {
	w := cmd.ErrOrStderr()
	return func(done, total int) {
		fmt.Fprintf(w, "\r%s %d/%d", label, done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

func planSolver(name string) (lp.Solver, error) {
	switch name {
	case "auto":
		return lp.Auto{}, nil
	case "gonum":
		return lp.Simplex{}, nil
	case "coin":
		if !lp.CoinAvailable() {
			return nil, lp.ErrNoCoin
		}
		return lp.Coin{}, nil
	}
	return nil, fmt.Errorf("plan: unknown --solver %q; use auto, gonum or coin", name)
}

func planParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("plan: %q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

type ravoRow struct {
	Scheme         string        `json:"scheme"`
	Clusters       int           `json:"clusters,omitempty"`
	Cost           plan.RavoCost `json:"cost"`
	Ratio          float64       `json:"ratio_to_lp"`
	RuntimeSeconds float64       `json:"runtime_seconds"`
}

type ravoReport struct {
	Spec           plan.RavoSpec `json:"spec"`
	LPBound        float64       `json:"lp_bound"`
	LPSeconds      float64       `json:"lp_seconds"`
	Schemes        []ravoRow     `json:"schemes"`
	RuntimeSeconds float64       `json:"runtime_seconds"`
}

func newPlanRavoCommand() *cobra.Command {
	spec := plan.DefaultRavoSpec()
	var (
		clusters, solverName, plotDir string
		draws                         int
		exact, asJSON                 bool
	)
	cmd := &cobra.Command{
		Use:     "ravo",
		Short:   "Video placement, retrieval and resources for a geo-distributed VoD cloud",
		Example: "  swarmcast plan ravo --regions 10 --videos 10000 --clusters 1,4,10,20,50,100,200 --plot docs/plan",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			gs, err := planParseInts(clusters)
			if err != nil {
				return err
			}
			solver, err := planSolver(solverName)
			if err != nil {
				return err
			}
			in, err := plan.NewRavoInstance(spec)
			if err != nil {
				return err
			}
			rep := ravoReport{Spec: spec}
			t0 := time.Now()
			if rep.LPBound, err = in.LPBoundProgress(solver, 1000, planProgress(cmd, "ravo: LP bound, videos")); err != nil {
				return err
			}
			rep.LPSeconds = time.Since(t0).Seconds()
			add := func(p *plan.RavoPlan, g int, secs float64) {
				rep.Schemes = append(rep.Schemes, ravoRow{Scheme: p.Scheme, Clusters: g, Cost: p.Cost, Ratio: p.Cost.Total / rep.LPBound, RuntimeSeconds: secs})
			}
			for _, base := range []func(*plan.RavoInstance) (*plan.RavoPlan, error){plan.LocalGreedy, plan.GreedyAdd} {
				t := time.Now()
				p, err := base(in)
				if err != nil {
					return err
				}
				add(p, 0, time.Since(t).Seconds())
			}
			if exact && spec.Regions <= 14 {
				t := time.Now()
				p, err := plan.ExactRavo(in)
				if err != nil {
					return err
				}
				add(p, 0, time.Since(t).Seconds())
			}
			for _, g := range gs {
				t := time.Now()
				r, err := plan.Ravo(in, plan.RavoOptions{Clusters: g, Draws: draws, Seed: spec.Seed, Solver: solver})
				if err != nil {
					return err
				}
				add(r.Plan, g, time.Since(t).Seconds())
			}
			rep.RuntimeSeconds = time.Since(start).Seconds()
			if plotDir != "" {
				if err := plotRavo(plotDir, &rep); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "RAVO: %d regions, %d videos, Zipf %.2f, delay bound %.0f ms; LP lower bound %.2f (%.1fs)\n\n",
				spec.Regions, spec.Videos, spec.Zipf, spec.DelayBound, rep.LPBound, rep.LPSeconds)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "scheme\tclusters\tstorage\tlink\tprocessing\ttotal\t× LP\truntime (s)\t")
			for _, r := range rep.Schemes {
				g := "-"
				if r.Clusters > 0 {
					g = strconv.Itoa(r.Clusters)
				}
				fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f\t%.3f\t\n", r.Scheme, g, r.Cost.Storage, r.Cost.Link, r.Cost.Processing, r.Cost.Total, r.Ratio, r.RuntimeSeconds)
			}
			tw.Flush()
			fmt.Fprintf(w, "runtime %.2fs\n", rep.RuntimeSeconds)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&spec.Regions, "regions", spec.Regions, "regional proxy servers")
	f.IntVar(&spec.Videos, "videos", spec.Videos, "videos in the catalogue")
	f.Float64Var(&spec.Zipf, "zipf", spec.Zipf, "Zipf exponent of regional video popularity")
	f.Float64Var(&spec.Hetero, "hetero", spec.Hetero, "geographic heterogeneity: spread of regional ranks around the global rank")
	f.Float64Var(&spec.Streams, "streams", spec.Streams, "mean concurrent streams per region")
	f.Float64Var(&spec.DelayBound, "delay-ms", spec.DelayBound, "maximum delay of a request (ms)")
	f.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed for the instance, clustering and rounding")
	f.StringVar(&clusters, "clusters", "1,4,10,20,50,100,200", "comma-separated numbers of video clusters to run RAVO with")
	f.IntVar(&draws, "draws", 8, "independent roundings per video; the cheapest is kept")
	f.BoolVar(&exact, "exact", true, "also compute the exact optimum by enumeration (≤ 14 regions)")
	f.StringVar(&solverName, "solver", "auto", "LP solver: auto, gonum or coin")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

func plotRavo(dir string, rep *ravoReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan: create plot directory: %w", err)
	}
	cost, secs := plotter.XYs{}, plotter.XYs{}
	var lines []any
	for _, r := range rep.Schemes {
		if r.Scheme == "ravo" {
			cost = append(cost, plotter.XY{X: float64(r.Clusters), Y: r.Cost.Total})
			secs = append(secs, plotter.XY{X: float64(r.Clusters), Y: r.RuntimeSeconds})
		}
	}
	if len(cost) == 0 {
		return nil
	}
	flat := func(y float64) plotter.XYs {
		return plotter.XYs{{X: cost[0].X, Y: y}, {X: cost[len(cost)-1].X, Y: y}}
	}
	lines = append(lines, "RAVO", cost, "LP lower bound", flat(rep.LPBound))
	for _, r := range rep.Schemes {
		if r.Scheme != "ravo" {
			lines = append(lines, r.Scheme, flat(r.Cost.Total))
		}
	}
	costFig := figure{title: "RAVO: deployment cost against number of video clusters", x: "clusters", y: "cost per period", logX: true}
	if err := costFig.save(dir, "ravo-cost.png", lines...); err != nil {
		return err
	}
	runtimeFig := figure{title: "RAVO: runtime against number of video clusters", x: "clusters", y: "runtime (s)", logX: true}
	return runtimeFig.save(dir, "ravo-runtime.png", "RAVO", secs)
}

type cocosRow struct {
	Scheme     string  `json:"scheme"`
	DelayBound float64 `json:"delay_bound_ms"`
	Channels   int     `json:"channels"`
	Cost       float64 `json:"cost"`
	LPBound    float64 `json:"lp_bound,omitempty"`
	Violations int     `json:"delay_violations"`
	MaxDelay   float64 `json:"max_delay_ms"`
	Seconds    float64 `json:"runtime_seconds"`
}

type cocosReport struct {
	Spec           plan.CocosSpec `json:"spec"`
	Substreams     int            `json:"substreams"`
	Runs           []cocosRow     `json:"runs"`
	RuntimeSeconds float64        `json:"runtime_seconds"`
}

func newPlanCocosCommand() *cobra.Command {
	spec := plan.PaperCocosSpec()
	var (
		k, candidates               int
		delays, channels, solverArg string
		plotDir                     string
		asJSON                      bool
	)
	cmd := &cobra.Command{
		Use:   "cocos",
		Short: "Minimum-cost live overlay trees under an origin-to-end delay bound",
		Example: "  swarmcast plan cocos                      # the paper setup: 100 servers, 60 channels, 800 ms, k = 10\n" +
			"  swarmcast plan cocos --servers 40 --delays 400,600,800,1000,1200 --plot docs/plan",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			solver, err := planSolver(solverArg)
			if err != nil {
				return err
			}
			ds := []int{int(spec.DelayBound)}
			if delays != "" {
				if ds, err = planParseInts(delays); err != nil {
					return err
				}
			}
			cs := []int{spec.Channels}
			if channels != "" {
				if cs, err = planParseInts(channels); err != nil {
					return err
				}
			}
			rep := cocosReport{Spec: spec, Substreams: k}
			for _, d := range ds {
				for _, c := range cs {
					s := spec
					s.DelayBound, s.Channels = float64(d), c
					in, err := plan.NewCocosInstance(s)
					if err != nil {
						return err
					}
					t := time.Now()
					co, err := plan.Cocos(in, plan.CocosOptions{Substreams: k, Candidates: candidates, Solver: solver,
						Progress: planProgress(cmd, fmt.Sprintf("cocos: Δ = %d ms, channels", d))})
					if err != nil {
						return err
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
						rep.Runs = append(rep.Runs, cocosRow{Scheme: x.r.Scheme, DelayBound: float64(d), Channels: c, Cost: x.r.Cost,
							LPBound: co.LPBound, Violations: x.r.Violations, MaxDelay: x.r.MaxDelay, Seconds: x.secs})
					}
				}
			}
			rep.RuntimeSeconds = time.Since(start).Seconds()
			if plotDir != "" {
				if err := plotCocos(plotDir, &rep, len(ds) > 1, len(cs) > 1); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "COCOS: %d servers, rates N(%.1f, %.1f) Mb/s, prices N(%.2f, %.2f)/Mbit, Zipf %.1f, k = %d\n\n",
				spec.Servers, spec.RateMean, spec.RateStd, spec.PriceMean, spec.PriceStd, spec.Zipf, k)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "delay bound\tchannels\tscheme\tcost/s\t× LP\tvs this scheme, COCOS saves\tviolations\tmax delay (ms)\truntime (s)\t")
			for i := 0; i < len(rep.Runs); i += 3 {
				co := rep.Runs[i]
				for _, r := range rep.Runs[i : i+3] {
					fmt.Fprintf(tw, "%.0f\t%d\t%s\t%.3f\t%.3f\t%.1f%%\t%d\t%.0f\t%.2f\t\n", r.DelayBound, r.Channels, r.Scheme, r.Cost,
						r.Cost/r.LPBound, 100*(1-co.Cost/r.Cost), r.Violations, r.MaxDelay, r.Seconds)
				}
			}
			tw.Flush()
			fmt.Fprintf(w, "runtime %.2fs\n", rep.RuntimeSeconds)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&spec.Servers, "servers", spec.Servers, "servers, origins included")
	f.IntVar(&spec.Channels, "channels", spec.Channels, "live channels")
	f.Float64Var(&spec.DelayBound, "delay-ms", spec.DelayBound, "origin-to-end delay bound (ms)")
	f.Float64Var(&spec.RateMean, "rate-mean", spec.RateMean, "stream rate mean (Mb/s)")
	f.Float64Var(&spec.RateStd, "rate-std", spec.RateStd, "stream rate standard deviation (Mb/s)")
	f.Float64Var(&spec.PriceMean, "price-mean", spec.PriceMean, "upload and link price mean (per Mbit)")
	f.Float64Var(&spec.PriceStd, "price-std", spec.PriceStd, "upload and link price standard deviation (per Mbit)")
	f.Float64Var(&spec.Zipf, "zipf", spec.Zipf, "Zipf exponent of channel popularity")
	f.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed for the instance")
	f.IntVar(&k, "substreams", 10, "k: substreams, i.e. candidate trees cut from the LP")
	f.IntVar(&candidates, "candidates", 8, "cheapest delay-feasible in-edges per server kept in the LP (0 = all)")
	f.StringVar(&delays, "delays", "", "comma-separated delay bounds (ms) to sweep instead of --delay-ms")
	f.StringVar(&channels, "sweep-channels", "", "comma-separated channel counts to sweep instead of --channels")
	f.StringVar(&solverArg, "solver", "auto", "LP solver: auto, gonum or coin")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

func plotCocos(dir string, rep *cocosReport, byDelay, byChannels bool) error {
	if !byDelay && !byChannels {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan: create plot directory: %w", err)
	}
	series := map[string]plotter.XYs{}
	lpXY := plotter.XYs{}
	for _, r := range rep.Runs {
		x := r.DelayBound
		if !byDelay {
			x = float64(r.Channels)
		}
		series[r.Scheme] = append(series[r.Scheme], plotter.XY{X: x, Y: r.Cost})
		if r.Scheme == "cocos" {
			lpXY = append(lpXY, plotter.XY{X: x, Y: r.LPBound})
		}
	}
	fig, name := figure{title: "COCOS: deployment cost", x: "delay upper bound (ms)", y: "cost per second"}, "cocos-delay.png"
	if !byDelay {
		fig.x, name = "channels", "cocos-channels.png"
	}
	return fig.save(dir, name, "COCOS", series["cocos"], "Nearest Peer", series["nearest-peer"], "Prim", series["prim"], "LP (super optimum)", lpXY)
}

// figure is one PNG chart of a planner report, in the papers' style.
type figure struct {
	title, x, y string
	logX        bool // the x axis spans decades (cluster counts)
	legendLeft  bool
	noPoints    bool // step curves read better as plain lines
}

// save draws lines — name, plotter.XYs pairs, as plotutil takes them — into
// dir/file (6×4 inches).
func (f figure) save(dir, file string, lines ...any) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = f.title, f.x, f.y
	if f.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	add := plotutil.AddLinePoints
	if f.noPoints {
		add = plotutil.AddLines
	}
	if err := add(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, f.legendLeft
	return p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, file))
}
