package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// A real commission end to end: three `swarmcast worker`s, one started
// with --fault commission (it signs the digest of spoiled frames), take the origin's
// signed tasks; the origin's judge re-executes, packages its own ladder and
// posts the exclusion to the coordinator, which re-checks it against the
// chain's origin key and the evidence before it records it; anyone reads
// it back and an independent verifier re-running ffmpeg accepts the proof.
func TestBTRCommissionThroughTheCoordinator(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Videos: 0, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	admin := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	login, err := admin.Login(ctx, n.AdminCredentials())
	if err != nil {
		t.Fatal(err)
	}
	admin.Token = login.Token

	// The origin (the chain's judge): allowed, registered, a channel's key
	// authorized, its chain started.
	id := identity.New()
	if err := admin.AllowOrigin(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	signer := wire.NewNodeSigner(id.Key, nil)
	oc := wire.NewCoordinatorClient(n.CoordinatorURL, nil).AsNode(signer)
	if _, err := oc.Register(ctx, wire.RegisterRequest{NodeID: id.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	created, err := admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "btr"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	key, err := content.NewContentKey()
	if err != nil {
		t.Fatal(err)
	}
	rc := live.Recipe{Rungs: live.LadderFor(content.DefaultLadder, 320, 180), Audio: true}
	g := &content.LiveGenesis{Channel: string(created.Channel.ID), Title: "btr", Params: content.DefaultLiveParams(), KeyID: key.ID(),
		TargetDuration: 1_000_000, Started: time.Now().UnixMicro(),
		Renditions: []content.LiveRendition{{Name: rc.Rungs[0].Name, Bandwidth: 400_000, Width: uint16(rc.Rungs[0].Width), Height: uint16(rc.Rungs[0].Height), Codecs: rc.Codecs()}}}
	g.Sign(id.Key)
	if err := oc.StartChain(ctx, g.Encode(), key); err != nil {
		t.Fatal(err)
	}
	chain := g.ID()

	// Three workers run as the CLI runs them: an honest one, one injected
	// with a commission fault (it signs spoiled frames), and an honest spare.
	var urls []string
	for _, fault := range [][]string{nil, {"--fault", "commission", "--fault-from", "0"}, nil} {
		out := runCommand(t, append([]string{"worker", "--listen", "127.0.0.1:0", "--allow-origin", string(id.ID)}, fault...)...)
		urls = append(urls, out.await(t, regexp.MustCompile(`serving at (http://\S+)`)))
	}
	ws, err := worker.Discover(ctx, wire.NewHTTPClient(), urls)
	if err != nil {
		t.Fatal(err)
	}
	cheat := ws[1]
	src := lavfiSegment(t, ffmpeg, "")
	params := btr.DefaultParams()
	params.ReplicaDeadline, params.Reexec = 4*time.Second, 4*time.Second
	reps, err := worker.NewReplicas(worker.ReplicasConfig{Workers: ws, F: 1, Params: params,
		Signer: signer, Judge: id.Key, FFmpeg: ffmpeg, ChannelLog: oc, Metrics: worker.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	defer reps.Close()
	outs, err := reps.Replicate(ctx, live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	want, err := rc.Transcode(ctx, ffmpeg, src)
	if err != nil {
		t.Fatal(err)
	}
	if btr.LadderDigest(outs) != btr.LadderDigest(want) {
		t.Fatal("the packager did not get the recipe's ladder")
	}

	anon := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	var log wire.BTRLog
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(log.Excluded) == 0; time.Sleep(20 * time.Millisecond) {
		if log, err = anon.BTRLog(ctx, chain); err != nil {
			t.Fatal(err)
		}
	}
	if len(log.Excluded) != 1 || log.Excluded[0].Node != wire.NodeID(cheat.Key.String()) || log.Excluded[0].Kind != "commission" {
		t.Fatalf("the coordinator's log excludes %+v, want the cheat for commission", log.Excluded)
	}
	x, err := btr.DecodeExclusion(log.Statements[len(log.Statements)-1])
	if err != nil {
		t.Fatal(err)
	}
	third := worker.NewReexecutor(ffmpeg, heldSource{sha256.Sum256(src): src}, rc)
	if err := x.Check(btr.KeyOf(id.Key), third); err != nil {
		t.Fatalf("an independent verifier refused the logged proof: %v", err)
	}
}

type heldSource map[content.Hash][]byte

func (h heldSource) Source(in content.Hash) ([]byte, error) {
	if b, ok := h[in]; ok {
		return b, nil
	}
	return nil, context.Canceled
}

// lavfiSegment is 1 s of a test pattern as the origin's cutter makes
// source segments (H.264 + AAC in MPEG-TS from a keyframe); vf filters it.
func lavfiSegment(t *testing.T, ffmpeg, vf string) []byte {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1"}
	if vf != "" {
		args = append(args, "-vf", vf)
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", "pipe:1")
	out, err := exec.Command(ffmpeg, args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The whole live path under BTR with the CLI's processes: `swarmcast origin
// --live --btr-f 1` with two `swarmcast worker`s, a real coordinator and an
// ffmpeg publisher pushing HLS. Every segment the origin publishes was
// agreed by both workers (none re-executed, nobody accused: honest workers
// within D), and the origin's /metrics carry R for its configuration.
func TestOriginLiveWithBTRWorkers(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Videos: 0, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	admin := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	login, err := admin.Login(ctx, n.AdminCredentials())
	if err != nil {
		t.Fatal(err)
	}
	admin.Token = login.Token
	store := t.TempDir()
	id, err := identity.LoadOrCreate(filepath.Join(store, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.AllowOrigin(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for range 2 {
		out := runCommand(t, "worker", "--listen", "127.0.0.1:0", "--allow-origin", string(id.ID))
		urls = append(urls, out.await(t, regexp.MustCompile(`serving at (http://\S+)`)))
	}
	const deadline = 4 * time.Second
	origin := runCommand(t, "origin", "--store", store, "--coordinator", n.CoordinatorURL, "--listen", "127.0.0.1:0", "--live",
		"--btr-f", "1", "--btr-workers", strings.Join(urls, ","), "--btr-deadline", deadline.String())
	originURL := origin.await(t, regexp.MustCompile(`serving at (http://\S+)`))
	created, err := admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "btr-live"})
	if err != nil {
		t.Fatal(err)
	}
	pushCtx, pushDone := context.WithTimeout(ctx, 60*time.Second)
	defer pushDone()
	push := exec.CommandContext(pushCtx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4.5",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-c:a", "aac",
		"-f", "hls", "-hls_time", "1", "-hls_segment_type", "mpegts", "-method", "PUT", wire.LiveIngestHLSURL(originURL, created.StreamKey))
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg HLS push: %v\n%s", err, out)
	}
	metric := func(scrape []byte, name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(scrape)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	var scrape []byte
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		_, scrape = get(t, originURL+wire.PathMetrics)
		if metric(scrape, `swarmcast_origin_btr_segments_accepted_total{how="agreed"}`) >= 4 && metric(scrape, "swarmcast_origin_live_segments_published_total") >= 4 {
			break
		}
	}
	agreed := metric(scrape, `swarmcast_origin_btr_segments_accepted_total{how="agreed"}`)
	if agreed < 4 {
		t.Fatalf("%v segments agreed by both workers, want ≥ 4 of 4.5 s:\n%s", agreed, scrape)
	}
	for _, name := range []string{`swarmcast_origin_btr_segments_accepted_total{how="reexecuted"}`, `swarmcast_origin_btr_accusations_total`,
		`swarmcast_origin_btr_faults_detected_total{kind="omission"}`, `swarmcast_origin_btr_faults_detected_total{kind="timing"}`,
		`swarmcast_origin_btr_faults_detected_total{kind="commission"}`} {
		if v := metric(scrape, name); v > 0 {
			t.Errorf("%s = %v with honest workers, want 0", name, v)
		}
	}
	p := btr.DefaultParams()
	p.ReplicaDeadline, p.Reexec = deadline, deadline
	if got := metric(scrape, "swarmcast_origin_btr_recovery_bound_seconds"); got != p.Bound().Seconds() {
		t.Errorf("R on /metrics %v, want %v", got, p.Bound().Seconds())
	}
	// The publisher is gone: wait (bounded) until the origin saw its HLS
	// session end, so the origin stops with no session open.
	var info wire.ChannelInfo
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if info, err = admin.Channel(ctx, created.Channel.ID); err != nil {
			t.Fatal(err)
		}
		if info.State != wire.ChannelPublishing {
			break
		}
	}
	raws, err := admin.LiveEntries(ctx, info.Chain, 0, 0)
	if err != nil || float64(len(raws)) < agreed {
		t.Fatalf("the coordinator holds %d entries (%v), the judge agreed %v segments", len(raws), err, agreed)
	}
}

// Workers found through the coordinator and paid: two `swarmcast worker`s
// register with the coordinator (allowed keys) and bind to one account;
// `swarmcast origin --live --btr-f 1` without --btr-workers takes them from
// the coordinator's list; every agreed segment's agreement reaches the
// coordinator and credits both workers' account (unsettled, then settled
// after the hold).
func TestOriginFindsRegisteredWorkersAndPays(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	var keyFiles []string
	var workerIDs []wire.NodeID
	for i := range 2 {
		f := filepath.Join(dir, fmt.Sprintf("worker%d.key", i))
		wid, err := identity.LoadOrCreate(f)
		if err != nil {
			t.Fatal(err)
		}
		keyFiles, workerIDs = append(keyFiles, f), append(workerIDs, wid.ID)
	}
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Videos: 0, Log: slog.New(slog.DiscardHandler), WorkerKeys: workerIDs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	admin := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	login, err := admin.Login(ctx, n.AdminCredentials())
	if err != nil {
		t.Fatal(err)
	}
	admin.Token = login.Token
	const password = "worker owner passphrase"
	if _, err := admin.Signup(ctx, wire.Credentials{Username: "workerowner", Password: password}); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	id, err := identity.LoadOrCreate(filepath.Join(store, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.AllowOrigin(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	for _, kf := range keyFiles {
		w := runCommand(t, "worker", "--listen", "127.0.0.1:0", "--allow-origin", string(id.ID), "--coordinator", n.CoordinatorURL,
			"--key", kf, "--user", "workerowner", "--password", password)
		w.await(t, regexp.MustCompile(`registering with (http://\S+)`))
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ws, err := admin.BTRWorkers(ctx)
		if err == nil && len(ws) == 2 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("registered workers %+v %v, want 2", ws, err)
		}
	}
	// D generous for a loaded -race machine: a worker slower than D is
	// (rightly) excluded and its points forfeited, which is not this test.
	const deadline = 10 * time.Second
	origin := runCommand(t, "origin", "--store", store, "--coordinator", n.CoordinatorURL, "--listen", "127.0.0.1:0", "--live",
		"--btr-f", "1", "--btr-deadline", deadline.String())
	originURL := origin.await(t, regexp.MustCompile(`serving at (http://\S+)`))
	created, err := admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "btr-paid"})
	if err != nil {
		t.Fatal(err)
	}
	pushCtx, pushDone := context.WithTimeout(ctx, 60*time.Second)
	defer pushDone()
	push := exec.CommandContext(pushCtx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-t", "3.5",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25",
		"-f", "hls", "-hls_time", "1", "-hls_segment_type", "mpegts", "-method", "PUT", wire.LiveIngestHLSURL(originURL, created.StreamKey))
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg HLS push: %v\n%s", err, out)
	}
	owner := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	ol, err := owner.Login(ctx, wire.Credentials{Username: "workerowner", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	owner.Token = ol.Token
	var info wire.WorkerAccountInfo
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if info, err = owner.AccountWorkers(ctx); err != nil {
			t.Fatal(err)
		}
		if len(info.Workers) == 2 && info.Workers[0].Unsettled >= 3 && info.Workers[1].Unsettled >= 3 {
			break
		}
	}
	if len(info.Workers) != 2 || info.Workers[0].Unsettled < 3 || info.Workers[1].Unsettled < 3 {
		ci, _ := admin.Channel(ctx, created.Channel.ID)
		l, _ := admin.BTRLog(ctx, ci.Chain)
		_, scrape := get(t, originURL+wire.PathMetrics)
		t.Fatalf("the owner's workers %+v: want both credited for ≥ 3 agreed segments; excluded %+v; forfeits %+v\n%s", info.Workers, l.Excluded, info.Forfeits, scrape)
	}
	_, scrape := get(t, originURL+wire.PathMetrics)
	if !regexp.MustCompile(`(?m)^swarmcast_origin_btr_agreements_posted_total [1-9]`).Match(scrape) {
		t.Fatalf("no agreement posted on the origin's /metrics:\n%s", scrape)
	}
	// The publisher is gone: let the origin see its HLS session end.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ci, err := admin.Channel(ctx, created.Channel.ID); err != nil || ci.State != wire.ChannelPublishing {
			break
		}
	}
}
