package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/sim"
)

func init() { subcommands = append(subcommands, newSimCommand) }

func newSimCommand() *cobra.Command {
	var (
		asJSON  bool
		plotDir string
		seed    int64
	)
	cmd := &cobra.Command{
		Use:   "sim SCENARIO",
		Short: "Simulate a network over the real scheduling and placement cores (deterministic)",
		Long: "sim runs a discrete-event simulation of a Swarmcast network: the viewer's fetch scheduler and\n" +
			"the coordinator's placement, demand and lookup ranking over a simulated clock and network.\n" +
			"SCENARIO is a built-in name (" + strings.Join(sim.Builtin(), ", ") + ") or a scenario JSON file\n" +
			"(see sim/testdata/scenarios). The same scenario and seed print the same report.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPlotDir(plotDir); err != nil {
				return err
			}
			sc, err := sim.Load(args[0])
			if err != nil {
				return err
			}
			s, err := sim.New(sc, seed)
			if err != nil {
				return err
			}
			rep := s.Run()
			if plotDir != "" {
				if err := rep.WritePNG(plotDir); err != nil {
					return fmt.Errorf("--plots: %w", err)
				}
			}
			if asJSON {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&plotDir, "plots", "", "write PNG plots (origin load, offload, startup, rebuffer) into this directory")
	cmd.Flags().Int64Var(&seed, "seed", 0, "random seed (0 = the scenario's)")
	return cmd
}
