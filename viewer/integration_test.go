package viewer

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

func TestMain(m *testing.M) { samplestore.Main(m) }

// mixedEdges puts the liars and the troublemakers at the top of the rank so
// the viewer is sure to meet them.
var mixedEdges = []serverKind{
	kindFlipBit, kindTruncate, kindWrongIndex, kindSlowDrip, kindReset, kindGone,
	kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest,
	kindHonest, kindHonest, kindHonest, kindHonest,
}

func newTestViewer(t *testing.T, n *testNetwork, reg *prometheus.Registry, onSegment func(content.SegmentRef, []content.ShardMessage)) *Viewer {
	t.Helper()
	return newTestViewerToken(t, n, reg, onSegment, "")
}

// newTestViewerToken is newTestViewer signed in with token (a session).
func newTestViewerToken(t *testing.T, n *testNetwork, reg *prometheus.Registry, onSegment func(content.SegmentRef, []content.ShardMessage), token string) *Viewer {
	t.Helper()
	v, err := New(Config{
		Coordinator: n.coordURL,
		Identity:    identity.New(),
		Token:       token,
		Seed:        1,
		Registry:    reg,
		OnSegment:   onSegment,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// checkEvidence asserts that every liar was reported with bytes that really
// fail verification, and nobody else was.
func checkEvidence(t *testing.T, n *testNetwork, reports []wire.BadShardReport) {
	t.Helper()
	reported := map[wire.NodeID]bool{}
	for _, rep := range reports {
		reported[rep.Node] = true
		if !slices.Contains(n.liars(), rep.Node) {
			t.Errorf("honest or merely slow node %s reported: %s", rep.Node, rep.Reason)
			continue
		}
		msg, err := content.DecodeShardMessage(rep.Evidence)
		if err == nil && msg.Index == rep.Shard && content.VerifyShard(n.man, rep.Rendition, rep.Segment, msg.Shard) == nil {
			t.Errorf("evidence against %s verifies fine: the report is false", rep.Node)
		}
	}
	for _, liar := range n.liars() {
		if !reported[liar] {
			t.Errorf("liar %s was not reported", liar)
		}
	}
}

func TestSegmentsRebuildBitExactDespiteLiars(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	kept := map[[2]int]int{}
	v := newTestViewer(t, n, reg, func(seg content.SegmentRef, shards []content.ShardMessage) {
		mu.Lock()
		kept[[2]int{seg.Rendition, seg.Segment}] = len(shards)
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r, rend := range n.man.Renditions {
		for s := range rend.Segments {
			got, err := v.Segment(ctx, n.id, r, s, time.Now().Add(10*time.Second))
			if err != nil {
				t.Fatalf("rendition %d segment %d: %v", r, s, err)
			}
			want, err := n.store.SegmentCiphertext(n.id, r, s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("rendition %d segment %d: rebuilt %d bytes differ from the stored ciphertext (%d bytes)", r, s, len(got), len(want))
			}
			if kept[[2]int{r, s}] != n.man.Params.K {
				t.Fatalf("OnSegment got %d shards for rendition %d segment %d, want k=%d", kept[[2]int{r, s}], r, s, n.man.Params.K)
			}
		}
	}
	banned := v.Banned()
	slices.Sort(banned)
	if want := n.liars(); !slices.Equal(banned, want) {
		t.Fatalf("banned %v, want exactly the liars %v", banned, want)
	}
	_ = v.Close() // flushes the background evidence reports
	n.coord.mu.Lock()
	reports := slices.Clone(n.coord.badShards)
	lookups := slices.Clone(n.coord.lookups)
	n.coord.mu.Unlock()
	checkEvidence(t, n, reports)
	// Once banned, a liar is excluded from every later lookup.
	last := lookups[len(lookups)-1]
	for _, liar := range n.liars() {
		if !slices.Contains(last.Exclude, liar) {
			t.Errorf("last lookup does not exclude banned %s: %v", liar, last.Exclude)
		}
	}
	if got := metricValue(t, reg, "swarmcast_viewer_bans_total", ""); got != float64(len(n.liars())) {
		t.Errorf("bans metric %v, want %d", got, len(n.liars()))
	}
	if got := metricValue(t, reg, "swarmcast_viewer_shard_bytes_total", "edge"); got == 0 {
		t.Error("no edge bytes counted")
	}
}

func TestPlayCompletesAndReports(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	reg := prometheus.NewRegistry()
	// Signed in: the coordinator counts only accounts' plays (a viewer
	// without a token sends no play report: TestNotEntitledIsNotRetried).
	v := newTestViewerToken(t, n, reg, nil, "session")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := v.Play(ctx, n.id, PlayOptions{Rendition: -1, Speed: 20})
	if err != nil {
		t.Fatalf("play: %v (QoE %+v)", err, q)
	}
	if !q.Completed {
		t.Fatalf("play not completed: %+v", q)
	}
	top := len(n.man.Renditions) - 1
	if want := n.man.Duration(top); q.PlayTime != want {
		t.Errorf("played %v of media, want the whole %v", q.PlayTime, want)
	}
	if q.Startup <= 0 || q.EdgeBytes == 0 || q.OriginBytes > q.EdgeBytes {
		t.Errorf("startup %v, edge bytes %d, origin bytes %d: want a positive startup and most bytes from edges", q.Startup, q.EdgeBytes, q.OriginBytes)
	}
	var sum int64
	for _, b := range q.BytesBySource {
		sum += b
	}
	if sum != q.EdgeBytes+q.OriginBytes {
		t.Errorf("bytes by source sum to %d, by kind to %d", sum, q.EdgeBytes+q.OriginBytes)
	}
	banned := slices.Clone(q.Banned)
	slices.Sort(banned)
	if want := n.liars(); !slices.Equal(banned, want) {
		t.Errorf("QoE banned %v, want the liars %v", banned, want)
	}
	if q.BadShards != len(n.liars()) {
		t.Errorf("%d bad shards, want %d (one per liar, then banned)", q.BadShards, len(n.liars()))
	}
	_ = v.Close()
	n.coord.mu.Lock()
	plays := slices.Clone(n.coord.plays)
	reports := slices.Clone(n.coord.badShards)
	n.coord.mu.Unlock()
	if len(plays) != 1 || !plays[0].Completed || plays[0].Video != n.id || plays[0].Rendition != top {
		t.Fatalf("play reports %+v, want one completed report of rendition %d", plays, top)
	}
	checkEvidence(t, n, reports)
	if got := metricValue(t, reg, "swarmcast_viewer_startup_seconds", ""); got != 1 {
		t.Errorf("startup histogram has %v observations, want 1", got)
	}
}

func TestPlayMaxSegmentsAndBadInput(t *testing.T) {
	n := newTestNetwork(t, []serverKind{kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest})
	v := newTestViewer(t, n, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := v.Play(ctx, n.id, PlayOptions{Rendition: 0, Speed: 50, MaxSegments: 3})
	if err != nil || !q.Completed {
		t.Fatalf("play 3 segments: %v %+v", err, q)
	}
	if want := 3 * time.Duration(n.man.Renditions[0].Segments[0].Duration) * time.Microsecond; q.PlayTime != want {
		t.Errorf("played %v, want %v", q.PlayTime, want)
	}
	if len(q.Banned) != 0 || q.BadShards != 0 {
		t.Errorf("honest network, yet banned %v / %d bad shards", q.Banned, q.BadShards)
	}
	unknown := n.id
	unknown[0] = 0
	for _, tc := range []struct {
		video content.VideoID
		opt   PlayOptions
	}{
		{unknown, PlayOptions{}},
		{n.id, PlayOptions{Rendition: 7}},
		{n.id, PlayOptions{Rendition: -2}},
	} {
		if _, err := v.Play(ctx, tc.video, tc.opt); err == nil {
			t.Errorf("Play(%q, %+v) succeeded, want an error", tc.video, tc.opt)
		}
	}
}

// TestManifestMismatchRejected checks that a coordinator serving another
// video's manifest (or a tampered one) is refused.
func TestManifestMismatchRejected(t *testing.T) {
	n := newTestNetwork(t, []serverKind{kindHonest})
	v := newTestViewer(t, n, nil, nil)
	other := n.id
	other[0] ^= 1
	n.coord.mu.Lock()
	n.coord.answerAs = &other // the coordinator now answers for "other" with n.id's manifest
	n.coord.mu.Unlock()
	_, err := v.Segment(context.Background(), other, 0, 0, time.Now().Add(time.Second))
	if err == nil {
		t.Fatal("accepted a manifest whose hash is not the requested id")
	}
}

// metricValue reads a counter (optionally the series with the given label
// value) or a histogram's sample count from the registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}
