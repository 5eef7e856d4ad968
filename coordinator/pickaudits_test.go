package coordinator

import (
	"math/rand"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// TestPickAuditsAsksUnauditedEdgesFirst: with 10 edges of which 2 never
// passed an audit, every round of 2 challenges asks exactly those 2 (a new
// edge is paid only after its first passed audit, so it must not wait for
// its turn in a random draw); once all passed, rounds spread over everyone.
func TestPickAuditsAsksUnauditedEdgesFirst(t *testing.T) {
	h := newHarness(t)
	var edges []wire.NodeID
	for range 10 {
		edges = append(edges, h.edge("", set(h.video(0), 0, 0, 1, 2)))
	}
	fresh := map[wire.NodeID]bool{edges[3]: true, edges[7]: true}
	audited := func(id wire.NodeID) bool { return !fresh[id] }
	net := (*network)(h.c)
	rng := rand.New(rand.NewSource(1))
	for round := range 20 {
		got := net.PickAudits(h.clock.Now(), rng, 2, audited)
		if len(got) != 2 || !fresh[got[0].Challenge.Edge] || !fresh[got[1].Challenge.Edge] || got[0].Challenge.Edge == got[1].Challenge.Edge {
			t.Fatalf("round %d asked %v, want the two unaudited edges %v", round, []wire.NodeID{got[0].Challenge.Edge, got[1].Challenge.Edge}, []wire.NodeID{edges[3], edges[7]})
		}
	}
	seen := map[wire.NodeID]bool{}
	for range 50 {
		for _, tg := range net.PickAudits(h.clock.Now(), rng, 2, func(wire.NodeID) bool { return true }) {
			seen[tg.Challenge.Edge] = true
		}
	}
	if len(seen) != len(edges) {
		t.Fatalf("with every edge audited, 50 rounds asked %d of %d edges; want a random spread over all", len(seen), len(edges))
	}
}
