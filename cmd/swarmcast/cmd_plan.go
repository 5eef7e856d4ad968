package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/plan/experiment"
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
	requireSubcommand(cmd)
	return cmd
}

// planReport is what every plan subcommand prints or draws.
type planReport interface {
	WriteTable(w io.Writer) error
	WriteJSON(w io.Writer) error
	WritePNG(dir string) error
}

// checkPlotDir checks --plot before a long run, so a typo in it does not
// fail (or create a stray tree) only after the work is done.
func checkPlotDir(dir string) error {
	if dir == "" {
		return nil
	}
	return checkCreatableDir("--plot", dir)
}

// writePlanReport draws the figures (if --plot) and prints JSON or tables.
func writePlanReport(cmd *cobra.Command, rep planReport, plotDir string, asJSON bool) error {
	if plotDir != "" {
		if err := rep.WritePNG(plotDir); err != nil {
			return err
		}
	}
	if asJSON {
		return rep.WriteJSON(cmd.OutOrStdout())
	}
	return rep.WriteTable(cmd.OutOrStdout())
}

// withFlagNames adds the flag to set when err is an experiment config error;
// fieldFlags maps config field names to flag names.
func withFlagNames(err error, fieldFlags map[string]string) error {
	var ce *experiment.ConfigError
	if errors.As(err, &ce) {
		if flag, ok := fieldFlags[ce.Field]; ok {
			return fmt.Errorf("%w (set --%s)", err, flag)
		}
	}
	return err
}

func newPlanAvardoCommand() *cobra.Command {
	cfg := experiment.DefaultAvardoConfig()
	var (
		plotDir string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "avardo",
		Short: "Block allocation, stack thresholds and dispatch for one auto-scaling data centre",
		Example: "  swarmcast plan avardo --blocks 300000 --slots 6000 --servers 100 --zipf 1.0 --seed 1\n" +
			"  swarmcast plan avardo --trace requests.csv --block-mb 100 --slots 6000 --servers 100 --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotDir(plotDir); err != nil {
				return err
			}
			rep, err := experiment.RunAvardo(cfg)
			if err != nil {
				return withFlagNames(err, map[string]string{
					"Blocks": "blocks", "Videos": "videos", "Slots": "slots", "Servers": "servers",
					"StreamGbps": "stream-gbps", "Utilisation": "utilisation", "BlockMB": "block-mb",
				})
			}
			return writePlanReport(cmd, rep, plotDir, asJSON)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Blocks, "blocks", cfg.Blocks, "number of video blocks in the catalogue")
	f.IntVar(&cfg.Videos, "videos", cfg.Videos, "number of videos the blocks belong to (Zipf is over videos)")
	f.IntVar(&cfg.Slots, "slots", cfg.Slots, "block slots per server")
	f.IntVar(&cfg.Servers, "servers", cfg.Servers, "servers in the data centre")
	f.Float64Var(&cfg.Zipf, "zipf", cfg.Zipf, "Zipf exponent of video popularity")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed for video lengths and popularity ranks")
	f.StringVar(&cfg.TracePath, "trace", "", "CSV trace with columns video,requests,size_mb (replaces the synthetic catalogue)")
	f.Float64Var(&cfg.BlockMB, "block-mb", cfg.BlockMB, "block size in MB")
	f.Float64Var(&cfg.StreamGbps, "stream-gbps", cfg.StreamGbps, "streaming capacity of one server in Gb/s")
	f.Float64Var(&cfg.Utilisation, "utilisation", cfg.Utilisation, "utilisation cap of a server's streaming capacity")
	f.Float64Var(&cfg.Hysteresis, "hysteresis", cfg.Hysteresis, "fraction below the activation rate at which a server is popped again")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

func newPlanRavoCommand() *cobra.Command {
	cfg := experiment.DefaultRavoConfig()
	var (
		clusters, solverName, plotDir string
		asJSON                        bool
	)
	cmd := &cobra.Command{
		Use:     "ravo",
		Short:   "Video placement, retrieval and resources for a geo-distributed VoD cloud",
		Example: "  swarmcast plan ravo --regions 10 --videos 10000 --clusters 1,4,10,20,50,100,200 --plot docs/plan",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotDir(plotDir); err != nil {
				return err
			}
			var err error
			if cfg.Clusters, err = parsePositiveInts("--clusters", clusters); err != nil {
				return err
			}
			if cfg.Solver, err = planSolver(solverName); err != nil {
				return err
			}
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := experiment.RunRavo(cfg)
			if err != nil {
				return withFlagNames(err, map[string]string{"Clusters": "clusters"})
			}
			return writePlanReport(cmd, rep, plotDir, asJSON)
		},
	}
	f := cmd.Flags()
	spec := &cfg.Spec
	f.IntVar(&spec.Regions, "regions", spec.Regions, "regional proxy servers")
	f.IntVar(&spec.Videos, "videos", spec.Videos, "videos in the catalogue")
	f.Float64Var(&spec.Zipf, "zipf", spec.Zipf, "Zipf exponent of regional video popularity")
	f.Float64Var(&spec.Hetero, "hetero", spec.Hetero, "geographic heterogeneity: spread of regional ranks around the global rank")
	f.Float64Var(&spec.Streams, "streams", spec.Streams, "mean concurrent streams per region")
	f.Float64Var(&spec.DelayBound, "delay-ms", spec.DelayBound, "maximum delay of a request (ms)")
	f.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed for the instance, clustering and rounding")
	f.StringVar(&clusters, "clusters", joinInts(cfg.Clusters), "comma-separated numbers of video clusters to run RAVO with")
	f.IntVar(&cfg.Draws, "draws", cfg.Draws, "independent roundings per video; the cheapest is kept")
	f.BoolVar(&cfg.Exact, "exact", cfg.Exact, fmt.Sprintf("also compute the exact optimum by enumeration (≤ %d regions)", experiment.MaxExactRegions))
	f.StringVar(&solverName, "solver", "auto", "LP solver: auto, gonum or coin")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

func newPlanCocosCommand() *cobra.Command {
	cfg := experiment.DefaultCocosConfig()
	var (
		delays, channels, solverName string
		plotDir                      string
		asJSON                       bool
	)
	cmd := &cobra.Command{
		Use:   "cocos",
		Short: "Minimum-cost live overlay trees under an origin-to-end delay bound",
		Example: "  swarmcast plan cocos                      # the paper setup: 100 servers, 60 channels, 800 ms, k = 10\n" +
			"  swarmcast plan cocos --servers 40 --delays 400,600,800,1000,1200 --plot docs/plan",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotDir(plotDir); err != nil {
				return err
			}
			var err error
			if cfg.Solver, err = planSolver(solverName); err != nil {
				return err
			}
			if cfg.DelayBounds, err = parsePositiveInts("--delays", delays); err != nil {
				return err
			}
			if cfg.Channels, err = parsePositiveInts("--sweep-channels", channels); err != nil {
				return err
			}
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := experiment.RunCocos(cfg)
			if err != nil {
				return withFlagNames(err, map[string]string{"DelayBounds": "delays", "Channels": "sweep-channels"})
			}
			return writePlanReport(cmd, rep, plotDir, asJSON)
		},
	}
	f := cmd.Flags()
	spec := &cfg.Spec
	f.IntVar(&spec.Servers, "servers", spec.Servers, "servers, origins included")
	f.IntVar(&spec.Channels, "channels", spec.Channels, "live channels")
	f.Float64Var(&spec.DelayBound, "delay-ms", spec.DelayBound, "origin-to-end delay bound (ms)")
	f.Float64Var(&spec.RateMean, "rate-mean", spec.RateMean, "stream rate mean (Mb/s)")
	f.Float64Var(&spec.RateStd, "rate-std", spec.RateStd, "stream rate standard deviation (Mb/s)")
	f.Float64Var(&spec.PriceMean, "price-mean", spec.PriceMean, "upload and link price mean (per Mbit)")
	f.Float64Var(&spec.PriceStd, "price-std", spec.PriceStd, "upload and link price standard deviation (per Mbit)")
	f.Float64Var(&spec.Zipf, "zipf", spec.Zipf, "Zipf exponent of channel popularity")
	f.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed for the instance")
	f.IntVar(&cfg.Substreams, "substreams", cfg.Substreams, "k: substreams, i.e. candidate trees cut from the LP")
	f.IntVar(&cfg.Candidates, "candidates", cfg.Candidates, "cheapest delay-feasible in-edges per server kept in the LP (0 = all)")
	f.StringVar(&delays, "delays", "", "comma-separated delay bounds (ms) to sweep instead of --delay-ms")
	f.StringVar(&channels, "sweep-channels", "", "comma-separated channel counts to sweep instead of --channels")
	f.StringVar(&solverName, "solver", "auto", "LP solver: auto, gonum or coin")
	f.StringVar(&plotDir, "plot", "", "directory to write PNG figures to")
	f.BoolVar(&asJSON, "json", false, "print a JSON report instead of tables")
	return cmd
}

// planSolver maps --solver to an LP backend.
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

// parsePositiveInts reads a comma-separated list flag such as "1,4,10";
// blanks are skipped, so "" is an empty list.
func parsePositiveInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("plan: %s: %q is not a positive integer (want a comma-separated list such as 1,4,10)", flag, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}
