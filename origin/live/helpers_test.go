package live

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// fakeCoordinator is this package's own Coordinator for the pipeline's
// unit tests: it keeps what a coordinator keeps (chains verified with
// content's real checks, states, published videos) in memory. The
// acceptance tests run against the real coordinator.
type fakeCoordinator struct {
	mu        sync.Mutex
	keys      map[string]wire.ChannelInfo
	genesis   map[content.VideoID]*content.LiveGenesis
	chains    map[content.VideoID]*content.LiveChain
	keyOf     map[content.VideoID]content.ContentKey
	states    []wire.ChannelStateReport
	published []wire.PublishedVideo
	ended     map[content.VideoID]bool // AppendEntry answers ErrChannelEnded
	// current is the channel's unsealed chain while it is publishing or
	// waiting: AuthorizeIngest's Resume, as the real coordinator answers.
	current    content.VideoID
	ownerEnded bool // the owner ended the channel (Channel answers ended)
	state      string
	authCalls  int
}

const testKey = "sk_good"
const testChannel wire.ChannelID = "ch_0123456789abcdef"

func newFakeCoordinator() *fakeCoordinator {
	return &fakeCoordinator{
		keys:    map[string]wire.ChannelInfo{testKey: {ID: testChannel, Name: "test channel", SegmentMS: 1000, State: wire.ChannelIdle, Head: -1}},
		genesis: map[content.VideoID]*content.LiveGenesis{}, chains: map[content.VideoID]*content.LiveChain{},
		keyOf: map[content.VideoID]content.ContentKey{}, ended: map[content.VideoID]bool{},
	}
}

func (f *fakeCoordinator) AuthorizeIngest(_ context.Context, key string) (wire.IngestAuthResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authCalls++
	ch, ok := f.keys[key]
	if !ok {
		return wire.IngestAuthResponse{}, &wire.APIError{Status: http.StatusForbidden, Message: "unknown stream key"}
	}
	out := wire.IngestAuthResponse{Channel: ch}
	if f.state == wire.ChannelPublishing || f.state == wire.ChannelWaiting {
		out.Resume = f.current
	}
	return out, nil
}

func (f *fakeCoordinator) StartChain(_ context.Context, genesis []byte, key content.ContentKey) error {
	g, err := content.DecodeLiveGenesis(genesis)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.genesis[g.ID()], f.chains[g.ID()], f.keyOf[g.ID()] = g, content.NewLiveChain(g), key
	f.current = g.ID()
	return nil
}

func (f *fakeCoordinator) AppendEntry(_ context.Context, chain content.VideoID, entry []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.chains[chain]
	if !ok {
		return &wire.APIError{Status: http.StatusNotFound, Message: "unknown chain"}
	}
	if f.ended[chain] {
		return fmt.Errorf("%w: ended by its owner", wire.ErrChannelEnded)
	}
	e, err := content.DecodeLiveEntry(entry, c.Genesis(), chain)
	if err != nil {
		return err
	}
	return c.Append(e)
}

func (f *fakeCoordinator) ReportChannelState(_ context.Context, id wire.ChannelID, rep wire.ChannelStateReport) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, rep)
	f.state = rep.State
	if rep.State == wire.ChannelEnded {
		f.current = content.VideoID{}
	}
	return nil
}

func (f *fakeCoordinator) Channel(_ context.Context, id wire.ChannelID) (wire.ChannelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.keys {
		if ch.ID == id {
			ch.State = f.state
			if f.ownerEnded {
				ch.State = wire.ChannelEnded
			}
			return ch, nil
		}
	}
	return wire.ChannelInfo{}, &wire.APIError{Status: http.StatusNotFound, Message: "no such channel"}
}

func (f *fakeCoordinator) Publish(_ context.Context, req wire.PublishRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, req.Videos...)
	return nil
}

func (f *fakeCoordinator) snapshot() (states []wire.ChannelStateReport, chains []*content.LiveChain, published int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.chains {
		chains = append(chains, c)
	}
	return append([]wire.ChannelStateReport(nil), f.states...), chains, len(f.published)
}

func (f *fakeCoordinator) lastState() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.states) == 0 {
		return ""
	}
	return f.states[len(f.states)-1].State
}

// testIngest is an Ingest over a fresh store, its HLS-push route on an
// httptest server and its RTMP listener on 127.0.0.1.
type testIngest struct {
	*Ingest
	coord  *fakeCoordinator
	store  *content.Store
	http   *httptest.Server
	rtmp   string // host:port
	ffmpeg string
	reg    *prometheus.Registry
}

func newTestIngest(t testing.TB, resume time.Duration, tweak ...func(*Config)) *testIngest {
	t.Helper()
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	testenv.RequireTool(t, "ffprobe", "ffmpeg")
	st, err := content.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	coord := newFakeCoordinator()
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Coordinator: coord, Origin: "origin-test", Resume: resume, FFmpeg: ffmpeg, Registry: reg}
	for _, f := range tweak {
		f(&cfg)
	}
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+wire.PathLiveIngestHLS, in.HandleHLSPush)
	srv := httptest.NewServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- in.ServeRTMP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeRTMP: %v", err)
		}
		srv.Close()
		in.Close()
	})
	return &testIngest{Ingest: in, coord: coord, store: st, http: srv, rtmp: ln.Addr().String(), ffmpeg: ffmpeg, reg: reg}
}

// testSource is a few seconds of 320x180 testsrc with a sine tone, with a
// keyframe every second (what a well-configured encoder sends).
func testSource(seconds float64, extra ...string) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds)}
	if len(extra) == 0 {
		extra = []string{"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-c:a", "aac"}
	}
	return append(args, extra...)
}

// runFFmpeg runs a publisher to completion (bounded) and returns its
// combined output.
func runFFmpeg(t *testing.T, ffmpeg string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput()
	return string(out), err
}

// waitFor polls cond (bounded: 30 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storeFiles lists every file under the store's live/ and videos/.
func storeFiles(t *testing.T, st *content.Store) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"live", "videos"} {
		_ = filepath.Walk(filepath.Join(st.Dir(), sub), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				out = append(out, strings.TrimPrefix(p, st.Dir()))
			}
			return nil
		})
	}
	return out
}

// LiveGenesis and LiveEntries make the fake a fanout.Coordinator too (a
// relay or edge fetches genesis and missing entries from it).
func (f *fakeCoordinator) LiveGenesis(_ context.Context, chain content.VideoID) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.genesis[chain]
	if !ok {
		return nil, &wire.APIError{Status: http.StatusNotFound, Message: "unknown chain"}
	}
	return g.Encode(), nil
}

func (f *fakeCoordinator) LiveEntries(_ context.Context, chain content.VideoID, from uint64, _ int) ([][]byte, error) {
	f.mu.Lock()
	c, ok := f.chains[chain]
	f.mu.Unlock()
	if !ok {
		return nil, &wire.APIError{Status: http.StatusNotFound, Message: "unknown chain"}
	}
	var out [][]byte
	for _, e := range c.Entries(from, 0) {
		out = append(out, e.Encode())
	}
	return out, nil
}
