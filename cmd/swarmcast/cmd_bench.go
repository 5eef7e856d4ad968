package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/loadbench"
)

func init() { subcommands = append(subcommands, newBenchCommand) }

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure servers under load against a reference in the same run",
	}
	var opt loadbench.ServeOptions
	var asJSON bool
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Edge or origin shard serving throughput against nginx serving the same bytes from disk",
		Long: `Lays every shard of the bundled sample's top rendition out as an edge cache and
as static files, starts nginx and a real 'swarmcast edge' (--role edge) or
'swarmcast origin' (--role origin) process on 127.0.0.1, and drives both with
the same load generator in alternating rounds. Prints the median throughput of
each and the median ratio swarmcast/nginx (--json: one object with role,
nginx_mbps, swarmcast_mbps, ratio and every run). Needs nginx; stops every
process it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// loadbench replaces non-positive values by its defaults; a
			// user who typed 0 gets told instead.
			if err := checkPositive(map[string]int64{"--concurrency": int64(opt.Concurrency), "--rounds": int64(opt.Rounds), "--duration": int64(opt.Duration), "--nginx-workers": int64(opt.NginxWorkers)}); err != nil {
				return err
			}
			if opt.ServerProcs < 0 {
				return fmt.Errorf("--server-procs %d: want 0 (the server's default) or a positive count", opt.ServerProcs)
			}
			if opt.Role != loadbench.RoleEdge && opt.Role != loadbench.RoleOrigin {
				return fmt.Errorf("--role %q: want %s or %s", opt.Role, loadbench.RoleEdge, loadbench.RoleOrigin)
			}
			// SIGTERM too: nginx runs in a process group of its own, so
			// only this process can stop it, whatever ended the bench.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !asJSON {
				opt.Progress = cmd.ErrOrStderr()
			}
			res, err := loadbench.Serve(ctx, opt)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d shards of %d bytes, %d connections, %d rounds of %s\n", res.Shards, res.ShardBytes, res.Concurrency, len(res.Runs)/2, opt.Duration)
			fmt.Fprintf(cmd.OutOrStdout(), "nginx with %d workers, %s with GOMAXPROCS %d\n", res.NginxWorkers, res.Role, res.ServerGOMAXPROCS)
			fmt.Fprintf(cmd.OutOrStdout(), "nginx median %.1f MB/s, %s median %.1f MB/s, ratio %[2]s/nginx %.2[4]f (median of per-round ratios)\n", res.NginxMBps, res.Role, res.SwarmcastMBps, res.Ratio)
			if res.CPURatio > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "server CPU per request: nginx %.1f µs, %s %.1f µs, nginx/%[2]s %.2[4]f (≥ 1: %[2]s needs no more CPU per shard)\n", res.NginxCPUMicros, res.Role, res.SwarmcastCPUMicros, res.CPURatio)
				fmt.Fprintf(cmd.OutOrStdout(), "server threads put on a CPU per request: nginx %.2f, %s %.2f\n", res.NginxWakeups, res.Role, res.SwarmcastWakeups)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&opt.Role, "role", loadbench.RoleEdge, "server to measure: edge or origin")
	serve.Flags().IntVar(&opt.Concurrency, "concurrency", 16, "parallel client connections")
	serve.Flags().DurationVar(&opt.Duration, "duration", 5*time.Second, "length of each measured run")
	serve.Flags().IntVar(&opt.Rounds, "rounds", 3, "alternating nginx/swarmcast rounds")
	serve.Flags().StringVar(&opt.Nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin/nginx)")
	serve.Flags().IntVar(&opt.NginxWorkers, "nginx-workers", 2, "nginx's worker_processes")
	serve.Flags().IntVar(&opt.ServerProcs, "server-procs", 0, "GOMAXPROCS for the swarmcast server, e.g. equal to --nginx-workers for a comparison at the same number of workers (0: the server's own default)")
	serve.Flags().StringVar(&opt.Binary, "binary", "", "swarmcast binary to run as the edge or origin, e.g. an older build for a before/after under the same load generator (default: this executable)")
	serve.Flags().BoolVar(&asJSON, "json", false, "print every run as JSON")
	cmd.AddCommand(serve)

	var lopt loadbench.LookupOptions
	var lookupJSON bool
	lookup := &cobra.Command{
		Use:   "lookup",
		Short: "Coordinator source lookups per second and latency, against a real coordinator process",
		Long: `Starts 'swarmcast coordinator' on 127.0.0.1 with a catalogue and --edges edges
whose inventories cover every segment and --viewers player keys bound to a
signed-in account (lookups name them, so answers carry order limits), sends
every request body once to warm the limit cache, then drives POST
/api/v1/lookup from --concurrency clients (Go, or wrk with --wrk) for
--duration. The load generator shares the cores with the coordinator, so the
figure is a lower bound. --cpu-profile saves the coordinator's CPU profile of
the measured run (go tool pprof FILE).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lopt.Viewers < 0 {
				return errors.New("--viewers: want 0 (anonymous lookups, no order limits) or more")
			}
			if err := checkPositive(map[string]int64{"--edges": int64(lopt.Edges), "--videos": int64(lopt.Videos), "--window": int64(lopt.Window), "--concurrency": int64(lopt.Concurrency), "--duration": int64(lopt.Duration)}); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if !lookupJSON {
				lopt.Progress = cmd.ErrOrStderr()
			}
			res, err := loadbench.Lookup(ctx, lopt)
			if errors.Is(err, loadbench.ErrNoWrk) {
				return withFlagHint(err, "or drop --wrk")
			}
			if err != nil {
				return err
			}
			if lookupJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d lookups of %d segments (%.1f order limits, %.0f %s bytes each) in %s from %d %s clients (%d errors): %.0f lookups/s, p50 %.2f ms, p99 %.2f ms\n",
				res.Lookups, res.Window, res.LimitsPerLookup, res.ResponseBytes, res.Encoding, lopt.Duration, res.Concurrency, res.Generator, res.Errors, res.PerSecond, res.P50ms, res.P99ms)
			if res.CPUBoundPerSecond > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "CPU per lookup: coordinator %.1f µs, %s %.1f µs: %.0f lookups/s on %d otherwise idle cores\n",
					res.CoordinatorCPUus, res.Generator, res.GeneratorCPUus, res.CPUBoundPerSecond, res.Cores)
			}
			return nil
		},
	}
	lookup.Flags().IntVar(&lopt.Edges, "edges", 200, "registered edges")
	lookup.Flags().IntVar(&lopt.Videos, "videos", 20, "catalogue size")
	lookup.Flags().IntVar(&lopt.Window, "window", 8, "segments per lookup")
	lookup.Flags().IntVar(&lopt.Concurrency, "concurrency", 32, "parallel clients")
	lookup.Flags().DurationVar(&lopt.Duration, "duration", 10*time.Second, "measured run")
	lookup.Flags().BoolVar(&lookupJSON, "json", false, "print the result as JSON")
	lookup.Flags().BoolVar(&lopt.Wrk, "wrk", false, "drive the load with wrk (C) instead of Go clients")
	lookup.Flags().IntVar(&lopt.Viewers, "viewers", 64, "player keys of a signed-in account the lookups name, so answers carry order limits (0: anonymous lookups)")
	lookup.Flags().StringVar(&lopt.Binary, "coordinator-binary", "", "swarmcast binary to run the coordinator from, e.g. an older build to compare with (default: this one)")
	lookup.Flags().BoolVar(&lopt.JSON, "json-answers", false, "ask for JSON answers instead of the binary ones players ask for")
	lookup.Flags().StringVar(&lopt.CPUProfile, "cpu-profile", "", "write the coordinator's CPU profile of the measured run to this file")
	lookup.Flags().StringVar(&lopt.Trace, "trace", "", "write the coordinator's runtime trace of the measured run to this file (go tool trace FILE)")
	lookup.Flags().StringVar(&lopt.CoordinatorLog, "coordinator-log", "", "write the coordinator's stderr to this file (with GODEBUG=gctrace=1 in the environment: one line per GC)")
	cmd.AddCommand(lookup)
	cmd.AddCommand(newBenchCoordinatorCommand())
	requireSubcommand(cmd)
	return cmd
}

// checkPositive names the first flag (in name order) whose value is not
// positive.
func checkPositive(flags map[string]int64) error {
	names := slices.Sorted(maps.Keys(flags))
	for _, name := range names {
		if flags[name] <= 0 {
			return fmt.Errorf("%s must be positive (see the default in --help)", name)
		}
	}
	return nil
}
