package coordinator

import (
	"context"
	"slices"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// TestCachedRankingsFollowTheState: lookups take turns with
// rankSlotCount tie-break seeds and reuse each one's ranking of a
// segment; every change that alters a ranking shows in the very next
// lookups of every slot: shards removed, a ban, silence (no write at
// all: only the clock moved), a return from silence, a worse load
// bucket. Before the cache these held trivially; a cached ranking that
// missed one of them would keep listing the node.
func TestCachedRankingsFollowTheState(t *testing.T) {
	h := newHarness(t)
	video := h.video(0)
	limit := sourcesPerSegment(h.fix.mustManifest(t, 0).Params.K)
	var edges []wire.NodeID
	for i := range limit + 5 {
		edges = append(edges, h.edge("", set(video, 0, 0, i%4), set(video, 0, 1, i%4)))
	}
	req := wire.LookupRequest{Video: video, Rendition: 0, From: 0, Count: 2}
	// listed reports how many of 2×rankSlotCount lookups (every slot
	// twice: once to rank, once from the cache) list node for segment 0.
	listed := func(node wire.NodeID) int {
		t.Helper()
		n := 0
		for range 2 * rankSlotCount {
			resp, err := h.c.Lookup(req)
			if err != nil {
				t.Fatal(err)
			}
			if len(sourcesOf(resp, 0)) == 0 {
				t.Fatal("no sources for segment 0")
			}
			if slices.Contains(sourcesOf(resp, 0), node) {
				n++
			}
		}
		return n
	}
	removed, banned, silent, loaded := edges[0], edges[1], edges[2], edges[3]
	for _, e := range []wire.NodeID{removed, banned, silent, loaded} {
		if listed(e) == 0 {
			t.Fatalf("edge %s is never listed among %d tied holders", e, len(edges))
		}
	}

	h.heartbeat(wire.HeartbeatRequest{NodeID: removed, Removed: []wire.ShardSet{set(video, 0, 0, 0)}})
	if n := listed(removed); n != 0 {
		t.Fatalf("an edge that dropped its shards is still listed in %d lookups", n)
	}
	if err := (*network)(h.c).Ban(context.Background(), banned, "test"); err != nil {
		t.Fatal(err)
	}
	if n := listed(banned); n != 0 {
		t.Fatalf("a banned edge is still listed in %d lookups", n)
	}

	// Everyone but silent heartbeats for missedHeartbeats+1 intervals.
	for range missedHeartbeats + 1 {
		h.clock.Advance(h.c.st.interval)
		for _, e := range edges {
			if e != silent && e != banned {
				h.heartbeat(wire.HeartbeatRequest{NodeID: e})
			}
		}
	}
	if n := listed(silent); n != 0 {
		t.Fatalf("a silent edge is still listed in %d lookups", n)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: silent})
	if listed(silent) == 0 {
		t.Fatal("an edge back from silence is never listed again")
	}

	// A load bucket worse than every other holder's ranks it last, out of
	// the limit (one more holder than the limit is left after the above).
	h.clock.Advance(h.c.st.interval)
	for _, e := range edges {
		if e == banned {
			continue
		}
		hb := wire.HeartbeatRequest{NodeID: e}
		if e == loaded {
			hb.ServedBytes = 1 << 40 // counted up to servedBound: ~2× the upload cap
		}
		h.heartbeat(hb)
	}
	if n := listed(loaded); n != 0 {
		t.Fatalf("the most loaded of %d holders (limit %d) is still listed in %d lookups", len(edges)-2, limit, n)
	}
}

// TestSampledRankingKeepsTheRankingRule: a segment with more holders than
// a lookup ranks (state.rankScan) is sampled, and the sample still ranks
// by the rule: the viewer's region first, a loaded holder after idle ones,
// never a banned one; and the 64 tie-break slots sample different places,
// so every holder is listed by some lookup.
func TestSampledRankingKeepsTheRankingRule(t *testing.T) {
	h := newHarness(t)
	video := h.video(0)
	limit := sourcesPerSegment(h.fix.mustManifest(t, 0).Params.K)
	h.c.mu.Lock()
	h.c.st.rankScan = 2 * limit // a contiguous sample holds limit holders of each region
	h.c.mu.Unlock()
	region := map[wire.NodeID]string{}
	var edges []wire.NodeID
	for i := range 6 * limit {
		r := []string{"eu", "us"}[i%2]
		e := h.edge(r, set(video, 0, 0, i%4))
		region[e] = r
		edges = append(edges, e)
	}
	banned, loaded := edges[2], edges[3] // an "eu" and a "us" edge
	if err := (*network)(h.c).Ban(context.Background(), banned, "test"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.c.st.interval)
	for _, e := range edges {
		if e == banned {
			continue
		}
		hb := wire.HeartbeatRequest{NodeID: e}
		if e == loaded {
			hb.ServedBytes = 1 << 40
		}
		h.heartbeat(hb)
	}
	seen := map[wire.NodeID]bool{}
	for range 2 * rankSlotCount {
		eu := sourcesOf(h.lookup(wire.LookupRequest{Video: video, Rendition: 0, From: 0, Count: 1, Region: "eu"}), 0)
		if len(eu) < limit-1 { // a sample may hold the banned edge: limit-1 others
			t.Fatalf("a sampled lookup listed %d sources, want ≥ %d", len(eu), limit-1)
		}
		// A sample holds limit eu holders (limit-1 when the banned edge's
		// place went to a us one): eu first, at most one us source.
		us := 0
		for j, e := range eu {
			if region[e] != "eu" {
				us++
			} else if us > 0 {
				t.Fatalf("source %d of a viewer in eu is in eu after a us source: %v", j, eu)
			}
			seen[e] = true
		}
		if us > 1 {
			t.Fatalf("a viewer in eu was given %d us sources while its sample held ≥ %d eu holders", us, limit-1)
		}
		if slices.Contains(eu, banned) {
			t.Fatal("a banned holder was listed by a sampled lookup")
		}
	}
	// Consecutive lookups take consecutive slots: this loop samples from
	// every slot's place too.
	for range 2 * rankSlotCount {
		all := sourcesOf(h.lookup(wire.LookupRequest{Video: video, Rendition: 0, From: 0, Count: 1}), 0)
		if len(all) != limit {
			t.Fatalf("a sampled lookup without region listed %d sources, want %d", len(all), limit)
		}
		for _, e := range all {
			seen[e] = true
		}
		if slices.Contains(all, banned) {
			t.Fatal("a banned holder was listed by a sampled lookup")
		}
		if slices.Contains(all, loaded) {
			t.Fatal("a loaded holder was listed while its sample held more idle ones than the limit")
		}
	}
	for _, e := range edges {
		if e != banned && e != loaded && !seen[e] {
			t.Fatalf("holder %s (%d of %d) was never listed by %d sampled lookups", e, slices.Index(edges, e), len(edges), 4*rankSlotCount)
		}
	}
}
