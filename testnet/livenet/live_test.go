package livenet_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// liveNet is a network whose origin takes live broadcasts, with one channel
// created through the API; lat collects the players' servable reports.
func liveNet(t *testing.T, edges int, resume ...time.Duration) (*testnet.Network, wire.ChannelCreated, *testnet.LiveLatencies) {
	t.Helper()
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	lat := &testnet.LiveLatencies{}
	cfg := testnet.Config{Edges: edges, Seed: 11, AuditInterval: -1, Live: true,
		OnLiveServable: func(s viewer.LiveServable) { lat.Record(s.Latency()) }}
	if len(resume) > 0 {
		cfg.LiveResume = resume[0]
	}
	n := testnet.StartForTest(t, cfg)
	ch, err := n.CreateChannel(t.Context(), "testnet live", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return n, ch, lat
}

// gatewayOf serves edge i's player gateway and returns its base URL.
func gatewayOf(t *testing.T, n *testnet.Network, i int) string {
	t.Helper()
	gw, err := httpserve.Listen(t.Context(), "127.0.0.1:0", "", n.AliveEdges()[i].Viewer.Handler(), n.Log())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	return gw.Advertise
}

// waitChain waits (bounded) until the channel has a chain with at least
// entries entries and returns its info.
func waitChain(t *testing.T, n *testnet.Network, id wire.ChannelID, entries int64, pub *testnet.Publisher) wire.ChannelInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := n.Admin.Channel(t.Context(), id)
		if err == nil && info.Chain != (content.VideoID{}) && info.Head+1 >= entries {
			return info
		}
		select {
		case <-pub.Done():
			t.Fatalf("the publisher exited before %d segments were published: %v (channel %+v)", entries, pub.Wait(), info)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s never reached %d entries: %+v, %v", id, entries, info, err)
		}
	}
}

// TestLiveRTMPPublishPlaysThroughGateways is the live path end to end: real
// ffmpeg publishes over RTMP into the origin, which transcodes, packages and
// appends signed entries on the coordinator; two players play their
// gateways' live playlists as hls.js would (joining at the live edge)
// without a failed play, and every servable segment has a latency figure.
// Meanwhile ffmpeg reads the first gateway's live master playlist for 10 s
// and decodes frames whose burned-in clock advances: the RTMP path carries
// the picture itself (a ladder that encoded uniform grey from an RTMP
// source once passed every other check).
func TestLiveRTMPPublishPlaysThroughGateways(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n, ch, lat := liveNet(t, 2)
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	waitChain(t, n, ch.Channel.ID, 2, pub)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	plays := make([]testnet.LivePlay, 2)
	var wg sync.WaitGroup
	for i := range plays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plays[i] = testnet.PlayLive(ctx, http.DefaultClient, gatewayOf(t, n, i)+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 8*time.Second)
		}()
	}
	var times []time.Duration
	var clockErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		times, clockErr = testnet.ReadBurnedClock(ctx, ffmpeg, gatewayOf(t, n, 0)+"/live/"+string(ch.Channel.ID)+"/master.m3u8", 10*time.Second)
	}()
	wg.Wait()
	for i, p := range plays {
		if p.Err != nil || p.Segments < 4 {
			t.Errorf("player %d: %+v", i, p)
		}
	}
	checkAdvancingClock(t, "RTMP", times, clockErr)
	p50, count := lat.Percentile(50)
	p95, _ := lat.Percentile(95)
	if count == 0 || p50 <= 0 {
		t.Fatalf("no live latency recorded (%d reports)", count)
	}
	t.Logf("glass-to-glass over %d segments: p50 %v p95 %v; plays %+v", count, p50, p95, plays)
}

// TestLiveHLSPushPlaysInFFmpegWithAdvancingClock: ffmpeg -f hls -method PUT
// publishes into the origin; ffmpeg reads a player gateway's live playlist
// for 10 s and decodes frames whose burned-in clock advances.
func TestLiveHLSPushPlaysInFFmpegWithAdvancingClock(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n, ch, _ := liveNet(t, 1)
	pub, err := n.Publish(n.HLSIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 15 * time.Second, HLSPush: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	waitChain(t, n, ch.Channel.ID, 2, pub)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	times, err := testnet.ReadBurnedClock(ctx, ffmpeg, gatewayOf(t, n, 0)+"/live/"+string(ch.Channel.ID)+"/master.m3u8", 10*time.Second)
	checkAdvancingClock(t, "HLS push", times, err)
	// Let the origin see the pushing publisher leave (its idle timeout)
	// before the network closes: Close racing a live HLS-push session's
	// end is a data race in origin/live (reported to its owner).
	_ = pub.Wait()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		if info, err := n.Admin.Channel(t.Context(), ch.Channel.ID); err == nil && info.State != wire.ChannelPublishing {
			break
		}
		time.Sleep(200 * time.Millisecond) // bounded poll of the channel's state
	}
}

// checkAdvancingClock fails unless a 10 s ffmpeg read of a live playlist
// (testnet.ReadBurnedClock) decoded 25 fps of frames with a readable burned-in
// clock that never goes back and advances ≥ 9 s.
func checkAdvancingClock(t *testing.T, ingest string, times []time.Duration, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: ffmpeg through the gateway: %v", ingest, err)
	}
	if len(times) < 200 {
		t.Fatalf("%s: ffmpeg decoded %d frames with a readable clock in 10 s, want ≥ 200 (25 fps)", ingest, len(times))
	}
	for i := 1; i < len(times); i++ {
		if times[i] < times[i-1] {
			t.Fatalf("%s: burned-in clock went back from %v to %v at frame %d", ingest, times[i-1], times[i], i)
		}
	}
	if span := times[len(times)-1] - times[0]; span < 9*time.Second {
		t.Errorf("%s: burned-in clock advanced %v over the 10 s read, want ≥ 9 s", ingest, span)
	}
}

// TestLiveSealedChannelPlaysAsVoD: a broadcast whose publisher does not
// return within the resume window is sealed; the live playlist ends
// (ENDLIST) and the recording plays as a video with the same frames as the
// live segments.
func TestLiveSealedChannelPlaysAsVoD(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n, ch, _ := liveNet(t, 1, 2*time.Second)
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	info := waitChain(t, n, ch.Channel.ID, 1, pub)
	gw := gatewayOf(t, n, 0)
	live := gw + "/live/" + info.Chain.String() + "/0/index.m3u8"
	// Watch from the start so the gateway rebuilds every segment.
	if status, body := httpGet(t, live); status != http.StatusOK {
		t.Fatalf("live playlist: %d %s", status, body)
	}
	if err := pub.Wait(); err != nil {
		t.Logf("publisher: %v", err)
	}
	deadline := time.Now().Add(40 * time.Second)
	var ended wire.ChannelInfo
	for time.Now().Before(deadline) {
		ended, err = n.Admin.Channel(t.Context(), ch.Channel.ID)
		if err == nil && ended.State == wire.ChannelEnded && len(ended.Recordings) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // bounded poll of the channel's state
	}
	if len(ended.Recordings) == 0 {
		t.Fatalf("the channel never sealed into a recording: %+v", ended)
	}
	var pl string
	for time.Now().Before(deadline) {
		_, b := httpGet(t, live)
		if pl = string(b); strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
			break
		}
		time.Sleep(100 * time.Millisecond) // a player's reload
	}
	if !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") || !strings.Contains(pl, "\n0.ts\n") {
		t.Fatalf("the ended live playlist does not close with every segment:\n%s", pl)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	liveFrames := liveFramemd5(t, ctx, ffmpeg, live)
	vodFrames := liveFramemd5(t, ctx, ffmpeg, gw+"/videos/"+ended.Recordings[0].String()+"/0/index.m3u8")
	if liveFrames == "" || liveFrames != vodFrames {
		t.Fatalf("the recording's frames differ from the live segments' (%d vs %d lines)", strings.Count(vodFrames, "\n"), strings.Count(liveFrames, "\n"))
	}
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(b.String())
}

func liveFramemd5(t *testing.T, ctx context.Context, ffmpeg, url string) string {
	t.Helper()
	out, err := execOutput(ctx, ffmpeg, "-nostdin", "-v", "error", "-live_start_index", "0", "-i", url, "-f", "framemd5", "-")
	if err != nil {
		t.Fatalf("ffmpeg framemd5 %s: %v", url, err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func execOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out, nil
}

// TestLiveRelayKilledMidStreamCostsNoFailedPlay: three players watch a
// channel fanned out through relays; a relay carrying a substream is killed
// mid-stream; every play goes on (the trees are rebuilt, and any k of the
// other substreams, or the origin, rebuild each segment).
func TestLiveRelayKilledMidStreamCostsNoFailedPlay(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	lat := &testnet.LiveLatencies{}
	n := testnet.StartForTest(t, testnet.Config{Edges: 3, Relays: 3, Seed: 12, AuditInterval: -1, Live: true,
		OnLiveServable: func(s viewer.LiveServable) { lat.Record(s.Latency()) }})
	ch, err := n.CreateChannel(t.Context(), "relay kill", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	info := waitChain(t, n, ch.Channel.ID, 2, pub)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	plays := make([]testnet.LivePlay, 3)
	var wg sync.WaitGroup
	for i := range plays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plays[i] = testnet.PlayLive(ctx, http.DefaultClient, gatewayOf(t, n, i)+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 20*time.Second)
		}()
	}
	// Kill a relay that carries a substream once the trees have formed.
	var victim *testnet.RelayNode
	deadline := time.Now().Add(20 * time.Second)
	for victim == nil && time.Now().Before(deadline) {
		for _, r := range n.Relays() {
			if len(r.Relay.Routes()) > 0 && r.Relay.Window() != nil {
				victim = r
				break
			}
		}
		time.Sleep(100 * time.Millisecond) // bounded wait for the first live sets
	}
	if victim == nil {
		t.Fatal("no relay was placed in the channel's trees")
	}
	time.Sleep(5 * time.Second) // let the players settle on the relays' edges before the kill
	n.KillRelay(victim)
	wg.Wait()
	for i, p := range plays {
		if p.Err != nil || p.Segments < 10 {
			t.Errorf("player %d after the relay kill: %+v", i, p)
		}
	}
	// Only the killed relay leaves the trees as an exclusion (its children
	// cannot tell a crash from a stall): no honest relay — those rerouted
	// by the rebuild included — is excluded by the relays' judge.
	log, err := wire.NewCoordinatorClient(n.CoordinatorURL, http.DefaultClient).BTRLog(t.Context(), info.Chain)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range log.Excluded {
		if x.Node != victim.Identity.ID {
			t.Errorf("honest relay %s excluded by the relays' judge (%+v); only the killed %s may be", x.Node, x, victim.Identity.ID)
		}
	}
	f := testnet.SumLivePlays(plays)
	p95, count := lat.Percentile(95)
	t.Logf("relay %s killed: %+v; glass-to-glass p95 %v over %d segments; origin sent %d bytes; excluded %d", victim.Identity.ID, f, p95, count, n.OriginBytes(), len(log.Excluded))
}

// TestLivePublisherDropsAndResumesKeepsPlaying: the publisher disconnects
// and reconnects within the resume window; the same chain goes on with a
// discontinuity, and a player watching across the gap does not fail.
func TestLivePublisherDropsAndResumesKeepsPlaying(t *testing.T) {
	n, ch, _ := liveNet(t, 1)
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	first := waitChain(t, n, ch.Channel.ID, 2, pub)
	gw := gatewayOf(t, n, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var play testnet.LivePlay
	done := make(chan struct{})
	go func() {
		defer close(done)
		play = testnet.PlayLive(ctx, http.DefaultClient, gw+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 18*time.Second)
	}()
	_ = pub.Wait()
	// The publisher is gone; it comes back two seconds later.
	time.Sleep(2 * time.Second) // the drop's length, not a synchronisation
	pub2, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub2.Stop)
	<-done
	if play.Err != nil || play.Segments < 8 {
		t.Fatalf("the play across the drop: %+v", play)
	}
	info, err := n.Admin.Channel(t.Context(), ch.Channel.ID)
	if err != nil || info.Chain != first.Chain {
		t.Fatalf("after the resume the channel's chain is %s, want the same chain %s (%v)", info.Chain, first.Chain, err)
	}
	_, pl := httpGet(t, gw+"/live/"+first.Chain.String()+"/0/index.m3u8")
	if !strings.Contains(string(pl), "#EXT-X-DISCONTINUITY") && !strings.Contains(string(pl), "#EXT-X-DISCONTINUITY-SEQUENCE:") {
		t.Errorf("the resumed chain's playlist marks no discontinuity:\n%s", pl)
	}
}
