package accounting

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/wire"
)

// fakeNetwork is the control plane as Service sees it, held in memory: one
// video, a fixed audit target and the bans asked for.
type fakeNetwork struct {
	m      *content.Manifest
	target AuditTarget
	alive  map[wire.NodeID]bool

	mu     sync.Mutex
	banned map[wire.NodeID]string
}

func (n *fakeNetwork) Manifest(id content.VideoID) (*content.Manifest, bool) {
	return n.m, n.m != nil && id == n.m.ID()
}
func (n *fakeNetwork) PickAudits(time.Time, *rand.Rand, int, func(wire.NodeID) bool) []AuditTarget {
	return []AuditTarget{n.target}
}
func (n *fakeNetwork) AliveOrigins(time.Time) []string             { return nil }
func (n *fakeNetwork) EdgeLiveness(time.Time) map[wire.NodeID]bool { return n.alive }
func (n *fakeNetwork) Banned(node wire.NodeID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.banned[node]
	return ok
}
func (n *fakeNetwork) Unban(node wire.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.banned, node)
}
func (n *fakeNetwork) Ban(_ context.Context, node wire.NodeID, reason string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.banned[node] = reason
	return nil
}

type testService struct {
	*Service
	db    *coordinatordb.DB
	net   *fakeNetwork
	store *content.Store
	id    content.VideoID
	reg   *prometheus.Registry
	now   time.Time
}

// newTestService builds a Service on a fresh SQLite store, with the sample
// clip ingested as its one video. InitialAlpha 1 disqualifies an edge on
// its first failed audit, so one round shows the whole chain.
func newTestService(t *testing.T) *testService {
	t.Helper()
	dir := t.TempDir()
	hls := filepath.Join(dir, "hls")
	if err := sample.WriteHLS(hls); err != nil {
		t.Fatal(err)
	}
	st, err := content.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	vid, err := st.Ingest(t.Context(), hls, content.IngestOptions{Title: sample.Title})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Manifest(vid)
	if err != nil {
		t.Fatal(err)
	}
	coord := identity.New()
	db, err := coordinatordb.OpenConfig(t.Context(), "sqlite:"+filepath.Join(dir, "c.db"), coordinatordb.Config{
		CoordinatorKeys: []ed25519.PublicKey{coord.Key.Public().(ed25519.PublicKey)},
		Password:        coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
		Reputation:      coordinatordb.ReputationConfig{InitialAlpha: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts := &testService{db: db, store: st, id: vid, reg: prometheus.NewRegistry(), now: time.Unix(1_800_000_000, 0)}
	ts.net = &fakeNetwork{m: m, banned: map[wire.NodeID]string{}}
	ts.Service = New(Config{
		Identity: coord, AuditInterval: -1, UptimeInterval: time.Minute,
		Now: func() time.Time { return ts.now }, Registry: ts.reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, db, ts.net)
	if err := ts.VideoPublished(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return ts
}

// shardMessage is the real encoded shard idx of a segment of the video.
func (ts *testService) shardMessage(t *testing.T, r, seg, idx int) []byte {
	t.Helper()
	m, _ := ts.net.Manifest(ts.id)
	ct, err := ts.store.SegmentCiphertext(ts.id, r, seg)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := content.EncodeShards(m.Params, ct)
	if err != nil {
		t.Fatal(err)
	}
	msg := content.ShardMessage{Video: ts.id, Rendition: r, Segment: seg, Shard: content.Shard{
		Index: idx, Data: shards[idx], Proof: content.InclusionProof(content.ShardLeaves(shards), idx),
	}}
	return msg.Encode()
}

func TestOrderLimitsOnlyForEntitledViewerKeys(t *testing.T) {
	ts := newTestService(t)
	ctx := t.Context()
	viewer, edges := identity.New(), []wire.NodeID{identity.New().ID, identity.New().ID}

	for _, bad := range []wire.NodeID{"", "not-a-key", viewer.ID} { // the last is unbound
		if ls, err := ts.OrderLimits(ctx, bad, ts.id, edges, nil, nil); err != nil || issued(ls) != 0 || len(ls) != len(edges) {
			t.Fatalf("viewer %q: limits %v, err %v; want none (one nil per edge)", bad, ls, err)
		}
	}
	m, _ := ts.net.Manifest(ts.id)
	if err := ts.db.PutVideo(ctx, coordinatordb.VideoTerms{Video: ts.id, Price: 5, PlaybackBudgetBytes: coordinatordb.PlaybackBudget(m)}, ts.now); err != nil {
		t.Fatal(err)
	}
	acct, err := ts.db.CreateAccount(ctx, "viewer1", "viewer-password", ts.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.db.Grant(ctx, acct.ID, 5, "test", ts.now); err != nil {
		t.Fatal(err)
	}
	if err := ts.db.BindViewerKey(ctx, acct.ID, viewer.ID, ts.now); err != nil {
		t.Fatal(err)
	}
	ts.now = ts.now.Add(2 * time.Second) // past the cached denial
	if ls, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges, nil, nil); issued(ls) != 0 {
		t.Fatalf("bound but not entitled: %d limits, want none", issued(ls))
	}
	if _, err := ts.db.Unlock(ctx, acct.ID, ts.id, ts.now); err != nil {
		t.Fatal(err)
	}
	ts.now = ts.now.Add(2 * time.Second)
	ls, err := ts.OrderLimits(ctx, viewer.ID, ts.id, edges, nil, nil)
	if err != nil || issued(ls) != len(edges) {
		t.Fatalf("entitled: %d limits, err %v; want %d", issued(ls), err, len(edges))
	}
	for i, l := range ls {
		if err := wire.VerifyOrderLimit(ts.Identity().Key.Public().(ed25519.PublicKey), &l.Limit); err != nil {
			t.Fatalf("limit %d: %v", i, err)
		}
		if l.Limit.Edge != edges[i] || l.Limit.Viewer != viewer.ID || l.Limit.MaxBytes <= 0 {
			t.Fatalf("limit %d = %+v", i, l.Limit)
		}
		if !bytes.Equal(l.Binary, wire.AppendLookupLimit(nil, &l.Limit)) {
			t.Fatalf("limit %d: binary rendering %x is not the limit's", i, l.Binary)
		}
	}
	// The output slice is reused: a second call overwrites it in place.
	again, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges[:1], nil, make([]*IssuedLimit, 5))
	if len(again) != 1 || again[0].Limit.Serial != ls[0].Limit.Serial {
		t.Fatal("a lookup within the limit's life signed a new limit instead of reusing it")
	}
	// Keyed by the caller's numbers (the coordinator's node slots): the
	// same numbers find the same limits; a number another edge has taken
	// since (a slot reused) gets that edge its own limit, never the last
	// holder's.
	slots := EdgeKeys{7, 9}
	byKey, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges[:2], slots, nil)
	again2, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges[:2], slots, nil)
	if issued(byKey) != 2 || again2[0].Limit.Serial != byKey[0].Limit.Serial || again2[1].Limit.Serial != byKey[1].Limit.Serial {
		t.Fatal("limits keyed by edge numbers were not reused by the next lookup with the same numbers")
	}
	swapped, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, []wire.NodeID{edges[1], edges[0]}, slots, nil)
	for i, l := range swapped {
		if want := []wire.NodeID{edges[1], edges[0]}[i]; l == nil || l.Limit.Edge != want {
			t.Fatalf("edge %d, whose number named another edge before, got a limit for %v; want its own", i, l)
		}
	}
	ts.now = ts.now.Add(13 * time.Minute) // past LimitTTL·4/5
	renewed, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges[:1], nil, nil)
	if len(renewed) != 1 || renewed[0].Limit.Serial == ls[0].Limit.Serial {
		t.Fatal("a limit near its expiry was reused instead of renewed")
	}
}

// issued counts the limits OrderLimits issued (nil entries are edges
// without one).
func issued(ls []*IssuedLimit) int {
	n := 0
	for _, l := range ls {
		if l != nil {
			n++
		}
	}
	return n
}

// TestAuditFailureDisqualifiesAndBans: an edge answering a challenge with
// another shard's bytes fails, is disqualified in the store (InitialAlpha
// 1) and the control plane is asked to ban it, once.
func TestAuditFailureDisqualifiesAndBans(t *testing.T) {
	ts := newTestService(t)
	liar := identity.New()
	wrong := ts.shardMessage(t, 0, 0, 1) // asked for shard 0, answers shard 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(wrong) }))
	defer srv.Close()
	ts.net.target = AuditTarget{Addr: srv.URL, Challenge: coordinatordb.Challenge{
		Edge: liar.ID, Ref: content.SegmentRef{Video: ts.id}.Shard(0), Offset: 0, Length: 16,
	}}
	res := ts.AuditRound(t.Context())
	if len(res) != 1 || res[0].Outcome != coordinatordb.OutcomeFailed || !res[0].Status.Disqualified {
		t.Fatalf("audit round = %+v; want one failed audit that disqualifies", res)
	}
	if reason := ts.net.banned[liar.ID]; reason == "" {
		t.Fatal("disqualified edge was not banned")
	}
	if got := testutil.ToFloat64(ts.metrics.disqualified.WithLabelValues("audit")); got != 1 {
		t.Fatalf("disqualifications by audit = %v, want 1", got)
	}
	ts.AuditRound(t.Context()) // already banned: no second disqualification counted
	if got := testutil.ToFloat64(ts.metrics.disqualified.WithLabelValues("audit")); got != 1 {
		t.Fatalf("disqualifications by audit after a second round = %v, want 1", got)
	}
}

// TestSweptRecordsUptimeOncePerInterval: sweeps in between only collect
// the edges they dropped; at the interval every edge gets one record.
func TestSweptRecordsUptimeOncePerInterval(t *testing.T) {
	ts := newTestService(t)
	up, dropped := identity.New().ID, identity.New().ID
	ts.net.alive = map[wire.NodeID]bool{up: true}
	ts.Swept(ts.now, nil)
	ts.now = ts.now.Add(30 * time.Second)
	ts.Swept(ts.now, []wire.NodeID{dropped})
	if n := testutil.ToFloat64(ts.metrics.uptimeChecks.WithLabelValues("up")) + testutil.ToFloat64(ts.metrics.uptimeChecks.WithLabelValues("down")); n != 0 {
		t.Fatalf("%v uptime records before the interval, want 0", n)
	}
	ts.now = ts.now.Add(31 * time.Second)
	ts.Swept(ts.now, nil)
	if u, d := testutil.ToFloat64(ts.metrics.uptimeChecks.WithLabelValues("up")), testutil.ToFloat64(ts.metrics.uptimeChecks.WithLabelValues("down")); u != 1 || d != 1 {
		t.Fatalf("uptime records up=%v down=%v, want 1 and 1", u, d)
	}
	st, err := ts.db.EdgeReputation(t.Context(), dropped)
	if err != nil || st.Uptime.Beta == 0 {
		t.Fatalf("dropped edge's uptime reputation = %+v, %v; want a down record", st.Uptime, err)
	}
}

// TestAppendBinaryOrderLimitsIsOrderLimits: the binary answer's limits
// section, whether rendered from the cache's bytes (the steady state) or
// after signing (a miss), is exactly OrderLimits's limits in the binary
// layout at the given node indices: none for the viewer's own account's
// edge, none for an unpayable viewer, and a number another edge has taken
// since gets that edge its own limit.
func TestAppendBinaryOrderLimitsIsOrderLimits(t *testing.T) {
	ts := newTestService(t)
	ctx := t.Context()
	viewer := identity.New()
	edges := []wire.NodeID{identity.New().ID, identity.New().ID, identity.New().ID}
	keys, at := EdgeKeys{4, 8, 15}, []uint32{0, 2, 5}
	render := func(ls []*IssuedLimit) []byte { // the reference layout
		var b []byte
		n := 0
		for _, l := range ls {
			if l != nil {
				n++
			}
		}
		b = binary.AppendUvarint(b, uint64(n))
		for i, l := range ls {
			if l != nil {
				b = binary.AppendUvarint(b, uint64(at[i]))
				b = wire.AppendLookupLimit(b, &l.Limit)
			}
		}
		return b
	}
	if b, _, err := ts.AppendBinaryOrderLimits(ctx, []byte("head"), viewer.ID, ts.id, edges, keys, at, nil); err != nil || string(b) != "head\x00" {
		t.Fatalf("unbound viewer: %q, %v; want the head and a count of 0", b, err)
	}
	acct, err := ts.db.CreateAccount(ctx, "viewer1", "viewer-password", ts.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.db.BindViewerKey(ctx, acct.ID, viewer.ID, ts.now); err != nil {
		t.Fatal(err)
	}
	if err := ts.db.BindEdge(ctx, acct.ID, edges[1], ts.now); err != nil { // her own edge
		t.Fatal(err)
	}
	ts.now = ts.now.Add(2 * time.Second) // past the cached denial
	first, _, err := ts.AppendBinaryOrderLimits(ctx, nil, viewer.ID, ts.id, edges, keys, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := ts.OrderLimits(ctx, viewer.ID, ts.id, edges, keys, nil)
	if issued(ls) != 2 || ls[1] != nil {
		t.Fatalf("limits %v: want two, none for the viewer's own edge", ls)
	}
	want := render(ls)
	if !bytes.Equal(first, want) {
		t.Fatalf("after signing: %x\nwant %x", first, want)
	}
	cached, _, _ := ts.AppendBinaryOrderLimits(ctx, []byte{9}, viewer.ID, ts.id, edges, keys, at, nil)
	if !bytes.Equal(cached[1:], want) || cached[0] != 9 {
		t.Fatalf("from the cache: %x\nwant 09%x", cached, want)
	}
	// Edge numbers 4 and 8 now name other edges.
	swapped := []wire.NodeID{identity.New().ID, edges[0], edges[2]}
	got, _, _ := ts.AppendBinaryOrderLimits(ctx, nil, viewer.ID, ts.id, swapped, keys, at, nil)
	ls, _ = ts.OrderLimits(ctx, viewer.ID, ts.id, swapped, keys, nil)
	if issued(ls) != 3 || !bytes.Equal(got, render(ls)) {
		t.Fatalf("numbers taken by other edges: %x, limits %v\nwant %x", got, ls, render(ls))
	}
	for i, l := range ls {
		if l.Limit.Edge != swapped[i] {
			t.Fatalf("edge %d got a limit for %s", i, l.Limit.Edge)
		}
	}
}

// TestEdgeLimitsKeepOrderAndPrune: a viewer–video's limits by edge key
// find what was put under each key in any order, replace on a second put,
// and pruning drops exactly the entries due for renewal (and the pair
// once it holds neither limits nor a current verdict).
func TestEdgeLimitsKeepOrderAndPrune(t *testing.T) {
	var el edgeLimits
	rng := rand.New(rand.NewSource(1))
	want := map[uint32]int64{}
	for range 300 {
		k, renew := uint32(rng.Intn(200)), int64(1+rng.Intn(100))
		el.put(k, cachedLimit{renewAtNS: renew})
		want[k] = renew
	}
	if len(el.keys) != len(want) || !slices.IsSorted(el.keys) {
		t.Fatalf("%d keys (sorted: %v), want %d", len(el.keys), slices.IsSorted(el.keys), len(want))
	}
	for k, renew := range want {
		if l, ok := el.get(k); !ok || l.renewAtNS != renew {
			t.Fatalf("key %d: %v %v, want renewal at %d", k, l, ok, renew)
		}
	}
	if _, ok := el.get(1000); ok {
		t.Fatal("a key never put was found")
	}
	el.dropRenewable(50)
	for k, renew := range want {
		if _, ok := el.get(k); ok != (renew > 50) {
			t.Fatalf("key %d renewing at 50 kept %v, want %v", k, ok, renew > 50)
		}
	}

	lc := newLimitCache()
	now := time.Unix(100, 0)
	lc.entries[grantKey{"v", content.VideoID{}}] = &viewerVideo{grant: grant{ok: true, until: now}, limits: el}
	lc.prune(time.Unix(0, 101))
	if e := lc.entries[grantKey{"v", content.VideoID{}}]; e == nil || len(e.limits.keys) != 0 {
		t.Fatalf("after pruning past every renewal: %+v, want the pair kept (its verdict is current) with no limits", e)
	}
	lc.prune(now)
	if len(lc.entries) != 0 {
		t.Fatal("a pair with no limits and an expired verdict was kept")
	}
}
