package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// btrPayFixture is a coordinator with a live chain judged by origin, three
// allowed workers (w[0], w[1] bound to bob) and an outsider worker key.
type btrPayFixture struct {
	h        *storeHarness
	origin   liveOrigin
	other    liveOrigin
	chain    content.VideoID
	w        []identity.Identity
	wc       []*wire.CoordinatorClient // signed as each worker
	outsider identity.Identity
	bob      string
	bobID    int64
	alice    string
	tc       *testChain
	bobCl    *wire.CoordinatorClient
	anon     *wire.CoordinatorClient
}

func newBTRPayFixture(t *testing.T, dsn string) *btrPayFixture {
	t.Helper()
	f := &btrPayFixture{w: []identity.Identity{newTestNode(), newTestNode(), newTestNode()}, outsider: newTestNode()}
	f.h = newStoreHarness(t, dsn, "", func(c *Config) {
		for _, w := range f.w {
			c.WorkerKeys = append(c.WorkerKeys, w.ID)
		}
		c.Live.WorkHold = time.Minute
	})
	h := f.h
	ctx := context.Background()
	f.anon = wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	for i, w := range f.w {
		cl := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(w.Key, h.clock.Now))
		if _, err := cl.Register(ctx, wire.RegisterRequest{NodeID: w.ID, Role: wire.RoleWorker, Addr: "http://127.0.0.1:7400", BTRSlots: 2 + i}); err != nil {
			t.Fatal(err)
		}
		f.wc = append(f.wc, cl)
	}
	admin := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	admin.Token = h.admin
	alice := h.user("alice")
	f.alice = alice
	if err := admin.AllowBroadcaster(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	owner := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	owner.Token = alice
	created, err := owner.CreateChannel(ctx, wire.CreateChannelRequest{Name: "paid"})
	if err != nil {
		t.Fatal(err)
	}
	f.origin, f.other = h.newLiveOrigin(), h.newLiveOrigin()
	if _, err := f.origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	tc := newTestChain(t, f.origin, created.Channel.ID)
	f.tc = tc
	f.chain = tc.g.ID()
	if err := f.origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
		t.Fatal(err)
	}
	f.bob = h.user("bob")
	f.bobCl = wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	f.bobCl.Token = f.bob
	me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, f.bob, nil), 200))
	f.bobID = me.ID
	for _, w := range f.w[:2] {
		if err := f.bobCl.BindWorker(ctx, wire.NewNodeSigner(w.Key, h.clock.Now).SignBindWorker(me.ID)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *btrPayFixture) key(i int) btr.NodeKey { return btr.KeyOf(f.w[i].Key) }

func (f *btrPayFixture) output(signer ed25519.PrivateKey, seg uint64, digest byte) *btr.Output {
	o := &btr.Output{Task: btr.Task{Chain: f.chain, Segment: seg, Recipe: "ladder-test", Input: content.Hash{byte(seg)}}, Digest: content.Hash{digest}}
	o.Sign(signer)
	return o
}

// agreement is the judge's (or signer's) agreement over outputs as given.
func (f *btrPayFixture) agreement(signer ed25519.PrivateKey, outs ...*btr.Output) []byte {
	g := &btr.Agreement{Task: outs[0].Task, Digest: outs[0].Digest, F: len(outs) - 1, Outputs: outs}
	g.Sign(signer)
	return g.Encode()
}

func (f *btrPayFixture) work(t *testing.T) wire.WorkerAccountInfo {
	t.Helper()
	info, err := f.bobCl.AccountWorkers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func earning(info wire.WorkerAccountInfo, id wire.NodeID) wire.WorkerEarningInfo {
	for _, e := range info.Workers {
		if e.NodeID == id {
			return e
		}
	}
	return wire.WorkerEarningInfo{NodeID: id}
}

// Workers register (allowed keys only), are listed least loaded first and
// bind to an account with their signed consent; each agreed segment pays
// every bound worker of its agreement once; every attack (outsider, a
// worker posting, another origin, a worker that did not agree, a forged
// agreement, a replay, a second agreement) is refused or pays nothing, with
// the credits unchanged; an exclusion forfeits the culprit's unsettled
// points and its owner sees the exclusion's id; credits past the hold
// settle into the ledger once.
func TestBTRWorkersRegisterAndPay(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		f := newBTRPayFixture(t, dsn)
		h := f.h
		ctx := context.Background()

		// Registration: outsiders and bad slots refused; listing.
		out := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(f.outsider.Key, h.clock.Now))
		_, err := out.Register(ctx, wire.RegisterRequest{NodeID: f.outsider.ID, Role: wire.RoleWorker, Addr: "http://127.0.0.1:7400", BTRSlots: 2})
		requireAPIError(t, err, http.StatusForbidden, "not an allowed worker", "--worker-key")
		_, err = f.wc[0].Register(ctx, wire.RegisterRequest{NodeID: f.w[0].ID, Role: wire.RoleWorker, Addr: "http://127.0.0.1:7400", BTRSlots: -1})
		requireAPIError(t, err, http.StatusBadRequest, "btr_slots")
		if _, err := f.wc[0].Heartbeat(ctx, wire.HeartbeatRequest{NodeID: f.w[0].ID, BTRBusy: 2}); err != nil {
			t.Fatal(err)
		}
		list, err := f.anon.BTRWorkers(ctx)
		if err != nil || len(list) != 3 || list[2].NodeID != f.w[0].ID || list[2].Busy != 2 || list[2].Slots != 2 {
			t.Fatalf("workers %+v %v: want 3, the busy w0 last", list, err)
		}
		if slices.ContainsFunc(h.lookup(wire.LookupRequest{Video: h.video(0), Count: 1}).Segments[0].Sources, func(s wire.Source) bool { return s.NodeID == f.w[1].ID }) {
			t.Fatal("a worker is listed as a shard source")
		}

		// Binding: consent for another account, or a taken worker, refused.
		carol := h.user("carol")
		carolCl := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
		carolCl.Token = carol
		carolID := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, carol, nil), 200)).ID
		bobID := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, f.bob, nil), 200)).ID
		requireAPIError(t, carolCl.BindWorker(ctx, wire.NewNodeSigner(f.w[2].Key, h.clock.Now).SignBindWorker(bobID)), http.StatusUnauthorized, "not this account")
		requireAPIError(t, carolCl.BindWorker(ctx, wire.NewNodeSigner(f.w[0].Key, h.clock.Now).SignBindWorker(carolID)), http.StatusConflict, "another account")
		requireAPIError(t, f.anon.BindWorker(ctx, wire.NewNodeSigner(f.w[2].Key, h.clock.Now).SignBindWorker(carolID)), http.StatusUnauthorized)

		// Segment 1 agreed by w0 and w1.
		good := f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 1, 7), f.output(f.w[1].Key, 1, 7))
		res, err := f.origin.client.PostBTRAgreement(ctx, f.chain, good)
		if err != nil || len(res.Credited) != 2 || res.Points != 1 || res.Evidence != btr.EvidenceID(good) {
			t.Fatalf("credit: %+v %v", res, err)
		}
		before := f.work(t)

		// Attacks: nothing more is credited.
		_, err = f.anon.PostBTRAgreement(ctx, f.chain, good)
		requireAPIError(t, err, http.StatusUnauthorized)
		_, err = f.wc[0].PostBTRAgreement(ctx, f.chain, f.agreement(f.w[0].Key, f.output(f.w[0].Key, 2, 7), f.output(f.w[1].Key, 2, 7)))
		requireAPIError(t, err, http.StatusForbidden, "not an allowed origin")
		_, err = f.other.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.other.id.Key, f.output(f.w[0].Key, 2, 7), f.output(f.w[1].Key, 2, 7)))
		requireAPIError(t, err, http.StatusForbidden, "judged by its origin")
		_, err = f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 2, 7), f.output(f.w[1].Key, 2, 8)))
		requireAPIError(t, err, http.StatusBadRequest, "did not agree")
		_, err = f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.w[2].Key, f.output(f.w[0].Key, 2, 7), f.output(f.w[1].Key, 2, 7)))
		requireAPIError(t, err, http.StatusBadRequest, "not the chain's judge")
		_, err = f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 2, 7)))
		requireAPIError(t, err, http.StatusBadRequest, "f = 0")
		_, err = f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 1, 9), f.output(f.w[2].Key, 1, 9)))
		requireAPIError(t, err, http.StatusConflict, "one agreement per segment")
		_, err = f.origin.client.PostBTRAgreement(ctx, content.VideoID{9}, good)
		requireAPIError(t, err, http.StatusNotFound)
		res, err = f.origin.client.PostBTRAgreement(ctx, f.chain, good)
		if err != nil || len(res.Credited) != 0 || len(res.Already) != 2 {
			t.Fatalf("replayed agreement: %+v %v", res, err)
		}
		if after := f.work(t); !slices.Equal(after.Workers, before.Workers) || earning(after, f.w[0].ID).Unsettled != 1 || earning(after, f.w[1].ID).Unsettled != 1 {
			t.Fatalf("attacks changed the credits: %+v, before %+v", after, before)
		}
		// Anyone reads the evidence a payment rests on.
		resp, err := http.Get(h.srv.URL + "/api/v1/live/chains/" + f.chain.String() + "/btr/agreed?segment=1")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if g, err := btr.DecodeAgreement(got); err != nil || !bytes.Equal(got, good) || g.Check(btr.KeyOf(f.origin.id.Key)) != nil {
			t.Fatalf("stored agreement: %v", err)
		}

		// w1 equivocates on segment 2: excluded, its unsettled point forfeited.
		if _, err := f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 2, 7), f.output(f.w[1].Key, 2, 7))); err != nil {
			t.Fatal(err)
		}
		proof := &btr.ProofOfMisbehaviour{Kind: btr.Equivocation, A: f.output(f.w[1].Key, 3, 7), B: f.output(f.w[1].Key, 3, 8)}
		x := &btr.Exclusion{Chain: f.chain, Culprit: f.key(1), Kind: btr.Equivocation, Current: 3, Evidence: proof.Encode()}
		x.Sign(f.origin.id.Key)
		if err := f.origin.client.AppendBTRStatement(ctx, f.chain, x.Encode()); err != nil {
			t.Fatal(err)
		}
		info := f.work(t)
		if e := earning(info, f.w[1].ID); e.Unsettled != 0 || e.Forfeited != 2 {
			t.Fatalf("excluded worker: %+v, want 2 forfeited", e)
		}
		if len(info.Forfeits) != 1 || info.Forfeits[0] != (wire.WorkerForfeitInfo{NodeID: f.w[1].ID, Chain: f.chain, Kind: "equivocation", Evidence: btr.EvidenceID(x.Encode()), Points: 2, Segments: 2}) {
			t.Fatalf("forfeits %+v", info.Forfeits)
		}
		res, err = f.origin.client.PostBTRAgreement(ctx, f.chain, f.agreement(f.origin.id.Key, f.output(f.w[0].Key, 4, 7), f.output(f.w[1].Key, 4, 7)))
		if err != nil || !slices.Equal(res.Credited, []wire.NodeID{f.w[0].ID}) || !slices.Equal(res.Excluded, []wire.NodeID{f.w[1].ID}) {
			t.Fatalf("after the exclusion: %+v %v", res, err)
		}

		// Past the hold, the sweep settles w0's three points into bob's ledger, once.
		balance := h.balance(f.bob)
		h.clock.Advance(2 * time.Minute)
		h.c.Sweep()
		h.c.Sweep()
		if got := h.balance(f.bob); got != balance+3 {
			t.Fatalf("balance %d, want %d + 3", got, balance)
		}
		if e := earning(f.work(t), f.w[0].ID); e.Settled != 3 || e.Unsettled != 0 {
			t.Fatalf("settled: %+v", e)
		}
		if err := h.store.CheckLedger(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// An accused worker's rebuttal: only the accused may post it, only for the
// judge's accusation, only with its own output for exactly the task and
// only by the answer deadline; forged, late and outsiders' rebuttals are
// refused with the log unchanged; a recorded rebuttal makes the
// coordinator refuse the omission exclusion resting on it.
func TestBTRRebuttal(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		f := newBTRPayFixture(t, dsn)
		h := f.h
		ctx := context.Background()
		accuse := func(i int, seg uint64, answerIn time.Duration, signer ed25519.PrivateKey) *btr.Accusation {
			a := &btr.Accusation{Task: f.output(f.w[i].Key, seg, 7).Task, Accused: f.key(i), Kind: btr.Omission, AnswerBy: h.clock.Now().Add(answerIn).UnixMicro()}
			a.Sign(signer)
			return a
		}
		rebut := func(a *btr.Accusation, signer ed25519.PrivateKey) []byte {
			return (&btr.Rebuttal{Accusation: a, Output: f.output(signer, a.Segment, 7)}).Encode()
		}
		logLen := func() int {
			l, err := f.anon.BTRLog(ctx, f.chain)
			if err != nil {
				t.Fatal(err)
			}
			return len(l.Statements)
		}
		acc := accuse(0, 5, time.Second, f.origin.id.Key)
		requireAPIError(t, f.anon.PostBTRRebuttal(ctx, f.chain, rebut(acc, f.w[0].Key)), http.StatusUnauthorized)
		requireAPIError(t, f.wc[1].PostBTRRebuttal(ctx, f.chain, rebut(acc, f.w[0].Key)), http.StatusForbidden, "only its own")
		// A forged rebuttal: another worker's output for the accused task.
		requireAPIError(t, f.wc[0].PostBTRRebuttal(ctx, f.chain, rebut(acc, f.w[1].Key)), http.StatusBadRequest, "the accused is")
		requireAPIError(t, f.wc[0].PostBTRRebuttal(ctx, f.chain, rebut(accuse(0, 5, time.Second, f.other.id.Key), f.w[0].Key)), http.StatusForbidden, "not by the chain's judge")
		late := accuse(0, 6, -time.Millisecond, f.origin.id.Key)
		requireAPIError(t, f.wc[0].PostBTRRebuttal(ctx, f.chain, rebut(late, f.w[0].Key)), http.StatusBadRequest, "after the answer deadline")
		requireAPIError(t, f.wc[0].PostBTRRebuttal(ctx, f.chain, []byte("SCBR junk")), http.StatusBadRequest)
		if n := logLen(); n != 0 {
			t.Fatalf("refused rebuttals left %d statements", n)
		}

		// The judge's accusation reaches the log; the rebuttal follows in time.
		if err := f.origin.client.AppendBTRStatement(ctx, f.chain, acc.Encode()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.wc[0].PostBTRRebuttal(ctx, f.chain, rebut(acc, f.w[0].Key)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := f.anon.BTRLog(ctx, f.chain)
		if err != nil || len(l.Statements) != 2 || !bytes.Equal(l.Statements[1], rebut(acc, f.w[0].Key)) {
			t.Fatalf("log after the rebuttal: %d statements, %v", len(l.Statements), err)
		}
		// The exclusion resting on the rebutted accusation is refused.
		x := &btr.Exclusion{Chain: f.chain, Culprit: f.key(0), Kind: btr.Omission, Current: 5, Evidence: acc.Encode()}
		x.Sign(f.origin.id.Key)
		requireAPIError(t, f.origin.client.AppendBTRStatement(ctx, f.chain, x.Encode()), http.StatusConflict, "rebutted")
		// A rebuttal that arrives before the judge's accusation records both.
		acc2 := accuse(1, 7, time.Second, f.origin.id.Key)
		if err := f.wc[1].PostBTRRebuttal(ctx, f.chain, rebut(acc2, f.w[1].Key)); err != nil {
			t.Fatal(err)
		}
		if err := f.origin.client.AppendBTRStatement(ctx, f.chain, acc2.Encode()); err != nil {
			t.Fatal(err)
		}
		if l, _ := f.anon.BTRLog(ctx, f.chain); len(l.Statements) != 4 || len(l.Excluded) != 0 {
			t.Fatalf("log: %d statements, %d excluded; want 4 and none", len(l.Statements), len(l.Excluded))
		}
		// A restart reads the rebuttals back and still refuses the exclusion.
		c2, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: h.c.cfg.Accounting})
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Live().AppendBTR(ctx, f.origin.id.ID, f.chain, x.Encode()); err == nil {
			t.Fatal("after restart the rebutted exclusion was recorded")
		}
	})
}

// Live minutes: the segments a bound player key got sources for, each
// once, at the entries' durations, per channel (owner or admin only) and
// per account, durable across a restart; an unbound key is not metered.
func TestLiveMinutesMetered(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		f := newBTRPayFixture(t, dsn)
		h := f.h
		ctx := context.Background()
		for seq := range uint64(4) {
			e := f.tc.entry(f.origin, seq, byte(seq+1))
			if err := f.origin.client.AppendEntry(ctx, f.chain, e.Encode()); err != nil {
				t.Fatal(err)
			}
			f.tc.entries = append(f.tc.entries, e)
		}
		viewer := h.bindViewer(f.bob)
		unbound := newTestNode()
		h.lookup(wire.LookupRequest{Video: f.chain, From: 0, Count: 2, ViewerID: viewer.ID})
		h.lookup(wire.LookupRequest{Video: f.chain, From: 1, Count: 10, ViewerID: viewer.ID}) // 1 again, then 2 and 3
		h.lookup(wire.LookupRequest{Video: f.chain, From: 0, Count: 10, ViewerID: viewer.ID}) // nothing new
		h.lookup(wire.LookupRequest{Video: f.chain, From: 0, Count: 10, ViewerID: unbound.ID})
		h.lookup(wire.LookupRequest{Video: f.chain, From: 0, Count: 10})
		channel := f.tc.g.Channel
		want := wire.LiveMinutesInfo{Channel: wire.ChannelID(channel), Minutes: 4.0 / 60, WatchedMS: 4000, Segments: 4, Viewers: 1}
		check := func(c *Coordinator) {
			t.Helper()
			alice := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
			alice.Token = f.alice
			got := decode[wire.LiveMinutesInfo](t, h.want(h.do("GET", "/api/v1/live/channels/"+channel+"/minutes", f.alice, nil), 200))
			if got != want {
				t.Fatalf("channel minutes %+v, want %+v", got, want)
			}
			if c != nil {
				am := c.Live().AccountMinutes(f.bobID)
				if am.WatchedMS != 4000 || len(am.Chains) != 1 || am.Chains[0].Chain != f.chain {
					t.Fatalf("after restart, bob's minutes %+v", am)
				}
				return
			}
			am := decode[wire.AccountMinutesInfo](t, h.want(h.do("GET", wire.PathAccountMinutes, f.bob, nil), 200))
			if am.WatchedMS != 4000 || len(am.Chains) != 1 || am.Chains[0].Channel != wire.ChannelID(channel) {
				t.Fatalf("bob's minutes %+v", am)
			}
		}
		check(nil)
		h.want(h.do("GET", "/api/v1/live/channels/"+channel+"/minutes", f.bob, nil), 403)
		h.want(h.do("GET", "/api/v1/live/channels/"+channel+"/minutes", "", nil), 401)
		h.want(h.do("GET", "/api/v1/live/channels/"+channel+"/minutes", h.admin, nil), 200)
		if v := testutilCounter(t, h, "swarmcast_coordinator_live_minutes_total", channel); v < 0.0666 || v > 0.0667 {
			t.Fatalf("live_minutes_total{channel=%s} = %v, want 4/60", channel, v)
		}
		c2, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: h.c.cfg.Accounting})
		if err != nil {
			t.Fatal(err)
		}
		check(c2)
	})
}

// testutilCounter reads one channel's series of family from /metrics (-1 if absent).
func testutilCounter(t *testing.T, h *storeHarness, family, channel string) float64 {
	t.Helper()
	prefix := family + `{channel="` + channel + `"} `
	for _, line := range strings.Split(scrape(t, h.srv.URL), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}
