package live

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Scenario tests of the sans-IO tree builder, in the style of the viewer
// scheduler's: a network is described, trees built, properties checked.

func nodeID(role string, i int) wire.NodeID {
	return wire.NodeID(fmt.Sprintf("%s%02d", role, i))
}

// network is an origin, relays (upload cap bytes/s each) and edges.
func network(relays int, relayCap int64, edges int) map[wire.NodeID]TreeNode {
	nodes := map[wire.NodeID]TreeNode{"origin": {ID: "origin", Role: wire.RoleOrigin, Addr: "http://o"}}
	for i := range relays {
		id := nodeID("relay", i)
		nodes[id] = TreeNode{ID: id, Role: wire.RoleRelay, Addr: "http://" + string(id), UploadCap: relayCap, PricePerGB: 0.01 * float64(i+1)}
	}
	for i := range edges {
		id := nodeID("edge", i)
		nodes[id] = TreeNode{ID: id, Role: wire.RoleEdge, Addr: "http://" + string(id)}
	}
	return nodes
}

var testChainID = content.VideoID{0xc4}

func watched(edges ...wire.NodeID) []TreeChain {
	return []TreeChain{{Chain: testChainID, Origin: "origin", RateBytes: 100_000, SegmentMS: 1000, K: 4, Edges: edges}}
}

func edgesOf(nodes map[wire.NodeID]TreeNode) []wire.NodeID {
	var out []wire.NodeID
	for id, n := range nodes {
		if n.Role == wire.RoleEdge {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// checkTrees asserts what every built tree must be: every watched edge has
// a parent in every substream, parents are the origin or relays, edges
// forward nothing, at most MaxRelayLevels relays deep, routes agree with
// the parents and name the substream's indices.
func checkTrees(t *testing.T, in TreeInput, out TreeOutput, edges []wire.NodeID) {
	t.Helper()
	trees := out.Parent[testChainID]
	if len(trees) != in.Substreams {
		t.Fatalf("%d trees, want %d", len(trees), in.Substreams)
	}
	for j, parent := range trees {
		for _, e := range edges {
			if parent[e] == "" {
				t.Fatalf("substream %d: edge %s has no parent: %s", j, e, describe(parent))
			}
		}
		for v, p := range parent {
			if r := in.Nodes[p].Role; r != wire.RoleRelay && r != wire.RoleOrigin {
				t.Fatalf("substream %d: %s's parent %s is a %s: %s", j, v, p, r, describe(parent))
			}
			relays := 0
			for a := p; a != "origin"; a = parent[a] {
				relays++
				if relays > MaxRelayLevels {
					t.Fatalf("substream %d: %s is more than %d relays below the origin: %s", j, v, MaxRelayLevels, describe(parent))
				}
			}
		}
	}
	for id, routes := range out.Routes {
		for _, r := range routes {
			want := content.SubstreamIndices(r.Substream, in.Substreams, in.PushShards)
			if !slices.Equal(r.Indices, want) {
				t.Fatalf("%s substream %d carries %v, want %v", id, r.Substream, r.Indices, want)
			}
			if in.Nodes[id].Role == wire.RoleEdge && len(r.Children) > 0 {
				t.Fatalf("edge %s forwards to %v", id, r.Children)
			}
			if id != "origin" && (r.Parent != out.Parent[r.Chain][r.Substream][id] || r.ParentAddr != in.Nodes[r.Parent].Addr) {
				t.Fatalf("%s's route names parent %s at %q, the tree %s", id, r.Parent, r.ParentAddr, out.Parent[r.Chain][r.Substream][id])
			}
			for _, c := range r.Children {
				if out.Parent[r.Chain][r.Substream][c.NodeID] != id || !slices.Equal(c.Shards, want) || c.Addr != in.Nodes[c.NodeID].Addr {
					t.Fatalf("%s lists child %+v that is not its child in substream %d", id, c, r.Substream)
				}
			}
		}
	}
}

// Five substreams map to one index each; every edge gets a parent in each;
// the substreams spread over the relays.
func TestTreesSubstreamsMapToIndices(t *testing.T) {
	nodes := network(3, 10_000_000, 4)
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	out := BuildTrees(in)
	checkTrees(t, in, out, edges)
	if got := len(out.Routes["origin"]); got != 5 {
		t.Fatalf("origin has %d routes, want one per substream", got)
	}
	used := map[wire.NodeID]bool{}
	for _, parent := range out.Parent[testChainID] {
		for _, p := range parent {
			if p != "origin" {
				used[p] = true
			}
		}
	}
	if len(used) < 2 {
		t.Fatalf("the substreams use relays %v: one relay's loss would cost all of them", used)
	}
	// Three substreams of five pushed indices: 0,3 / 1,4 / 2.
	in.Substreams = 3
	out = BuildTrees(in)
	checkTrees(t, in, out, edges)
}

// A relay that leaves is replaced: the next build uses none of its routes
// and every edge still has a parent in every substream.
func TestTreesRelayLossReplaced(t *testing.T) {
	nodes := network(3, 10_000_000, 4)
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	out := BuildTrees(in)
	var lost wire.NodeID
	for _, p := range out.Parent[testChainID][0] {
		if p != "origin" {
			lost = p
		}
	}
	if lost == "" {
		t.Fatalf("substream 0 uses no relay: %s", describe(out.Parent[testChainID][0]))
	}
	delete(in.Nodes, lost)
	out = BuildTrees(in)
	checkTrees(t, in, out, edges)
	if _, ok := out.Routes[lost]; ok {
		t.Fatalf("the lost relay %s still has routes", lost)
	}
	for j, parent := range out.Parent[testChainID] {
		for v, p := range parent {
			if p == lost || v == lost {
				t.Fatalf("substream %d still uses %s", j, lost)
			}
		}
	}
}

// Relays without the upload for even one child are not used: every edge
// hangs off the origin. Without relays at all, likewise.
func TestTreesLeavesGetParentsWithoutRelays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		relays int
		cap    int64
	}{{"no relays", 0, 0}, {"relays without upload", 3, 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := network(tc.relays, tc.cap, 3)
			edges := edgesOf(nodes)
			in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
			out := BuildTrees(in)
			checkTrees(t, in, out, edges)
			for j, parent := range out.Parent[testChainID] {
				for v, p := range parent {
					if p != "origin" {
						t.Fatalf("substream %d: %s hangs off %s, which cannot carry it", j, v, p)
					}
				}
			}
		})
	}
}

// A relay's upload cap bounds its children over every tree: with room for
// exactly two children (each substream's rate is 100000/4 bytes/s), one
// relay carries two and the rest go to the origin.
func TestTreesRelayUploadCapBounds(t *testing.T) {
	nodes := network(1, 50_000, 4)
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	out := BuildTrees(in)
	checkTrees(t, in, out, edges)
	children := 0
	for _, parent := range out.Parent[testChainID] {
		for _, p := range parent {
			if p == nodeID("relay", 0) {
				children++
			}
		}
	}
	if children > 2 {
		t.Fatalf("relay with upload for 2 children has %d", children)
	}
}

// Measured round trips steer the tree: a relay far from everyone is not used.
func TestTreesUseMeasuredDelays(t *testing.T) {
	nodes := network(2, 10_000_000, 3)
	far := nodeID("relay", 0) // also the cheapest
	n := nodes[far]
	n.RTTMS = map[wire.NodeID]float64{}
	for id := range nodes {
		if id != far {
			n.RTTMS[id] = 900
		}
	}
	nodes[far] = n
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	out := BuildTrees(in)
	checkTrees(t, in, out, edges)
	for j, parent := range out.Parent[testChainID] {
		if _, ok := parent[far]; ok {
			t.Fatalf("substream %d uses the relay 900 ms away: %s", j, describe(parent))
		}
	}
}

// A watched chain with one watching edge gets a second edge assigned when
// one is alive; with enough watchers none is added.
func TestAssignEdgesToPopularChains(t *testing.T) {
	nodes := network(0, 0, 5)
	all := edgesOf(nodes)
	got := assignEdges(testChainID, all[:1], all, nodes)
	if len(got) != MinEdgesPerChain || !slices.Contains(got, all[0]) {
		t.Fatalf("one watcher: edges %v, want it and one more", got)
	}
	if got := assignEdges(testChainID, all[:3], all, nodes); len(got) != 3 {
		t.Fatalf("three watchers: %v", got)
	}
	if got := assignEdges(testChainID, all[:1], all[:1], nodes); len(got) != 1 {
		t.Fatalf("only one edge alive: %v", got)
	}
}

// BenchmarkBuildTrees times one build of every substream's tree (5) for a
// watched chain, COCOS against the Prim baseline on the same snapshot (the
// reference: ratios are what docs/PERFORMANCE.md records).
func BenchmarkBuildTrees(b *testing.B) {
	for _, size := range []struct{ relays, edges int }{{3, 4}, {6, 12}} {
		for _, scheme := range []string{"cocos", "prim"} {
			b.Run(fmt.Sprintf("relays=%d/edges=%d/%s", size.relays, size.edges, scheme), func(b *testing.B) {
				nodes := network(size.relays, 10_000_000, size.edges)
				in := TreeInput{Nodes: nodes, Chains: watched(edgesOf(nodes)...), Substreams: 5, PushShards: 5, primOnly: scheme == "prim"}
				for b.Loop() {
					BuildTrees(in)
				}
			})
		}
	}
}

// Fifty edges and six relays of the same price band (the demo's): every
// substream's tree puts relays under a relay (two levels, no relay past
// MaxRelayChildren children), the origin feeds one relay per substream,
// and no relay is the origin's child in two substreams (so one relay's
// loss costs one substream at the top).
func TestTreesTwoLevelsAtFiftyEdges(t *testing.T) {
	nodes := network(6, 12_500_000, 50)
	for id, n := range nodes {
		if n.Role == wire.RoleRelay {
			n.PricePerGB = 0.5 + 0.1*float64(id[len(id)-1]-'0')
			nodes[id] = n
		}
	}
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	in.Chains[0].RateBytes = 45_500 // 364 kbit/s: the testnet's live ladder
	out := BuildTrees(in)
	checkTrees(t, in, out, edges)
	roots := map[wire.NodeID]int{}
	for j, parent := range out.Parent[testChainID] {
		children := map[wire.NodeID]int{}
		deep := 0
		for v, p := range parent {
			children[p]++
			if p == "origin" {
				roots[v]++
			} else if parent[p] != "origin" {
				deep++
			}
		}
		if children["origin"] != 1 {
			t.Fatalf("substream %d: the origin has %d children, want 1: %s", j, children["origin"], describe(parent))
		}
		if deep == 0 {
			t.Fatalf("substream %d: no edge is two relays below the origin: %s", j, describe(parent))
		}
		for p, n := range children {
			if p != "origin" && n > MaxRelayChildren {
				t.Fatalf("substream %d: %s has %d children, more than %d: %s", j, p, n, MaxRelayChildren, describe(parent))
			}
		}
	}
	for r, n := range roots {
		if n > 1 {
			t.Fatalf("relay %s is the origin's child in %d substreams", r, n)
		}
	}
}

// An edge that joins moves nobody: every edge of the previous build keeps
// its parent in every substream (a parent change loses pushes in flight).
func TestTreesStableWhenAnEdgeJoins(t *testing.T) {
	nodes := network(6, 12_500_000, 40)
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	in.Chains[0].RateBytes = 45_500
	before := BuildTrees(in)
	joined := nodeID("edge", 40)
	nodes[joined] = TreeNode{ID: joined, Role: wire.RoleEdge, Addr: "http://" + string(joined)}
	in.Chains = watched(append(slices.Clone(edges), joined)...)
	in.Chains[0].RateBytes = 45_500
	in.Previous = before.Parent
	after := BuildTrees(in)
	checkTrees(t, in, after, append(slices.Clone(edges), joined))
	moved := 0
	for j := range after.Parent[testChainID] {
		for _, e := range edges {
			if before.Parent[testChainID][j][e] != after.Parent[testChainID][j][e] {
				t.Logf("substream %d: %s moved from %s to %s", j, e, before.Parent[testChainID][j][e], after.Parent[testChainID][j][e])
				moved++
			}
		}
	}
	if moved > 0 {
		t.Fatalf("%d edge-substream parents changed when one edge joined", moved)
	}
}

// grownNetwork is the demo's network as the coordinator sees it: relays
// priced as testnet's (0.5 + 0.1·i points per GB, 100 Mbit/s), round trips
// measured on one machine (0.1–3 ms, seeded), and the edges joining one at
// a time, each build given the previous one's trees. It returns every
// build's input and output, the last with every edge.
func grownNetwork(t *testing.T, relays, edges int, relayCap int64, seed uint64) ([]TreeInput, []TreeOutput) {
	t.Helper()
	nodes := network(relays, relayCap, edges)
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := sortedKeys(nodes)
	for _, id := range ids {
		n := nodes[id]
		if n.Role == wire.RoleRelay {
			n.PricePerGB = 0.5 + 0.1*float64(id[len(id)-1]-'0')
		}
		n.RTTMS = map[wire.NodeID]float64{}
		for _, other := range ids {
			if other != id {
				n.RTTMS[other] = 0.1 + 2.9*rng.Float64()
			}
		}
		nodes[id] = n
	}
	all := edgesOf(nodes)
	var ins []TreeInput
	var outs []TreeOutput
	var prev map[content.VideoID][]map[wire.NodeID]wire.NodeID
	// Builds at 1, 2, 3, 5, 8, … edges and at every edge around one
	// relay's fan-out (16, 17), to the last (a build per edge would take
	// minutes of CBC).
	var sizes []int
	for n := 1; n < len(all); n += max(1, n/2) {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, MaxRelayChildren, MaxRelayChildren+1, len(all))
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	for _, n := range sizes {
		if n > len(all) {
			break
		}
		in := TreeInput{Nodes: nodes, Chains: watched(all[:n]...), Substreams: 5, PushShards: 5, Previous: prev}
		in.Chains[0].RateBytes = 45_500 // 364 kbit/s: the testnet's live ladder
		out := BuildTrees(in)
		checkTrees(t, in, out, all[:n])
		ins, outs = append(ins, in), append(outs, out)
		prev = out.Parent
	}
	return ins, outs
}

// The origin's fan-out per substream is a constraint of the build, not an
// emergent price effect: with relays in the channel the origin feeds
// exactly one node per substream, a relay (the top), at every size the
// demo and the benchmark run and at every build while the edges join; no
// relay has more than MaxRelayChildren children; once the edges outgrow
// one relay's fan-out there are two relay levels; and with at least as
// many relays as substreams, the tops are distinct (one relay's loss costs
// one substream at the top).
func TestTreesOriginFeedsOnlyTheTopRelay(t *testing.T) {
	for _, size := range []struct{ relays, edges int }{{4, 20}, {6, 50}, {8, 100}} {
		t.Run(fmt.Sprintf("relays=%d/edges=%d", size.relays, size.edges), func(t *testing.T) {
			ins, outs := grownNetwork(t, size.relays, size.edges, 100_000_000/8, uint64(size.edges))
			for b, out := range outs {
				watching := len(ins[b].Chains[0].Edges)
				tops := map[wire.NodeID]int{}
				for j, parent := range out.Parent[testChainID] {
					children := map[wire.NodeID]int{}
					deep := 0
					for v, p := range parent {
						children[p]++
						if p == "origin" {
							tops[v]++
							if ins[b].Nodes[v].Role != wire.RoleRelay {
								t.Fatalf("%d edges, substream %d: the origin feeds %s, not a relay: %s", watching, j, v, describe(parent))
							}
						} else if parent[p] != "origin" {
							deep++
						}
					}
					if children["origin"] != 1 {
						t.Fatalf("%d edges, substream %d: the origin has %d children, want 1: %s", watching, j, children["origin"], describe(parent))
					}
					for p, n := range children {
						if p != "origin" && n > MaxRelayChildren {
							t.Fatalf("%d edges, substream %d: %s has %d children, more than %d: %s", watching, j, p, n, MaxRelayChildren, describe(parent))
						}
					}
					if watching > MaxRelayChildren && deep == 0 {
						t.Fatalf("%d edges, substream %d: no edge is two relays below the origin: %s", watching, j, describe(parent))
					}
				}
				if size.relays >= 5 {
					for r, n := range tops {
						if n > 1 {
							t.Fatalf("%d edges: relay %s is the top of %d substreams", watching, r, n)
						}
					}
				}
			}
		})
	}
}

// When the relays' upload runs out, the origin takes the edges beyond it
// (and only those): relays with upload for 8 children each over every
// tree of the chain (5 substreams of 45500/4 bytes/s) carry what they
// can, nobody is left without a parent, no relay passes its cap, and the
// origin's children are what the relays could not take.
func TestTreesOriginTakesEdgesBeyondRelayCapacity(t *testing.T) {
	const rate = 45_500.0 / 4
	ins, outs := grownNetwork(t, 6, 50, int64(8*rate), 50)
	in, out := ins[len(ins)-1], outs[len(outs)-1]
	sent := map[wire.NodeID]int{}
	originChildren := 0
	for _, parent := range out.Parent[testChainID] {
		for _, p := range parent {
			sent[p]++
			if p == "origin" {
				originChildren++
			}
		}
	}
	for r, n := range sent {
		if r != "origin" && float64(n)*rate > float64(in.Nodes[r].UploadCap) {
			t.Fatalf("relay %s sends %d children × %.0f B/s, past its cap %d", r, n, rate, in.Nodes[r].UploadCap)
		}
	}
	// 6 relays × 8 children = 48 of the 5 × 50 edge places: the relays
	// carry nearly that (a relay takes a child only with upload for two
	// left, so each may keep one unused) and the origin the rest.
	carried := 0
	for r, n := range sent {
		if r != "origin" {
			carried += n
		}
	}
	if carried < 48-6 || originChildren < 5*50-carried {
		t.Fatalf("relays carry %d places, origin %d: want the relays nearly full (42–48) and the origin the rest", carried, originChildren)
	}
}

// On a loaded host every measured round trip grows past the delay bound
// together (here 1.5 s, the bound 1 s): the origin still feeds exactly
// one relay per substream (the top is no worse than the origin's own
// links), within the fan-out bound.
func TestTreesOriginFeedsOneRelayWhenEveryRoundTripIsLong(t *testing.T) {
	nodes := network(6, 100_000_000/8, 50)
	for id, n := range nodes {
		n.RTTMS = map[wire.NodeID]float64{}
		for other := range nodes {
			if other != id {
				n.RTTMS[other] = 1500
			}
		}
		nodes[id] = n
	}
	edges := edgesOf(nodes)
	in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5}
	in.Chains[0].RateBytes = 45_500
	out := BuildTrees(in)
	checkTrees(t, in, out, edges)
	for j, parent := range out.Parent[testChainID] {
		children := map[wire.NodeID]int{}
		for _, p := range parent {
			children[p]++
		}
		if children["origin"] != 1 {
			t.Fatalf("substream %d: the origin has %d children, want 1: %s", j, children["origin"], describe(parent))
		}
		for p, n := range children {
			if p != "origin" && n > MaxRelayChildren {
				t.Fatalf("substream %d: %s has %d children, more than %d", j, p, n, MaxRelayChildren)
			}
		}
	}
}
