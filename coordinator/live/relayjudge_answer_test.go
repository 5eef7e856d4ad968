package live

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/wire"
)

// judgeFixture is a coordinator judging the relays of one real chain (a
// fanouttest publisher signing with the origin's key, every segment's
// shards served on the origin's real shard route), with a child under a
// relay parent in substream sub.
type judgeFixture struct {
	t        *testing.T
	ctx      context.Context
	s        *Service
	now      time.Time
	judgeKey ed25519.PrivateKey
	pub      *fanouttest.Publisher
	chain    content.VideoID
	entries  []*content.LiveEntry
	segs     []fanout.Segment
	keys     map[wire.NodeID]ed25519.PrivateKey
	origin   wire.NodeID
	child    wire.NodeID
	parent   wire.NodeID
	sub      int

	mu     sync.Mutex
	shards map[content.ShardRef][]byte // what the origin serves
}

func newJudgeFixture(t *testing.T) *judgeFixture {
	t.Helper()
	f := &judgeFixture{t: t, ctx: context.Background(), now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		keys: map[wire.NodeID]ed25519.PrivateKey{}, shards: map[content.ShardRef][]byte{}}
	db, err := coordinatordb.OpenConfig(f.ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), coordinatordb.Config{PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, f.judgeKey = judgeTestKey("coordinator")
	f.s, err = New(f.ctx, Config{Now: func() time.Time { return f.now }, RelayJudgeKey: f.judgeKey}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.CreateAccount(f.ctx, "owner", "correct horse battery", f.now)
	if err != nil {
		t.Fatal(err)
	}
	origin, okey := judgeTestKey("origin")
	f.origin = origin
	created, err := f.s.CreateChannel(f.ctx, owner.ID, wire.CreateChannelRequest{Name: "judged"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AuthorizeIngest(origin, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	var ck content.ContentKey
	f.pub = fanouttest.NewPublisherFor(okey, string(created.Channel.ID), ck.ID(), 1, 7)
	if f.chain, err = f.s.StartChain(f.ctx, origin, wire.LiveStartRequest{Genesis: f.pub.Genesis.Encode(), Key: ck[:]}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathShard, func(w http.ResponseWriter, r *http.Request) {
		ref, err := wire.ParseShardRef(r)
		f.mu.Lock()
		b, ok := f.shards[ref]
		f.mu.Unlock()
		if err != nil || !ok {
			wire.WriteError(w, http.StatusNotFound, "no such shard")
			return
		}
		w.Header().Set("Content-Type", wire.ContentTypeShard)
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	f.s.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: srv.URL, UploadCap: 1})
	for _, name := range []string{"relay-a", "relay-b", "relay-c"} {
		id, k := judgeTestKey(name)
		f.keys[id] = k
		f.s.NodeUp(TreeNode{ID: id, Role: wire.RoleRelay, Addr: "http://" + name, UploadCap: 10_000_000, PricePerGB: 0.01})
	}
	var edges []wire.NodeID
	for _, name := range []string{"edge-a", "edge-b", "edge-c", "edge-d"} {
		id, k := judgeTestKey(name)
		f.keys[id] = k
		edges = append(edges, id)
		f.s.NodeUp(TreeNode{ID: id, Role: wire.RoleEdge, Addr: "http://" + name})
	}
	beat := func() {
		for id := range f.keys {
			var watching []content.VideoID
			if slices.Contains(edges, id) {
				watching = []content.VideoID{f.chain}
			}
			f.s.Heartbeat(id, watching, nil, f.now)
		}
	}
	beat()
	f.now = f.now.Add(MinRebuildInterval)
	beat()
	f.publish(2)
	f.s.treeMu.Lock()
	trees := f.s.trees.out.Parent[f.chain]
	f.s.treeMu.Unlock()
	f.sub = -1
	for j, tree := range trees {
		for _, v := range sortedKeys(tree) {
			if p := tree[v]; p != origin {
				f.child, f.parent, f.sub = v, p, j
				break
			}
		}
		if f.sub >= 0 {
			break
		}
	}
	if f.sub < 0 {
		t.Fatalf("no node under a relay in %v", trees)
	}
	return f
}

// publish signs and appends entries up to seq, and serves their shards.
func (f *judgeFixture) publish(upTo uint64) {
	f.t.Helper()
	for uint64(len(f.entries)) <= upTo {
		e, seg := f.pub.Next()
		if err := f.s.AppendEntry(f.ctx, f.origin, f.chain, e.Encode()); err != nil {
			f.t.Fatal(err)
		}
		f.mu.Lock()
		for _, sh := range seg.Shards {
			f.shards[content.SegmentRef{Video: f.chain, Rendition: sh.Rendition, Segment: sh.Segment}.Shard(sh.Index)] = sh.Encode()
		}
		f.mu.Unlock()
		f.entries, f.segs = append(f.entries, e), append(f.segs, seg)
	}
}

// substreamShards are segment seq's shards of the fixture's substream.
func (f *judgeFixture) substreamShards(seq uint64) []*content.ShardMessage {
	indices := content.SubstreamIndices(f.sub, len(f.s.Trees()[f.chain]), f.s.cfg.PushShards)
	var out []*content.ShardMessage
	for _, sh := range f.segs[seq].Shards {
		if slices.Contains(indices, sh.Index) {
			out = append(out, sh)
		}
	}
	return out
}

func (f *judgeFixture) task(seq uint64) btr.Task {
	return btr.RelayTask(f.chain, seq, f.sub, f.entries[seq].Encode())
}

func (f *judgeFixture) accuse(seq uint64) {
	f.t.Helper()
	k, _ := btr.ParseNodeKey(string(f.parent))
	a := &btr.Accusation{Task: f.task(seq), Accused: k, Kind: btr.Omission}
	a.Sign(f.keys[f.child])
	if err := f.s.RelayStatement(f.ctx, f.child, f.chain, a.Encode()); err != nil {
		f.t.Fatal(err)
	}
}

// logLen is how many statements the chain's channel log holds.
func (f *judgeFixture) logLen() int {
	f.t.Helper()
	log, err := f.s.BTRLog(f.chain)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(log.Statements)
}

// PeerReview's rebuttal in the coordinator: a child that lies about an
// honest relay (says its push never came) gets its accusation upheld, the
// relay reads it on the judge's route and answers with the signed push it
// kept; the case clears, the answer is listed for the accuser (the push is
// available to it), and past the answer window the relay is not excluded:
// the channel log is unchanged. A relay that really stalled holds no push:
// its answer after the window is refused and it is excluded for omission.
func TestRelayJudgeRebuttalClearsALyingChildsAccusation(t *testing.T) {
	f := newJudgeFixture(t)
	f.accuse(2)
	cases := f.s.RelayJudgeCases(f.chain)
	if len(cases.Accusations) != 1 {
		t.Fatalf("judge's cases %+v, want the one accusation", cases)
	}
	judged, err := btr.DecodeAccusation(cases.Accusations[0])
	if err != nil {
		t.Fatal(err)
	}
	// The honest relay's kept push: its signed statement over the
	// substream's correct shards.
	push := btr.SignPush(f.keys[f.parent], f.task(2), f.substreamShards(2))
	// Someone else cannot answer for it.
	if err := f.s.RelayStatement(f.ctx, f.child, f.chain, (&btr.Rebuttal{Accusation: judged, Output: push}).Encode()); err == nil {
		t.Fatal("the accuser answered for the accused")
	}
	f.now = f.now.Add(300 * time.Millisecond) // well inside W = one segment
	if err := f.s.RelayStatement(f.ctx, f.parent, f.chain, (&btr.Rebuttal{Accusation: judged, Output: push}).Encode()); err != nil {
		t.Fatalf("the accused's in-time answer was refused: %v", err)
	}
	cases = f.s.RelayJudgeCases(f.chain)
	if len(cases.Answered) != 1 || cases.Answered[0].Accuser != f.child {
		t.Fatalf("answers %+v, want one for the accuser %s", cases.Answered, f.child)
	}
	r, err := btr.DecodeRebuttal(cases.Answered[0].Rebuttal)
	if err != nil || r.Output.Digest != btr.PushDigest(f.substreamShards(2)) || r.Output.Replica.String() != string(f.parent) {
		t.Fatalf("the answer served to the accuser: %+v, %v; want the parent's signed push of the correct shards", r, err)
	}
	f.now = f.now.Add(2 * time.Second)
	f.s.tickRelayJudges(f.ctx, f.now)
	if n := f.logLen(); n != 0 {
		t.Fatalf("the channel log holds %d statements after a rebutted lie, want 0", n)
	}
	if excluded(f.s, f.parent) {
		t.Fatal("the honest relay was excluded on a rebutted accusation")
	}

	// A relay that stalled: accused for segment 3, no answer within W; a
	// late answer is refused, and the tick excludes it for omission.
	f.publish(3)
	f.accuse(3)
	cases = f.s.RelayJudgeCases(f.chain)
	if len(cases.Accusations) != 1 {
		t.Fatalf("judge's cases %+v, want the new accusation", cases)
	}
	judged, _ = btr.DecodeAccusation(cases.Accusations[0])
	f.now = f.now.Add(time.Second + time.Millisecond)
	late := btr.SignPush(f.keys[f.parent], f.task(3), f.substreamShards(3))
	if err := f.s.RelayStatement(f.ctx, f.parent, f.chain, (&btr.Rebuttal{Accusation: judged, Output: late}).Encode()); err == nil {
		t.Fatal("an answer past the answer window was taken")
	}
	f.s.tickRelayJudges(f.ctx, f.now)
	log, _ := f.s.BTRLog(f.chain)
	if len(log.Excluded) != 1 || log.Excluded[0].Node != f.parent || log.Excluded[0].Kind != "omission" {
		t.Fatalf("log %+v, want the stalled relay excluded for omission", log)
	}
}

// excluded reports whether node is excluded by the relays' judges.
func excluded(s *Service, node wire.NodeID) bool {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	_, ok := s.trees.excluded[node]
	return ok
}

// A child's commission proof in the coordinator: the parent's own signed
// push over corrupted shards, posted by the child, is checked by the judge
// on its own (it re-digests the substream from the origin's shards) and
// excludes the parent at once, with the proof as evidence an independent
// checker accepts. A proof against an honest push (its digest is the
// correct one), a proof against a node that is not the sender's parent,
// and a proof of a task whose entry is not the chain's are refused with
// nothing changed.
func TestRelayJudgeExcludesOnACommissionProof(t *testing.T) {
	f := newJudgeFixture(t)
	honest := btr.SignPush(f.keys[f.parent], f.task(2), f.substreamShards(2))
	var bad []*content.ShardMessage
	for _, sh := range f.substreamShards(2) {
		c := *sh
		c.Data = slices.Clone(sh.Data)
		c.Data[0] ^= 0xff
		bad = append(bad, &c)
	}
	corrupt := btr.SignPush(f.keys[f.parent], f.task(2), bad)
	// other is a node whose parent in the substream is not f.parent (the
	// go-live trees may hang more than f.child under it).
	var other wire.NodeID
	tree := f.s.Trees()[f.chain][f.sub]
	for _, id := range sortedKeys(f.keys) {
		if id != f.parent && id != f.child && tree[id] != f.parent {
			other = id
			break
		}
	}
	wrongEntry := btr.SignPush(f.keys[f.parent], btr.RelayTask(f.chain, 2, f.sub, []byte("not the entry")), bad)
	for _, c := range []struct {
		name   string
		sender wire.NodeID
		proof  *btr.ProofOfMisbehaviour
		status int
	}{
		{"a proof against an honest push", f.child, &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: honest}, http.StatusBadRequest},
		{"a proof against a node that is not the sender's parent", other, &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: corrupt}, http.StatusForbidden},
		{"a proof naming another entry", f.child, &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: wrongEntry}, http.StatusBadRequest},
	} {
		err := f.s.RelayStatement(f.ctx, c.sender, f.chain, c.proof.Encode())
		if st, _ := wire.StatusOf(err); st != c.status {
			t.Fatalf("%s: %v, want status %d", c.name, err, c.status)
		}
		if n := f.logLen(); n != 0 || excluded(f.s, f.parent) {
			t.Fatalf("%s changed the log (%d statements) or the trees", c.name, n)
		}
	}

	if err := f.s.RelayStatement(f.ctx, f.child, f.chain, (&btr.ProofOfMisbehaviour{Kind: btr.Commission, A: corrupt}).Encode()); err != nil {
		t.Fatalf("the child's commission proof was refused: %v", err)
	}
	log, _ := f.s.BTRLog(f.chain)
	if len(log.Excluded) != 1 || log.Excluded[0].Node != f.parent || log.Excluded[0].Kind != "commission" || !excluded(f.s, f.parent) {
		t.Fatalf("log %+v, want the corrupting relay excluded for commission at once", log)
	}
	x, err := btr.DecodeExclusion(log.Statements[0])
	if err != nil {
		t.Fatal(err)
	}
	// The independent checker re-executes the relaying from the origin's
	// shards itself.
	re := fanout.NewRelayReexecutor()
	var fetched []*content.ShardMessage
	for _, sh := range f.substreamShards(2) {
		res, err := wire.GetShard(f.ctx, http.DefaultClient, wire.ShardRequest{Base: f.originURL(), Ref: content.SegmentRef{Video: f.chain, Rendition: sh.Rendition, Segment: 2}.Shard(sh.Index), MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		m, err := content.DecodeShardMessage(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		fetched = append(fetched, m)
	}
	indices := content.SubstreamIndices(f.sub, len(f.s.Trees()[f.chain]), f.s.cfg.PushShards)
	if err := re.Add(f.pub.Genesis, f.entries[2].Encode(), f.sub, indices, fetched); err != nil {
		t.Fatal(err)
	}
	if err := x.Check(btr.KeyOf(f.judgeKey), re); err != nil {
		t.Fatalf("an independent checker refuses the exclusion's evidence: %v", err)
	}
}

// originURL is the base URL the fixture's origin serves shards at.
func (f *judgeFixture) originURL() string {
	f.s.relays.mu.Lock()
	defer f.s.relays.mu.Unlock()
	return f.s.relays.chains[f.chain].originAddr
}
