package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/relay"
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
	btrCfg, err := liveDemoBTR(cmd, &f, &duration)
	if err != nil {
		return err
	}
	var relayFaults []relay.Fault
	if btrCfg != nil && f.faults > 0 {
		// The relay faults run beside the worker faults (the relays' judge
		// is the coordinator, the workers' the origin): one relay per
		// fault, plus one honest relay so the trees keep a relay level.
		relayFaults = testnet.PlanRelayFaults(f.faults, testnet.FaultOnsets(btrCfg.Workers), uint64(f.seed))
		if need := len(relayFaults) + 1; f.relays < need {
			if cmd.Flags().Changed("relays") {
				return fmt.Errorf("--relays %d is too few for %d faults of every kind: the relay faults need %d relays (one each, and an honest one)", f.relays, f.faults, need)
			}
			f.relays = need
		}
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
		Live: true, LiveLadder: testnet.DefaultLiveLadder, OnLiveServable: stats.Record, BTR: btrCfg, RelayFaults: relayFaults,
		OnLivePartServable: stats.RecordPart,
	})
	if err != nil {
		return err
	}
	defer net.Close()
	fmt.Fprintf(out, "network up in %.1fs: coordinator %s, origin %s, RTMP %s\n", time.Since(began).Seconds(), net.CoordinatorURL, net.Origins[0].Server.Advertise, net.Origins[0].RTMP)
	if btrCfg != nil {
		printBTRPlan(out, net, btrCfg)
	}
	admin := net.AdminCredentials()
	fmt.Fprintf(out, "dashboard: %s%s   (log in as %s / %s)\n", net.CoordinatorURL, wire.PageAdmin, admin.Username, admin.Password)
	var playsMu sync.Mutex
	var plays []testnet.LivePlay
	var channel wire.ChannelID
	w := testnet.LiveWorkload{
		Viewers: f.viewers, Duration: duration, JoinInterval: min(time.Second, duration/time.Duration(4*max(1, f.viewers))),
		KillRelayAfter: f.killRelay, Stats: stats, PartMS: f.partMS(),
		OnPlay: func(_ int, p testnet.LivePlay) {
			playsMu.Lock()
			plays = append(plays, p)
			playsMu.Unlock()
		},
		OnReady: func(ch wire.ChannelCreated, playURL string) {
			channel = ch.Channel.ID
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
	full := liveDemoReport{LiveReport: rep}
	if btrCfg != nil && channel != "" && ctx.Err() == nil {
		info, err := net.Admin.Channel(ctx, channel)
		if err != nil {
			return err
		}
		playsMu.Lock()
		got := slices.Clone(plays)
		playsMu.Unlock()
		br, err := net.BTRFaults(ctx, info.Chain, got, 6, uint64(f.seed))
		if err != nil {
			return err
		}
		full.BTRFaultReport = &br
		printBTRReport(out, br)
	}
	if f.report != "" {
		b, _ := json.MarshalIndent(full, "", "  ")
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
	if br := full.BTRFaultReport; br != nil {
		switch {
		case br.FaultsDetected != br.FaultsInjected:
			return fmt.Errorf("btr: %d of %d injected faults detected (see the faults table)", br.FaultsDetected, br.FaultsInjected)
		case br.FalseAccusations > 0:
			return fmt.Errorf("btr: %d accusations or exclusions of honest workers or relays", br.FalseAccusations)
		case br.WrongBytesPlayed > 0:
			return fmt.Errorf("btr: %d wrong bytes reached a player", br.WrongBytesPlayed)
		case br.RecoveryMaxMS > br.RecoveryBoundMS:
			return fmt.Errorf("btr: recovery took %.0f ms, over the bound R = %.0f ms", br.RecoveryMaxMS, br.RecoveryBoundMS)
		}
	}
	return nil
}

// liveDemoReport is demo --live's --report JSON: the live figures and, with
// --btr-f, BTR's.
type liveDemoReport struct {
	testnet.LiveReport
	*testnet.BTRFaultReport
}

// The fault plan's shape: faults begin after faultLead segments (the
// players have joined), gap segments apart (gap ≥ R/T + faultGapSlack, so
// each culprit is out before the next fault), and the broadcast runs
// faultTail past the last recovery.
const (
	faultLead     = 6
	faultGapSlack = 2
	faultTail     = 4 * time.Second
)

// liveDemoBTR checks --btr-f and --faults and returns the network's BTR
// configuration (nil without BTR), lengthening an unset --duration to
// what the faults need.
func liveDemoBTR(cmd *cobra.Command, f *demoFlags, duration *time.Duration) (*testnet.BTRConfig, error) {
	if f.faults < 0 || f.btrF < 0 {
		return nil, fmt.Errorf("--faults %d --btr-f %d: want 0 or more", f.faults, f.btrF)
	}
	if f.faults > 0 && f.btrF == 0 {
		if cmd.Flags().Changed("btr-f") {
			return nil, errors.New("--faults needs --btr-f 1 or more: the faults are injected into the BTR workers")
		}
		f.btrF = 1
	}
	if f.btrF == 0 {
		return nil, nil
	}
	deadline := f.btrDeadline
	if deadline == 0 {
		// D = X from the transcode measured here and now (docs/LIVE.md: D
		// and X must be set from the measured transcode time): 3× the
		// slowest of f+1 concurrent runs plus 500 ms, within [2 s, 8 s].
		wall, err := testnet.MeasureLiveTranscode(cmd.Context(), testnet.DefaultLiveLadder, f.btrF+1)
		if err != nil {
			return nil, err
		}
		need := 3*wall + 500*time.Millisecond
		deadline = min(max(need, 2*time.Second), 8*time.Second).Round(100 * time.Millisecond)
		fmt.Fprintf(cmd.OutOrStdout(), "BTR: %d concurrent transcodes of a 1 s segment took %v here: replica deadline D = X = %v (set --btr-deadline to choose)\n", f.btrF+1, wall.Round(time.Millisecond), deadline)
		if need > deadline {
			// The cap keeps R and the run's length bounded; below the
			// measurement, honest workers may miss D (reported apart from
			// false accusations: honest_over_bound).
			fmt.Fprintf(cmd.OutOrStdout(), "BTR: warning: this machine needs D ≈ %v, more than the demo's cap %v: honest workers may miss D (set --btr-deadline %v to hold the bound)\n", need.Round(100*time.Millisecond), deadline, need.Round(100*time.Millisecond))
		}
	} else if deadline < 0 {
		return nil, fmt.Errorf("--btr-deadline %v: want a positive duration (0: measured)", deadline)
	}
	p := testnet.BTRDemoParams(deadline)
	gap := uint64((p.Bound()+p.Segment-1)/p.Segment) + faultGapSlack
	plan := testnet.PlanBTRFaults(f.btrF, f.faults, faultLead, gap, uint64(f.seed))
	if f.faults == 0 {
		plan = make([]worker.Fault, f.btrF+2) // f+1 active and one spare, honest
	}
	need := time.Duration(testnet.FaultPlanSegments(plan, gap))*p.Segment + faultTail
	if f.faults > 0 && *duration < need {
		if cmd.Flags().Changed("duration") {
			return nil, fmt.Errorf("--duration %v is too short for %d faults of every kind at R = %v: want at least %v (or leave it unset)", *duration, f.faults, p.Bound(), need)
		}
		*duration = need
	}
	return &testnet.BTRConfig{F: f.btrF, Workers: plan, Params: p}, nil
}

func printBTRPlan(out io.Writer, n *testnet.Network, c *testnet.BTRConfig) {
	p := n.BTRParams()
	fmt.Fprintf(out, "BTR: f = %d, %d workers (%d active per segment, the rest spares), R = %v (T %v, D %v, X %v, W %v)\n",
		c.F, len(c.Workers), c.F+1, p.Bound(), p.Segment, p.ReplicaDeadline, p.Reexec, p.AnswerWindow)
	for i, w := range n.Workers() {
		if w.Fault.Kind != 0 {
			fmt.Fprintf(out, "  fault: worker %d (%s…) %s\n", i, w.Key.String()[:12], w.Fault)
		}
	}
	for i, r := range n.Relays() {
		if r.Fault.Kind != relay.FaultNone {
			fmt.Fprintf(out, "  fault: relay %d (%s…) %s from segment %d\n", i, r.Identity.ID[:12], r.Fault.Kind, r.Fault.From)
		}
	}
}

func printBTRReport(out io.Writer, r testnet.BTRFaultReport) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBTR result\tvalue")
	fmt.Fprintf(tw, "faults injected / detected (channel log)\t%d / %d\n", r.FaultsInjected, r.FaultsDetected)
	fmt.Fprintf(tw, "false accusations\t%d\n", r.FalseAccusations)
	for _, a := range r.FalselyAccused {
		fmt.Fprintf(tw, "  honest, accused:\t%s\n", a)
	}
	if r.HonestOverBound > 0 {
		// Not false: the worker itself missed D (the machine was slower
		// than the parameters say): raise --btr-deadline on this machine.
		fmt.Fprintf(tw, "honest workers over their own bound D (not false: the machine missed D)\t%d\n", r.HonestOverBound)
		for _, a := range r.BoundMissed {
			fmt.Fprintf(tw, "  honest, over D:\t%s\n", a)
		}
	}
	fmt.Fprintf(tw, "recovery max / bound R\t%.0f ms / %.0f ms\n", r.RecoveryMaxMS, r.RecoveryBoundMS)
	fmt.Fprintf(tw, "wrong bytes played (%d segments re-run honestly)\t%d\n", r.SegmentsChecked, r.WrongBytesPlayed)
	fmt.Fprintf(tw, "segments agreed / re-executed / failed\t%.0f / %.0f / %d\n", r.SegmentsAgreed, r.SegmentsReexecuted, r.SegmentsFailed)
	fmt.Fprintf(tw, "per segment: replicas, messages\t%.2f, %.2f\n", r.ReplicasPerSegment, r.MessagesPerSegment)
	fmt.Fprintf(tw, "per segment: worker CPU, judge re-execution CPU\t%.0f ms, %.0f ms\n", r.WorkerCPUMSPerSeg, r.ReexecCPUMSPerSeg)
	tw.Flush()
	if len(r.Faults) > 0 {
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nfault\tfrom\tonset\twant\tdetected as\tswitch at\trecovery")
		for _, o := range r.Faults {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%.0f ms\n", o.Kind, o.From, o.Onset, o.Want, o.DetectedAs, o.SwitchAt, o.RecoveryMS)
		}
		tw.Flush()
	}
}

func printLiveReport(out io.Writer, r testnet.LiveReport) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlive result\tvalue")
	fmt.Fprintf(tw, "segments published\t%d\n", r.SegmentsPublished)
	fmt.Fprintf(tw, "glass-to-glass p50 / p95 (servable + hold-back)\t%.0f ms / %.0f ms\n", r.LiveLatencyP50MS, r.LiveLatencyP95MS)
	fmt.Fprintf(tw, "  p95 with a joining player's first window at its segments' age\t%.0f ms\n", r.LiveLatencySegmentAgeP95MS)
	for _, part := range []string{"entry", "wait", "fetch"} {
		if p := r.LatencyPartsMS[part]; p != nil {
			fmt.Fprintf(tw, "  servable − segment end, part %q p50 / p95\t%.0f ms / %.0f ms\n", part, p["p50"], p["p95"])
		}
	}
	fmt.Fprintf(tw, "offload (1 - origin / delivered)\t%.1f%%\n", 100*r.Offload)
	fmt.Fprintf(tw, "origin copies per segment (all renditions)\t%.2f\n", r.OriginCopiesPerSegment)
	fmt.Fprintf(tw, "  pushed into the trees\t%.2f\n", r.OriginPushCopiesPerSegment)
	for _, cause := range slices.Sorted(maps.Keys(r.OriginCopiesByCause)) {
		fmt.Fprintf(tw, "  to players: %s\t%.2f\n", cause, r.OriginCopiesByCause[cause])
	}
	fmt.Fprintf(tw, "trees: relay levels / relays used / origin children per substream\t%d / %d / %.2f\n", r.TreeRelayLevels, r.TreeRelaysUsed, r.OriginChildrenPerSubstream)
	fmt.Fprintf(tw, "relays at the end: alive / excluded by the judge\t%d / %d\n", r.RelaysAlive, r.RelaysExcluded)
	if r.PartsPublished > 0 {
		fmt.Fprintf(tw, "low latency: part glass-to-glass p50 / p95 (verified + PART-HOLD-BACK %.0f ms)\t%.0f ms / %.0f ms\n", r.PartHoldBackMS, r.LivePartLatencyP50MS, r.LivePartLatencyP95MS)
		fmt.Fprintf(tw, "  parts verified / signed statements per second per chain\t%d / %.1f\n", r.PartsPublished, r.SignaturesPerSecond)
		fmt.Fprintf(tw, "  origin part copies per segment (origin -> gateways, all renditions)\t%.2f\n", r.OriginPartCopiesPerSegment)
	}
	fmt.Fprintf(tw, "rebuffering ratio\t%.2f%%\n", 100*r.RebufferRatio)
	fmt.Fprintf(tw, "plays / failed\t%d / %d\n", r.Plays, r.PlaysFailed)
	if r.RelaysKilled > 0 {
		fmt.Fprintf(tw, "relays killed mid-stream\t%d\n", r.RelaysKilled)
	}
	tw.Flush()
}

// partMS is the demo channel's part target: defaultPartMS with
// --low-latency, else 0 (standard HLS).
func (f demoFlags) partMS() int {
	if f.lowLatency {
		return defaultPartMS
	}
	return 0
}
