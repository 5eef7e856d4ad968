package viewer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// paidNetwork gives every edge a real identity (so it signs receipts and
// records orders) and makes the coordinator issue limits of limitMax bytes.
func paidNetwork(t *testing.T, kinds []serverKind, limitMax int64) (*testNetwork, ed25519.PublicKey) {
	t.Helper()
	n := newTestNetwork(t, kinds)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	for _, s := range n.coord.edges {
		id := identity.New()
		s.node, s.key = id.ID, id.Key
	}
	n.coord.limitKey, n.coord.limitMax, n.coord.limits = priv, limitMax, map[wire.NodeID]wire.OrderLimit{}
	return n, pub
}

func TestOrdersCumulativeFinalAndReceipts(t *testing.T) {
	n, coordPub := paidNetwork(t, []serverKind{kindFlipBit, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest}, 1<<30)
	reg := prometheus.NewRegistry()
	v := newTestViewer(t, n, reg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := v.Play(ctx, n.id, PlayOptions{Rendition: 0, Speed: 50, MaxSegments: 6})
	if err != nil || !q.Completed {
		t.Fatalf("play: %v %+v", err, q)
	}
	_ = v.Close()

	var headerSum, finalSum int64
	for _, s := range n.coord.edges {
		s.payMu.Lock()
		orders, finals, sent := slices.Clone(s.orders), slices.Clone(s.finals), s.sent
		s.payMu.Unlock()
		var maxHeader int64
		for _, so := range orders {
			if err := wire.VerifyOrderLimit(coordPub, &so.limit); err != nil || so.limit.Edge != s.node || so.limit.Viewer != v.cfg.Identity.ID {
				t.Fatalf("%s got a limit that is not its own: %v %+v", s.node, err, so.limit)
			}
			if so.order.Amount == 0 {
				continue
			}
			if err := wire.VerifyOrder(&so.limit, &so.order); err != nil {
				t.Fatalf("%s got an order that fails verification: %v", s.node, err)
			}
			if so.order.Amount > so.sentSoFar {
				t.Fatalf("%s: order for %d bytes when only %d had been sent", s.node, so.order.Amount, so.sentSoFar)
			}
			maxHeader = max(maxHeader, so.order.Amount)
		}
		if s.kind.lies() {
			if maxHeader != 0 || len(finals) != 0 {
				t.Errorf("liar %s was paid: orders up to %d, finals %v", s.node, maxHeader, finals)
			}
			continue
		}
		if len(orders) == 0 {
			continue
		}
		if len(finals) != 1 {
			t.Fatalf("%s got %d final orders, want 1", s.node, len(finals))
		}
		f := finals[0]
		if err := wire.VerifyOrder(&f.Limit, &f.Order); err != nil || f.Order.Amount < maxHeader || f.Order.Amount > sent {
			t.Fatalf("%s: final order %d (err %v), want between the largest header order %d and the bytes sent %d", s.node, f.Order.Amount, err, maxHeader, sent)
		}
		headerSum += maxHeader
		finalSum += f.Order.Amount
	}
	if finalSum <= headerSum {
		t.Errorf("final orders sum to %d, header orders to %d: the last shards went unpaid", finalSum, headerSum)
	}

	n.coord.mu.Lock()
	reports := slices.Clone(n.coord.badShards)
	n.coord.mu.Unlock()
	if len(reports) == 0 {
		t.Fatal("the liar was not reported")
	}
	for _, rep := range reports {
		if rep.Receipt == nil {
			t.Fatalf("bad-shard report against %s carries no receipt", rep.Node)
		}
		if err := wire.ProveBadShard(n.man, rep.Receipt, rep.Evidence); err != nil {
			t.Errorf("receipt + evidence is no proof: %v", err)
		}
	}
	if got := metricValue(t, reg, "swarmcast_viewer_receipts_total", "valid"); got == 0 {
		t.Error("no valid receipt counted")
	}
}

func TestOrdersNeverExceedTheLimit(t *testing.T) {
	n, _ := paidNetwork(t, []serverKind{kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest, kindHonest}, 20_000)
	v := newTestViewer(t, n, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := v.Play(ctx, n.id, PlayOptions{Rendition: 0, Speed: 50, MaxSegments: 8}); err != nil {
		t.Fatal(err)
	}
	capped := false
	for _, s := range n.coord.edges {
		s.payMu.Lock()
		for _, so := range s.orders {
			if so.order.Amount > so.limit.MaxBytes {
				t.Errorf("%s: order of %d bytes over the limit's %d", s.node, so.order.Amount, so.limit.MaxBytes)
			}
		}
		for _, f := range s.finals {
			if f.Order.Amount > f.Limit.MaxBytes {
				t.Errorf("%s: final order of %d bytes over the limit's %d", s.node, f.Order.Amount, f.Limit.MaxBytes)
			}
			capped = capped || f.Order.Amount == f.Limit.MaxBytes && s.sent > f.Limit.MaxBytes
		}
		s.payMu.Unlock()
	}
	if !capped {
		t.Error("no edge delivered beyond its limit: the test does not exercise the cap")
	}
}

func TestNotEntitledIsNotRetried(t *testing.T) {
	n := newTestNetwork(t, []serverKind{kindHonest, kindHonest, kindHonest, kindHonest})
	n.coord.token = "letmein"
	v := newTestViewer(t, n, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := v.Play(ctx, n.id, PlayOptions{Rendition: 0, Speed: 50, MaxSegments: 1})
	if !errors.Is(err, ErrNotEntitled) || !strings.Contains(err.Error(), "unlock video "+n.id.String()) {
		t.Fatalf("play without a token: %v, want a not-entitled error naming the video", err)
	}

	withToken, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), Token: "letmein"})
	if err != nil {
		t.Fatal(err)
	}
	defer withToken.Close()
	if _, err := withToken.Play(ctx, n.id, PlayOptions{Rendition: 0, Speed: 50, MaxSegments: 1}); err != nil {
		t.Fatalf("play with the token: %v", err)
	}
	n.coord.mu.Lock()
	defer n.coord.mu.Unlock()
	if len(n.coord.plays) != 1 {
		t.Errorf("%d play reports, want 1: the one with a token (a tokenless viewer sends none)", len(n.coord.plays))
	}
	if !slices.Equal(n.coord.binds, []wire.NodeID{withToken.cfg.Identity.ID}) {
		t.Errorf("binds %v, want exactly the token viewer's key", n.coord.binds)
	}
	for _, l := range n.coord.lookups {
		if l.ViewerID != withToken.cfg.Identity.ID {
			t.Errorf("a lookup without the token got through: %+v", l)
		}
	}
}

func TestPayerSignsOnlyWhatWasReceived(t *testing.T) {
	viewer := identity.New()
	now := time.Unix(1_000_000, 0)
	_, coord, _ := ed25519.GenerateKey(rand.Reader)
	testVideo := content.VideoID{1, 2, 3}
	limit := func(serial byte, edge wire.NodeID, who wire.NodeID, maxBytes int64, expires time.Time) wire.OrderLimit {
		l := wire.OrderLimit{Serial: wire.Serial{serial}, Edge: edge, Viewer: who, Video: testVideo, MaxBytes: maxBytes, ExpiresUnixMs: expires.UnixMilli()}
		wire.SignOrderLimit(coord, &l)
		return l
	}
	p := newPayer(viewer.Key, viewer.ID)
	p.addLimits(testVideo, []wire.OrderLimit{
		limit(1, "e1", viewer.ID, 1000, now.Add(time.Hour)),
		limit(2, "e2", "someone-else", 1000, now.Add(time.Hour)),
		limit(3, "e3", viewer.ID, 1000, now.Add(-time.Second)),
	}, now)
	if _, _, _, ok := p.forRequest("e2", testVideo, "http://e2", now); ok {
		t.Error("used a limit issued to another viewer")
	}
	if _, _, _, ok := p.forRequest("e3", testVideo, "http://e3", now); ok {
		t.Error("used an expired limit")
	}
	lh, oh, serial, ok := p.forRequest("e1", testVideo, "http://e1", now)
	if !ok || lh == "" || oh != "" {
		t.Fatalf("first request: ok %v limit %q order %q, want the limit and no order", ok, lh, oh)
	}
	// The first order is signed at once; later ones only every
	// orderGranularity bytes, or when the limit is used up.
	for _, step := range []struct{ credit, want int64 }{{400, 400}, {0, 400}, {500, 400}, {700, 1000}} {
		p.credit(serial, step.credit)
		_, oh, _, _ = p.forRequest("e1", testVideo, "http://e1", now)
		var o wire.Order
		if err := wire.DecodeHeader(oh, &o); err != nil {
			t.Fatal(err)
		}
		l := p.serials[serial].limit
		if err := wire.VerifyOrder(&l, &o); err != nil || o.Amount != step.want {
			t.Fatalf("after crediting %d: order %d (err %v), want %d", step.credit, o.Amount, err, step.want)
		}
	}
	finals := p.finals(now)
	if len(finals) != 1 || finals[0].pair.Order.Amount != 1000 || finals[0].addr != "http://e1" {
		t.Fatalf("finals %+v, want one of 1000 bytes to http://e1", finals)
	}
	p.finalizedAt(serial, 1000)
	if f := p.finals(now); len(f) != 0 {
		t.Errorf("final order sent again after the edge acknowledged it: %+v", f)
	}
	// With room in the limit, a new signature every orderGranularity bytes.
	big := limit(5, "e5", viewer.ID, 10<<20, now.Add(time.Hour))
	p.addLimits(testVideo, []wire.OrderLimit{big}, now)
	_, _, bigSerial, _ := p.forRequest("e5", testVideo, "http://e5", now)
	for _, step := range []struct{ credit, want int64 }{{100 << 10, 100 << 10}, {100 << 10, 100 << 10}, {200 << 10, 400 << 10}} {
		p.credit(bigSerial, step.credit)
		_, oh, _, _ := p.forRequest("e5", testVideo, "http://e5", now)
		var o wire.Order
		if err := wire.DecodeHeader(oh, &o); err != nil {
			t.Fatal(err)
		}
		if o.Amount != step.want {
			t.Fatalf("order %d, want %d", o.Amount, step.want)
		}
	}
	// A newer limit for the same edge replaces the exhausted one.
	p.addLimits(testVideo, []wire.OrderLimit{limit(4, "e1", viewer.ID, 1000, now.Add(2*time.Hour))}, now)
	if _, _, s, _ := p.forRequest("e1", testVideo, "http://e1", now); s != (wire.Serial{4}) {
		t.Errorf("serial %s in use, want the newer limit", s)
	}
}
