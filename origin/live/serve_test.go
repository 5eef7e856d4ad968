package live_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/origin"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// appendOnly is a Coordinator that authorizes one key and accepts what
// it is sent; this test is about what the origin serves.
type appendOnly struct{ chains chan content.VideoID }

func (a appendOnly) AuthorizeIngest(context.Context, string) (wire.IngestAuthResponse, error) {
	return wire.IngestAuthResponse{Channel: wire.ChannelInfo{ID: "ch_00000000000000aa", Name: "served", SegmentMS: 1000}}, nil
}
func (a appendOnly) StartChain(_ context.Context, g []byte, _ content.ContentKey) error {
	gen, err := content.DecodeLiveGenesis(g)
	if err == nil {
		a.chains <- gen.ID()
	}
	return err
}
func (appendOnly) AppendEntry(context.Context, content.VideoID, []byte) error { return nil }
func (appendOnly) ReportChannelState(context.Context, wire.ChannelID, wire.ChannelStateReport) error {
	return nil
}
func (appendOnly) Publish(context.Context, wire.PublishRequest) error { return nil }
func (appendOnly) LiveEntries(context.Context, content.VideoID, uint64, int) ([][]byte, error) {
	return nil, nil
}
func (appendOnly) Channel(context.Context, wire.ChannelID) (wire.ChannelInfo, error) {
	return wire.ChannelInfo{State: wire.ChannelWaiting}, nil
}

// TestOriginServesLiveShards: the origin wires the ingest in: HLS pushed
// to its own HTTP handler, and the chain's shards on the ordinary shard
// route, verifying against the chain's manifest view.
func TestOriginServesLiveShards(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	st, err := content.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	coord := appendOnly{chains: make(chan content.VideoID, 1)}
	in, err := live.New(live.Config{Store: st, Coordinator: coord, FFmpeg: ffmpeg, Resume: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o, err := origin.New(origin.Config{Store: st, Identity: identity.New(), Live: in})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-t", "2.5", "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
		"-f", "hls", "-hls_time", "1", "-method", "PUT", srv.URL+"/live/sk_any/index.m3u8").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	chain := <-coord.chains
	b, err := in.End("ch_00000000000000aa")
	if err != nil || b.Head < 1 {
		t.Fatalf("end: %+v %v, want ≥ 2 segments", b, err)
	}
	m, ok := in.Manifest(chain)
	if !ok {
		t.Fatal("the sealed chain is no longer served")
	}
	for seg := range int(b.Head) + 1 {
		ref := content.ShardRef{SegmentRef: content.SegmentRef{Video: chain, Rendition: 0, Segment: seg}, Shard: 5}
		resp, err := http.Get(wire.ShardURL(srv.URL, ref))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("shard %v: %s %s", ref, resp.Status, body)
		}
		msg, err := content.DecodeShardMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := content.VerifyShard(m, 0, seg, msg.Shard); err != nil {
			t.Fatalf("live shard %v does not verify against the chain: %v", ref, err)
		}
	}
}
