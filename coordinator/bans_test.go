package coordinator

import (
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

func statusPath(node wire.NodeID) string {
	return strings.Replace(wire.PathEdgeStatus, "{node}", string(node), 1)
}

func unbanPath(node wire.NodeID) string {
	return strings.Replace(wire.PathUnban, "{node}", string(node), 1)
}

// TestUnbanReinstates: a proven bad shard bans and disqualifies an edge, and
// its owner sees why and when; only an admin lifts the ban; lifting
// reinstates the edge with a fresh reputation, is recorded with who and
// when, puts the edge back in lookups at once and lasts across a restart.
func TestUnbanReinstates(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		video := h.video(0)
		edge, edgeAPI := h.boundEdge("edgeop", "", set(video, 0, 0, 2))
		ownerSession := h.login("edgeop", testPassword).Token
		lookup := wire.LookupRequest{Video: video, Count: 1}
		badMsg, _ := corrupt(t, h.fix.shardMessage(t, video, 0, 0, 2))
		rc := wire.SignShardReceipt(edge.Key, content.SegmentRef{Video: video}.Shard(2), badMsg)
		h.want(h.do("POST", wire.PathBadShard, "", wire.BadShardReport{Node: edge.ID, Video: video, Shard: 2, Evidence: badMsg, Receipt: &rc}), 200, verdictProven)
		if got := sourcesOf(h.lookup(lookup), 0); len(got) != 0 {
			t.Fatalf("banned edge listed: %v", got)
		}
		st := decode[wire.EdgeStatusInfo](t, h.want(h.do("GET", statusPath(edge.ID), ownerSession, nil), 200))
		if !st.Banned || st.BannedAt.IsZero() || !strings.Contains(st.BanReason, "proven bad shard") || !st.Disqualified {
			t.Fatalf("owner's status: %+v, want banned with reason and time", st)
		}

		// Not an admin: the owner, an edge token, no credentials.
		h.want(h.do("POST", unbanPath(edge.ID), ownerSession, wire.UnbanRequest{}), http.StatusForbidden, "admins")
		h.want(h.do("POST", unbanPath(edge.ID), edgeAPI, wire.UnbanRequest{}), http.StatusForbidden)
		h.want(h.do("POST", unbanPath(edge.ID), "", wire.UnbanRequest{}), http.StatusUnauthorized)
		h.want(h.do("POST", unbanPath("nope"), h.admin, wire.UnbanRequest{}), http.StatusBadRequest, "unban")
		h.want(h.do("POST", unbanPath(edge.ID), h.admin, wire.UnbanRequest{Note: strings.Repeat("n", 300)}), http.StatusBadRequest, "note")
		if got := sourcesOf(h.lookup(lookup), 0); len(got) != 0 {
			t.Fatalf("a refused unban let the edge back: %v", got)
		}

		h.clock.Advance(90_000_000_000) // 90 s later; the edge kept heartbeating
		h.heartbeat(wire.HeartbeatRequest{NodeID: edge.ID})
		res := decode[wire.UnbanResponse](t, h.want(h.do("POST", unbanPath(edge.ID), h.admin, wire.UnbanRequest{Note: "bad disk, replaced"}), 200))
		if !res.Reinstated || res.LiftedBy != "root" || !res.LiftedAt.Equal(h.clock.Now()) || !strings.Contains(res.BanReason, "proven bad shard") {
			t.Fatalf("unban answer %+v", res)
		}
		if got := sourcesOf(h.lookup(lookup), 0); len(got) != 1 || got[0] != edge.ID {
			t.Fatalf("sources after unban: %v, want the edge back at once", got)
		}
		st = decode[wire.EdgeStatusInfo](t, h.want(h.do("GET", statusPath(edge.ID), ownerSession, nil), 200))
		if st.Banned || st.Disqualified || st.Reputation != 1 || st.Alpha != 1000 {
			t.Fatalf("status after unban: %+v, want unbanned with a fresh reputation", st)
		}
		lifts, err := h.store.BanLifts(t.Context(), edge.ID)
		if err != nil || len(lifts) != 1 || lifts[0].LiftedBy != "root" || lifts[0].Note != "bad disk, replaced" || !lifts[0].Reinstated {
			t.Fatalf("lift record %+v, %v", lifts, err)
		}
		if got := h.metric(`swarmcast_coordinator_bans_lifted_total{outcome="reinstated"}`); got != "1" {
			t.Fatalf("bans lifted metric %q", got)
		}
		// Nothing left to lift.
		h.want(h.do("POST", unbanPath(edge.ID), h.admin, nil), http.StatusNotFound, "neither banned nor disqualified")

		// A restart on the same store keeps the edge unbanned.
		c, err := New(Config{Seed: 3, Now: h.clock.Now, Log: quietLog(), Store: openStore(t, dsn, h.id.Key.Public().(ed25519.PublicKey)), Accounting: accounting.Config{Identity: h.id, AuditInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		cl := wire.NewCoordinatorClient(srv.URL, signingClient(srv.Client(), h.clock.Now))
		if _, err := cl.Register(t.Context(), wire.RegisterRequest{NodeID: edge.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		nodes, _ := cl.Nodes(t.Context())
		for _, n := range nodes {
			if n.NodeID == edge.ID && n.Banned {
				t.Fatal("unbanned edge banned again after a restart")
			}
		}
	})
}

// TestPlayReportsAuthenticatedAndBounded: ATTACK: play reports without a
// session, for another account's player key, or with numbers beyond the
// video (the finding: stats inflated to 1.8e19 bytes) are refused with a
// clear 4xx and leave the stats unchanged; a real one counts.
func TestPlayReportsAuthenticatedAndBounded(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	video := h.video(0)
	edge, edgeAPI := h.boundEdge("edgeop", "")
	alice, bob := h.user("alice"), h.user("bob")
	aliceID, bobID := identity.New(), identity.New() // their players' keys
	aliceKey := aliceID.ID
	h.want(h.do("POST", wire.PathBindViewer, alice, h.viewerConsent(alice, aliceID.Key)), 200)
	h.want(h.do("POST", wire.PathBindViewer, bob, h.viewerConsent(bob, bobID.Key)), 200)
	m := h.fix.mustManifest(t, 0)
	durationMS := float64(m.Duration(0).Milliseconds())
	valid := wire.PlayReport{ViewerID: aliceKey, Video: video, StartupMS: 300, Stalls: 1, StallMS: 200, PlayedMS: durationMS, Completed: true,
		BytesBySource: map[wire.NodeID]int64{edge.ID: 900, h.origin.ID: 100}}
	inflate := func(f func(*wire.PlayReport)) wire.PlayReport {
		r := valid
		r.BytesBySource = map[wire.NodeID]int64{edge.ID: 900, h.origin.ID: 100}
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name, token string
		rep         wire.PlayReport
		status      int
		phrase      string
	}{
		{"no credentials", "", valid, 401, "authentication required"},
		{"edge API token", edgeAPI, valid, 403, "login session"},
		{"another account's key", bob, valid, 403, "not bound to account"},
		{"unbound key", alice, inflate(func(r *wire.PlayReport) { r.ViewerID = wire.NodeID(strings.Repeat("b2", 32)) }), 403, "bound to no account"},
		{"1.8e19 bytes", alice, inflate(func(r *wire.PlayReport) { r.BytesBySource[edge.ID] = 9_000_000_000_000_000_000 }), 400, "playback budget"},
		{"two sources summing past the budget", alice, inflate(func(r *wire.PlayReport) {
			r.BytesBySource[edge.ID], r.BytesBySource[h.origin.ID] = 1<<62, 1<<62
		}), 400, "playback budget"},
		{"negative bytes", alice, inflate(func(r *wire.PlayReport) { r.BytesBySource[edge.ID] = -1 }), 400, "negative"},
		{"bad source id", alice, inflate(func(r *wire.PlayReport) { r.BytesBySource["x"] = 1 }), 400, "bytes_by_source"},
		{"played past the end", alice, inflate(func(r *wire.PlayReport) { r.PlayedMS = 1e12 }), 400, "played_ms"},
		{"stalls past the segments", alice, inflate(func(r *wire.PlayReport) { r.Stalls = 1 << 30 }), 400, "stalls"},
		{"startup of years", alice, inflate(func(r *wire.PlayReport) { r.StartupMS = 1e308 }), 400, "startup_ms"},
		{"negative stall time", alice, inflate(func(r *wire.PlayReport) { r.StallMS = -1 }), 400, "stall_ms"},
		{"bad shards past every shard", alice, inflate(func(r *wire.PlayReport) { r.BadShards = 1 << 30 }), 400, "bad_shards"},
		{"no such rendition", alice, inflate(func(r *wire.PlayReport) { r.Rendition = 7 }), 400, "rendition 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.want(h.do("POST", wire.PathPlayReport, tc.token, tc.rep), tc.status, tc.phrase)
		})
	}
	if p := h.c.Plays(); p.Plays != 0 || p.EdgeBytes != 0 || p.OriginBytes != 0 {
		t.Fatalf("refused reports changed the stats: %+v", p)
	}
	h.want(h.do("POST", wire.PathPlayReport, alice, valid), 200)
	p := h.c.Plays()
	if p.Plays != 1 || p.Completed != 1 || p.Stalls != 1 || p.EdgeBytes != 900 || p.OriginBytes != 100 || p.StartupMSTotal != 300 {
		t.Fatalf("aggregates = %+v", p)
	}
	if st, _ := h.client.Stats(t.Context()); st.PlaysReported != 1 {
		t.Fatalf("stats = %+v", st)
	}
	h.want(h.do("POST", wire.PathPlayReport, alice, inflate(func(r *wire.PlayReport) { r.Video = content.VideoID{0xee} })), 404, "not in the catalogue")
}
