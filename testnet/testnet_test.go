package testnet

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

func startNet(t testing.TB, cfg Config) *Network {
	t.Helper()
	return StartForTest(t, cfg)
}

// playAll plays video on each node's player concurrently and returns QoE by node.
func playAll(t testing.TB, nodes []*EdgeNode, video content.VideoID, speed float64) []viewer.QoE {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := make([]viewer.QoE, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = nd.Viewer.Play(ctx, video, viewer.PlayOptions{Rendition: -1, Speed: speed})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("player on edge %d: %v", nodes[i].Index, err)
		} else if !out[i].Completed {
			t.Errorf("player on edge %d did not complete: %+v", nodes[i].Index, out[i])
		}
	}
	return out
}

func delivered(qs []viewer.QoE) (edgeBytes, originBytes int64) {
	for _, q := range qs {
		edgeBytes += q.EdgeBytes
		originBytes += q.OriginBytes
	}
	return
}

// waitUntil checks cond every 20 ms until it holds or within has passed,
// and reports whether it held. It waits on state the network exposes, not
// for a guessed duration.
func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.After(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// waitPlacement runs placement rounds on the primary coordinator (besides
// its own loop's) until the edges hold at least want shards in total, or
// the time runs out (then the offload assertion reports the consequence).
// Each round's directives reach the edges with their next heartbeat and are
// fetched after it, so a round gets a few heartbeats to show before the
// next one.
func waitPlacement(n *Network, want int, within time.Duration) {
	stored := func() bool {
		total := 0
		for _, e := range n.AliveEdges() {
			s, _ := e.Edge.Stored()
			total += s
		}
		return total >= want
	}
	deadline := time.Now().Add(within)
	for !stored() && time.Now().Before(deadline) {
		n.Coordinator.Place()
		waitUntil(min(3*n.cfg.HeartbeatInterval, time.Until(deadline)), stored)
	}
}

func segmentsOf(n *Network, video content.VideoID) int {
	m, err := n.Origins[0].Store.Manifest(video)
	if err != nil {
		panic(err)
	}
	return len(m.Renditions[len(m.Renditions)-1].Segments)
}

// TestOffloadAfterWarmup: 10 edges, 10 players, each plays a whole video,
// every shard verified (the viewer rebuilds only from verified shards and
// reports any bad one); after warm-up, edges carry > 80% of the bytes.
func TestOffloadAfterWarmup(t *testing.T) {
	n := startNet(t, Config{Edges: 10, Videos: 1, Seed: 1})
	video := n.Videos[0]
	nodes := n.AliveEdges()

	// Warm-up: one player watches; its edge keeps what it watched and
	// placement spreads shards to the other edges.
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video)*2, 20*time.Second)

	// Measured plays at 2x: deadlines stay loose enough that a slow CI
	// machine (or -race) does not push players to the origin for time.
	before := n.OriginBytes()
	qs := playAll(t, nodes, video, 2)
	originDelta := n.OriginBytes() - before
	edgeBytes, viaOrigin := delivered(qs)
	total := edgeBytes + viaOrigin
	if total == 0 {
		t.Fatal("no bytes delivered")
	}
	offload := 1 - float64(originDelta)/float64(total)
	t.Logf("after warm-up: delivered %d bytes, %d from edges, origin sent %d: offload %.1f%%", total, edgeBytes, originDelta, 100*offload)
	if offload <= 0.80 {
		t.Errorf("offload %.1f%% after warm-up, want > 80%%", 100*offload)
	}
	for i, q := range qs {
		if q.BadShards != 0 {
			t.Errorf("player %d saw %d bad shards in an honest network", i, q.BadShards)
		}
	}
}

// TestChurn kills 30% of the edges abruptly while players are mid-play:
// every player finishes and stalls stay bounded.
func TestChurn(t *testing.T) {
	n := startNet(t, Config{Edges: 10, Videos: 1, Seed: 2})
	video := n.Videos[0]
	nodes := n.AliveEdges()
	playAll(t, nodes[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video)*2, 20*time.Second)

	players, victims := nodes[:7], nodes[7:]
	servedByVictims := func() (total int64) {
		for _, v := range victims {
			total += v.Edge.BytesServed()
		}
		return total
	}
	before := servedByVictims()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Mid-play: once the victims are serving this play (a few shards
		// each), not after a guessed delay.
		waitUntil(time.Minute, func() bool { return servedByVictims()-before >= 200_000 })
		for _, v := range victims {
			n.KillEdge(v)
		}
	}()
	qs := playAll(t, players, video, 4)
	select {
	case <-killed:
	default:
		t.Error("the plays ended before the victims were killed: nothing was killed mid-play")
		<-killed
	}
	for i, q := range qs {
		// Bounded: a player may wait for a dead source's timeout and the
		// origin's fill-in, but never for long.
		if q.StallTime > 2*time.Second {
			t.Errorf("player %d stalled %v in total (%d stalls) with 30%% of edges killed", i, q.StallTime, q.Stalls)
		}
	}
	if err := n.WaitFor(func(s wire.Stats) bool { return s.AliveEdges == len(players) }); err != nil {
		t.Errorf("killed edges not dropped from the registry: %v", err)
	}
}

// TestByzantine: 20% of edges lie in each way (bit flips, truncation, wrong
// shard index, slow drip). Every bad shard is detected, the offenders are
// banned, playback completes.
func TestByzantine(t *testing.T) {
	faults := map[int]edge.Fault{3: edge.FlipBits, 7: edge.Truncate, 11: edge.WrongIndex, 15: edge.SlowDrip}
	n := startNet(t, Config{Edges: 20, Videos: 1, Seed: 3, Fault: func(i int) edge.Fault { return faults[i] }})
	video := n.Videos[0]
	var honest, liars []*EdgeNode
	for _, e := range n.AliveEdges() {
		if e.Fault == edge.Honest {
			honest = append(honest, e)
		} else {
			liars = append(liars, e)
		}
	}
	// Warm-up through an honest player: its edge keeps the shards, and
	// placement spreads them to everyone, liars included.
	playAll(t, honest[:1], video, 8)
	waitPlacement(n, 8*segmentsOf(n, video)*3, 20*time.Second)

	qs := playAll(t, honest[1:9], video, 4)
	bad := 0
	for _, q := range qs {
		bad += q.BadShards
	}
	nodes, err := wire.NewCoordinatorClient(n.CoordinatorURL, nil).Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	banned := map[wire.NodeID]bool{}
	for _, nd := range nodes {
		banned[nd.NodeID] = nd.Banned
	}
	for _, l := range liars {
		if l.Fault == edge.SlowDrip {
			continue // a stall is not a provable lie: it is timed out and replaced, not banned
		}
		if !banned[l.Identity.ID] {
			t.Errorf("edge %d (fault %d) was not banned", l.Index, l.Fault)
		}
	}
	for _, h := range honest {
		if banned[h.Identity.ID] {
			t.Errorf("honest edge %d was banned", h.Index)
		}
	}
	t.Logf("bad shards detected by players: %d", bad)
}

// TestGatewayFFmpeg: ffmpeg reads the player's local HLS gateway (shards
// from the network, rebuilt, decrypted by ffmpeg with the gateway's key)
// and gets exactly the frames of the packaged rendition.
func TestGatewayFFmpeg(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n := startNet(t, Config{Edges: 4, Videos: 1, Seed: 4})
	video := n.Videos[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw, err := httpserve.Listen(ctx, "127.0.0.1:0", "", n.AliveEdges()[0].Viewer.Gateway(), n.cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	m, _ := n.Origins[0].Store.Manifest(video)
	top := len(m.Renditions) - 1
	playlist := fmt.Sprintf("%s/videos/%s/%d/index.m3u8", gw.Advertise, video, top)
	got := framemd5(t, "-allowed_extensions", "ALL", "-protocol_whitelist", "http,tcp,crypto,file,data", "-i", playlist)

	want := framemd5(t, "-i", filepath.Join(samplestore.HLSDir(t), m.Renditions[top].Name, "index.m3u8"))
	if got != want {
		t.Fatalf("framemd5 through the gateway differs from the packaged rendition:\n got %d bytes\nwant %d bytes", len(got), len(want))
	}
}

func framemd5(t *testing.T, input ...string) string {
	t.Helper()
	args := append([]string{"-hide_banner", "-loglevel", "error"}, input...)
	args = append(args, "-map", "0:v", "-c", "copy", "-f", "framemd5", "-")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	// Drop comment lines (they name the input).
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "#") && l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		t.Fatal("ffmpeg produced no frames")
	}
	return strings.Join(keep, "\n")
}
