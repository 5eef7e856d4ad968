package live

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/plan/lp"
	"github.com/swarmcast/swarmcast/wire"
)

// The fan-out tree builder: a pure function of a snapshot (BuildTrees), so
// it runs the same in the coordinator, in tests and in a simulator. No
// clock, no I/O, no goroutines, no randomness (ties break by node id).
//
// Per chain and per substream j (S substreams, substream j carries the
// pushed indices i ≡ j mod S), it maps the nodes to a plan.CocosInstance:
// the origin is server 0, relays and the chain's edges are demanding
// servers; delays are measured round trips (HeartbeatRequest.PeerRTTMS, the
// mean of both directions when both are known) or DefaultHopDelayMS; upload
// prices are the relays' PricePerGB, the origin's OriginPriceFactor times
// the dearest relay's (so relays carry what they can), and edges' a price
// no tree pays (edges are leaves). The delay bound is the segment duration.
// plan.Cocos solves it (plan.DelayBoundedPrim if the LP cannot be solved);
// relays used by earlier substreams of the chain cost more for later ones,
// so substreams spread over relays and one relay's loss costs few of them.
// The tree is then made what the fan-out can run:
//   - an edge never forwards: an edge's children move to its nearest
//     non-edge ancestor;
//   - at most MaxRelayLevels relays between the origin and a leaf;
//   - at most MaxRelayChildren children per relay per tree: past it, a
//     relay's extra edges move one level down, under a relay it feeds
//     (one it already feeds, else a relay not yet in this tree, recruited
//     under it); this is what puts a relay under a relay when many edges
//     watch (COCOS prices upload, not fan-out, so it hangs every edge of a
//     substream on its cheapest relay);
//   - an edge keeps its parent of the previous build (TreeInput.Previous)
//     when that relay is still in the tree at a level it may be a parent
//     at and has room: a parent change loses the pushes in flight (a
//     child refuses a push from anyone but the parent its set names, and
//     the two ends learn of the change at different heartbeats), so the
//     trees change no more than the nodes do;
//   - a relay forwards at most its upload cap (bytes/s over every tree
//     of every chain): past it, a child moves to the origin;
//   - a relay with nobody below it leaves the tree.

var errPrimOnly = errors.New("prim only")

// DefaultHopDelayMS is the delay assumed between two nodes without a
// measured round trip.
const DefaultHopDelayMS = 40.0

// MaxRelayLevels bounds the relays between the origin and an edge.
const MaxRelayLevels = 2

// MaxRelayChildren bounds a relay's children in one substream tree. A
// relay's sender runs fanout.DefaultParallelPushes (16) pushes at once, so
// up to 16 children all get a segment in one wave; a 17th waits for one
// of them. Two levels of 16 reach 16 × 16 edges per substream.
const MaxRelayChildren = 16

// OriginPriceFactor prices the origin's upload relative to the dearest relay.
const OriginPriceFactor = 4.0

// edgeUploadPrice makes edges' upload dearer than any path through relays.
const edgeUploadPrice = 1e6

// TreeNode is one node the builder may place.
type TreeNode struct {
	ID   wire.NodeID
	Role wire.Role
	Addr string
	// UploadCap is the node's upload capacity, bytes per second (relays).
	UploadCap int64
	// PricePerGB is a relay's upload price.
	PricePerGB float64
	// RTTMS are round trips this node measured to others, ms.
	RTTMS map[wire.NodeID]float64
}

// TreeChain is one chain to build trees for.
type TreeChain struct {
	Chain  content.VideoID
	Origin wire.NodeID
	// RateBytes is the chain's whole stream, bytes per second (every
	// rendition's bandwidth); SegmentMS its target segment duration.
	RateBytes float64
	SegmentMS float64
	K         int // shards needed to rebuild a segment
	// Edges are the edges in the chain (watching it, or assigned to it).
	Edges []wire.NodeID
	// Unwatched marks a chain given trees at go-live, before anyone
	// watches it (GoLiveSegments): built after every watched chain, so
	// it only takes relay upload the watched chains left.
	Unwatched bool
}

// TreeInput is the builder's snapshot.
type TreeInput struct {
	Nodes      map[wire.NodeID]TreeNode // every alive origin, relay and edge
	Chains     []TreeChain
	Substreams int // S
	PushShards int // indices pushed per segment (0..PushShards-1)
	// Previous is the last build's TreeOutput.Parent (nil: none): edges
	// keep their parents where they still may (see the package comment).
	Previous map[content.VideoID][]map[wire.NodeID]wire.NodeID
	// MaxChildren overrides MaxRelayChildren when > 0 (tests).
	MaxChildren int

	// primOnly builds with the Prim baseline instead of COCOS (the
	// benchmark's reference).
	primOnly bool
}

// TreeOutput is every node's routes, and each chain's trees for reading.
type TreeOutput struct {
	Routes map[wire.NodeID][]wire.LiveRoute
	// Parent is chain → substream → node → parent, for lookups and tests.
	Parent map[content.VideoID][]map[wire.NodeID]wire.NodeID
	// Backup is chain → substream → node → backup parent (backup.go), for
	// every node whose parent is not the origin.
	Backup map[content.VideoID][]map[wire.NodeID]wire.NodeID
}

// BuildTrees builds one tree per substream of every chain.
func BuildTrees(in TreeInput) TreeOutput {
	out := TreeOutput{Routes: map[wire.NodeID][]wire.LiveRoute{}, Parent: map[content.VideoID][]map[wire.NodeID]wire.NodeID{}}
	s := max(in.Substreams, 1)
	budget := map[wire.NodeID]float64{} // relays' remaining upload, bytes/s
	for id, n := range in.Nodes {
		if n.Role == wire.RoleRelay {
			budget[id] = float64(n.UploadCap)
		}
	}
	var built []builtSubstream // for the backups, once every primary tree took its budget
	chains := slices.Clone(in.Chains)
	slices.SortFunc(chains, func(a, b TreeChain) int {
		if a.Unwatched != b.Unwatched {
			if a.Unwatched {
				return 1
			}
			return -1
		}
		return content.CompareVideoIDs(a.Chain, b.Chain)
	})
	for _, ch := range chains {
		if _, ok := in.Nodes[ch.Origin]; !ok {
			continue
		}
		uses := map[wire.NodeID]int{}   // relay → substreams of this chain it forwards
		roots := map[wire.NodeID]bool{} // relays that are the origin's child in a substream
		trees := make([]map[wire.NodeID]wire.NodeID, s)
		for j := range s {
			indices := content.SubstreamIndices(j, s, in.PushShards)
			rate := ch.RateBytes * float64(len(indices)) / float64(max(ch.K, 1))
			var prev map[wire.NodeID]wire.NodeID
			if p := in.Previous[ch.Chain]; j < len(p) {
				prev = p[j]
			}
			parent := buildSubstream(in, ch, uses, roots, budget, rate, prev)
			trees[j] = parent
			forwarding := map[wire.NodeID]bool{}
			for _, p := range parent {
				if in.Nodes[p].Role == wire.RoleRelay {
					forwarding[p] = true
				}
			}
			for r := range forwarding {
				uses[r]++
			}
			for v, p := range parent {
				if p == ch.Origin && in.Nodes[v].Role == wire.RoleRelay {
					roots[v] = true
				}
			}
			addRoutes(out.Routes, in, ch, j, indices, parent)
			built = append(built, builtSubstream{chain: ch, j: j, indices: indices, rate: rate, parent: parent})
		}
		out.Parent[ch.Chain] = trees
	}
	out.Backup = addBackups(out.Routes, in, built, budget)
	for id := range out.Routes {
		slices.SortFunc(out.Routes[id], func(a, b wire.LiveRoute) int {
			if c := content.CompareVideoIDs(a.Chain, b.Chain); c != 0 {
				return c
			}
			return cmp.Compare(a.Substream, b.Substream)
		})
	}
	return out
}

// buildSubstream is one substream's tree: node → parent.
func buildSubstream(in TreeInput, ch TreeChain, uses map[wire.NodeID]int, roots map[wire.NodeID]bool, budget map[wire.NodeID]float64, rate float64, prev map[wire.NodeID]wire.NodeID) map[wire.NodeID]wire.NodeID {
	// Server 0 is the origin, then relays, then edges, each sorted by id.
	ids := []wire.NodeID{ch.Origin}
	var relays, edges []wire.NodeID
	for id, n := range in.Nodes {
		if n.Role == wire.RoleRelay && budget[id] >= rate {
			relays = append(relays, id)
		}
	}
	for _, e := range ch.Edges {
		if n, ok := in.Nodes[e]; ok && n.Role == wire.RoleEdge && !slices.Contains(edges, e) {
			edges = append(edges, e)
		}
	}
	slices.Sort(relays)
	slices.Sort(edges)
	ids = append(append(ids, relays...), edges...)
	parent := map[wire.NodeID]wire.NodeID{}
	if len(edges) == 0 {
		return parent
	}
	n := len(ids)
	maxRelayPrice := 0.0
	for _, r := range relays {
		maxRelayPrice = max(maxRelayPrice, in.Nodes[r].PricePerGB)
	}
	if maxRelayPrice == 0 {
		maxRelayPrice = 1
	}
	inst := &plan.CocosInstance{Delay: square(n), Link: square(n), Upload: make([]float64, n), DelayBound: max(ch.SegmentMS, 2*DefaultHopDelayMS*float64(MaxRelayLevels+1))}
	for i, id := range ids {
		node := in.Nodes[id]
		switch {
		case i == 0:
			inst.Upload[i] = OriginPriceFactor * maxRelayPrice / 8000 // per GB → per Mbit
		case node.Role == wire.RoleRelay:
			// A relay already forwarding substreams of this chain costs more.
			inst.Upload[i] = (node.PricePerGB + maxRelayPrice*0.01) * (1 + 2*float64(uses[id])) / 8000
		default:
			inst.Upload[i] = edgeUploadPrice
		}
		for j, other := range ids {
			if i != j {
				inst.Delay[i][j] = hopDelay(in.Nodes, id, other)
			}
		}
	}
	demand := make([]int, 0, n-1)
	for i := 1; i < n; i++ {
		demand = append(demand, i)
	}
	inst.Channels = []plan.Channel{{Origin: 0, Rate: math.Max(rate*8/1e6, 1e-6), Demand: demand}}
	// CBC when installed: on these small, degenerate LPs the in-process
	// simplex can take seconds where CBC takes milliseconds (measured:
	// BenchmarkBuildTrees). If the LP fails, the Prim baseline.
	var solver lp.Solver = lp.Auto{}
	if lp.CoinAvailable() {
		solver = lp.Coin{}
	}
	var res *plan.CocosResult
	err := errPrimOnly
	if !in.primOnly {
		res, err = plan.Cocos(inst, plan.CocosOptions{Substreams: 4, Candidates: 4, Solver: solver})
	}
	if err != nil {
		res = plan.DelayBoundedPrim(inst)
	}
	for v, p := range res.Trees[0].Parent {
		parent[ids[v]] = ids[p]
	}
	return shape(in, ch.Origin, parent, budget, rate, inst.DelayBound, uses, roots, prev)
}

// shape makes a planned tree runnable (see the package comment): edges are
// leaves, at most MaxRelayLevels relays deep, relays within their upload
// budget (which it spends), no childless relay.
func shape(in TreeInput, origin wire.NodeID, parent map[wire.NodeID]wire.NodeID, budget map[wire.NodeID]float64, rate, delayBound float64, uses map[wire.NodeID]int, roots map[wire.NodeID]bool, prev map[wire.NodeID]wire.NodeID) map[wire.NodeID]wire.NodeID {
	role := func(id wire.NodeID) wire.Role { return in.Nodes[id].Role }
	// up is the nearest ancestor of v that may forward, at most
	// MaxRelayLevels relays below the origin.
	up := func(v wire.NodeID) wire.NodeID {
		var path []wire.NodeID // ancestors that may forward, nearest first
		for p, hops := parent[v], 0; hops <= len(parent); p, hops = parent[p], hops+1 {
			if p == origin || p == "" {
				break
			}
			if role(p) == wire.RoleRelay {
				path = append(path, p)
			}
		}
		if len(path) == 0 {
			return origin
		}
		if len(path) > MaxRelayLevels {
			// Keep the top MaxRelayLevels relays: hang v below the lowest of them.
			return path[len(path)-MaxRelayLevels]
		}
		return path[0]
	}
	fixed := map[wire.NodeID]wire.NodeID{}
	for _, v := range sortedKeys(parent) {
		fixed[v] = up(v)
	}
	// Spend relay budgets, nearest the origin first (a relay's own parent
	// is settled before its children count against it).
	depth := func(v wire.NodeID) int {
		d := 0
		for p := fixed[v]; p != origin && p != "" && d <= len(fixed); p = fixed[p] {
			d++
		}
		return d
	}
	order := sortedKeys(fixed)
	slices.SortStableFunc(order, func(a, b wire.NodeID) int { return cmp.Compare(depth(a), depth(b)) })
	// Prune childless relays first (repeatedly: a relay may only feed relays).
	for {
		children := map[wire.NodeID]int{}
		for _, p := range fixed {
			children[p]++
		}
		pruned := false
		for _, v := range order {
			if _, ok := fixed[v]; ok && role(v) == wire.RoleRelay && children[v] == 0 {
				delete(fixed, v)
				pruned = true
			}
		}
		if !pruned {
			break
		}
	}
	bound(in, origin, fixed, budget, rate, delayBound, uses, roots, prev)
	order = sortedKeys(fixed)
	slices.SortStableFunc(order, func(a, b wire.NodeID) int { return cmp.Compare(depth(a), depth(b)) })
	for _, v := range order {
		p, ok := fixed[v]
		if !ok || p == origin {
			continue
		}
		if _, kept := fixed[p]; !kept || budget[p] < rate {
			fixed[v] = origin
			continue
		}
		budget[p] -= rate
	}
	// A relay left without children after the budget moves is dropped too.
	children := map[wire.NodeID]int{}
	for _, p := range fixed {
		children[p]++
	}
	for _, v := range order {
		if p, ok := fixed[v]; ok && role(v) == wire.RoleRelay && children[v] == 0 {
			delete(fixed, v)
			if p != origin {
				budget[p] += rate
			}
		}
	}
	return fixed
}

// bound keeps edges with their previous parents where they may stay and
// moves relays' children past the fan-out bound one level down (see the
// package comment). fixed has edges as leaves and at most MaxRelayLevels
// relays per path; it keeps both.
func bound(in TreeInput, origin wire.NodeID, fixed map[wire.NodeID]wire.NodeID, budget map[wire.NodeID]float64, rate, delayBound float64, uses map[wire.NodeID]int, roots map[wire.NodeID]bool, prev map[wire.NodeID]wire.NodeID) {
	limit := MaxRelayChildren
	if in.MaxChildren > 0 {
		limit = in.MaxChildren
	}
	role := func(id wire.NodeID) wire.Role { return in.Nodes[id].Role }
	// level is how many relays lead from the origin to v, v included.
	level := func(v wire.NodeID) int {
		l := 0
		for a := v; a != origin && a != "" && l <= len(fixed); a = fixed[a] {
			l++
		}
		return l
	}
	kids := func(p wire.NodeID) (relays, edges []wire.NodeID) {
		for _, v := range sortedKeys(fixed) {
			if fixed[v] != p {
				continue
			}
			if role(v) == wire.RoleRelay {
				relays = append(relays, v)
			} else {
				edges = append(edges, v)
			}
		}
		return relays, edges
	}
	count := func(p wire.NodeID) int {
		n := 0
		for _, q := range fixed {
			if q == p {
				n++
			}
		}
		return n
	}
	rootAtTopRelay(in, origin, fixed, budget, rate, delayBound, roots, prev)
	// A relay that is already the origin's child in an earlier substream
	// of the chain hands that place here to a relay that is not (one of
	// this tree's second level, else one outside it): otherwise one
	// relay's loss would cost every substream for every edge at once.
	for _, r := range sortedKeys(fixed) {
		if fixed[r] != origin || role(r) != wire.RoleRelay || !roots[r] {
			continue
		}
		// A candidate must keep r's children within the delay bound.
		near := func(c wire.NodeID) bool {
			for _, v := range sortedKeys(fixed) {
				if fixed[v] == r && v != c && hopDelay(in.Nodes, origin, c)+hopDelay(in.Nodes, c, v) > delayBound {
					return false
				}
			}
			return true
		}
		var s wire.NodeID
		for _, c := range sortedKeys(fixed) {
			if role(c) == wire.RoleRelay && fixed[c] != origin && !roots[c] && budget[c] >= 2*rate && near(c) {
				s = c
				break
			}
		}
		if s == "" {
			for _, c := range sortedKeys(in.Nodes) {
				if _, used := fixed[c]; !used && role(c) == wire.RoleRelay && !roots[c] && budget[c] >= 2*rate && near(c) {
					s = c
					break
				}
			}
		}
		if s == "" {
			continue
		}
		if ps, inTree := fixed[s]; inTree {
			// Swap the two places: s's children go to r and r's to s.
			for _, v := range sortedKeys(fixed) {
				switch fixed[v] {
				case r:
					fixed[v] = s
				case s:
					fixed[v] = r
				}
			}
			if ps == r {
				ps = s
			}
			fixed[s], fixed[r] = origin, ps
		} else {
			for _, v := range sortedKeys(fixed) {
				if fixed[v] == r {
					fixed[v] = s
				}
			}
			fixed[s] = origin
			delete(fixed, r)
		}
	}
	// Edges stay with their previous parent where it is still a relay of
	// this tree (it had at most limit of them then); a relay then past
	// the bound at the second level hands the edges it did not have in
	// the last build to its parent, the top, whose extra edges the loop
	// below moves down again (a second level cannot shed them: only the
	// top recruits below it).
	for _, v := range sortedKeys(fixed) {
		pp, ok := prev[v]
		if role(v) != wire.RoleEdge || !ok || pp == fixed[v] || pp == origin {
			continue
		}
		if _, in := fixed[pp]; in && role(pp) == wire.RoleRelay && budget[pp] >= 2*rate {
			fixed[v] = pp
		}
	}
	for _, r := range sortedKeys(fixed) {
		if fixed[r] == origin || role(r) != wire.RoleRelay {
			continue
		}
		_, edges := kids(r)
		slices.Reverse(edges)
		slices.SortStableFunc(edges, func(a, b wire.NodeID) int { return cmp.Compare(btoi(prev[a] == r), btoi(prev[b] == r)) })
		for _, v := range edges[:max(0, len(edges)-limit)] {
			fixed[v] = fixed[r]
		}
	}
	// Relays not in this tree, cheapest to recruit first: those forwarding
	// fewer substreams of the chain, then by price, then id.
	var spare []wire.NodeID
	for _, id := range sortedKeys(in.Nodes) {
		if _, used := fixed[id]; !used && role(id) == wire.RoleRelay && budget[id] >= 2*rate {
			spare = append(spare, id)
		}
	}
	slices.SortStableFunc(spare, func(a, b wire.NodeID) int {
		if c := cmp.Compare(uses[a], uses[b]); c != 0 {
			return c
		}
		return cmp.Compare(in.Nodes[a].PricePerGB, in.Nodes[b].PricePerGB)
	})
	// movable orders p's edges for moving under q: those whose previous
	// parent is q, then those that were not p's, then the rest (by id,
	// from the end, so p keeps the same ones build after build).
	movable := func(p, q wire.NodeID, edges []wire.NodeID) []wire.NodeID {
		out := slices.Clone(edges)
		slices.Reverse(out)
		rank := func(v wire.NodeID) int {
			switch prev[v] {
			case q:
				return 0
			case p:
				return 2
			}
			return 1
		}
		slices.SortStableFunc(out, func(a, b wire.NodeID) int { return cmp.Compare(rank(a), rank(b)) })
		return out
	}
	parents := sortedKeys(fixed)
	slices.SortStableFunc(parents, func(a, b wire.NodeID) int { return cmp.Compare(level(a), level(b)) })
	for _, p := range parents {
		if role(p) != wire.RoleRelay || count(p) <= limit {
			continue
		}
		relays, edges := kids(p)
		deeper := level(p) < MaxRelayLevels // p's children may be relays with children
		for count(p) > limit && len(edges) > 0 {
			// A relay child of p with room, preferring one that some of
			// p's edges had as parent.
			var q wire.NodeID
			if deeper {
				for _, r := range relays {
					if count(r) < limit && budget[r] >= 2*rate {
						q = r
						break
					}
				}
				if q == "" && len(spare) > 0 {
					// Recruit: the spare that p had as a child before, else
					// the first.
					// within the delay bound for p's edges.
					// (or no worse than p: when p's own path to an edge is
					// past the bound too, as on a loaded host).
					fits := func(r wire.NodeID) bool {
						for _, v := range edges {
							via := hopDelay(in.Nodes, origin, p) + hopDelay(in.Nodes, p, r) + hopDelay(in.Nodes, r, v)
							if via > delayBound && hopDelay(in.Nodes, origin, p)+hopDelay(in.Nodes, p, v) <= delayBound {
								return false
							}
						}
						return true
					}
					pick := -1
					for i, r := range spare {
						if fits(r) && (pick < 0 || prev[r] == p) {
							pick = i
							if prev[r] == p {
								break
							}
						}
					}
					if pick < 0 {
						break // no spare near enough: p stays past the bound
					}
					q = spare[pick]
					spare = slices.Delete(spare, pick, pick+1)
					fixed[q] = p
					relays = append(relays, q)
				}
			}
			if q == "" {
				break // nowhere below p: p stays past the bound (better than the origin)
			}
			for _, v := range movable(p, q, edges) {
				if count(p) <= limit || count(q) >= limit {
					break
				}
				fixed[v] = q
				edges = slices.DeleteFunc(edges, func(e wire.NodeID) bool { return e == v })
			}
			if count(q) >= limit || budget[q] < 2*rate {
				relays = slices.DeleteFunc(relays, func(r wire.NodeID) bool { return r == q })
			}
		}
	}
}

// rootAtTopRelay makes the origin's fan-out in this substream one relay,
// the top relay, whatever the solve priced: every other node the origin
// fed (edges, and relays with their subtrees) hangs below the top relay,
// so the origin sends each segment's substream once (issue 11: origin
// copies per segment ≤ 1.5 with PushShards/K = 1.25). COCOS weighs upload
// prices, and a relay's price grows with the substreams it forwards until
// it passes the origin's, which hung a fifth of 50 edges on the origin;
// the fan-out bound (bound's loop below) then moves the top relay's extra
// edges down a level, under relays it feeds or recruits.
//
// The top relay is, in order: the previous build's (stability), one the
// solve made the origin's child, any relay with room; each first among
// those not already the top of an earlier substream of the chain (roots),
// then among those that are; each first among relays within the delay
// bound of the origin, then among any (measured round trips inflate
// together on a loaded host). A node the origin reaches within the bound
// and the top does not stays on the origin, as does everything when no
// relay is alive with the upload for two children (capacity runs out:
// the origin feeds them, and the report's origin children per substream
// shows it).
//
// Invariant kept: edges are leaves and no path has more than
// MaxRelayLevels relays (a relay moved below the top hands its children
// to the top).
func rootAtTopRelay(in TreeInput, origin wire.NodeID, fixed map[wire.NodeID]wire.NodeID, budget map[wire.NodeID]float64, rate, delayBound float64, roots map[wire.NodeID]bool, prev map[wire.NodeID]wire.NodeID) {
	role := func(id wire.NodeID) wire.Role { return in.Nodes[id].Role }
	var fed []wire.NodeID // the origin's children other than the top
	for _, v := range sortedKeys(fixed) {
		if fixed[v] == origin {
			fed = append(fed, v)
		}
	}
	if len(fed) == 0 {
		return
	}
	usable := func(c wire.NodeID, near bool) bool {
		n, ok := in.Nodes[c]
		return ok && n.Role == wire.RoleRelay && budget[c] >= 2*rate && (!near || hopDelay(in.Nodes, origin, c) <= delayBound)
	}
	var top wire.NodeID
	for _, pass := range []struct{ near, rootsToo bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		for _, tier := range []func(wire.NodeID) bool{
			func(c wire.NodeID) bool { return prev[c] == origin },
			func(c wire.NodeID) bool { return fixed[c] == origin },
			func(wire.NodeID) bool { return true },
		} {
			for _, c := range sortedKeys(in.Nodes) {
				if usable(c, pass.near) && (pass.rootsToo || !roots[c]) && tier(c) {
					top = c
					break
				}
			}
			if top != "" {
				break
			}
		}
		if top != "" {
			break
		}
	}
	if top == "" {
		return // no relay can take the top: the origin feeds everyone
	}
	if p, inTree := fixed[top]; inTree && p != origin {
		// top was a second-level relay: its edges stay with it, and the
		// relay above it (a child of the origin) moves below it with the rest.
		fed = slices.DeleteFunc(fed, func(v wire.NodeID) bool { return v == top })
	}
	fixed[top] = origin
	// A node stays on the origin only if the origin reaches it within the
	// bound and the top does not: on a loaded host every measured round
	// trip grows past the bound together, and then the top is no worse.
	reach := func(v wire.NodeID) bool {
		return hopDelay(in.Nodes, origin, top)+hopDelay(in.Nodes, top, v) <= delayBound || hopDelay(in.Nodes, origin, v) > delayBound
	}
	for _, v := range fed {
		if v == top || !reach(v) {
			continue
		}
		fixed[v] = top
		if role(v) != wire.RoleRelay {
			continue
		}
		// v is now a second-level relay: its relay children would be a
		// third level, and its edges are more than a second level may
		// shed (only the top recruits below it), so all of them move to
		// the top; the fan-out bound then hands the top's extra edges to
		// the relays below it, v among them, those that were v's first.
		for _, c := range sortedKeys(fixed) {
			if fixed[c] == v {
				fixed[c] = top
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addRoutes turns one substream tree into the routes of its nodes.
func addRoutes(routes map[wire.NodeID][]wire.LiveRoute, in TreeInput, ch TreeChain, j int, indices []int, parent map[wire.NodeID]wire.NodeID) {
	if len(parent) == 0 {
		return
	}
	kids := map[wire.NodeID][]wire.Source{}
	for _, v := range sortedKeys(parent) {
		p := parent[v]
		kids[p] = append(kids[p], wire.Source{NodeID: v, Addr: in.Nodes[v].Addr, Shards: indices})
	}
	routes[ch.Origin] = append(routes[ch.Origin], wire.LiveRoute{Chain: ch.Chain, Substream: j, Indices: indices, Children: kids[ch.Origin]})
	for _, v := range sortedKeys(parent) {
		routes[v] = append(routes[v], wire.LiveRoute{Chain: ch.Chain, Substream: j, Indices: indices, Parent: parent[v], ParentAddr: in.Nodes[parent[v]].Addr, Children: kids[v]})
	}
}

// hopDelay is the delay between a and b, ms: the mean of the round trips
// either measured, else DefaultHopDelayMS. (A round trip, not half: the
// bound is loose and a push is a request and its answer.)
func hopDelay(nodes map[wire.NodeID]TreeNode, a, b wire.NodeID) float64 {
	var sum float64
	var k int
	if d, ok := nodes[a].RTTMS[b]; ok && d > 0 && !math.IsInf(d, 0) {
		sum, k = sum+d, k+1
	}
	if d, ok := nodes[b].RTTMS[a]; ok && d > 0 && !math.IsInf(d, 0) {
		sum, k = sum+d, k+1
	}
	if k == 0 {
		return DefaultHopDelayMS
	}
	return sum / float64(k)
}

func square(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
	}
	return m
}

func sortedKeys[V any](m map[wire.NodeID]V) []wire.NodeID {
	keys := make([]wire.NodeID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describe renders a tree for test failures.
func describe(parent map[wire.NodeID]wire.NodeID) string {
	s := ""
	for _, v := range sortedKeys(parent) {
		s += fmt.Sprintf("%s←%s ", short(v), short(parent[v]))
	}
	return s
}

func short(id wire.NodeID) string {
	if len(id) > 8 {
		return string(id[:8])
	}
	return string(id)
}
