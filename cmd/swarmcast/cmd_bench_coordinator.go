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

// Bounds of the coordinator benchmark: the load process keeps every edge's
// key and inventory in memory, and the run must end.
const (
	maxBenchEdges    = 1_000_000
	maxBenchDuration = 30 * time.Minute
)

func newBenchCoordinatorCommand() *cobra.Command {
	opt := loadbench.CoordinatorOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Registrations, heartbeats and lookups a real coordinator process sustains with many edges",
		Long: `Starts 'swarmcast coordinator' on 127.0.0.1 with a synthetic catalogue of
--videos titles of --segments segments, registers --edges synthetic edges (signed
node requests, one shard each of --shards distinct segments drawn as runs of
Zipf-popular titles, sent as the full heartbeat of a registration), then has
every edge heartbeat once per --heartbeat with a delta of --delta shards added
and removed (for half of --duration alone, then with --lookup-clients issuing
lookups). Audits are off (the synthetic edges serve nothing). Prints the
rates, p99s, the edges still alive at the end and the coordinator's RSS. The
synthetic edges are goroutines of this process, which shares the cores with
the coordinator: the figures are lower bounds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(map[string]int64{"--edges": int64(opt.Edges), "--videos": int64(opt.Videos), "--segments": int64(opt.Segments),
				"--shards": int64(opt.ShardsPerEdge), "--heartbeat": int64(opt.Heartbeat), "--delta": int64(opt.DeltaShards), "--workers": int64(opt.Workers),
				"--lookup-clients": int64(opt.LookupClients), "--window": int64(opt.Window), "--duration": int64(opt.Duration)}); err != nil {
				return err
			}
			switch {
			case opt.Edges > maxBenchEdges:
				return fmt.Errorf("--edges %d: at most %d", opt.Edges, maxBenchEdges)
			case opt.Duration > maxBenchDuration:
				return fmt.Errorf("--duration %s: at most %s", opt.Duration, maxBenchDuration)
			case opt.Window > opt.Segments:
				return fmt.Errorf("--window %d is longer than a title (--segments %d)", opt.Window, opt.Segments)
			case opt.Videos >= 1<<12 || opt.Segments >= 1<<20:
				return fmt.Errorf("--videos at most %d, --segments at most %d", 1<<12-1, 1<<20-1)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if !asJSON {
				opt.Progress = cmd.ErrOrStderr()
			}
			res, err := loadbench.Coordinator(ctx, opt)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%d edges, %d inventory shards: registered at %.0f edges/s (%d errors); coordinator RSS %.0f MB after registration (%.0f B per inventory shard)\n",
				res.Edges, res.InventoryShards, res.RegistrationsPerS, res.RegisterErrors, res.RSSAfterRegisterMB, res.BytesPerInventoryEl)
			fmt.Fprintf(out, "heartbeats: %.0f/s acknowledged of %.0f/s offered (%d errors), p99 %.1f ms, send lag p99 %.0f ms; %d edges alive at the end\n",
				res.HeartbeatsPerS, res.HeartbeatsOffered, res.HeartbeatErrors, res.HeartbeatP99ms, res.HeartbeatLagP99ms, res.AliveEdgesAtEnd)
			fmt.Fprintf(out, "lookups while heartbeating: %.0f/s (%d errors), p50 %.2f ms, p99 %.2f ms; coordinator RSS %.0f MB at the end, peak %.0f MB\n",
				res.LookupsPerS, res.LookupErrors, res.LookupP50ms, res.LookupP99ms, res.RSSAtEndMB, res.PeakRSSMB)
			fmt.Fprintf(out, "coordinator: %.2f ms of CPU per registration (%.2f µs per inventory shard); live heap %.0f MB after registration (%.1f B per inventory shard)\n",
				res.CPUPerRegistrationMS, res.CPUPerShardUS, res.HeapAfterRegisterMB, res.HeapPerInventoryEl)
			fmt.Fprintf(out, "coordinator CPU: %.2f cores registering, %.2f heartbeating alone (≤ %.3f ms per heartbeat, background included), %.2f with lookups\n",
				res.CoresRegistering, res.CoresHeartbeats, res.CPUPerHeartbeatMS, res.CoresWithLookups)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opt.Edges, "edges", 1000, "synthetic edges")
	f.IntVar(&opt.Videos, "videos", 200, "catalogue titles")
	f.IntVar(&opt.Segments, "segments", 1800, "segments per title (2 s each: 1800 is an hour)")
	f.IntVar(&opt.ShardsPerEdge, "shards", 2000, "shards each edge holds (one per segment)")
	f.DurationVar(&opt.Heartbeat, "heartbeat", 30*time.Second, "heartbeat interval the coordinator tells nodes")
	f.IntVar(&opt.DeltaShards, "delta", 2, "shards added and removed per heartbeat")
	f.IntVar(&opt.Workers, "workers", 512, "concurrent node requests of the load process (each owns edges/workers edges and waits for its answers, so it must exceed heartbeats/s × latency)")
	f.IntVar(&opt.LookupClients, "lookup-clients", 8, "concurrent lookup clients")
	f.IntVar(&opt.Window, "window", 8, "segments per lookup")
	f.DurationVar(&opt.Duration, "duration", 60*time.Second, "heartbeat and lookup phase")
	f.StringVar(&opt.Binary, "coordinator-binary", "", "swarmcast binary to run the coordinator from, e.g. an older build to compare with (default: this one)")
	f.StringVar(&opt.CPUProfile, "cpu-profile", "", "write the coordinator's CPU profile of the first 30 s of registrations to this file")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
