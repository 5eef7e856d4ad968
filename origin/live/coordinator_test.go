package live_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/origin"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// realNetwork is a real coordinator (SQLite) and a real origin running
// the live ingest, wired as cmd/swarmcast wires them, on 127.0.0.1.
type realNetwork struct {
	coord  *wire.CoordinatorClient // anonymous
	admin  *wire.CoordinatorClient // the admin's session
	ingest *live.Ingest
	origin *httptest.Server
	rtmp   string
	ffmpeg string
	store  *content.Store
	// ingestConfig is the ingest's configuration: a restarted origin's
	// ingest is live.New(ingestConfig) on the same store.
	ingestConfig live.Config
}

func newRealNetwork(t *testing.T) *realNetwork {
	t.Helper()
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	coordID := identity.New()
	db, err := coordinatordb.OpenConfig(ctx, "sqlite:"+filepath.Join(t.TempDir(), "coordinator.db"), coordinatordb.Config{
		CoordinatorKeys: []ed25519.PublicKey{coordID.Key.Public().(ed25519.PublicKey)},
		Password:        coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
		Reputation:      coordinatordb.ReputationConfig{InitialAlpha: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounting.BootstrapAdmin(ctx, db, "root", "correct-horse-battery-9", time.Now()); err != nil {
		t.Fatal(err)
	}
	originID := identity.New()
	c, err := coordinator.New(coordinator.Config{Seed: 1, Store: db, Log: slog.New(slog.DiscardHandler), OriginKeys: []wire.NodeID{originID.ID},
		HeartbeatInterval: time.Second,
		Accounting:        accounting.Config{Identity: coordID, AuditInterval: -1, LoginThrottle: accounting.LoginThrottle{ClientBurst: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	csrv := httptest.NewServer(c.Handler())
	coordDone := make(chan struct{})
	go func() { defer close(coordDone); _ = c.Run(ctx) }()

	anon := wire.NewCoordinatorClient(csrv.URL, csrv.Client())
	login, err := anon.Login(ctx, wire.Credentials{Username: "root", Password: "correct-horse-battery-9"})
	if err != nil {
		t.Fatal(err)
	}
	admin := wire.NewCoordinatorClient(csrv.URL, csrv.Client())
	admin.Token = login.Token

	st, err := content.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signer := wire.NewNodeSigner(originID.Key, nil)
	icfg := live.Config{Store: st, Coordinator: wire.NewCoordinatorClient(csrv.URL, csrv.Client()).AsNode(signer),
		Origin: originID.ID, Publisher: originID.Key, Resume: time.Minute, FFmpeg: ffmpeg, Signer: signer, Reauth: 2 * time.Second}
	cfg := icfg
	cfg.Registry = prometheus.NewRegistry()
	ingest, err := live.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o, err := origin.New(origin.Config{Store: st, Identity: originID, Coordinator: csrv.URL, Live: ingest})
	if err != nil {
		t.Fatal(err)
	}
	osrv := httptest.NewServer(o.Handler())
	o.SetAdvertise(osrv.URL)
	originDone := make(chan struct{})
	go func() { defer close(originDone); _ = o.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rtmpDone := make(chan struct{})
	go func() { defer close(rtmpDone); _ = ingest.ServeRTMP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-rtmpDone
		<-originDone
		<-coordDone
		ingest.Close()
		osrv.Close()
		csrv.Close()
		db.Close()
	})
	// The origin is registered once its own client may ask.
	cc := wire.NewCoordinatorClient(csrv.URL, csrv.Client()).AsNode(signer)
	waitUntil(t, "the origin registered", func() bool {
		_, err := cc.AuthorizeIngest(ctx, "sk_probe")
		var ae *wire.APIError
		return errorsAs(err, &ae) && ae.Status == http.StatusForbidden && !contains(ae.Message, "not an allowed origin") && !contains(ae.Message, "register")
	})
	return &realNetwork{coord: anon, admin: admin, ingest: ingest, origin: osrv, rtmp: ln.Addr().String(), ffmpeg: ffmpeg, store: st, ingestConfig: icfg}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func source(seconds string) []string {
	return []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", seconds, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-c:a", "aac"}
}

func publish(t *testing.T, ffmpeg string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
}

// TestWithTheRealCoordinator: RTMP publish, drop and resume, HLS push, a
// wrong key, and the seal, against the real coordinator: it takes every
// entry (it verifies signatures and chaining), the channel states follow,
// the recording is published, and the origin serves the chain's shards
// verifying against the entries the coordinator hands out.
func TestWithTheRealCoordinator(t *testing.T) {
	n := newRealNetwork(t)
	ctx := context.Background()
	created, err := n.admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "rtmp-news"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Channel.ID

	// A wrong key publishes nothing.
	wrong := exec.Command(n.ffmpeg, append(source("1"), "-f", "flv", "rtmp://"+n.rtmp+"/live/sk_wrong_key")...)
	if out, err := wrong.CombinedOutput(); err == nil {
		t.Fatalf("a wrong key published: %s", out)
	}
	if info, _ := n.coord.Channel(ctx, id); info.Head != -1 || info.Chain != (content.VideoID{}) {
		t.Fatalf("a wrong key changed the channel: %+v", info)
	}

	url := "rtmp://" + n.rtmp + "/live/" + created.StreamKey
	head := int64(-1)
	for range 2 { // publish, drop, resume
		publish(t, n.ffmpeg, append(source("2.5"), "-f", "flv", url)...)
		// This run's segments are in and its drop reported (the origin
		// reads 2 s of a publisher before it attaches, so ffmpeg may exit
		// before the origin is done with it).
		waitUntil(t, "the channel waiting after this run", func() bool {
			info, err := n.coord.Channel(ctx, id)
			return err == nil && info.State == wire.ChannelWaiting && info.Head >= head+2
		})
		info, _ := n.coord.Channel(ctx, id)
		head = info.Head
	}
	b, err := n.ingest.End(id)
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.coord.Channel(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != wire.ChannelEnded || !slices.Contains(info.Recordings, b.Recording) || info.Chain != b.Chain || info.Head < 3 {
		t.Fatalf("coordinator's channel %+v, want ended with recording %s of chain %s", info, b.Recording, b.Chain)
	}
	// The coordinator's entries, verified as a viewer verifies them.
	gb, err := n.coord.LiveGenesis(ctx, b.Chain)
	if err != nil {
		t.Fatal(err)
	}
	g, err := content.DecodeLiveGenesis(gb)
	if err != nil || g.ID() != b.Chain {
		t.Fatalf("genesis: %v", err)
	}
	chain := content.NewLiveChain(g)
	raw, err := n.coord.LiveEntries(ctx, b.Chain, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	discs := 0
	for _, r := range raw {
		e, err := content.DecodeLiveEntry(r, g, b.Chain)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.Append(e); err != nil {
			t.Fatal(err)
		}
		if e.Discontinuity {
			discs++
		}
	}
	if int64(len(raw)) != info.Head+1 || discs != 1 {
		t.Fatalf("%d entries (head %d), %d discontinuities: want every segment and one resume", len(raw), info.Head, discs)
	}
	m := chain.Manifest()
	for seg := range len(raw) {
		ref := content.ShardRef{SegmentRef: content.SegmentRef{Video: b.Chain, Segment: seg}, Shard: 7}
		resp, err := http.Get(wire.ShardURL(n.origin.URL, ref))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		msg, err := content.DecodeShardMessage(body)
		if err != nil {
			t.Fatalf("shard %v: %s %v", ref, resp.Status, err)
		}
		if err := content.VerifyShard(m, 0, seg, msg.Shard); err != nil {
			t.Fatalf("shard %v does not verify against the coordinator's entries: %v", ref, err)
		}
	}

	// HLS push on a second channel.
	hls, err := n.admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "hls-news"})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, n.ffmpeg, append(source("2.5"), "-f", "hls", "-hls_time", "1", "-method", "PUT", n.origin.URL+"/live/"+hls.StreamKey+"/index.m3u8")...)
	waitUntil(t, "the HLS channel waiting (the pushed ENDLIST)", func() bool {
		info, err := n.coord.Channel(ctx, hls.Channel.ID)
		return err == nil && info.State == wire.ChannelWaiting
	})
	hb, err := n.ingest.End(hls.Channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	hinfo, err := n.coord.Channel(ctx, hls.Channel.ID)
	if err != nil || hinfo.State != wire.ChannelEnded || hinfo.Head < 1 || !slices.Contains(hinfo.Recordings, hb.Recording) {
		t.Fatalf("HLS channel %+v (%v), want ended with ≥ 2 segments and the recording", hinfo, err)
	}
}

func errorsAs(err error, target **wire.APIError) bool { return errors.As(err, target) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestRestartReloadsIntactChainsOnly: the ingest is closed while two
// channels wait for their publishers (an origin process stopping without
// sealing) and a new one starts on the same store: it reloads the chain
// whose segments are as their entries signed them, at the same head and
// waiting, and seals it into a recording of every segment when told to
// end; the chain with a segment altered on disk is not reloaded, and the
// coordinator's view of it is unchanged.
func TestRestartReloadsIntactChainsOnly(t *testing.T) {
	n := newRealNetwork(t)
	ctx := context.Background()
	type published struct {
		id    wire.ChannelID
		chain content.VideoID
		head  int64
	}
	var chs []published
	for _, name := range []string{"intact", "altered"} {
		created, err := n.admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		publish(t, n.ffmpeg, append(source("2.5"), "-f", "flv", "rtmp://"+n.rtmp+"/live/"+created.StreamKey)...)
		var info wire.ChannelInfo
		waitUntil(t, name+" waiting", func() bool {
			info, err = n.coord.Channel(ctx, created.Channel.ID)
			return err == nil && info.State == wire.ChannelWaiting && info.Head >= 1
		})
		chs = append(chs, published{created.Channel.ID, info.Chain, info.Head})
	}
	n.ingest.Close()
	altered := filepath.Join(n.store.Dir(), "live", chs[1].chain.String(), "0", "0.ts.enc")
	b, err := os.ReadFile(altered)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(altered, b, 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := n.ingestConfig
	cfg.Registry = prometheus.NewRegistry()
	restarted, err := live.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	waitUntil(t, "the intact chain reloaded and waiting", func() bool {
		b, ok := restarted.Broadcast(chs[0].id)
		return ok && b.Chain == chs[0].chain && b.State == wire.ChannelWaiting && b.Head == chs[0].head
	})
	if b, ok := restarted.Broadcast(chs[1].id); ok {
		t.Fatalf("the chain with an altered segment was reloaded: %+v", b)
	}
	if info, err := n.coord.Channel(ctx, chs[1].id); err != nil || info.Chain != chs[1].chain || info.Head != chs[1].head || info.State != wire.ChannelWaiting {
		t.Fatalf("the altered chain's channel changed: %+v (%v)", info, err)
	}
	if _, ok := restarted.Manifest(chs[0].chain); !ok {
		t.Fatal("the reloaded chain's segments are not served")
	}
	sealed, err := restarted.End(chs[0].id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.store.Manifest(sealed.Recording)
	if err != nil || len(m.Renditions[0].Segments) != int(chs[0].head+1) {
		t.Fatalf("the reloaded chain's recording (%v): want %d segments", err, chs[0].head+1)
	}
	info, err := n.coord.Channel(ctx, chs[0].id)
	if err != nil || info.State != wire.ChannelEnded || !slices.Contains(info.Recordings, sealed.Recording) {
		t.Fatalf("the reloaded chain's channel after the seal: %+v (%v)", info, err)
	}
}

// TestRotatedKeyCutsThePublisherOff: the owner rotates the stream key while
// an RTMP publisher is live; the origin's next key check (Reauth, 2 s here)
// refuses the old key and cuts the publisher off, the broadcast waits, and
// the publisher back with the new key continues the same chain with one
// discontinuity.
func TestRotatedKeyCutsThePublisherOff(t *testing.T) {
	n := newRealNetwork(t)
	ctx := context.Background()
	created, err := n.admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "rotated"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Channel.ID
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	old := exec.CommandContext(pctx, n.ffmpeg, append(source("40"), "-f", "flv", "rtmp://"+n.rtmp+"/live/"+created.StreamKey)...)
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- old.Wait() }() // owned: the publisher exits when cut off, or at pctx's end
	var first wire.ChannelInfo
	waitUntil(t, "the first segments", func() bool {
		first, err = n.coord.Channel(ctx, id)
		return err == nil && first.State == wire.ChannelPublishing && first.Head >= 1
	})
	rotated, err := n.admin.RotateStreamKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rotatedAt := time.Now()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the publisher with the rotated-away key was not cut off in 30 s")
	}
	if cut := time.Since(rotatedAt); cut > 20*time.Second {
		t.Errorf("the old key was cut off %v after the rotation, want within a few Reauth intervals", cut)
	}
	var waiting wire.ChannelInfo
	waitUntil(t, "the broadcast waiting", func() bool {
		waiting, err = n.coord.Channel(ctx, id)
		return err == nil && waiting.State != wire.ChannelPublishing
	})
	if waiting.Chain != first.Chain {
		t.Fatalf("after the cut the channel is %+v, want chain %s", waiting, first.Chain)
	}
	// The old key publishes nothing now.
	if out, err := exec.Command(n.ffmpeg, append(source("1"), "-f", "flv", "rtmp://"+n.rtmp+"/live/"+created.StreamKey)...).CombinedOutput(); err == nil {
		t.Fatalf("the rotated-away key published: %s", out)
	}
	publish(t, n.ffmpeg, append(source("2.5"), "-f", "flv", "rtmp://"+n.rtmp+"/live/"+rotated.StreamKey)...)
	var resumed wire.ChannelInfo
	waitUntil(t, "the resumed segments", func() bool {
		resumed, err = n.coord.Channel(ctx, id)
		return err == nil && resumed.State == wire.ChannelWaiting && resumed.Head >= waiting.Head+2
	})
	if resumed.Chain != first.Chain {
		t.Fatalf("the new key started chain %s, want the same chain %s", resumed.Chain, first.Chain)
	}
	gb, err := n.coord.LiveGenesis(ctx, first.Chain)
	if err != nil {
		t.Fatal(err)
	}
	g, err := content.DecodeLiveGenesis(gb)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := n.coord.LiveEntries(ctx, first.Chain, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	discs := 0
	for _, r := range raw {
		e, err := content.DecodeLiveEntry(r, g, first.Chain)
		if err != nil {
			t.Fatal(err)
		}
		if e.Discontinuity {
			discs++
		}
	}
	if discs != 1 {
		t.Fatalf("%d discontinuities in %d entries, want the one resume", discs, len(raw))
	}
}
