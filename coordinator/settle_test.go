package coordinator

import (
	"crypto/ed25519"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// TestLimitsOnlyForBoundEntitledViewers: lookups carry coordinator-signed
// order limits only for a viewer key bound to an entitled account, one per
// edge, reused (same serial) on the next lookup.
func TestLimitsOnlyForBoundEntitledViewers(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	paid, free := h.video(0), h.video(1)
	h.setPrice(paid, 20)
	e1, e2 := h.edge("", set(free, 0, 0, 0, 1), set(paid, 0, 0, 2)), h.edge("", set(free, 0, 0, 3), set(free, 0, 1, 4), set(paid, 0, 0, 5))
	viewer := newTestNode()
	req := wire.LookupRequest{Video: free, Rendition: 0, From: 0, Count: 2, ViewerID: viewer.ID}

	if got := h.lookup(req); len(got.Limits) != 0 {
		t.Fatalf("unbound viewer got %d limits", len(got.Limits))
	}
	tok := h.user("vera")
	h.want(h.do("POST", wire.PathBindViewer, tok, h.viewerConsent(tok, viewer.Key)), 200)
	// A key belongs to one account, and only its holder binds it.
	mallory := h.user("mallory")
	h.want(h.do("POST", wire.PathBindViewer, mallory, h.viewerConsent(mallory, viewer.Key)), http.StatusConflict, "another account")
	h.want(h.do("POST", wire.PathBindViewer, mallory, wire.BindViewerRequest{ViewerID: viewer.ID}), http.StatusUnauthorized, "sign")

	first := h.lookup(req)
	if len(first.Limits) != 2 {
		t.Fatalf("bound viewer of a free video: %d limits, want 2 (one per edge): %+v", len(first.Limits), first.Limits)
	}
	pub := h.id.Key.Public().(ed25519.PublicKey)
	edges := map[wire.NodeID]wire.Serial{}
	for _, l := range first.Limits {
		if err := wire.VerifyOrderLimit(pub, &l); err != nil {
			t.Fatal(err)
		}
		if l.Viewer != viewer.ID || l.Video != free || l.MaxBytes <= 0 || l.MaxBytes > 64<<20 {
			t.Fatalf("limit fields: %+v", l)
		}
		if exp := time.UnixMilli(l.ExpiresUnixMs).Sub(h.clock.Now()); exp != 15*time.Minute {
			t.Fatalf("limit expires in %s, want 15m", exp)
		}
		edges[l.Edge] = l.Serial
	}
	if _, ok := edges[e1]; !ok {
		t.Fatalf("no limit for %s", e1)
	}
	if _, ok := edges[e2]; !ok {
		t.Fatalf("no limit for %s", e2)
	}
	// Reused: same serials on the next lookup, also after 10 minutes...
	h.clock.Advance(10 * time.Minute)
	for _, l := range h.lookup(req).Limits {
		if edges[l.Edge] != l.Serial {
			t.Fatalf("edge %s: serial changed on the second lookup", l.Edge)
		}
	}
	// ...but renewed before expiry (15 min minus a 3 min margin).
	h.clock.Advance(3 * time.Minute)
	h.heartbeat(wire.HeartbeatRequest{NodeID: e1})
	h.heartbeat(wire.HeartbeatRequest{NodeID: e2})
	for _, l := range h.lookup(req).Limits {
		if edges[l.Edge] == l.Serial {
			t.Fatalf("edge %s: limit not renewed near expiry", l.Edge)
		}
	}
	// A paid video the account has not unlocked: no limits; after unlock: limits.
	preq := wire.LookupRequest{Video: paid, Rendition: 0, From: 0, Count: 1, ViewerID: viewer.ID}
	if got := h.lookup(preq); len(got.Limits) != 0 {
		t.Fatalf("not entitled viewer got limits")
	}
	h.grant("vera", 20)
	h.want(h.do("POST", videoPath(wire.PathUnlock, paid), tok, nil), 200)
	if got := h.lookup(preq); len(got.Limits) != 2 {
		t.Fatalf("entitled viewer got %d limits, want 2", len(got.Limits))
	}
	// The in-process Lookup agrees.
	resp, err := h.c.Lookup(preq)
	if err != nil || len(resp.Limits) != 2 {
		t.Fatalf("Lookup: %d limits, %v", len(resp.Limits), err)
	}
}

// settleFixture is a bound edge, a bound entitled viewer and the edge's
// limit for it from a lookup.
type settleFixture struct {
	h        *storeHarness
	edge     identity.Identity
	apiToken string
	viewer   identity.Identity
	limit    wire.OrderLimit
	video    content.VideoID
}

func newSettleFixture(t *testing.T, dsn string) *settleFixture {
	h := newStoreHarness(t, dsn, "", nil)
	video := h.video(1)
	edge, api := h.boundEdge("edgeop", "", set(video, 0, 0, 0, 1, 2))
	h.passAudit(edge.ID)
	viewer := newTestNode()
	tok := h.user("viewer1")
	h.want(h.do("POST", wire.PathBindViewer, tok, h.viewerConsent(tok, viewer.Key)), 200)
	resp := h.lookup(wire.LookupRequest{Video: video, Count: 1, ViewerID: viewer.ID})
	if len(resp.Limits) != 1 {
		t.Fatalf("want one limit, got %d", len(resp.Limits))
	}
	return &settleFixture{h: h, edge: edge, apiToken: api, viewer: viewer, limit: resp.Limits[0], video: video}
}

func order(viewer identity.Identity, l wire.OrderLimit, amount int64) wire.SettlementPair {
	o := wire.Order{Serial: l.Serial, Amount: amount}
	wire.SignOrder(viewer.Key, &o)
	return wire.SettlementPair{Limit: l, Order: o}
}

// limitFor signs a limit with the coordinator's key directly, as a
// colluding edge and viewer would need (they cannot) or as tests do to
// build limits the coordinator would never issue.
func (f *settleFixture) limitFor(key ed25519.PrivateKey, viewer wire.NodeID, video content.VideoID, serial uint64, maxBytes int64) wire.OrderLimit {
	l := wire.OrderLimit{Edge: f.edge.ID, Viewer: viewer, Video: video, MaxBytes: maxBytes, ExpiresUnixMs: f.h.clock.Now().Add(15 * time.Minute).UnixMilli()}
	binary.BigEndian.PutUint64(l.Serial[8:], serial)
	wire.SignOrderLimit(key, &l)
	return l
}

func (f *settleFixture) settle(b wire.SettlementBatch, token string) reply {
	return f.h.do("POST", wire.PathSettle, token, b)
}

// TestSettleOverHTTP: an edge settles with its API token; replays are
// idempotent; another edge's batch is 403; rejections are counted per
// reason in the result, the metrics and the admin route.
func TestSettleOverHTTP(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		f := newSettleFixture(t, dsn)
		h := f.h
		batch := wire.SettlementBatch{ID: "batch-1", Edge: f.edge.ID, Pairs: []wire.SettlementPair{order(f.viewer, f.limit, 2_000_000)}}
		res := decode[wire.SettlementResult](t, h.want(f.settle(batch, f.apiToken), 200))
		if res.Accepted != 1 || res.SettledBytes != 2_000_000 || res.CreditedPoint != 20 || res.Replayed {
			t.Fatalf("settle: %+v", res)
		}
		again := decode[wire.SettlementResult](t, h.want(f.settle(batch, f.apiToken), 200))
		if !again.Replayed || again.CreditedPoint != 20 {
			t.Fatalf("replay: %+v", again)
		}
		me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, h.session("edgeop"), nil), 200))
		if me.Balance != 20 {
			t.Fatalf("edge owner balance %d after a replay, want 20", me.Balance)
		}
		// Another edge's token cannot settle this edge's orders, nor a session.
		_, otherAPI := h.boundEdge("otherop", "")
		h.want(f.settle(wire.SettlementBatch{ID: "batch-2", Edge: f.edge.ID, Pairs: batch.Pairs}, otherAPI), http.StatusForbidden, "belongs to edge")
		h.want(f.settle(wire.SettlementBatch{ID: "batch-2", Edge: f.edge.ID}, h.admin), http.StatusForbidden, "api token")
		h.want(f.settle(wire.SettlementBatch{ID: "bad id!", Edge: f.edge.ID}, f.apiToken), http.StatusBadRequest, "batch id")

		// Adversarial pairs, one batch: each is rejected for its reason.
		forger := newTestNode()
		strangerViewer := newTestNode()
		paid := h.video(0)
		h.setPrice(paid, 30)
		adv := wire.SettlementBatch{ID: "batch-adv", Edge: f.edge.ID, Pairs: []wire.SettlementPair{
			order(f.viewer, f.limitFor(forger.Key, f.viewer.ID, f.video, 1, 1<<20), 1000),          // forged limit
			order(f.viewer, f.limit, 3_000_000),                                                    // replayed serial (settled above)
			order(f.viewer, f.limitFor(f.h.id.Key, f.viewer.ID, f.video, 2, 1<<20), 2<<20),         // inflated past MaxBytes
			order(strangerViewer, f.limitFor(f.h.id.Key, strangerViewer.ID, paid, 3, 1<<20), 1000), // not entitled to a paid video
			order(forger, f.limitFor(f.h.id.Key, f.viewer.ID, f.video, 4, 1<<20), 1000),            // order not signed by the viewer
		}}
		res = decode[wire.SettlementResult](t, h.want(f.settle(adv, f.apiToken), 200))
		want := map[string]int{"bad_limit_signature": 1, "serial_reused": 1, "amount_over_limit": 1, "not_entitled": 1, "bad_order_signature": 1}
		if res.Accepted != 0 || !reflectEqual(res.Rejected, want) || res.CreditedPoint != 0 {
			t.Fatalf("adversarial batch: %+v, want rejected %v", res, want)
		}
		// A colluding viewer and edge cannot settle past the playback budget,
		// however many limits they hold.
		terms, err := h.store.Video(t.Context(), h.fix.ids[1])
		if err != nil {
			t.Fatal(err)
		}
		budget := terms.PlaybackBudgetBytes
		var pairs []wire.SettlementPair
		for i := range 4 {
			l := f.limitFor(f.h.id.Key, f.viewer.ID, f.video, uint64(100+i), budget)
			pairs = append(pairs, order(f.viewer, l, budget/2))
		}
		res = decode[wire.SettlementResult](t, h.want(f.settle(wire.SettlementBatch{ID: "batch-collude", Edge: f.edge.ID, Pairs: pairs}, f.apiToken), 200))
		if res.Rejected["beyond_playback_rate"] == 0 || res.SettledBytes > budget {
			t.Fatalf("collusion: %+v (budget %d)", res, budget)
		}
		for reason, n := range map[string]string{"bad_limit_signature": "1", "serial_reused": "1", "not_entitled": "1", "amount_over_limit": "1"} {
			if got := h.metric(`swarmcast_coordinator_settlement_rejections_total{reason="` + reason + `"}`); got != n {
				t.Fatalf("metric for %s = %q, want %s", reason, got, n)
			}
		}
		counts := decode[map[string]int64](t, h.want(h.do("GET", wire.PathRejections, h.admin, nil), 200))
		if counts["serial_reused"] != 1 || counts["bad_limit_signature"] != 1 || counts["beyond_playback_rate"] == 0 {
			t.Fatalf("rejection counts: %v", counts)
		}
		h.want(h.do("GET", wire.PathRejections, f.apiToken, nil), http.StatusForbidden)

		// Owner visibility: status and flows.
		st := decode[wire.EdgeStatusInfo](t, h.want(h.do("GET", strings.Replace(wire.PathEdgeStatus, "{node}", string(f.edge.ID), 1), h.session("edgeop"), nil), 200))
		if st.CreditedPoints < 20 || st.Disqualified || st.Reputation != 1 {
			t.Fatalf("edge status: %+v", st)
		}
		h.want(h.do("GET", strings.Replace(wire.PathEdgeStatus, "{node}", string(f.edge.ID), 1), h.session("otherop"), nil), http.StatusForbidden, "not bound to your account")
		flows := decode[[]wire.FlowInfo](t, h.want(h.do("GET", wire.PathFlows+"?edge="+string(f.edge.ID), h.session("edgeop"), nil), 200))
		var total int64
		for _, fl := range flows {
			total += fl.Bytes
		}
		if total < 2_000_000 {
			t.Fatalf("flows from edge: %+v", flows)
		}
		h.want(h.do("GET", wire.PathFlows+"?viewer="+string(f.viewer.ID), otherAPI, nil), http.StatusForbidden)
		h.want(h.do("GET", wire.PathFlows+"?viewer="+string(f.viewer.ID), h.admin, nil), 200)
		if err := h.store.CheckLedger(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
