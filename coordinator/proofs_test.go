package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// corrupt returns a shard message whose data has one flipped byte, and
// that data.
func corrupt(t testing.TB, msgBytes []byte) ([]byte, []byte) {
	t.Helper()
	msg, err := content.DecodeShardMessage(msgBytes)
	if err != nil {
		t.Fatal(err)
	}
	msg.Data = slices.Clone(msg.Data)
	msg.Data[len(msg.Data)/2] ^= 0xff
	return msg.Encode(), msg.Data
}

// TestBadShardReceipt: a report whose receipt is validly signed by the edge
// over a served message that fails verification disqualifies the edge and
// removes it from lookups; a forged receipt, or the edge's genuine receipt
// next to good data with a swapped Merkle proof, changes nothing.
func TestBadShardReceipt(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	video := h.video(0)
	cheat, _ := h.boundEdge("cheatop", "", set(video, 0, 0, 3))
	honest, _ := h.boundEdge("honestop", "", set(video, 0, 0, 3))
	lookup := wire.LookupRequest{Video: video, Count: 1}
	if got := sourcesOf(h.lookup(lookup), 0); len(got) != 2 {
		t.Fatalf("sources before: %v", got)
	}
	goodBytes := h.fix.shardMessage(t, h.fix.ids[0], 0, 0, 3)
	badMsg, _ := corrupt(t, goodBytes)
	report := func(node wire.NodeID, evidence []byte, rc wire.ServedShardReceipt) reply {
		return h.do("POST", wire.PathBadShard, "", wire.BadShardReport{
			Node: node, Video: video, Rendition: 0, Segment: 0, Shard: 3, Reason: "hash mismatch", Evidence: evidence, Receipt: &rc,
		})
	}
	ref := content.SegmentRef{Video: video}.Shard(3)
	// ATTACK: a forged receipt: the "honest" edge never signed this.
	forged := wire.SignShardReceipt(newTestNode().Key, ref, badMsg)
	forged.Edge = honest.ID
	h.want(report(honest.ID, badMsg, forged), http.StatusBadRequest, "proves nothing", "bad edge signature")
	// ATTACK: the honest edge's genuine receipt over its good message, sent
	// with the good data and a broken proof.
	goodMsg, _ := content.DecodeShardMessage(goodBytes)
	genuine := wire.SignShardReceipt(honest.Key, ref, goodBytes)
	swapped := goodMsg
	swapped.Shard.Proof = slices.Clone(goodMsg.Shard.Proof)
	swapped.Shard.Proof[0][0] ^= 0xff
	h.want(report(honest.ID, swapped.Encode(), genuine), http.StatusBadRequest, "proves nothing", "do not match")
	// A genuine receipt over good bytes is a false accusation.
	h.want(report(honest.ID, goodBytes, genuine), 200, verdictFalse)
	if st, _ := h.store.EdgeReputation(t.Context(), honest.ID); st.Disqualified {
		t.Fatal("honest edge disqualified")
	}
	hs := decode[wire.EdgeStatusInfo](t, h.want(h.do("GET", strings.Replace(wire.PathEdgeStatus, "{node}", string(honest.ID), 1), h.session("honestop"), nil), 200))
	if hs.Banned || hs.Disqualified {
		t.Fatalf("honest status after attacks: %+v", hs)
	}
	if got := h.metric(`swarmcast_coordinator_bad_shard_reports_total{verdict="unverifiable"}`); got != "2" {
		t.Fatalf("unverifiable reports %q, want 2", got)
	}
	// Genuine receipt over bad bytes: proven.
	h.want(report(cheat.ID, badMsg, wire.SignShardReceipt(cheat.Key, ref, badMsg)), 200, verdictProven)
	if got := sourcesOf(h.lookup(lookup), 0); len(got) != 1 || got[0] != honest.ID {
		t.Fatalf("sources after proof: %v, want only the honest edge", got)
	}
	st := decode[wire.EdgeStatusInfo](t, h.want(h.do("GET", strings.Replace(wire.PathEdgeStatus, "{node}", string(cheat.ID), 1), h.session("cheatop"), nil), 200))
	if !st.Disqualified || !strings.Contains(st.DisqualifiedReason, "bad shard") || st.DisqualifiedAt.IsZero() {
		t.Fatalf("cheat status: %+v", st)
	}
	if !st.Banned || !strings.Contains(st.BanReason, "proven bad shard") || !st.BannedAt.Equal(h.clock.Now()) {
		t.Fatalf("cheat status shows no ban, reason and time: %+v", st)
	}
	if got := h.metric(`swarmcast_coordinator_disqualifications_total{cause="bad_shard_proof"}`); got != "1" {
		t.Fatalf("disqualification metric %q", got)
	}
}

// TestRestartKeepsCatalogueAndBans: a new coordinator on the same SQLite
// file has the catalogue, the bans and the disqualifications back.
func TestRestartKeepsCatalogueAndBans(t *testing.T) {
	dsn := "sqlite:" + t.TempDir() + "/c.db"
	h := newStoreHarness(t, dsn, "", nil)
	video := h.video(0)
	liar, _ := h.boundEdge("liarop", "", set(video, 0, 0, 1))
	banned := liar.ID
	badMsg, _ := corrupt(t, h.fix.shardMessage(t, h.fix.ids[0], 0, 0, 1))
	rc := wire.SignShardReceipt(liar.Key, content.SegmentRef{Video: video}.Shard(1), badMsg)
	h.want(h.do("POST", wire.PathBadShard, "", wire.BadShardReport{Node: banned, Video: video, Shard: 1, Evidence: badMsg, Receipt: &rc}), 200, verdictProven)
	dq := newTestNode().ID
	if _, err := h.store.RecordBadShard(t.Context(), dq, "test", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.store.Close()

	db := openStore(t, dsn, h.id.Key.Public().(ed25519.PublicKey))
	c, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: db, Accounting: accounting.Config{Identity: h.id, AuditInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	cl := wire.NewCoordinatorClient(srv.URL, signingClient(srv.Client(), h.clock.Now))
	vs, err := cl.Videos(t.Context())
	if err != nil || len(vs) != 2 {
		t.Fatalf("catalogue after restart: %d videos, %v", len(vs), err)
	}
	if key, err := db.CatalogueVideos(t.Context()); err != nil || len(key[0].Key) != 16 {
		t.Fatalf("content keys after restart: %v", err)
	}
	for _, id := range []wire.NodeID{banned, dq} {
		if _, err := cl.Register(t.Context(), wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
	}
	nodes, _ := cl.Nodes(t.Context())
	for _, n := range nodes {
		if !n.Banned {
			t.Fatalf("node %s not banned after restart", n.NodeID)
		}
	}
	// The price an admin set survives too, and republishing keeps it.
	if _, err := db.Video(t.Context(), h.fix.ids[0]); err != nil {
		t.Fatal(err)
	}
}

// shardServer is an edge- or origin-like shard server for audits.
type shardServer struct {
	t    testing.TB
	fix  fixture
	mode string // "honest", "drop" (404), "corrupt", "hang"
	id   wire.NodeID

	mu       sync.Mutex
	cache    map[[3]int][]byte
	requests int
}

func (s *shardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathShard, func(w http.ResponseWriter, r *http.Request) {
		ref, err := wire.ParseShardRef(r)
		if err != nil {
			wire.WriteError(w, 400, "%v", err)
			return
		}
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		switch s.mode {
		case "drop":
			wire.WriteError(w, 404, "shard not held")
			return
		case "hang":
			<-r.Context().Done()
			return
		}
		key := [3]int{ref.Rendition, ref.Segment, ref.Shard}
		s.mu.Lock()
		b, ok := s.cache[key]
		if !ok {
			b = s.fix.shardMessage(s.t, ref.Video, ref.Rendition, ref.Segment, ref.Shard)
			s.cache[key] = b
		}
		s.mu.Unlock()
		if s.mode == "corrupt" {
			b, _ = corrupt(s.t, b)
		}
		w.Header().Set("Content-Type", wire.ContentTypeShard)
		w.Header().Set(wire.HeaderNode, string(s.id))
		w.Write(b)
	})
	// Whole ciphertext segments, as an origin serves them (the playback
	// fallback relays these): "oversize" answers 16 bytes too many.
	mux.HandleFunc("GET "+wire.PathSegment, func(w http.ResponseWriter, r *http.Request) {
		seg, err := wire.ParseSegmentRef(r)
		if err != nil {
			wire.WriteError(w, 400, "%v", err)
			return
		}
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		switch s.mode {
		case "drop":
			wire.WriteError(w, 404, "segment not held")
			return
		case "hang":
			<-r.Context().Done()
			return
		}
		ct, err := s.fix.store.SegmentCiphertext(seg.Video, seg.Rendition, seg.Segment)
		if err != nil {
			wire.WriteError(w, 404, "%v", err)
			return
		}
		if s.mode == "oversize" {
			ct = append(ct, make([]byte, 16)...)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(ct))
	})
	mux.ServeHTTP(w, r)
}

func startShardServer(t testing.TB, fix fixture, mode string) (*shardServer, string) {
	s := &shardServer{t: t, fix: fix, mode: mode, cache: make(map[[3]int][]byte)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// auditNet is a store-backed coordinator with a real origin-like server
// and one edge per mode, each claiming the same 12 shards.
func auditNet(t *testing.T, modes ...string) (*storeHarness, map[string]wire.NodeID, map[string]*shardServer) {
	fix := sampleStore(t)
	_, originURL := startShardServer(t, fix, "honest")
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", originURL, func(c *Config) {
		c.Accounting.AuditEdgesPerRound = len(modes)
		c.Accounting.AuditTimeout = 200 * time.Millisecond
	})
	video := h.video(0)
	var inv []wire.ShardSet
	for seg := range 3 {
		inv = append(inv, set(video, 0, seg, 0, 1, 2, 3))
	}
	ids, servers := map[string]wire.NodeID{}, map[string]*shardServer{}
	for _, mode := range modes {
		s, url := startShardServer(t, fix, mode)
		e, _ := h.boundEdge(mode+"op", url, inv...)
		s.id = e.ID
		ids[mode], servers[mode] = e.ID, s
	}
	return h, ids, servers
}

// TestAuditsCatchDroppers: an honest edge passes every audit; one that
// dropped its shards (404) fails every audit and, with Storj's reputation
// seed (alpha 1000, lambda 0.999, threshold 0.96), is disqualified at
// exactly its 41st failed audit (0.999^41 < 0.96 <= 0.999^40) and leaves
// lookups; one that serves corrupted bytes fails the same way.
func TestAuditsCatchDroppers(t *testing.T) {
	h, ids, servers := auditNet(t, "honest", "drop", "corrupt")
	ctx := context.Background()
	for round := 1; round <= 41; round++ {
		res := h.c.Accounting().AuditRound(ctx)
		if len(res) != 3 {
			t.Fatalf("round %d: %d audits, want 3", round, len(res))
		}
		for _, r := range res {
			want := coordinatordb.OutcomeFailed
			if r.Edge == ids["honest"] {
				want = coordinatordb.OutcomePassed
			}
			if r.Outcome != want {
				t.Fatalf("round %d edge %s: outcome %s (%s), want %s", round, r.Edge, r.Outcome, r.Detail, want)
			}
			if r.Edge != ids["honest"] && r.Status.Disqualified != (round == 41) {
				t.Fatalf("round %d edge %s: disqualified=%v, score %.4f", round, r.Edge, r.Status.Disqualified, r.Status.Audit.Score())
			}
		}
	}
	got := sourcesOf(h.lookup(wire.LookupRequest{Video: h.video(0), Count: 1}), 0)
	if len(got) != 1 || got[0] != ids["honest"] {
		t.Fatalf("sources after disqualification: %v, want only the honest edge", got)
	}
	// Disqualified edges are no longer audited; the honest one still is.
	if res := h.c.Accounting().AuditRound(ctx); len(res) != 1 || res[0].Edge != ids["honest"] {
		t.Fatalf("after disqualification: %+v", res)
	}
	// Audits were whole-shard GETs on the normal route, like a viewer's.
	if servers["drop"].requests != 41 || servers["honest"].requests != 42 {
		t.Fatalf("requests: drop %d honest %d", servers["drop"].requests, servers["honest"].requests)
	}
	if got := h.metric(`swarmcast_coordinator_audits_total{outcome="failed"}`); got != "82" {
		t.Fatalf("failed audits metric %q", got)
	}
}

// TestAuditContainment: an edge that does not answer in time is contained
// and asked the same challenge again; the third timeout is a failure.
func TestAuditContainment(t *testing.T) {
	h, ids, servers := auditNet(t, "hang")
	ctx := context.Background()
	var first int64
	for round := 1; round <= 3; round++ {
		res := h.c.Accounting().AuditRound(ctx)
		if len(res) != 1 || res[0].Edge != ids["hang"] || res[0].Outcome != coordinatordb.OutcomeTimeout {
			t.Fatalf("round %d: %+v", round, res)
		}
		if round == 1 {
			first = res[0].AuditID
		}
		if res[0].AuditID != first {
			t.Fatalf("round %d: audit %d, want the contained challenge %d re-asked", round, res[0].AuditID, first)
		}
		wantState := coordinatordb.AuditContained
		if round == 3 {
			wantState = coordinatordb.AuditFailed
		}
		if res[0].State != wantState {
			t.Fatalf("round %d: state %s, want %s", round, res[0].State, wantState)
		}
	}
	st, _ := h.store.EdgeReputation(ctx, ids["hang"])
	if st.Audits != 1 || st.Disqualified {
		t.Fatalf("after containment: %d audits recorded, disqualified %v", st.Audits, st.Disqualified)
	}
	tally, _ := h.store.AuditTally(ctx, ids["hang"])
	if tally.Failed != 1 || tally.Contained {
		t.Fatalf("tally %+v", tally)
	}
	// The next round is a fresh challenge.
	if res := h.c.Accounting().AuditRound(ctx); res[0].AuditID == first {
		t.Fatal("a failed challenge was asked again")
	}
	_ = servers
}

// TestPartialDropperDetection answers "an edge that drops 10% of its
// shards is caught within how many audits": each audit fails with
// probability 0.1, so the first failure comes after 10 audits on average;
// with Storj's reputation the expected score after n audits is
// 0.9 + 0.1·0.999^n, below 0.96 after ≈511 audits. This drives the store's
// pure reputation rule over seeded random outcomes (2,000 edges): mean
// first failure ≈ 10, mean disqualification ≈ 517 audits (5%–95%: ≈376–672).
func TestPartialDropperDetection(t *testing.T) {
	cfg := coordinatordb.ReputationConfig{InitialAlpha: 1000}
	rng := rand.New(rand.NewSource(1))
	const trials = 2000
	var sumFirst, sumDQ float64
	for range trials {
		st := coordinatordb.NewEdgeStatus(newTestNode().ID, cfg)
		first := 0
		for n := 1; ; n++ {
			ok := rng.Float64() >= 0.1
			if !ok && first == 0 {
				first = n
			}
			st = coordinatordb.ApplyAudit(st, ok, cfg, time.Time{})
			if st.Disqualified {
				sumDQ += float64(n)
				break
			}
			if n > 100_000 {
				t.Fatal("a 10% dropper was never disqualified")
			}
		}
		sumFirst += float64(first)
	}
	meanFirst, meanDQ := sumFirst/trials, sumDQ/trials
	t.Logf("10%% dropper: first failed audit after %.1f audits, disqualified after %.0f audits (means of %d)", meanFirst, meanDQ, trials)
	if meanFirst < 9 || meanFirst > 11 || meanDQ < 470 || meanDQ > 560 {
		t.Fatalf("mean first failure %.1f (want ≈10), mean disqualification %.0f (want ≈511)", meanFirst, meanDQ)
	}
}

// TestUptimeRecordedOccasionally: the sweep records each edge's up/down in
// the store once per UptimeInterval, not on every heartbeat.
func TestUptimeRecordedOccasionally(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", func(c *Config) { c.Accounting.UptimeInterval = time.Minute })
	up, down := h.edge(""), h.edge("")
	h.c.Sweep() // starts the uptime clock
	for range 30 {
		h.clock.Advance(2 * time.Second)
		h.heartbeat(wire.HeartbeatRequest{NodeID: up})
		h.c.Sweep()
	}
	h.clock.Advance(2 * time.Second)
	h.heartbeat(wire.HeartbeatRequest{NodeID: up})
	h.c.Sweep()
	ctx := context.Background()
	su, _ := h.store.EdgeReputation(ctx, up)
	sd, _ := h.store.EdgeReputation(ctx, down)
	if su.Uptime.Beta != 0 || su.UpdatedAt.IsZero() {
		t.Fatalf("up edge uptime %+v", su.Uptime)
	}
	if sd.Uptime.Beta != 1 {
		t.Fatalf("down edge uptime %+v, want exactly one down record", sd.Uptime)
	}
	if got := h.metric(`swarmcast_coordinator_uptime_checks_total{state="up"}`); got != "1" {
		t.Fatalf("up checks %q, want 1 (once per interval)", got)
	}
}
