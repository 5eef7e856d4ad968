package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
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
	return cmd
}
