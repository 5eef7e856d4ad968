package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newDemoCommand) }

type demoFlags struct {
	edges, viewers, videos int
	duration, linger       time.Duration
	churn, byzantine       float64
	zipf, speed            float64
	seed                   int64
	report                 string
	verbose                bool
	// demo --live (cmd_demo_live.go)
	live       bool
	relays     int
	killRelay  time.Duration
	lowLatency bool
	btrF       int // demo --live --btr-f F (cmd_demo_live.go)
	faults     int // demo --live --faults N: N faults of every kind
	// demo --live --btr-deadline D (0: measured)
	btrDeadline time.Duration
}

func newDemoCommand() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole network on loopback with the bundled sample and print offload and QoE",
		Long: `Starts a coordinator, an origin and --edges edges (each with its own player) on
127.0.0.1, packages the bundled sample clip under --videos titles (distinct keys,
so distinct bytes), and lets --viewers players join one at a time, pick videos by
Zipf popularity and play them through, like the seed experiment. Prints a
gateway URL any HLS player can open, progress, and a final table. Exits
non-zero if any play failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.edges, "edges", 20, "edges, each with a built-in player")
	fl.IntVar(&f.viewers, "viewers", 20, "players taking part (at most one per edge)")
	fl.IntVar(&f.videos, "videos", 12, "catalogue size")
	fl.DurationVar(&f.duration, "duration", 100*time.Second, "how long viewers keep starting plays")
	fl.Float64Var(&f.churn, "churn", 0, "fraction of edges killed abruptly per minute (each replaced by a fresh edge)")
	fl.Float64Var(&f.byzantine, "byzantine", 0, "fraction of edges that lie (flip bits, truncate, wrong index, slow drip)")
	fl.Float64Var(&f.zipf, "zipf", 1.0, "Zipf exponent of video popularity")
	fl.Float64Var(&f.speed, "speed", 4, "playback clock multiplier: 4 plays 4 s of video per second (time compression; deadlines get 4x tighter)")
	fl.Int64Var(&f.seed, "seed", 1, "random seed")
	fl.StringVar(&f.report, "report", "", "also write the final table as JSON to this file")
	fl.DurationVar(&f.linger, "linger", 0, "keep the network serving this long after the workload (to watch the play: URL)")
	fl.BoolVar(&f.verbose, "verbose", false, "log every node's activity to stderr")
	fl.BoolVar(&f.live, "live", false, "run a live channel instead: ffmpeg publishes the test source over RTMP for --duration (default 60s), --relays relays fan it out, --viewers players watch the live edge; needs ffmpeg")
	fl.IntVar(&f.relays, "relays", 4, "with --live: live relays in the fan-out trees")
	fl.BoolVar(&f.lowLatency, "low-latency", false, "with --live: a Low-Latency HLS channel (250 ms parts, PART-HOLD-BACK 750 ms); reports the parts' glass-to-glass and cost")
	fl.DurationVar(&f.killRelay, "kill-relay", 0, "with --live: kill one relay carrying a substream this long into the broadcast (0: none)")
	fl.IntVar(&f.btrF, "btr-f", 0, "with --live: BTR, each segment's ladder transcoded by F+1 workers (plus spares) and judged by the origin (0: the origin transcodes)")
	fl.DurationVar(&f.btrDeadline, "btr-deadline", 0, "with --btr-f: a worker's deadline per segment D (also the judge's re-execution X); 0: measured from this machine's transcode time")
	fl.IntVar(&f.faults, "faults", 0, "with --live: inject N faults of every kind at seeded segments: commission, omission, timing, equivocation into the BTR workers and stall, corrupt, slow into relays (one relay each, --relays raised to fit), and report detection, recovery and wrong bytes (implies --btr-f 1 unless set)")
	return cmd
}

func runDemo(cmd *cobra.Command, f demoFlags) error {
	if f.edges < 1 || f.viewers < 0 || f.videos < 1 || f.duration <= 0 || f.speed <= 0 {
		return fmt.Errorf("need --edges ≥ 1, --viewers ≥ 0, --videos ≥ 1, --duration > 0, --speed > 0")
	}
	if f.churn < 0 || f.churn > 1 || f.byzantine < 0 || f.byzantine >= 1 {
		return fmt.Errorf("--churn must be in [0,1] and --byzantine in [0,1)")
	}
	if f.linger < 0 {
		return fmt.Errorf("--linger %s: must be 0 or more, e.g. 5m", f.linger)
	}
	if !(f.zipf >= 0) {
		return fmt.Errorf("--zipf %v: must be 0 (uniform) or more, e.g. 1.0", f.zipf)
	}
	// Checked now rather than after two minutes of workload.
	if f.report != "" {
		if err := checkCreatableFile("--report", f.report); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	logOut := io.Discard
	if f.verbose {
		logOut = cmd.ErrOrStderr()
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if f.live {
		return runLiveDemo(ctx, cmd, f, log)
	}

	dir, err := os.MkdirTemp("", "swarmcast-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	began := time.Now()
	fmt.Fprintf(out, "starting coordinator, 1 origin, %d edges on 127.0.0.1; packaging %d videos...\n", f.edges, f.videos)
	net, err := testnet.Start(ctx, testnet.Config{
		Dir: dir, Edges: f.edges, Videos: f.videos, Seed: f.seed, Log: log,
		// 1 s heartbeats: a killed edge leaves lookups within 3 s, and a
		// busy 2-core machine running 40 nodes does not drop live ones.
		HeartbeatInterval: time.Second,
		GrantPoints:       1000,
		SettleInterval:    10 * time.Second,
		Fault:             testnet.ByzantineFaults(f.byzantine),
	})
	if err != nil {
		return err
	}
	defer net.Close()
	fmt.Fprintf(out, "network up in %.1fs: coordinator %s, origin %s\n", time.Since(began).Seconds(), net.CoordinatorURL, net.Origins[0].Server.Advertise)

	// A gateway on the first honest edge's player, for any HLS player.
	gwNode := net.Edges()[0]
	gw, err := httpserve.Listen(ctx, "127.0.0.1:0", "", gwNode.Viewer.Handler(), log)
	if err != nil {
		return err
	}
	defer gw.Close()
	announceGateway(gwNode.Viewer, gw.Advertise, cmd.ErrOrStderr()) // its account's video page plays through it
	fmt.Fprintf(out, "play: %s/videos/%s/master.m3u8\n", gw.Advertise, net.Videos[0])
	fmt.Fprintf(out, "      (open with ffplay, vlc or mpv; catalogue at %s/)\n", gw.Advertise)
	admin := net.AdminCredentials()
	fmt.Fprintf(out, "dashboard: %s%s   (log in as %s / %s)\n", net.CoordinatorURL, wire.PageAdmin, admin.Username, admin.Password)

	var plays, failed atomic.Int64
	w := testnet.Workload{
		Viewers:      f.viewers,
		Duration:     f.duration,
		JoinInterval: min(5*time.Second, f.duration/time.Duration(2*max(1, f.viewers))),
		Zipf:         f.zipf,
		Speed:        f.speed,
		Churn:        f.churn,
		Seed:         uint64(f.seed),
		OnPlay: func(r testnet.PlayResult) {
			plays.Add(1)
			if r.Err != nil {
				failed.Add(1)
			}
		},
	}
	fmt.Fprintf(out, "workload: %d viewers join every %s, Zipf %.2g over %d videos, %.0fx speed, churn %.0f%%/min, byzantine %.0f%%, for %s\n",
		min(f.viewers, f.edges), w.JoinInterval, f.zipf, f.videos, f.speed, 100*f.churn, 100*f.byzantine, f.duration)

	progressDone := make(chan struct{})
	progressStopped := make(chan struct{})
	go func() {
		defer close(progressStopped)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				s := net.Coordinator.Stats()
				fmt.Fprintf(out, "  t=%3.0fs  plays done %d (failed %d)  edges alive %d  origin sent %.1f MB  bad-shard reports %d\n",
					time.Since(start).Seconds(), plays.Load(), failed.Load(), s.AliveEdges, float64(net.OriginBytes())/1e6, s.BadShards)
			}
		}
	}()
	rep, _ := net.RunWorkload(ctx, w)
	close(progressDone)
	<-progressStopped

	printDemoReport(out, rep)
	if f.report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := writeFileAtomic(f.report, append(b, '\n')); err != nil {
			return fmt.Errorf("write --report: %w", err)
		}
	}
	if f.linger > 0 && ctx.Err() == nil {
		fmt.Fprintf(out, "lingering %s: play: %s/videos/%s/master.m3u8\n", f.linger, gw.Advertise, net.Videos[0])
		select {
		case <-ctx.Done():
		case <-time.After(f.linger):
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	// Stopping the edges settles the orders they still hold.
	net.StopEdges()
	points, settled, err := net.Settled(context.Background())
	if err != nil {
		return fmt.Errorf("read settlements: %w", err)
	}
	fmt.Fprintf(out, "settled: %.1f MB of signed orders, %d points credited to edge accounts\n", float64(settled)/1e6, points)
	fromEdges, fromOrigins := net.Coordinator.Accounting().AuditBytes()
	var served int64
	for _, e := range net.Edges() {
		served += e.Edge.BytesServed()
	}
	if served > 0 {
		fmt.Fprintf(out, "audits: %.2f MB fetched from edges (+%.2f MB from the origin), %.2f%% of the %.1f MB edges served\n",
			float64(fromEdges)/1e6, float64(fromOrigins)/1e6, 100*float64(fromEdges+fromOrigins)/float64(served), float64(served)/1e6)
	}
	if rep.PlaysFailed > 0 {
		return fmt.Errorf("%d plays failed (first error: %s)", rep.PlaysFailed, rep.FirstError)
	}
	if rep.PlaysCompleted == 0 {
		return fmt.Errorf("no play completed")
	}
	return nil
}

func printDemoReport(out io.Writer, r testnet.Report) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nresult\tvalue")
	fmt.Fprintf(tw, "origin bytes (to players and edges, prefetch included)\t%d (%.1f MB)\n", r.OriginBytes, float64(r.OriginBytes)/1e6)
	fmt.Fprintf(tw, "edge bytes (to players)\t%d (%.1f MB)\n", r.EdgeBytes, float64(r.EdgeBytes)/1e6)
	fmt.Fprintf(tw, "offload (1 - origin / delivered)\t%.1f%%\n", 100*r.Offload)
	fmt.Fprintf(tw, "startup p50 / p95\t%.0f ms / %.0f ms\n", r.StartupP50MS, r.StartupP95MS)
	fmt.Fprintf(tw, "rebuffering ratio\t%.2f%%\n", 100*r.RebufferRatio)
	fmt.Fprintf(tw, "bad shards caught\t%d\n", r.BadShardsDetected)
	fmt.Fprintf(tw, "plays completed / failed\t%d / %d\n", r.PlaysCompleted, r.PlaysFailed)
	if r.PlaysAborted > 0 || r.EdgesKilled > 0 {
		fmt.Fprintf(tw, "edges killed / plays cut short with their node\t%d / %d\n", r.EdgesKilled, r.PlaysAborted)
	}
	tw.Flush()
}

// writeFileAtomic writes via a temp file and rename so a reader never sees
// half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
