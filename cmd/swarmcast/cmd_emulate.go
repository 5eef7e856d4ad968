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
)

func init() { subcommands = append(subcommands, newEmulateCommand) }

func newEmulateCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "emulate SCENARIO.json",
		Short: "Run a scaled scenario as real swarmcast processes in network namespaces (root)",
		Long: `Starts a coordinator, an origin, the scenario's caches (edges) and users
(headless players) as real processes of this binary, each in its own network
namespace on one bridge (10.77.0.0/24, inside the namespaces only), with tc tbf
capping every cache's uplink and --impair adding latency and loss on the edges'
and the origin's listeners. Users join one per interval and play random titles
until the end. Prints the origin's average egress (its /metrics), the offload
(edges' share of the bytes users reported) and the origin's per-minute curve.
Every namespace is deleted on exit. Needs root and iproute2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := netemu.LoadScenario(args[0])
			if err != nil {
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
	return cmd
}
