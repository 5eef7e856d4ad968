package livenet_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// TestLiveOriginRestartResumesTheChain: the origin process is restarted
// while its channel publishes; the restarted origin reloads the unsealed
// chain (its segments from its store, the entries from the coordinator),
// the publisher's reconnection continues the same chain with a
// Discontinuity, and a player watching across the restart does not fail.
// Restarted again while the channel waits, the origin seals the chain when
// the resume window passes: the recording has every segment and plays
// with the live segments' frames.
func TestLiveOriginRestartResumesTheChain(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n, ch, _ := liveNet(t, 1, 12*time.Second)
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	first := waitChain(t, n, ch.Channel.ID, 3, pub)
	gw := gatewayOf(t, n, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	var play testnet.LivePlay
	played := make(chan struct{})
	go func() {
		defer close(played)
		play = testnet.PlayLive(ctx, http.DefaultClient, gw+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 25*time.Second)
	}()
	time.Sleep(2 * time.Second) // the player joins before the restart, not a synchronisation

	if err := n.RestartOrigin(0); err != nil {
		t.Fatal(err)
	}
	pub.Stop() // cut off by the restart
	before, err := n.Admin.Channel(ctx, ch.Channel.ID)
	if err != nil || before.Chain != first.Chain {
		t.Fatalf("after the restart the channel is %+v (%v), want chain %s", before, err, first.Chain)
	}
	pub2, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub2.Stop)
	resumed := waitChain(t, n, ch.Channel.ID, before.Head+1+3, pub2)
	if resumed.Chain != first.Chain {
		t.Fatalf("the restarted origin started chain %s, want the reloaded %s", resumed.Chain, first.Chain)
	}
	g, err := n.Admin.LiveGenesis(ctx, first.Chain)
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := content.DecodeLiveGenesis(g)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := n.Admin.LiveEntries(ctx, first.Chain, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	chain := content.NewLiveChain(genesis)
	for _, b := range raw {
		e, err := content.DecodeLiveEntry(b, genesis, first.Chain)
		if err == nil {
			err = chain.Append(e)
		}
		if err != nil {
			t.Fatalf("entry of the resumed chain: %v", err)
		}
		if want := e.Seq == uint64(before.Head+1); e.Discontinuity != want {
			t.Errorf("entry %d: discontinuity %v, want %v (the first after the restart is %d)", e.Seq, e.Discontinuity, want, before.Head+1)
		}
	}
	<-played
	if play.Err != nil || play.Segments < 8 {
		t.Fatalf("the play across the origin restart: %+v", play)
	}

	// The publisher ends; restarted while the channel waits, the origin
	// seals the chain when the resume window passes.
	_ = pub2.Wait()
	waiting := waitState(t, n, ch.Channel.ID, wire.ChannelWaiting)
	if err := n.RestartOrigin(0); err != nil {
		t.Fatal(err)
	}
	ended := waitState(t, n, ch.Channel.ID, wire.ChannelEnded)
	if len(ended.Recordings) == 0 || ended.Chain != first.Chain {
		t.Fatalf("the reloaded chain did not seal into a recording: %+v", ended)
	}
	m, err := n.Origins[0].Store.Manifest(ended.Recordings[0])
	if err != nil || len(m.Renditions[0].Segments) != int(waiting.Head+1) {
		t.Fatalf("the recording (%v): want the chain's %d segments", err, waiting.Head+1)
	}
	live := gw + "/live/" + first.Chain.String() + "/0/index.m3u8"
	var pl string
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) { // a player's reload
		_, b := httpGet(t, live)
		if pl = string(b); strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
			break
		}
	}
	if !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") || !strings.Contains(pl, "#EXT-X-DISCONTINUITY") {
		t.Fatalf("the ended live playlist does not close with the discontinuity:\n%s", pl)
	}
	// The ended playlist lists the gateway's newest run of segments (from
	// the restart on); the recording has them all, the same frames.
	// Compared by the frames' hashes: the live read starts mid-recording,
	// where ffmpeg numbers timestamps from.
	liveFrames := frameHashes(liveFramemd5(t, ctx, ffmpeg, live))
	vodFrames := frameHashes(liveFramemd5(t, ctx, ffmpeg, gw+"/videos/"+ended.Recordings[0].String()+"/0/index.m3u8"))
	if liveFrames == "" || !strings.Contains(vodFrames, liveFrames) {
		t.Fatalf("the recording's frames (%d lines) do not hold the live segments' (%d lines)", strings.Count(vodFrames, "\n"), strings.Count(liveFrames, "\n"))
	}
	// 25 fps video over every segment of the chain.
	if frames := strings.Count(vodFrames, "\n") + 1; frames < 25*int(waiting.Head+1) {
		t.Fatalf("the recording decodes to %d video frames, want at least 25 per segment over %d segments", frames, waiting.Head+1)
	}
	t.Logf("chain %s: %d segments, restarted after %d; recording %s decodes to %d frame lines; play %+v", first.Chain, waiting.Head+1, before.Head+1, ended.Recordings[0], strings.Count(vodFrames, "\n")+1, play)
}

// waitState waits (bounded) until the channel is in state and returns it.
func waitState(t *testing.T, n *testnet.Network, id wire.ChannelID, state string) wire.ChannelInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := n.Admin.Channel(t.Context(), id)
		if err == nil && info.State == state && (state != wire.ChannelEnded || len(info.Recordings) > 0) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s never %s: %+v, %v", id, state, info, err)
		}
		time.Sleep(100 * time.Millisecond) // bounded poll of the channel's state
	}
}

// frameHashes keeps the hash of each framemd5 line of stream 0 (video),
// one per line.
func frameHashes(framemd5 string) string {
	var out []string
	for _, l := range strings.Split(framemd5, "\n") {
		f := strings.Split(l, ",")
		if len(f) == 6 && strings.TrimSpace(f[0]) == "0" {
			out = append(out, strings.TrimSpace(f[5]))
		}
	}
	return strings.Join(out, "\n")
}
