package fanout_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/wire"
)

func newSigner(t testing.TB) *wire.NodeSigner {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewNodeSigner(key, nil)
}

func TestPushRoundTrip(t *testing.T) {
	pub := fanouttest.NewPublisher(2, 1)
	_, seg := pub.Next()
	p := fanout.Push(seg)
	got, err := fanout.DecodePush(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Chain != p.Chain || got.Seq != p.Seq || !bytes.Equal(got.Entry, p.Entry) || len(got.Shards) != len(p.Shards) {
		t.Fatalf("round trip changed the push: %+v", got)
	}
	for i := range got.Shards {
		if !bytes.Equal(got.Shards[i].Encode(), p.Shards[i].Encode()) {
			t.Fatalf("shard %d changed", i)
		}
	}
	// A shard of another segment is not framing this push may carry.
	other := *p.Shards[0]
	other.Segment = 7
	bad := fanout.Push{Chain: p.Chain, Seq: p.Seq, Entry: p.Entry, Shards: []*content.ShardMessage{&other}}
	if _, err := fanout.DecodePush(bad.Encode()); !errors.Is(err, fanout.ErrBadPush) {
		t.Fatalf("a shard of segment 7 in a push of segment 0 decoded: %v", err)
	}
}

func FuzzDecodePush(f *testing.F) {
	pub := fanouttest.NewPublisher(1, 2)
	_, seg := pub.Next()
	p := fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards[:2]}
	f.Add(p.Encode())
	f.Add([]byte("SWLP\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := fanout.DecodePush(b)
		if err != nil {
			if !errors.Is(err, fanout.ErrBadPush) {
				t.Fatalf("error not wrapping ErrBadPush: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if !bytes.Equal(p.Encode(), b) {
			t.Fatal("decoded push does not re-encode to its bytes")
		}
	})
}

// node is a receiver behind a real HTTP server on 127.0.0.1.
type node struct {
	recv *fanout.Receiver
	url  string
	got  chan fanout.Received
}

func newNode(t *testing.T, coord fanout.Coordinator, routes []wire.LiveRoute) *node {
	t.Helper()
	recv, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: coord})
	if err != nil {
		t.Fatal(err)
	}
	recv.SetLive(&wire.LiveSet{Version: 1, Routes: routes})
	n := &node{recv: recv, got: make(chan fanout.Received, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathLivePush, func(w http.ResponseWriter, r *http.Request) {
		if got, err := recv.HandlePush(w, r); err == nil {
			n.got <- got
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

// routesFor is the routes of a node that is a child of parent in substreams subs of 5.
func routesFor(chain content.VideoID, parent wire.NodeID, subs ...int) []wire.LiveRoute {
	var out []wire.LiveRoute
	for _, j := range subs {
		out = append(out, wire.LiveRoute{Chain: chain, Substream: j, Indices: content.SubstreamIndices(j, 5, 5), Parent: parent})
	}
	return out
}

func waitReceived(t *testing.T, n *node, count int) []fanout.Received {
	t.Helper()
	var out []fanout.Received
	deadline := time.After(10 * time.Second)
	for len(out) < count {
		select {
		case r := <-n.got:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("received %d pushes, want %d", len(out), count)
		}
	}
	return out
}

func TestSenderPushesEachChildItsSubstreams(t *testing.T) {
	pub := fanouttest.NewPublisher(2, 3)
	origin := newSigner(t)
	a := newNode(t, pub, routesFor(pub.Chain, origin.ID(), 0, 1))
	b := newNode(t, pub, routesFor(pub.Chain, origin.ID(), 2, 3, 4))
	var pushed sync.Map
	s, err := fanout.NewSender(fanout.SenderConfig{Signer: origin, Hooks: fanout.SenderHooks{
		Pushed: func(child wire.NodeID, n int, _ time.Duration) { pushed.Store(child, n) },
		Failed: func(child wire.NodeID, err error) { t.Errorf("push to %s failed: %v", child, err) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idA, idB := wire.NodeID("a"), wire.NodeID("b")
	var routes []wire.LiveRoute
	for j := range 5 {
		c := wire.Source{NodeID: idA, Addr: a.url}
		if j >= 2 {
			c = wire.Source{NodeID: idB, Addr: b.url}
		}
		routes = append(routes, wire.LiveRoute{Chain: pub.Chain, Substream: j, Indices: content.SubstreamIndices(j, 5, 5), Children: []wire.Source{c}})
	}
	s.SetRoutes(routes)
	for range 3 {
		_, seg := pub.Next()
		if n := s.Send(seg); n != 2 {
			t.Fatalf("segment queued for %d children, want 2", n)
		}
	}
	waitReceived(t, a, 3)
	waitReceived(t, b, 3)
	for seq := range uint64(3) {
		for r := range 2 {
			if got := a.recv.Window().Indices(pub.Chain, r, seq); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("child a holds indices %v of rendition %d segment %d, want [0 1]", got, r, seq)
			}
			if got := b.recv.Window().Indices(pub.Chain, r, seq); !slices.Equal(got, []int{2, 3, 4}) {
				t.Errorf("child b holds indices %v of rendition %d segment %d, want [2 3 4]", got, r, seq)
			}
		}
	}
	if _, ok := pushed.Load(idA); !ok {
		t.Error("the Pushed hook never ran for child a")
	}
	ref := content.SegmentRef{Video: pub.Chain, Rendition: 1, Segment: 2}.Shard(3)
	st, ok := b.recv.Window().Shard(ref)
	if !ok {
		t.Fatal("child b does not serve shard 3 of rendition 1 segment 2")
	}
	msg, err := content.DecodeShardMessage(st.Encoded)
	if err != nil {
		t.Fatal(err)
	}
	m := b.recv.Window().Manifest(pub.Chain)
	if err := content.VerifyShard(m, 1, 2, msg.Shard); err != nil {
		t.Fatalf("the window's shard does not verify against its manifest view: %v", err)
	}
}

// victim is a receiver whose parent (for every substream) is parent.
type victim struct {
	*node
	parent *wire.NodeSigner
	pub    *fanouttest.Publisher
}

func newVictim(t *testing.T) *victim {
	pub := fanouttest.NewPublisher(1, 4)
	parent := newSigner(t)
	return &victim{node: newNode(t, pub, routesFor(pub.Chain, parent.ID(), 0, 1, 2, 3, 4)), parent: parent, pub: pub}
}

// push sends a raw body signed by signer (nil: unsigned) and returns the status.
func (v *victim) push(t *testing.T, signer *wire.NodeSigner, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.url+wire.PathLivePush, bytes.NewReader(body))
	req.Header.Set("Content-Type", wire.ContentTypeLivePush)
	if signer != nil {
		signer.SignRequest(req, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		<-v.got
	}
	return resp.StatusCode, string(msg)
}

func encode(seg fanout.Segment) []byte {
	p := fanout.Push(seg)
	return p.Encode()
}

// state is what a victim holds: the chain head, every held shard's bytes, the forks.
func (v *victim) state() string {
	var b bytes.Buffer
	w := v.recv.Window()
	if c := w.Chain(v.pub.Chain); c != nil && c.Head() != nil {
		h := c.Head().Hash()
		b.Write(h[:])
	}
	for _, seq := range w.HeldSegments(v.pub.Chain) {
		for _, i := range w.Indices(v.pub.Chain, 0, seq) {
			st, _ := w.Shard(content.SegmentRef{Video: v.pub.Chain, Segment: int(seq)}.Shard(i))
			b.Write(st.Encoded)
		}
	}
	b.WriteByte(byte(len(v.recv.Forks())))
	return b.String()
}

func TestReceiverRefusesAttacksAndKeepsNothing(t *testing.T) {
	v := newVictim(t)
	_, seg0 := v.pub.Next()
	if st, msg := v.push(t, v.parent, encode(seg0)); st != http.StatusNoContent {
		t.Fatalf("honest push: %d %s", st, msg)
	}
	e1, seg1 := v.pub.Next()
	outsider := newSigner(t)

	forgedShard := seg1
	forgedShard.Shards = slices.Clone(seg1.Shards)
	bad := *seg1.Shards[2]
	bad.Data = slices.Clone(bad.Data)
	bad.Data[0] ^= 1
	forgedShard.Shards[2] = &bad

	forgedEntry := seg1
	forgedEntry.Entry = slices.Clone(seg1.Entry)
	forgedEntry.Entry[len(forgedEntry.Entry)-1] ^= 1

	// Validly signed by the publisher but naming the wrong predecessor.
	reordered := *e1
	reordered.Prev = content.Hash(v.pub.Chain)
	reordered.Sign(v.pub.Key)
	reorderedSeg := seg1
	reorderedSeg.Entry = reordered.Encode()

	// Entry 1 with shards of entry 0 (another segment's shards).
	mixed := seg1
	mixed.Shards = nil
	for _, sh := range seg0.Shards {
		c := *sh
		c.Segment = 1
		mixed.Shards = append(mixed.Shards, &c)
	}

	garbage := make([]byte, 300)
	rand.Read(garbage)
	truncated := encode(seg1)
	truncated = truncated[:len(truncated)-5]

	for _, tc := range []struct {
		name   string
		signer *wire.NodeSigner
		body   []byte
		status int
	}{
		{"forged shard", v.parent, encode(forgedShard), http.StatusUnprocessableEntity},
		{"forged entry", v.parent, encode(forgedEntry), http.StatusUnprocessableEntity},
		{"reordered entry", v.parent, encode(reorderedSeg), http.StatusConflict},
		{"shards of another segment", v.parent, encode(mixed), http.StatusUnprocessableEntity},
		{"not the assigned parent", outsider, encode(seg1), http.StatusForbidden},
		{"unsigned", nil, encode(seg1), http.StatusUnauthorized},
		{"garbage", v.parent, garbage, http.StatusBadRequest},
		{"truncated", v.parent, truncated, http.StatusBadRequest},
		{"empty", v.parent, nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := v.state()
			st, msg := v.push(t, tc.signer, tc.body)
			if st != tc.status {
				t.Fatalf("status %d (%s), want %d", st, msg, tc.status)
			}
			if msg == "" {
				t.Error("refusal without a message saying why")
			}
			if v.state() != before {
				t.Fatal("the refused push changed the receiver's state")
			}
		})
	}

	// A push from another chain's parent to a chain this node has no route in.
	other := fanouttest.NewPublisher(1, 9)
	_, oseg := other.Next()
	before := v.state()
	if st, _ := v.push(t, v.parent, encode(oseg)); st != http.StatusForbidden {
		t.Fatalf("push of an unrouted chain: %d, want 403", st)
	}
	if v.state() != before || v.recv.Window().Chain(other.Chain) != nil {
		t.Fatal("a push of an unrouted chain changed the receiver's state")
	}

	if st, msg := v.push(t, v.parent, encode(seg1)); st != http.StatusNoContent {
		t.Fatalf("honest push after the attacks: %d %s", st, msg)
	}
	t.Run("fork", func(t *testing.T) {
		before := v.state()
		_, fork := v.pub.Fork(1)
		if st, msg := v.push(t, v.parent, encode(fork)); st != http.StatusConflict {
			t.Fatalf("fork: status %d (%s), want 409", st, msg)
		}
		forks := v.recv.Forks()
		if len(forks) != 1 {
			t.Fatalf("%d fork proofs kept, want 1", len(forks))
		}
		if err := forks[0].Check(v.pub.Genesis); err != nil {
			t.Fatalf("the kept fork proof does not check: %v", err)
		}
		if after := v.state(); after[:len(after)-1] != before[:len(before)-1] {
			t.Fatal("the fork changed the held chain or shards")
		}
	})
}

// A gap (a dropped push) is filled from the coordinator's entries; a push
// older than the window is refused.
func TestReceiverFillsGapsAndRefusesStale(t *testing.T) {
	v := newVictim(t)
	var segs []fanout.Segment
	for range 40 {
		_, s := v.pub.Next()
		segs = append(segs, s)
	}
	for _, i := range []int{0, 1, 4, 33} {
		if st, msg := v.push(t, v.parent, encode(segs[i])); st != http.StatusNoContent {
			t.Fatalf("segment %d: %d %s", i, st, msg)
		}
	}
	c := v.recv.Window().Chain(v.pub.Chain)
	if c.Head().Seq != 33 {
		t.Fatalf("head %d, want 33", c.Head().Seq)
	}
	if e, ok := c.Entry(32); !ok || e.Seq != 32 {
		t.Fatal("the gap 5..32 was not filled from the coordinator's entries")
	}
	held := v.recv.Window().HeldSegments(v.pub.Chain)
	if !slices.Equal(held, []uint64{4, 33}) {
		t.Fatalf("held segments %v, want [4 33] (older ones are out of the 30-segment window)", held)
	}
	before := v.state()
	if st, _ := v.push(t, v.parent, encode(segs[3])); st != http.StatusConflict {
		t.Fatalf("segment 3, 30 behind the head: status %d, want 409", st)
	}
	if v.state() != before {
		t.Fatal("a stale push changed the receiver's state")
	}
}

// inProcess routes requests by host to handlers, in the test's bubble.
type inProcess map[string]http.Handler

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	h, ok := p[req.URL.Host]
	if !ok {
		return nil, errors.New("no such host")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// A slow child does not delay the others: the fast child gets every
// segment at once while the slow one's queue keeps the newest and drops
// the oldest.
func TestSlowChildDelaysNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := fanouttest.NewPublisher(1, 5)
		origin := newSigner(t)
		var mu sync.Mutex
		var fastGot, slowGot []uint64
		release := make(chan struct{})
		handler := func(slow bool) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, p, err := fanout.ReadPush(r, time.Now())
				if err != nil {
					wire.WriteError(w, 400, "%v", err)
					return
				}
				if slow {
					<-release
				}
				mu.Lock()
				if slow {
					slowGot = append(slowGot, p.Seq)
				} else {
					fastGot = append(fastGot, p.Seq)
				}
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			})
		}
		var dropped []uint64
		s, err := fanout.NewSender(fanout.SenderConfig{Signer: origin, QueueSegments: 3, PushTimeout: time.Minute,
			HTTP: &http.Client{Transport: inProcess{"fast": handler(false), "slow": handler(true)}},
			Hooks: fanout.SenderHooks{Dropped: func(child wire.NodeID, _ content.VideoID, seq uint64) {
				if child != "slow" {
					t.Errorf("dropped a segment of the fast child")
				}
				mu.Lock()
				dropped = append(dropped, seq)
				mu.Unlock()
			}}})
		if err != nil {
			t.Fatal(err)
		}
		s.SetRoutes([]wire.LiveRoute{{Chain: pub.Chain, Indices: []int{0, 1, 2, 3, 4},
			Children: []wire.Source{{NodeID: "fast", Addr: "http://fast"}, {NodeID: "slow", Addr: "http://slow"}}}})
		for i := range 10 {
			_, seg := pub.Next()
			s.Send(seg)
			synctest.Wait()
			mu.Lock()
			if len(fastGot) != i+1 {
				t.Fatalf("after segment %d the fast child holds %d segments: the slow child delayed it", i, len(fastGot))
			}
			mu.Unlock()
			time.Sleep(time.Second) // the stream's pace, in fake time
		}
		mu.Lock()
		if !slices.Equal(dropped, []uint64{1, 2, 3, 4, 5, 6}) {
			t.Errorf("dropped %v, want the oldest waiting [1..6]", dropped)
		}
		mu.Unlock()
		close(release)
		synctest.Wait()
		mu.Lock()
		if !slices.Equal(slowGot, []uint64{0, 7, 8, 9}) {
			t.Errorf("the slow child got %v, want [0 7 8 9] (the one in flight, then the newest 3)", slowGot)
		}
		mu.Unlock()
		s.Close()
	})
}

// Close stops every worker, also one blocked on a child that never answers.
func TestSenderCloseStopsBlockedPushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := fanouttest.NewPublisher(1, 6)
		block := make(chan struct{})
		defer close(block)
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-block:
			}
		})
		s, _ := fanout.NewSender(fanout.SenderConfig{Signer: newSigner(t), HTTP: &http.Client{Transport: ctxTransport{inProcess{"hang": hang}}}})
		s.SetRoutes([]wire.LiveRoute{{Chain: pub.Chain, Indices: []int{0}, Children: []wire.Source{{NodeID: "hang", Addr: "http://hang"}}}})
		_, seg := pub.Next()
		s.Send(seg)
		synctest.Wait()
		s.Close() // returns: the push's context is cancelled
		if s.Send(seg) != 0 {
			t.Fatal("a closed sender queued a segment")
		}
	})
}

// ctxTransport passes the request's context to the in-process handler.
type ctxTransport struct{ inProcess }

func (c ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.inProcess.RoundTrip(req.WithContext(req.Context()))
}

var _ = context.Background

// Live sets apply only when newer, except the first after a
// (re)registration: a restarted coordinator numbers them from 1 again.
func TestLiveSetVersions(t *testing.T) {
	recv, _ := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: fanouttest.NewPublisher(1, 8)})
	set := func(v int64, sub int) *wire.LiveSet {
		return &wire.LiveSet{Version: v, Routes: []wire.LiveRoute{{Substream: sub}}}
	}
	if !recv.SetLive(set(5, 0)) || recv.SetLive(set(5, 1)) || recv.SetLive(set(4, 1)) || recv.SetLive(nil) {
		t.Fatal("a set not newer than the held one applied, or a newer one did not")
	}
	recv.Reregistered()
	if !recv.SetLive(set(1, 2)) || recv.Routes()[0].Substream != 2 {
		t.Fatal("the first set after re-registration did not apply")
	}
	if recv.SetLive(set(1, 3)) {
		t.Fatal("a set of the same version applied twice")
	}
}

// A child newly placed under a parent gets the newest segments the parent
// sent before (CatchUp, oldest first, only its substreams' shards), even
// when it hears of its route after the parent: its refusals as "not my
// parent" are tried again. Children already placed get nothing again.
func TestSenderCatchesUpANewChild(t *testing.T) {
	pub := fanouttest.NewPublisher(2, 3)
	origin := newSigner(t)
	a := newNode(t, pub, routesFor(pub.Chain, origin.ID(), 0, 1, 2, 3, 4))
	// b learns its route only after it refused the first push as not
	// its parent's (its heartbeat comes after the parent's).
	brecv, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: pub})
	if err != nil {
		t.Fatal(err)
	}
	b := &node{recv: brecv, got: make(chan fanout.Received, 64)}
	var refusedB atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathLivePush, func(w http.ResponseWriter, r *http.Request) {
		got, err := brecv.HandlePush(w, r)
		switch {
		case errors.Is(err, fanout.ErrNotParent) && refusedB.Add(1) == 1:
			brecv.SetLive(&wire.LiveSet{Version: 1, Routes: routesFor(pub.Chain, origin.ID(), 2, 3, 4)})
		case err == nil:
			b.got <- got
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b.url = srv.URL
	idA, idB := wire.NodeID("a"), wire.NodeID("b")
	s, err := fanout.NewSender(fanout.SenderConfig{Signer: origin, Hooks: fanout.SenderHooks{
		Failed: func(child wire.NodeID, err error) { t.Errorf("push to %s failed: %v", child, err) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	routes := func(withB bool) []wire.LiveRoute {
		var out []wire.LiveRoute
		for j := range 5 {
			c := wire.Source{NodeID: idA, Addr: a.url}
			if withB && j >= 2 {
				c = wire.Source{NodeID: idB, Addr: b.url}
			}
			out = append(out, wire.LiveRoute{Chain: pub.Chain, Substream: j, Indices: content.SubstreamIndices(j, 5, 5), Children: []wire.Source{c}})
		}
		return out
	}
	s.SetRoutes(routes(false))
	for range 5 {
		// One at a time: a child's queue holds DefaultQueueSegments (3), so
		// five sent at once while a's first push is in flight drop one.
		_, seg := pub.Next()
		s.Send(seg)
		waitReceived(t, a, 1)
	}
	s.SetRoutes(routes(true))
	s.SetRoutes(routes(true)) // a second heartbeat with the same routes queues nothing again
	got := waitReceived(t, b, 3)
	for i, r := range got {
		if want := uint64(2 + i); r.Entry.Seq != want {
			t.Errorf("catch-up push %d is segment %d, want %d (the newest %d, oldest first)", i, r.Entry.Seq, want, fanout.DefaultCatchUpSegments)
		}
	}
	_, seg := pub.Next()
	s.Send(seg)
	waitReceived(t, b, 1)
	waitReceived(t, a, 1)
	for seq := range uint64(6) {
		want := []int{2, 3, 4}
		if seq < 2 {
			want = nil
		}
		if got := b.recv.Window().Indices(pub.Chain, 1, seq); !slices.Equal(got, want) {
			t.Errorf("new child b holds indices %v of rendition 1 segment %d, want %v", got, seq, want)
		}
	}
	select {
	case r := <-a.got:
		t.Errorf("child a, placed all along, got segment %d again", r.Entry.Seq)
	case r := <-b.got:
		t.Errorf("child b got segment %d twice", r.Entry.Seq)
	default:
	}
	if refusedB.Load() != 1 {
		t.Errorf("b refused %d pushes as not its parent's, want 1 (then the catch-up was tried again)", refusedB.Load())
	}
}
