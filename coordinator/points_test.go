package coordinator

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// passAudit records one passed storage audit of edge straight in the store,
// for tests whose edges have no shard server to answer a real audit
// (TestUnauditedEdgeIsNotPaid runs real ones).
func (h *storeHarness) passAudit(edge wire.NodeID) {
	h.t.Helper()
	ctx := context.Background()
	a, err := h.store.CreateAudit(ctx, coordinatordb.Challenge{Edge: edge, Ref: content.SegmentRef{Video: h.video(0)}.Shard(0), Length: 1}, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := h.store.RecordAuditOutcome(ctx, a.ID, coordinatordb.OutcomePassed, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
}

// balance is an account's points, read from its own session.
func (h *storeHarness) balance(token string) int64 {
	h.t.Helper()
	return decode[wire.AccountInfo](h.t, h.want(h.do("GET", wire.PathMe, token, nil), 200)).Balance
}

// bindViewer binds a fresh viewer key to the session's account.
func (h *storeHarness) bindViewer(token string) identity.Identity {
	h.t.Helper()
	k := identity.New()
	h.want(h.do("POST", wire.PathBindViewer, token, h.viewerConsent(token, k.Key)), 200)
	return k
}

// limitsOnlyForListedSources fails unless every limit in resp names an edge
// the same answer lists as a source.
func limitsOnlyForListedSources(t *testing.T, resp wire.LookupResponse) {
	t.Helper()
	listed := map[wire.NodeID]bool{}
	for seg := range resp.Segments {
		for _, s := range sourcesOf(resp, seg) {
			listed[s] = true
		}
	}
	for _, l := range resp.Limits {
		if !listed[l.Edge] {
			t.Fatalf("limit for edge %s, which the lookup did not list (listed %v)", l.Edge, listed)
		}
	}
}

// TestSelfDealingAndSybilKeysEarnNothingExtra is the attack of issue 9: an
// account's own edge "serving" its own viewers, through fresh viewer keys
// each with its own budget, and through a phantom edge, earned 14,818
// points with no byte served. Now:
//   - the account's own edge gets no limit for the account's keys, and a
//     genuine limit settled anyway is rejected as self_dealing;
//   - a colluding second account earns the edge at most one playback
//     budget per video, however many viewer keys it binds (the collusion
//     bound of coordinatordb's doc, asserted exactly);
//   - limits exist only for edges the lookup listed: a phantom edge id the
//     viewer names (excluded, or bound but never registered) gets none, and
//     a limit the phantom signs itself is rejected.
func TestSelfDealingAndSybilKeysEarnNothingExtra(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		video := h.video(1) // free
		edge, edgeAPI := h.boundEdge("mallory", "", set(video, 0, 0, 0, 1, 2))
		h.passAudit(edge.ID)
		mallory := h.login("mallory", testPassword).Token
		lookup := func(viewer wire.NodeID) wire.LookupResponse {
			resp := h.lookup(wire.LookupRequest{Video: video, Count: 1, ViewerID: viewer})
			limitsOnlyForListedSources(t, resp)
			return resp
		}

		// Her own keys: listed as a source, but no limit, and a genuine
		// limit (signed as if by a coordinator that did not know) earns nothing.
		own := h.bindViewer(mallory)
		if resp := lookup(own.ID); len(sourcesOf(resp, 0)) != 1 || len(resp.Limits) != 0 {
			t.Fatalf("own viewer key: sources %v, %d limits; want her edge listed and no limit", sourcesOf(resp, 0), len(resp.Limits))
		}
		f := &settleFixture{h: h, edge: edge}
		terms, err := h.store.Video(t.Context(), video)
		if err != nil {
			t.Fatal(err)
		}
		budget := terms.PlaybackBudgetBytes
		var selfPairs []wire.SettlementPair
		for i := range 20 { // 20 fresh keys of her own: each rejected
			k := h.bindViewer(mallory)
			selfPairs = append(selfPairs, order(k, f.limitFor(h.id.Key, k.ID, video, uint64(i+1), budget), budget))
		}
		res := decode[wire.SettlementResult](t, h.want(f.settle(wire.SettlementBatch{ID: "self", Edge: edge.ID, Pairs: selfPairs}, edgeAPI), 200))
		if res.Accepted != 0 || res.Rejected["self_dealing"] != 20 || res.CreditedPoint != 0 {
			t.Fatalf("self-dealing batch: %+v", res)
		}
		if got := h.balance(mallory); got != 0 {
			t.Fatalf("mallory's balance %d after self-dealing, want 0", got)
		}
		if got := h.metric(`swarmcast_coordinator_settlement_rejections_total{reason="self_dealing"}`); got != "20" {
			t.Fatalf("self_dealing metric %q, want 20", got)
		}

		// A colluding second account with many fresh keys: every key gets a
		// genuine limit, each signs a full order, one budget is paid in all.
		sybil := h.user("sybil")
		var pairs []wire.SettlementPair
		for range 8 {
			k := h.bindViewer(sybil)
			resp := lookup(k.ID)
			if len(resp.Limits) != 1 || resp.Limits[0].Edge != edge.ID {
				t.Fatalf("colluding key: %d limits", len(resp.Limits))
			}
			pairs = append(pairs, order(k, resp.Limits[0], resp.Limits[0].MaxBytes))
		}
		res = decode[wire.SettlementResult](t, h.want(f.settle(wire.SettlementBatch{ID: "sybil", Edge: edge.ID, Pairs: pairs}, edgeAPI), 200))
		if res.SettledBytes > budget || res.Rejected["beyond_playback_rate"] == 0 {
			t.Fatalf("8 keys of one account settled %d bytes (budget %d): %+v", res.SettledBytes, budget, res)
		}
		// The bound, exactly: one account's plays of one video pay at most
		// PointsFor(budget); here the limits are the whole budget, so the
		// first key takes it all.
		bound := coordinatordb.PointsFor(budget, 10)
		if got := h.balance(mallory); got > bound || res.SettledBytes != budget || got != bound {
			t.Fatalf("mallory earned %d points from one colluding account (settled %d bytes); bound %d", got, res.SettledBytes, bound)
		}
		// More limits later (fresh serials) add nothing either.
		h.clock.Advance(13 * time.Minute)
		h.heartbeat(wire.HeartbeatRequest{NodeID: edge.ID})
		k := h.bindViewer(sybil)
		resp := lookup(k.ID)
		res = decode[wire.SettlementResult](t, h.want(f.settle(wire.SettlementBatch{ID: "sybil-later", Edge: edge.ID, Pairs: []wire.SettlementPair{order(k, resp.Limits[0], 1000)}}, edgeAPI), 200))
		if res.Accepted != 0 || h.balance(mallory) != bound {
			t.Fatalf("past the account's budget: %+v, balance %d", res, h.balance(mallory))
		}

		// Phantoms: an edge id the viewer names itself gets no limit (here
		// as an exclusion, the only place a lookup names edges), nor does an
		// edge bound to an account but never registered.
		phantom := newTestNode()
		phantomOwner := h.user("phantomop")
		phantomAPI := decode[wire.BindEdgeResponse](t, h.want(h.do("POST", wire.PathBindEdge, phantomOwner, h.consent(phantomOwner, phantom.ID)), 200)).APIToken
		h.passAudit(phantom.ID) // even an audited record does not help an unlisted edge
		k = h.bindViewer(sybil)
		raw := fmt.Sprintf(`{"video":%q,"count":1,"viewer_id":%q,"exclude":[%q]}`, video, k.ID, phantom.ID)
		resp = decode[wire.LookupResponse](t, h.want(h.do("POST", wire.PathLookup, "", []byte(raw)), 200))
		limitsOnlyForListedSources(t, resp)
		for _, l := range resp.Limits {
			if l.Edge == phantom.ID {
				t.Fatal("limit issued for a phantom edge")
			}
		}
		forged := wire.OrderLimit{Edge: phantom.ID, Viewer: k.ID, Video: video, MaxBytes: budget, ExpiresUnixMs: h.clock.Now().Add(time.Minute).UnixMilli()}
		wire.SignOrderLimit(phantom.Key, &forged)
		res = decode[wire.SettlementResult](t, h.want(h.do("POST", wire.PathSettle, phantomAPI, wire.SettlementBatch{ID: "phantom", Edge: phantom.ID,
			Pairs: []wire.SettlementPair{order(k, forged, budget)}}), 200))
		if res.Accepted != 0 || res.Rejected["bad_limit_signature"] != 1 || h.balance(phantomOwner) != 0 {
			t.Fatalf("phantom's self-signed limit: %+v, balance %d", res, h.balance(phantomOwner))
		}
		if err := h.store.CheckLedger(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUnauditedEdgeIsNotPaid: an edge registered at an address that serves
// nothing, claiming shards, is listed and gets limits, but until a storage
// audit of it passes its settlements are refused with 503 and Retry-After,
// writing nothing (the batch can be sent again); a contained edge likewise.
// An honest edge next to it is paid after its first passed audit. A batch id
// reused with different pairs is 409, the same batch replays.
func TestUnauditedEdgeIsNotPaid(t *testing.T) {
	fix := sampleStore(t)
	_, originURL := startShardServer(t, fix, "honest")
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", originURL, func(c *Config) {
		c.Accounting.AuditEdgesPerRound = 2
		c.Accounting.AuditTimeout = 200 * time.Millisecond
	})
	video := h.video(0)
	inv := []wire.ShardSet{set(video, 0, 0, 0, 1, 2, 3)}
	honestSrv, honestURL := startShardServer(t, fix, "honest")
	honest, honestAPI := h.boundEdge("honestop", honestURL, inv...)
	honestSrv.id = honest.ID
	phantom, phantomAPI := h.boundEdge("phantomop", "http://127.0.0.1:1", inv...)
	honestTok, phantomTok := h.login("honestop", testPassword).Token, h.login("phantomop", testPassword).Token

	viewerTok := h.user("vic")
	k := h.bindViewer(viewerTok)
	resp := h.lookup(wire.LookupRequest{Video: video, Count: 1, ViewerID: k.ID})
	limits := map[wire.NodeID]wire.OrderLimit{}
	for _, l := range resp.Limits {
		limits[l.Edge] = l
	}
	if len(limits) != 2 {
		t.Fatalf("want limits for both listed edges, got %d", len(limits))
	}
	batchOf := func(id string, e identity.Identity, amount int64) wire.SettlementBatch {
		return wire.SettlementBatch{ID: id, Edge: e.ID, Pairs: []wire.SettlementPair{order(k, limits[e.ID], amount)}}
	}
	settle := func(b wire.SettlementBatch, api string) reply { return h.do("POST", wire.PathSettle, api, b) }

	// Before any audit: neither is paid, nothing is written.
	for _, e := range []struct {
		id  identity.Identity
		api string
	}{{honest, honestAPI}, {phantom, phantomAPI}} {
		r := h.want(settle(batchOf("first-"+string(e.id.ID[:8]), e.id, 1_000_000), e.api), http.StatusServiceUnavailable, "not passed a storage audit", "settle the same batch again")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	if h.balance(honestTok) != 0 || h.balance(phantomTok) != 0 {
		t.Fatal("points paid to unaudited edges")
	}
	if _, err := h.store.Batch(t.Context(), "first-"+string(honest.ID[:8])); err == nil {
		t.Fatal("a refused batch was stored")
	}
	// One audit round: the honest edge passes, the phantom times out (contained).
	for _, r := range h.c.Accounting().AuditRound(t.Context()) {
		want := coordinatordb.OutcomeTimeout
		if r.Edge == honest.ID {
			want = coordinatordb.OutcomePassed
		}
		if r.Outcome != want {
			t.Fatalf("audit of %s: %s (%s), want %s", r.Edge, r.Outcome, r.Detail, want)
		}
	}
	h.want(settle(batchOf("first-"+string(phantom.ID[:8]), phantom, 1_000_000), phantomAPI), http.StatusServiceUnavailable, "not passed a storage audit")
	if h.balance(phantomTok) != 0 {
		t.Fatal("phantom paid")
	}
	// The honest edge's same batch, sent again, now settles.
	first := batchOf("first-"+string(honest.ID[:8]), honest, 1_000_000)
	res := decode[wire.SettlementResult](t, h.want(settle(first, honestAPI), 200))
	if res.Accepted != 1 || res.CreditedPoint != 10 || h.balance(honestTok) != 10 {
		t.Fatalf("audited edge: %+v, balance %d", res, h.balance(honestTok))
	}
	// Same id, same content: the stored result; other content: 409, unchanged.
	if again := decode[wire.SettlementResult](t, h.want(settle(first, honestAPI), 200)); !again.Replayed {
		t.Fatalf("replay: %+v", again)
	}
	other := first
	other.Pairs = []wire.SettlementPair{order(k, limits[honest.ID], 2_000_000)}
	h.want(settle(other, honestAPI), http.StatusConflict, "already settled with different pairs", "fresh random id")
	if h.balance(honestTok) != 10 {
		t.Fatalf("balance %d after a reused batch id, want 10", h.balance(honestTok))
	}
	if got := h.metric(`swarmcast_coordinator_settlement_batches_total{outcome="not_payable"}`); got != "3" {
		t.Fatalf("not_payable metric %q, want 3", got)
	}
}

// TestGrantBounds: an admin grant of 2^63-1 points (which turned balances
// into floats, broke the account's login with a 500 and overflowed the
// ledger check) is a 400 naming the bound; nothing changes, login and the
// ledger check keep working; a grant at the bound is fine.
func TestGrantBounds(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		tok := h.user("rich")
		h.grant("rich", 5)
		for _, p := range []int64{math.MaxInt64, coordinatordb.MaxGrantPoints + 1, 0, -1, math.MinInt64} {
			h.want(h.do("POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: "rich", Points: p}), http.StatusBadRequest, "per grant")
		}
		h.grant("rich", coordinatordb.MaxGrantPoints)
		h.grant("rich", coordinatordb.MaxGrantPoints)
		if got := h.login("rich", testPassword).Account.Balance; got != 5+2*coordinatordb.MaxGrantPoints {
			t.Fatalf("balance %d", got)
		}
		if got := h.balance(tok); got != 5+2*coordinatordb.MaxGrantPoints {
			t.Fatalf("balance %d", got)
		}
		if err := h.store.CheckLedger(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
