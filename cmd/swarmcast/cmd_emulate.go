package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/netemu"
	"github.com/swarmcast/swarmcast/sim"
)

func init() { subcommands = append(subcommands, newEmulateCommand) }

func newEmulateCommand() *cobra.Command {
	var asJSON bool
	var seed int64
	cmd := &cobra.Command{
		Use:   "emulate SCENARIO",
		Short: "Run a scaled scenario as real swarmcast processes in network namespaces (root)",
		Long: `Starts a coordinator, an origin, the scenario's caches (edges) and users
(headless players) as real processes of this binary, each in its own network
namespace on one bridge (10.77.0.0/24, inside the namespaces only), with tc tbf
capping every cache's uplink and --impair adding latency and loss on the edges'
and the origin's listeners. Users join one per interval and play random titles
until the end. SCENARIO is a simulator scenario (a built-in name or a file,
as for 'swarmcast sim'), so both run the same file; the emulation plays copies
of the bundled sample, so the titles must be its length and bitrate. Prints the origin's average egress (its /metrics), the offload
(edges' share of the bytes users reported) and the origin's per-minute curve.
Every namespace is deleted on exit. Needs root and iproute2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			simScenario, err := sim.Load(args[0])
			if err != nil {
				return err
			}
			if seed != 0 {
				simScenario.Seed = seed
			}
			sc, err := emulationOf(simScenario)
			if err != nil {
				return err
			}
			if err := sc.Check(); err != nil {
				return err
			}
			if err := netemu.Available(); err != nil {
				return err
			}
			binary, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			progress := cmd.ErrOrStderr()
			run := strconv.FormatInt(int64(os.Getpid()%10000), 36)
			res, err := netemu.Emulate(ctx, binary, run, sc, progress)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %.0f s, %d plays completed (%d failed); origin %.2f Mbit/s on average, users received %.2f Mbit/s, offload %.1f%%\norigin Mbit/s per minute: %v\n",
				res.Scenario, res.WallSeconds, res.Plays, res.PlayErrors, res.OriginMbpsAvg, res.UserMbpsAvg, 100*res.Offload, res.OriginMbps)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().Int64Var(&seed, "seed", 0, "override the scenario's seed (the users' title choices and players' seeds), as for swarmcast sim")
	return cmd
}

// emulationOf is the emulation of a simulator scenario, or what keeps it
// from being one.
func emulationOf(s *sim.Scenario) (netemu.Scenario, error) {
	unsupported := func(what string) (netemu.Scenario, error) {
		return netemu.Scenario{}, fmt.Errorf("scenario %q: the emulation does not run %s; remove it from the file (the simulator alone models it)", s.Name, what)
	}
	switch {
	case s.Viewers.Mode != "continuous":
		return unsupported(fmt.Sprintf("viewers.mode %q (only continuous)", s.Viewers.Mode))
	case s.Viewers.PlayersAreEdges:
		return unsupported("viewers.players_are_edges")
	case s.Edges.LiarFraction > 0, s.Edges.ChurnPerHour > 0, s.Flash != nil:
		return unsupported("liars, churn or a flash crowd")
	case s.Titles.Zipf != 0:
		return unsupported("titles.zipf (titles are uniform)")
	case s.Coordinator != (sim.CoordinatorSpec{}), s.SegmentS != 0 && s.SegmentS != 2, s.K != 0, s.NMax != 0, s.Origin.UplinkMbps != 0, s.Edges.Regions > 1:
		return unsupported("coordinator timing, segment_s, k/n_max, an origin uplink cap or regions (it runs the real defaults)")
	case s.Edges.Loss != s.Viewers.Loss:
		return unsupported("different edge and viewer loss (one loss per link)")
	}
	return netemu.Scenario{
		Name:              s.Name,
		Caches:            s.Edges.Count,
		Users:             s.Viewers.Count,
		UserJoinIntervalS: s.Viewers.JoinIntervalS,
		Titles:            s.Titles.Count,
		TitleS:            s.Titles.DurationS,
		TitleMbps:         s.Titles.BitrateMbps,
		CacheUploadMbps:   s.Edges.UploadMbps,
		CacheDiskMB:       s.Edges.DiskGB * 1000,
		CachePresets:      s.Edges.Multipliers,
		DurationS:         s.DurationS,
		CacheLatencyMS:    s.Edges.LatencyMS,
		OriginLatencyMS:   s.Origin.LatencyMS,
		ViewerLatencyMS:   s.Viewers.LatencyMS,
		LossPerTransfer:   s.Viewers.Loss,
		Seed:              uint64(max(s.Seed, 1)),
	}, nil
}
