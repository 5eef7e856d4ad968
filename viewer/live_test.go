package viewer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// liveBook is a chain whose segments are the sample video's (same key, same
// roots, same IVs), signed entry by entry as the test publishes them, and
// the coordinator's live routes over it.
type liveBook struct {
	pub     ed25519.PrivateKey
	genesis *content.LiveGenesis
	id      content.VideoID
	man     *content.Manifest // the video the segments come from
	channel wire.ChannelID

	mu      sync.Mutex
	entries []*content.LiveEntry // published, in order
	ended   bool
	// answer, if set, replaces the honest entries answer (a lying
	// coordinator, or what it relays).
	answer  func(from uint64) [][]byte
	changed chan struct{}
}

// newLiveTestNetwork is newTestNetwork whose coordinator also serves a
// chain over the sample video's segments.
func newLiveTestNetwork(t *testing.T, edgeKinds []serverKind) (*testNetwork, *liveBook) {
	t.Helper()
	n := newTestNetwork(t, edgeKinds)
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	g := &content.LiveGenesis{Channel: "ch_0123456789abcdef", Title: "live test", Params: n.man.Params, KeyID: n.man.KeyID,
		TargetDuration: n.man.TargetDuration, Started: time.Now().UnixMicro()}
	for i, r := range n.man.Renditions {
		peak, _ := n.man.Bitrates(i)
		g.Renditions = append(g.Renditions, content.LiveRendition{Name: r.Name, Bandwidth: uint32(peak), Width: r.Width, Height: r.Height, Codecs: r.Codecs})
	}
	_, _ = rand.Read(g.Nonce[:])
	g.Sign(pub)
	lb := &liveBook{pub: pub, genesis: g, id: g.ID(), man: n.man, channel: wire.ChannelID(g.Channel), changed: make(chan struct{})}
	n.coord.mu.Lock()
	n.coord.live = lb
	n.coord.mu.Unlock()
	n.coord.book.mu.Lock()
	n.coord.book.liveID = lb.id
	n.coord.book.mu.Unlock()
	return n, lb
}

// entry signs entry seq after prev, its program time ending now.
func (lb *liveBook) entry(seq uint64, prev content.Hash, programTime time.Time) *content.LiveEntry {
	e := &content.LiveEntry{Chain: lb.id, Seq: seq, Prev: prev, ProgramTime: programTime.UnixMicro()}
	for _, r := range lb.man.Renditions {
		e.Segments = append(e.Segments, r.Segments[seq])
	}
	e.Sign(lb.pub)
	return e
}

// next is the honest entry after the published ones (not published).
func (lb *liveBook) next() *content.LiveEntry {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.nextLocked(len(lb.entries))
}

func (lb *liveBook) nextLocked(seq int) *content.LiveEntry {
	prev := content.Hash(lb.id)
	if seq > 0 {
		prev = lb.entries[seq-1].Hash()
	}
	dur := time.Duration(lb.man.Renditions[0].Segments[seq].Duration) * time.Microsecond
	return lb.entry(uint64(seq), prev, time.Now().Add(-dur))
}

// publish appends count honest entries.
func (lb *liveBook) publish(count int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for range count {
		lb.entries = append(lb.entries, lb.nextLocked(len(lb.entries)))
	}
	lb.notifyLocked()
}

func (lb *liveBook) notifyLocked() {
	close(lb.changed)
	lb.changed = make(chan struct{})
}

func (lb *liveBook) setAnswer(f func(from uint64) [][]byte) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.answer = f
	lb.notifyLocked()
}

func (lb *liveBook) end() {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.ended = true
	lb.notifyLocked()
}

// liveRoutes serves genesis, entries (long-poll), key and the channel.
func (c *testCoordinator) liveRoutes(mux *http.ServeMux) {
	book := func(w http.ResponseWriter, r *http.Request) *liveBook {
		c.mu.Lock()
		lb := c.live
		c.mu.Unlock()
		if lb == nil || r.PathValue("chain") != lb.id.String() {
			wire.WriteError(w, http.StatusNotFound, "unknown chain")
			return nil
		}
		return lb
	}
	mux.HandleFunc("GET "+wire.PathLiveGenesis, func(w http.ResponseWriter, r *http.Request) {
		if lb := book(w, r); lb != nil {
			_, _ = w.Write(lb.genesis.Encode())
		}
	})
	mux.HandleFunc("GET "+wire.PathLiveKey, func(w http.ResponseWriter, r *http.Request) {
		if lb := book(w, r); lb != nil {
			_, _ = w.Write(c.key[:])
		}
	})
	mux.HandleFunc("GET "+wire.PathLiveEntries, func(w http.ResponseWriter, r *http.Request) {
		lb := book(w, r)
		if lb == nil {
			return
		}
		from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "from: %v", err)
			return
		}
		waitMS, _ := strconv.Atoi(r.URL.Query().Get("wait_ms"))
		deadline := time.NewTimer(time.Duration(min(waitMS, 10_000)) * time.Millisecond)
		defer deadline.Stop()
		for {
			lb.mu.Lock()
			var out [][]byte
			if lb.answer != nil {
				out = lb.answer(from)
			} else {
				for _, e := range lb.entries[min(int(from), len(lb.entries)):] {
					out = append(out, e.Encode())
				}
			}
			changed := lb.changed
			lb.mu.Unlock()
			if len(out) > 0 || waitMS == 0 {
				w.Header().Set("Content-Type", wire.ContentTypeLiveEntries)
				_, _ = w.Write(wire.EncodeLiveEntries(out))
				return
			}
			select {
			case <-changed:
			case <-deadline.C:
				waitMS = 0
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("GET "+wire.PathLiveChannel, func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		lb := c.live
		c.mu.Unlock()
		if lb == nil || r.PathValue("channel") != string(lb.channel) {
			wire.WriteError(w, http.StatusNotFound, "unknown channel")
			return
		}
		lb.mu.Lock()
		info := wire.ChannelInfo{ID: lb.channel, Name: "live test", State: wire.ChannelPublishing, Chain: lb.id, Head: int64(len(lb.entries)) - 1}
		if lb.ended {
			info.State = wire.ChannelEnded
		}
		lb.mu.Unlock()
		wire.WriteJSON(w, info)
	})
}

// waitPlaylist reloads a live media playlist until ok accepts it (bounded
// in count and time).
func waitPlaylist(t *testing.T, url string, what string, ok func(string) bool) string {
	t.Helper()
	// Generous: rebuilding through slow-drip and lying edges on a loaded
	// CI machine can take seconds a segment.
	deadline := time.Now().Add(120 * time.Second)
	var last string
	for i := 0; i < 1200 && time.Now().Before(deadline); i++ {
		status, b := get(t, url)
		last = string(b)
		if status == http.StatusOK && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond) // a player's reload, not a synchronisation
	}
	t.Fatalf("playlist never showed %s; last:\n%s", what, last)
	return ""
}

func TestLiveGatewaySlidingWindow(t *testing.T) {
	n, lb := newLiveTestNetwork(t, mixedEdges)
	var mu sync.Mutex
	var servable []LiveServable
	reg := prometheus.NewRegistry()
	v, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), Seed: 1, Registry: reg,
		OnLiveServable: func(s LiveServable) { mu.Lock(); servable = append(servable, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	srv := httptest.NewServer(v.Gateway())
	t.Cleanup(srv.Close)
	base := srv.URL + "/live/" + lb.id.String()

	// Nothing published yet is still a playlist (empty), not an error.
	lb.publish(2)
	status, master := get(t, base+"/master.m3u8")
	if status != http.StatusOK || strings.Count(string(master), "#EXT-X-STREAM-INF") != len(n.man.Renditions) || !strings.Contains(string(master), "\n0/index.m3u8\n") {
		t.Fatalf("master playlist %d:\n%s", status, master)
	}
	pl := waitPlaylist(t, base+"/0/index.m3u8", "segments 0 and 1", func(s string) bool { return strings.Contains(s, "\n1.ts\n") })
	for _, want := range []string{"#EXT-X-MEDIA-SEQUENCE:0\n", "#EXT-X-SERVER-CONTROL:HOLD-BACK=6.000\n", "#EXT-X-PROGRAM-DATE-TIME:", "\n0.ts\n", "URI=\"../key\""} {
		if !strings.Contains(pl, want) {
			t.Errorf("live playlist lacks %q:\n%s", want, pl)
		}
	}
	if strings.Contains(pl, "ENDLIST") {
		t.Errorf("a live playlist before the end has ENDLIST:\n%s", pl)
	}
	for seq := range 2 {
		status, got := get(t, base+"/0/"+strconv.Itoa(seq)+".ts")
		want, err := n.store.SegmentCiphertext(n.id, 0, seq)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || !bytes.Equal(got, want) {
			t.Fatalf("live segment %d: status %d, %d bytes, not the packaged ciphertext (%d bytes)", seq, status, len(got), len(want))
		}
	}
	if status, key := get(t, base+"/key"); status != http.StatusOK || !bytes.Equal(key, n.coord.key[:]) {
		t.Fatalf("key: %d %x", status, key)
	}

	// The window slides: 12 published, the playlist lists the newest
	// liveWindowSegments that are servable and nothing older.
	lb.publish(10)
	pl = waitPlaylist(t, base+"/0/index.m3u8", "segment 11", func(s string) bool { return strings.Contains(s, "\n11.ts\n") })
	first := 12 - liveWindowSegments
	if !strings.Contains(pl, "#EXT-X-MEDIA-SEQUENCE:"+strconv.Itoa(first)+"\n") || strings.Contains(pl, "\n"+strconv.Itoa(first-1)+".ts\n") || strings.Count(pl, "#EXTINF") != liveWindowSegments {
		t.Errorf("window after 12 entries should be %d..11:\n%s", first, pl)
	}
	// A channel id resolves to its current chain.
	if status, b := get(t, srv.URL+"/live/"+string(lb.channel)+"/0/index.m3u8"); status != http.StatusOK || !strings.Contains(string(b), "\n11.ts\n") {
		t.Errorf("the channel's playlist (%d):\n%s", status, b)
	}
	for _, p := range []string{"/live/" + strings.Repeat("ab", 32) + "/master.m3u8", "/live/ch_00000000000000ff/master.m3u8", "/live/" + lb.id.String() + "/9/index.m3u8", "/live/" + lb.id.String() + "/0/99.ts", "/live/ch_X/master.m3u8"} {
		if status, _ := get(t, srv.URL+p); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}

	// After the end, the playlist closes.
	lb.end()
	pl = waitPlaylist(t, base+"/0/index.m3u8", "ENDLIST", func(s string) bool { return strings.HasSuffix(s, "#EXT-X-ENDLIST\n") })
	if !strings.Contains(pl, "\n11.ts\n#EXT-X-ENDLIST\n") {
		t.Errorf("the ended playlist ends after the last entry:\n%s", pl)
	}

	mu.Lock()
	defer mu.Unlock()
	seen := map[uint64]bool{}
	for _, s := range servable {
		if s.Rendition != 0 || s.Chain != lb.id {
			t.Errorf("servable report for rendition %d of %s: only rendition 0 of the chain was watched", s.Rendition, s.Chain)
		}
		seen[s.Seq] = true
		if l := s.Latency(); l < s.HoldBack || l > s.HoldBack+20*time.Second || s.HoldBack != 6*time.Second {
			t.Errorf("segment %d: latency %v with hold-back %v (published as it ended)", s.Seq, l, s.HoldBack)
		}
	}
	for seq := uint64(first); seq < 12; seq++ {
		if !seen[seq] {
			t.Errorf("segment %d was never reported servable", seq)
		}
	}
	if got := metricValue(t, reg, "swarmcast_viewer_live_entries_total", "accepted"); got != 12 {
		t.Errorf("accepted entries %v, want 12", got)
	}
}

func TestLiveFollowerRefusesForgedReorderedForkedEntries(t *testing.T) {
	n, lb := newLiveTestNetwork(t, []serverKind{kindHonest, kindHonest, kindHonest, kindHonest})
	reg := prometheus.NewRegistry()
	v := newTestViewer(t, n, reg, nil)
	srv := httptest.NewServer(v.Gateway())
	t.Cleanup(srv.Close)
	media := srv.URL + "/live/" + lb.id.String() + "/0/index.m3u8"
	lb.publish(2)
	waitPlaylist(t, media, "segment 1", func(s string) bool { return strings.Contains(s, "\n1.ts\n") })

	honest2 := lb.next()
	lb.mu.Lock()
	lb.entries = append(lb.entries, honest2)
	honest3 := lb.nextLocked(3)
	lb.entries = lb.entries[:2]
	e1 := lb.entries[1]
	lb.mu.Unlock()
	// Forged: entry 2 with another root, signed by someone else.
	forged := *honest2
	forged.Segments = append([]content.Segment(nil), honest2.Segments...)
	forged.Segments[0].Root[0] ^= 1
	forged.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	// Forked: a second entry 1, validly signed by the publisher.
	fork := lb.entry(1, e1.Prev, time.UnixMicro(e1.ProgramTime).Add(time.Millisecond))

	cases := []struct {
		name   string
		answer [][]byte
		result string
	}{
		{"forged", [][]byte{forged.Encode()}, "refused"},
		{"reordered", [][]byte{honest3.Encode(), honest2.Encode()}, "refused"},
		{"forked", [][]byte{fork.Encode(), honest2.Encode()}, "fork"},
		{"garbage", [][]byte{[]byte("SWLE not an entry")}, "refused"},
	}
	for _, c := range cases {
		before := metricValue(t, reg, "swarmcast_viewer_live_entries_total", c.result)
		lb.setAnswer(func(uint64) [][]byte { return c.answer })
		deadline := time.Now().Add(20 * time.Second)
		for metricValue(t, reg, "swarmcast_viewer_live_entries_total", c.result) == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // bounded wait on the follower's next poll
		}
		if metricValue(t, reg, "swarmcast_viewer_live_entries_total", c.result) == before {
			t.Fatalf("%s entry: never counted %s", c.name, c.result)
		}
		_, pl := get(t, media)
		v.mu.Lock()
		lc := v.lives[lb.id]
		v.mu.Unlock()
		if h := lc.chain.Head(); h.Hash() != e1.Hash() || strings.Contains(string(pl), "\n2.ts\n") {
			t.Fatalf("%s entry: the chain's head is %d (%x), want the honest entry 1; playlist:\n%s", c.name, h.Seq, h.Hash(), pl)
		}
	}
	if got := metricValue(t, reg, "swarmcast_viewer_live_entries_total", "accepted"); got != 2 {
		t.Errorf("accepted %v entries, want the 2 honest ones", got)
	}
	// The honest chain goes on, and its segments are the packaged ones.
	lb.setAnswer(nil)
	lb.publish(2)
	waitPlaylist(t, media, "segment 3", func(s string) bool { return strings.Contains(s, "\n3.ts\n") })
	status, got := get(t, srv.URL+"/live/"+lb.id.String()+"/0/2.ts")
	want, _ := n.store.SegmentCiphertext(n.id, 0, 2)
	if status != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("segment 2 after the refusals: %d, %d bytes", status, len(got))
	}
}

// TestLivePlaysInFFmpeg: ffmpeg opens the live playlist while entries are
// published, follows the sliding window to ENDLIST, and decodes the same
// frames as the packaged segments (from the window's start: the window never
// slides past segment 0 here, so every frame is compared).
func TestLivePlaysInFFmpeg(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n, lb := newLiveTestNetwork(t, mixedEdges)
	_, base := startGateway(t, n)
	const segments = 6
	lb.publish(1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-live_start_index", "0", "-i", base+"/live/"+lb.id.String()+"/0/index.m3u8", "-f", "framemd5", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(700 * time.Millisecond)
	defer tick.Stop()
	for published := 1; published < segments; published++ {
		select {
		case <-tick.C:
			lb.publish(1)
		case err := <-done:
			t.Fatalf("ffmpeg ended before the broadcast did: %v\n%s", err, stderr.String())
		}
	}
	lb.end()
	if err := <-done; err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	// The packaged plaintext of the same segments, decoded in one piece.
	var whole []byte
	for s := range segments {
		b, err := os.ReadFile(filepath.Join(n.hlsDir, "240p", "seg0000"+strconv.Itoa(s)+".ts"))
		if err != nil {
			t.Fatal(err)
		}
		whole = append(whole, b...)
	}
	ref := filepath.Join(t.TempDir(), "ref.ts")
	if err := os.WriteFile(ref, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-i", ref, "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, want := framesOf(stdout.Bytes()), framesOf(out)
	if got == "" || got != want {
		t.Fatalf("live playback decoded %d frame lines, the packaged segments %d; they differ", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
}

func framesOf(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// A player joining the live edge gets its first window from the carriers,
// not the origin, even when most carriers are new to the tree and the
// newest segment's push is still on its way: segments whose pushes have
// landed are asked of every carrier in one round (the scheduler replaces
// each carrier that answers 404 with the next, instead of a round of a
// few carriers every 150 ms), and the segment whose entry just arrived is
// fetched once livePushGrace has passed, as onEntry does. The network: 24
// carriers placed since (404 for everything), then K carriers holding
// every index, whose push of the newest segment lands 500 ms after its
// entry (two relay levels on a loaded machine).
func TestLiveJoinIsServedByCarriers(t *testing.T) {
	const holders = 8 // one shard per carrier per segment: K of them
	kinds := append(slices.Repeat([]serverKind{kindGone}, 24), slices.Repeat([]serverKind{kindHonest}, holders)...)
	n, lb := newLiveTestNetwork(t, kinds)
	if n.man.Params.K > holders {
		t.Fatalf("the sample has K = %d: the test needs that many holding carriers", n.man.Params.K)
	}
	var landMu sync.Mutex
	landsAt := map[int]time.Time{} // segment → when its push reaches the carriers
	for _, s := range n.coord.edges {
		if s.kind != kindHonest {
			continue
		}
		s.shards = nil
		for i := range n.man.Params.NMax {
			s.shards = append(s.shards, i)
		}
		s.notPushed = func(seg int) bool {
			landMu.Lock()
			defer landMu.Unlock()
			at, ok := landsAt[seg]
			return !ok || time.Now().Before(at)
		}
	}
	var mu sync.Mutex
	var servable []LiveServable
	v, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), Seed: 1, Registry: prometheus.NewRegistry(),
		OnLiveServable: func(s LiveServable) { mu.Lock(); servable = append(servable, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	srv := httptest.NewServer(v.Gateway())
	t.Cleanup(srv.Close)

	const published = 6
	landMu.Lock()
	for seg := range published - 1 {
		landsAt[seg] = time.Now()
	}
	landsAt[published-1] = time.Now().Add(500 * time.Millisecond)
	landMu.Unlock()
	lb.publish(published)
	base := srv.URL + "/live/" + lb.id.String()
	newest := strconv.Itoa(published-1) + ".ts"
	waitPlaylist(t, base+"/0/index.m3u8", "the newest segment", func(s string) bool { return strings.Contains(s, "\n"+newest+"\n") })

	mu.Lock()
	defer mu.Unlock()
	joined := 0
	for _, s := range servable {
		if s.Fetch != LiveFetchJoin {
			continue
		}
		joined++
		if s.OriginBytes != 0 {
			t.Errorf("join segment %d: %d bytes from the origin (fallback %v, no carriers %v) after %d carrier rounds", s.Seq, s.OriginBytes, s.OriginFallback, s.NoCarriers, s.CarrierRounds)
		}
	}
	if joined < content.LiveHoldBackSegments {
		t.Fatalf("%d join segments reported servable, want at least %d", joined, content.LiveHoldBackSegments)
	}
	// The window plays HOLD-BACK behind the live edge the player saw: every
	// join report is at that edge's latency from when the window was
	// servable, not at its own segment's age (docs/LIVE.md).
	var edge LiveServable
	for _, s := range servable {
		if s.Fetch == LiveFetchJoin && s.Seq > edge.Seq {
			edge = s
		}
	}
	if edge.Seq != published-1 {
		t.Fatalf("the newest join segment is %d, want %d", edge.Seq, published-1)
	}
	edgeEnd := edge.ProgramTime.Add(edge.Duration)
	for _, s := range servable {
		if s.Fetch != LiveFetchJoin {
			continue
		}
		if !s.JoinEdgeEnd.Equal(edgeEnd) || s.WindowAt.IsZero() || s.WindowAt.Before(s.At) {
			t.Errorf("join segment %d: edge end %v (want %v), window servable at %v, itself at %v", s.Seq, s.JoinEdgeEnd, edgeEnd, s.WindowAt, s.At)
		}
		if got, want := s.Latency(), s.WindowAt.Sub(edgeEnd)+s.HoldBack; got != want {
			t.Errorf("join segment %d: latency %v, want window servable − edge end + HOLD-BACK = %v", s.Seq, got, want)
		}
	}
}

// A segment's fetch waits livePushGrace for the push down the trees unless
// the gateway's own edge tells it the push landed (Edge.OnLivePush →
// LivePushLanded): then it starts at once. Fake time: the wait is the
// grace exactly without the signal, and nothing with it.
func TestLivePushLandedEndsTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &content.LiveGenesis{Params: content.DefaultLiveParams(), TargetDuration: 1_000_000,
			Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
		lc := &liveChannel{id: g.ID(), ready: make(chan struct{}), changed: make(chan struct{}), chain: content.NewLiveChain(g),
			watched: map[int]time.Time{}, segs: map[segKey]*liveSegment{}, arrived: map[uint64]time.Time{}, landed: map[uint64]chan struct{}{}}
		close(lc.ready)
		v := &Viewer{lives: map[content.VideoID]*liveChannel{lc.id: lc}}
		ctx := context.Background()

		start := time.Now()
		if !waitSignal(ctx, lc.landedChan(7), livePushGrace) {
			t.Fatal("the context ended")
		}
		if waited := time.Since(start); waited != livePushGrace {
			t.Fatalf("without the edge's word the fetch waited %v, want the grace %v", waited, livePushGrace)
		}

		v.LivePushLanded(lc.id, 8) // the push may land before the entry arrives
		changed := lc.changed
		start = time.Now()
		if !waitSignal(ctx, lc.landedChan(8), livePushGrace) {
			t.Fatal("the context ended")
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("after the push landed the fetch still waited %v", waited)
		}
		v.LivePushLanded(lc.id, 9)
		select {
		case <-changed:
		default:
			t.Error("a landed push did not wake the gateway's waiters (a join waiting out the grace)")
		}
		lc.mu.Lock()
		landed8, landed10 := lc.pushLandedLocked(8), lc.pushLandedLocked(10)
		lc.mu.Unlock()
		if !landed8 || landed10 {
			t.Errorf("landed: segment 8 %v (want true), 10 %v (want false)", landed8, landed10)
		}
		v.LivePushLanded(content.VideoID{1}, 8) // a chain the gateway does not follow: ignored
	})
}

// A playlist request for a rendition another request is joining (a second
// gateway or player on this viewer) waits, bounded as the join is, while
// the window is still empty, instead of answering a playlist without a
// segment (ffmpeg gives up on one).
func TestLiveSecondRequestWaitsForTheJoinsWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &content.LiveGenesis{Params: content.DefaultLiveParams(), TargetDuration: 1_000_000,
			Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
		lc := &liveChannel{id: g.ID(), ready: make(chan struct{}), changed: make(chan struct{}), chain: content.NewLiveChain(g),
			watched: map[int]time.Time{0: time.Now()}, segs: map[segKey]*liveSegment{}, arrived: map[uint64]time.Time{}, landed: map[uint64]chan struct{}{},
			hold: content.LiveHoldBack(g.TargetDuration)}
		close(lc.ready)
		v := &Viewer{cfg: Config{Now: time.Now}, lives: map[content.VideoID]*liveChannel{lc.id: lc}}
		start := time.Now()
		v.joinLive(context.Background(), lc, 0)
		if waited := time.Since(start); waited != 2*lc.hold {
			t.Fatalf("a request during another's join, window empty, returned after %v; want it to wait the join's bound %v", waited, 2*lc.hold)
		}
	})
}
