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
	ingest, err := live.New(live.Config{Store: st, Coordinator: wire.NewCoordinatorClient(csrv.URL, csrv.Client()).AsNode(signer),
		Origin: originID.ID, Publisher: originID.Key, Resume: time.Minute, FFmpeg: ffmpeg, Signer: signer, Registry: prometheus.NewRegistry()})
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
	return &realNetwork{coord: anon, admin: admin, ingest: ingest, origin: osrv, rtmp: ln.Addr().String(), ffmpeg: ffmpeg}
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
