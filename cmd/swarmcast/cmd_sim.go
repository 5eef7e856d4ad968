package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
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
		profile string
		explain bool
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
			if plotDir != "" {
				if err := checkCreatableDir("--plots", plotDir); err != nil {
					return err
				}
			}
			sc, err := sim.Load(args[0])
			if err != nil {
				return err
			}
			s, err := sim.New(sc, seed)
			if err != nil {
				return err
			}
			if explain {
				s.Explain()
			}
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
			}
			tuneGCForSim()
			rep := s.Run()
			if profile != "" {
				pprof.StopCPUProfile()
			}
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
	cmd.Flags().BoolVar(&explain, "explain", false, "decompose the origin's bytes in the JSON report (origin_explained): to viewers by why the fetch asked the origin, to edges by whether the fill was served again")
	cmd.Flags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	return cmd
}

// simGCPercent and simMemoryLimit trade memory for collector time in a
// run: the simulator's heap is mostly long-lived inventories, so the
// default GOGC=100 re-marks it after every 100 % growth (12 % of the
// scale hour's CPU). At 400 the collector runs a quarter as often; the
// soft limit (below the scale scenario's 4 GB budget) makes it collect
// sooner when the heap nears the limit. GOGC and GOMEMLIMIT in the
// environment win.
const (
	simGCPercent   = 400
	simMemoryLimit = 3 << 30
)

func tuneGCForSim() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(simGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(simMemoryLimit)
	}
}
