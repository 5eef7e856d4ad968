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
		Short: "Edge shard serving throughput against nginx serving the same bytes from disk",
		Long: `Lays every shard of the bundled sample's top rendition out as an edge cache and
as static files, starts nginx and a real 'swarmcast edge' process on 127.0.0.1,
and drives both with the same load generator in alternating rounds. Prints the
median throughput of each and the median ratio edge/nginx. Needs nginx.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// loadbench replaces non-positive values by its defaults; a
			// user who typed 0 gets told instead.
			if err := checkPositive(map[string]int64{"--concurrency": int64(opt.Concurrency), "--rounds": int64(opt.Rounds), "--duration": int64(opt.Duration)}); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
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
			fmt.Fprintf(cmd.OutOrStdout(), "nginx median %.1f MB/s, edge median %.1f MB/s, ratio edge/nginx %.2f (median of per-round ratios)\n", res.NginxMBps, res.EdgeMBps, res.Ratio)
			return nil
		},
	}
	serve.Flags().IntVar(&opt.Concurrency, "concurrency", 16, "parallel client connections")
	serve.Flags().DurationVar(&opt.Duration, "duration", 5*time.Second, "length of each measured run")
	serve.Flags().IntVar(&opt.Rounds, "rounds", 3, "alternating nginx/edge rounds")
	serve.Flags().StringVar(&opt.Nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin/nginx)")
	serve.Flags().BoolVar(&asJSON, "json", false, "print every run as JSON")
	cmd.AddCommand(serve)

	var lopt loadbench.LookupOptions
	var lookupJSON bool
	lookup := &cobra.Command{
		Use:   "lookup",
		Short: "Coordinator source lookups per second and latency, against a real coordinator process",
		Long: `Starts 'swarmcast coordinator' on 127.0.0.1 with a catalogue and --edges edges
whose inventories cover every segment, then drives POST /api/v1/lookup from
--concurrency clients in this process for --duration. The load generator shares
the cores with the coordinator, so the figure is a lower bound.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			fmt.Fprintf(cmd.OutOrStdout(), "%d lookups of %d segments in %s from %d %s clients (%d errors): %.0f lookups/s, p50 %.2f ms, p99 %.2f ms\n",
				res.Lookups, res.Window, lopt.Duration, res.Concurrency, res.Generator, res.Errors, res.PerSecond, res.P50ms, res.P99ms)
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
