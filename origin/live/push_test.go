package live

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// TestOriginRootsTheTrees: with a Signer the ingest pushes every
// published segment's shards to its children (a real fanout.Receiver, as
// a relay runs it), which verify them against the chain before keeping.
func TestOriginRootsTheTrees(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	st, err := content.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	coord := newFakeCoordinator()
	originID := identity.New()
	in, err := New(Config{Store: st, Coordinator: coord, Origin: originID.ID, Resume: time.Minute, FFmpeg: ffmpeg,
		Signer: wire.NewNodeSigner(originID.Key, nil), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	recv, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: coord})
	if err != nil {
		t.Fatal(err)
	}
	child := identity.New()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathLivePush, func(w http.ResponseWriter, r *http.Request) { _, _ = recv.HandlePush(w, r) })
	relay := httptest.NewServer(mux)
	defer relay.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- in.ServeRTMP(ctx, ln) }()
	defer func() { cancel(); <-served }()
	fctx, fcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer fcancel()
	pub := exec.CommandContext(fctx, ffmpeg, append(testSource(4), "-f", "flv", "rtmp://"+ln.Addr().String()+"/live/"+testKey)...)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	var chain content.VideoID
	waitFor(t, "the chain to start", func() bool {
		b, ok := in.Broadcast(testChannel)
		chain = b.Chain
		return ok && b.Chain != (content.VideoID{})
	})
	// Two substreams, the origin their root, the relay the child of both.
	const substreams, pushed = 2, content.DefaultLivePushShards
	var originRoutes, relayRoutes []wire.LiveRoute
	for j := range substreams {
		idx := content.SubstreamIndices(j, substreams, pushed)
		originRoutes = append(originRoutes, wire.LiveRoute{Chain: chain, Substream: j, Indices: idx, Children: []wire.Source{{NodeID: child.ID, Addr: relay.URL}}})
		relayRoutes = append(relayRoutes, wire.LiveRoute{Chain: chain, Substream: j, Indices: idx, Parent: originID.ID})
	}
	recv.SetLive(&wire.LiveSet{Version: 1, Routes: relayRoutes})
	in.SetLive(&wire.LiveSet{Version: 1, Routes: originRoutes})
	if err := pub.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	waitFor(t, "the relay to hold a pushed segment", func() bool { return len(recv.Window().HeldSegments(chain)) > 0 })
	seq := recv.Window().HeldSegments(chain)[0]
	got := recv.Window().Indices(chain, 0, seq)
	if len(got) != pushed {
		t.Fatalf("the relay holds indices %v of segment %d, want the %d pushed", got, seq, pushed)
	}
}
