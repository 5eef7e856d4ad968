package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// runLiveDemo is demo --live: a live channel published over RTMP by real
// ffmpeg (the test source with a burned-in clock), fanned out through
// relays to edges whose players watch it; prints the live playlist and,
// at the end, the live figures.
func runLiveDemo(ctx context.Context, cmd *cobra.Command, f demoFlags, log *slog.Logger) error {
	out := cmd.OutOrStdout()
	if f.relays < 0 {
		return fmt.Errorf("--relays %d: want 0 or more", f.relays)
	}
	duration := f.duration
	if !cmd.Flags().Changed("duration") {
		duration = 60 * time.Second
	}
	dir, err := os.MkdirTemp("", "swarmcast-demo-live-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	began := time.Now()
	fmt.Fprintf(out, "starting coordinator, 1 origin (live: RTMP + HLS push), %d relays, %d edges on 127.0.0.1...\n", f.relays, f.edges)
	stats := &testnet.LiveStats{}
	net, err := testnet.Start(ctx, testnet.Config{
		Dir: dir, Edges: f.edges, Relays: f.relays, Videos: 1, Seed: f.seed, Log: log,
		HeartbeatInterval: time.Second, GrantPoints: 1000, AuditInterval: -1,
		Live: true, LiveLadder: testnet.DefaultLiveLadder, OnLiveServable: stats.Record,
	})
	if err != nil {
		return err
	}
	defer net.Close()
	fmt.Fprintf(out, "network up in %.1fs: coordinator %s, origin %s, RTMP %s\n", time.Since(began).Seconds(), net.CoordinatorURL, net.Origins[0].Server.Advertise, net.Origins[0].RTMP)
	admin := net.AdminCredentials()
	fmt.Fprintf(out, "dashboard: %s%s   (log in as %s / %s)\n", net.CoordinatorURL, wire.PageAdmin, admin.Username, admin.Password)
	w := testnet.LiveWorkload{
		Viewers: f.viewers, Duration: duration, JoinInterval: min(time.Second, duration/time.Duration(4*max(1, f.viewers))),
		KillRelayAfter: f.killRelay, Stats: stats,
		OnReady: func(ch wire.ChannelCreated, playURL string) {
			fmt.Fprintf(out, "channel %s published over RTMP by ffmpeg (testsrc2, burned-in clock, 440 Hz tone) for %s\n", ch.Channel.ID, duration)
			fmt.Fprintf(out, "play: %s\n", playURL)
			gw, _, _ := strings.Cut(playURL, "/live/")
			fmt.Fprintf(out, "      (open with ffplay, vlc or mpv; the player's live metrics at %s%s)\n", gw, wire.PathMetrics)
		},
	}
	fmt.Fprintf(out, "workload: %d viewers join every %s and watch the live edge; relay killed after %s\n", min(f.viewers, f.edges), w.JoinInterval, f.killRelay)
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
				p95, n := stats.Percentile(95)
				fmt.Fprintf(out, "  t=%3.0fs  live segments servable %d  glass-to-glass p95 %.2fs\n", time.Since(start).Seconds(), n, p95.Seconds())
			}
		}
	}()
	rep, err := net.RunLive(ctx, w)
	close(progressDone)
	<-progressStopped
	if err != nil {
		return err
	}
	printLiveReport(out, rep)
	if f.report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := writeFileAtomic(f.report, append(b, '\n')); err != nil {
			return fmt.Errorf("write --report: %w", err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	if rep.PlaysFailed > 0 {
		return fmt.Errorf("%d live plays failed (first error: %s)", rep.PlaysFailed, rep.FirstError)
	}
	return nil
}

func printLiveReport(out io.Writer, r testnet.LiveReport) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlive result\tvalue")
	fmt.Fprintf(tw, "segments published\t%d\n", r.SegmentsPublished)
	fmt.Fprintf(tw, "glass-to-glass p50 / p95 (servable + hold-back)\t%.0f ms / %.0f ms\n", r.LiveLatencyP50MS, r.LiveLatencyP95MS)
	fmt.Fprintf(tw, "offload (1 - origin / delivered)\t%.1f%%\n", 100*r.Offload)
	fmt.Fprintf(tw, "origin copies per segment (all renditions)\t%.2f\n", r.OriginCopiesPerSegment)
	fmt.Fprintf(tw, "rebuffering ratio\t%.2f%%\n", 100*r.RebufferRatio)
	fmt.Fprintf(tw, "plays / failed\t%d / %d\n", r.Plays, r.PlaysFailed)
	if r.RelaysKilled > 0 {
		fmt.Fprintf(tw, "relays killed mid-stream\t%d\n", r.RelaysKilled)
	}
	tw.Flush()
}
