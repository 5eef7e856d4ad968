package relay

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// faultRig is parent → relay (with a fault) → child, over real HTTP on
// 127.0.0.1: the child is a fanout.Receiver that records every push it
// accepted or refused, and when.
type faultRig struct {
	pub    *fanouttest.Publisher
	relay  *Relay
	child  *fanout.Receiver
	url    string
	parent *wire.NodeSigner

	mu       sync.Mutex
	accepted map[uint64]time.Time // seq → when the child accepted it
	refused  map[uint64]error
	pushedAt map[uint64]time.Time // seq → when the relay was handed it
	answers  int                  // pushes the child answered
	sent     []fanout.Segment     // what the parent pushed, by seq
	events   chan struct{}
}

func newFaultRig(t *testing.T, f Fault) *faultRig {
	t.Helper()
	pub := fanouttest.NewPublisher(1, 31)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	t.Cleanup(coord.Close)
	rig := &faultRig{pub: pub, parent: wire.NewNodeSigner(identity.New().Key, nil),
		accepted: map[uint64]time.Time{}, refused: map[uint64]error{}, pushedAt: map[uint64]time.Time{}, events: make(chan struct{}, 64)}
	r, err := New(Config{Coordinator: coord.URL, Identity: identity.New(), UploadCapBytes: 1 << 20, Fault: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.sender.Close)
	rig.relay = r
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	rig.url = srv.URL

	child, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: pub})
	if err != nil {
		t.Fatal(err)
	}
	rig.child = child
	all := content.SubstreamIndices(0, 1, content.DefaultLivePushShards)
	child.SetLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Indices: all, Parent: r.ID()}}})
	cmux := http.NewServeMux()
	cmux.HandleFunc("POST "+wire.PathLivePush, func(w http.ResponseWriter, req *http.Request) {
		sender, p, err := fanout.ReadPush(req, time.Now())
		if err != nil {
			wire.WriteError(w, http.StatusUnauthorized, "%v", err)
			return
		}
		_, err = child.Receive(req.Context(), sender, p)
		if errors.Is(err, fanout.ErrRejected) {
			child.ProveCommission(sender, p, req.Header.Get(wire.HeaderPushStatements))
		}
		rig.mu.Lock()
		rig.answers++
		switch _, had := rig.accepted[p.Seq]; {
		case had: // a re-push of a kept segment changes nothing
		case err != nil:
			rig.refused[p.Seq] = err
		default:
			rig.accepted[p.Seq] = time.Now()
		}
		rig.mu.Unlock()
		rig.events <- struct{}{}
		if err != nil {
			wire.WriteError(w, fanout.StatusOf(err), "%v", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	csrv := httptest.NewServer(cmux)
	t.Cleanup(csrv.Close)
	r.applyLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Indices: all, Parent: rig.parent.ID(),
		Children: []wire.Source{{NodeID: "child", Addr: csrv.URL, Shards: all}}}}})
	return rig
}

// push hands the relay the next segment from its parent.
func (rig *faultRig) push(t *testing.T) uint64 {
	t.Helper()
	_, seg := rig.pub.Next()
	rig.mu.Lock()
	rig.pushedAt[seg.Seq] = time.Now()
	rig.sent = append(rig.sent, seg)
	rig.mu.Unlock()
	body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards}).Encode()
	if err := fanout.PushTo(t.Context(), http.DefaultClient, rig.parent, rig.url, body); err != nil {
		t.Fatal(err)
	}
	return seg.Seq
}

// waitChild waits (bounded) until the child has answered n pushes.
func (rig *faultRig) waitChild(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		rig.mu.Lock()
		got := rig.answers
		rig.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-rig.events:
		case <-deadline:
			t.Fatalf("the child answered %d pushes, want %d", got, n)
		}
	}
}

// A stalled relay relays segments before From and none from From on,
// while it still accepts (and serves) what its parent pushes.
func TestFaultStallForwardsNothingFromItsSegment(t *testing.T) {
	rig := newFaultRig(t, Fault{Kind: FaultStall, From: 2})
	for range 4 {
		rig.push(t)
	}
	rig.waitChild(t, 2)
	// What reaches the child is what the fault queued: nothing from From on.
	_, seg := rig.pub.Next()
	if did, queued := rig.relay.cfg.Fault.forward(rig.relay.sender, seg, time.Second); did != FaultStall || queued != 0 {
		t.Fatalf("segment %d: the stalled relay did %q and queued it for %d children, want stall and 0", seg.Seq, did, queued)
	}
	early := rig.sent[1]
	if did, queued := rig.relay.cfg.Fault.forward(rig.relay.sender, early, time.Second); did != FaultNone || queued != 1 {
		t.Fatalf("segment 1: did %q queued %d, want honest and 1", did, queued)
	}
	rig.waitChild(t, 3) // the re-sent segment 1 came through: the stalled ones would have been before it
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for seq := range uint64(4) {
		_, ok := rig.accepted[seq]
		if ok != (seq < 2) {
			t.Fatalf("child accepted %v refused %v, want exactly segments 0 and 1", rig.accepted, rig.refused)
		}
	}
	if held := rig.relay.Window().HeldSegments(rig.pub.Chain); len(held) != 4 {
		t.Fatalf("the stalled relay holds %v, want all 4 segments (it stalls forwarding, not receiving)", held)
	}
}

// A corrupting relay's altered shards are refused by the child (the Merkle
// check against the signed entry), so no wrong byte is kept; earlier
// segments pass.
func TestFaultCorruptIsRefusedByTheChild(t *testing.T) {
	rig := newFaultRig(t, Fault{Kind: FaultCorrupt, From: 1})
	for range 3 {
		rig.push(t)
	}
	rig.waitChild(t, 3)
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if _, ok := rig.accepted[0]; !ok || len(rig.accepted) != 1 {
		t.Fatalf("child accepted %v, want only segment 0", rig.accepted)
	}
	for _, seq := range []uint64{1, 2} {
		if err := rig.refused[seq]; !errors.Is(err, fanout.ErrRejected) {
			t.Fatalf("segment %d: child answered %v, want a verification refusal", seq, err)
		}
	}
	// The child holds the relay's own signed push statements as proofs
	// that an independent checker, re-digesting the origin's shards,
	// accepts against the relay.
	proofs := rig.child.Proofs()
	if len(proofs) != 2 {
		t.Fatalf("the child holds %d commission proofs, want one per refused segment (2)", len(proofs))
	}
	re := fanout.NewRelayReexecutor()
	all := content.SubstreamIndices(0, 1, content.DefaultLivePushShards)
	for _, seg := range rig.sent {
		if err := re.Add(rig.pub.Genesis, seg.Entry, 0, all, seg.Shards); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range proofs {
		raw, err := btr.DecodeProof(p.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if raw.Culprit() != btr.KeyOf(rig.relay.cfg.Identity.Key) {
			t.Fatal("the proof names someone else than the corrupting relay")
		}
		if err := raw.Check(re); err != nil {
			t.Fatalf("an independent checker refuses the proof: %v", err)
		}
	}
	// The same checker refuses a proof built on an honest push.
	honest := btr.SignPush(rig.relay.cfg.Identity.Key, btr.RelayTask(rig.pub.Chain, 0, 0, rig.sent[0].Entry), rig.sent[0].Shards)
	if err := (&btr.ProofOfMisbehaviour{Kind: btr.Commission, A: honest}).Check(re); err == nil {
		t.Fatal("a proof against an honest push was accepted")
	}
	// The relay's own window kept the good bytes.
	ref := content.SegmentRef{Video: rig.pub.Chain, Segment: 1}.Shard(0)
	if _, ok := rig.relay.Window().Shard(ref); !ok {
		t.Fatal("the corrupting relay lost its own verified shard")
	}
}

// A slow relay forwards every segment from From on no sooner than Delay
// after it got it, and earlier ones at once.
func TestFaultSlowHoldsEachSegment(t *testing.T) {
	const hold = 400 * time.Millisecond
	rig := newFaultRig(t, Fault{Kind: FaultSlow, From: 1, Delay: hold})
	for range 3 {
		rig.push(t)
	}
	rig.waitChild(t, 3)
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.accepted) != 3 {
		t.Fatalf("child accepted %v, want all 3 segments (late, not lost)", rig.accepted)
	}
	for _, seq := range []uint64{1, 2} {
		if late := rig.accepted[seq].Sub(rig.pushedAt[seq]); late < hold {
			t.Fatalf("segment %d reached the child %v after the relay got it, want ≥ %v", seq, late, hold)
		}
	}
}

func TestFaultConfigRefused(t *testing.T) {
	for _, f := range []Fault{{Kind: "explode"}, {Kind: FaultSlow, Delay: -time.Second}} {
		if _, err := New(Config{Coordinator: "http://127.0.0.1:1", Identity: identity.New(), UploadCapBytes: 1, Fault: f}); err == nil {
			t.Errorf("fault %+v accepted", f)
		}
	}
	if k, err := ParseFaultKind("stall"); err != nil || k != FaultStall {
		t.Fatalf("ParseFaultKind(stall) = %q, %v", k, err)
	}
}

// A relay watches its parent's cadence: pushes within a segment plus the
// slack of each other are never named (honest but slow); once the parent
// stalls, the first overdue segment is named with the relay's signed
// accusation of that parent for that segment's relaying task.
func TestRelayAccusesAStalledParent(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 41)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	defer coord.Close()
	clk := &clock{t: time.Unix(1_780_000_000, 0)}
	id := identity.New()
	r, err := New(Config{Coordinator: coord.URL, Identity: id, UploadCapBytes: 1 << 20, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer r.sender.Close()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	parentID := identity.New()
	parent := wire.NewNodeSigner(parentID.Key, clk.now)
	r.applyLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Substream: 0, Indices: []int{0, 1, 2, 3, 4}, Parent: parent.ID()}}})
	var entries [][]byte
	next := func(push bool) {
		t.Helper()
		_, seg := pub.Next()
		entries = append(entries, seg.Entry)
		if !push {
			return
		}
		body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards}).Encode()
		if err := fanout.PushTo(t.Context(), srv.Client(), parent, srv.URL, body); err != nil {
			t.Fatal(err)
		}
	}
	// Honest but slow: the slack (one segment) is used up every other time.
	for s := range 6 {
		next(true)
		step := 500 * time.Millisecond
		if s%2 == 0 {
			step = 1500 * time.Millisecond
		}
		for range 3 {
			clk.add(step / 3)
			r.checkParents(t.Context())
		}
	}
	if got := testutil.ToFloat64(r.m.parentMisses); got != 0 {
		t.Fatalf("an honest parent within its slack was named %v times: %+v", got, r.Accusations())
	}
	// The stall: segment 6 is published but never pushed.
	next(false)
	for range 30 {
		clk.add(100 * time.Millisecond)
		r.checkParents(t.Context())
	}
	acc := r.Accusations()
	if len(acc) == 0 || testutil.ToFloat64(r.m.parentMisses) != float64(len(acc)) {
		t.Fatalf("a stalled parent was not named (misses %v, accusations %d)", testutil.ToFloat64(r.m.parentMisses), len(acc))
	}
	a := acc[0]
	if a.Miss.Seq != 6 || a.Parent != parent.ID() || a.Accusation == nil {
		t.Fatalf("first accusation %+v, want segment 6 of parent %s, signed", a, parent.ID())
	}
	got, err := btr.DecodeAccusation(a.Accusation.Encode())
	if err != nil {
		t.Fatal(err)
	}
	want := btr.RelayTask(pub.Chain, 6, 0, entries[6])
	if got.Task != want || got.Accuser != btr.KeyOf(id.Key) || got.Accused != btr.KeyOf(parentID.Key) || got.Kind != btr.Omission {
		t.Fatalf("accusation %+v, want the relay's of its parent for %s", got, want)
	}
}
