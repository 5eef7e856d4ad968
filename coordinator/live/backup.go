package live

import (
	"cmp"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Backup parents: the standby configuration of the fan-out (docs/LIVE.md,
// "Relays under BTR"). With every substream tree BuildTrees also computes,
// for each relay and edge whose parent is a relay, a backup parent that
// takes over when the parent is excluded, so the switch is a lookup
// (btr.ParentPlan.ParentOf), not a rebuild.
//
// The rule is a disjoint-parent rule, not a second COCOS solve: a backup
// must keep receiving the substream when the parent fails, so it is a node
// of the same substream tree outside the failed parent's subtree (and
// outside the child's own, or the switch would make a cycle). COCOS backup
// trees carry no such guarantee (the LP optimises cost and delay, and its
// second tree may route through the first one's relays), and a second
// solve per substream would double the build (~0.1 s each with CBC). The
// capacity accounting is the primary trees': a relay backs a child only
// with the upload budget the primary trees left it (bytes/s over every
// tree of every chain, one substream's rate per standby child, so every
// standby child can be served at once even when f relays fail together);
// with no relay left the origin is the backup (it serves anything). Among
// the candidates the nearest (measured round trip, else DefaultHopDelayMS)
// wins, ties by id; MaxRelayLevels still holds after a switch.

// builtSubstream is one substream tree BuildTrees made, kept for the
// backups it computes after every primary tree took its budget.
type builtSubstream struct {
	chain   TreeChain
	j       int
	indices []int
	rate    float64 // bytes/s
	parent  map[wire.NodeID]wire.NodeID
}

// addBackups computes every built substream's backup parents, spending
// the relays' remaining budget, fills BackupParent/BackupParentAddr in the
// children's routes and Standby in the backups', and returns chain →
// substream → node → backup parent.
func addBackups(routes map[wire.NodeID][]wire.LiveRoute, in TreeInput, built []builtSubstream, budget map[wire.NodeID]float64) map[content.VideoID][]map[wire.NodeID]wire.NodeID {
	out := map[content.VideoID][]map[wire.NodeID]wire.NodeID{}
	for _, b := range built {
		backup := backupParents(in, b, budget)
		trees := out[b.chain.Chain]
		for len(trees) <= b.j {
			trees = append(trees, map[wire.NodeID]wire.NodeID{})
		}
		trees[b.j] = backup
		out[b.chain.Chain] = trees
		for _, v := range sortedKeys(backup) {
			bp := backup[v]
			setRoute(routes, v, b.chain.Chain, b.j, func(r *wire.LiveRoute) {
				r.BackupParent, r.BackupParentAddr = bp, in.Nodes[bp].Addr
			})
			sb := wire.LiveStandby{Child: wire.Source{NodeID: v, Addr: in.Nodes[v].Addr, Shards: b.indices}, For: b.parent[v]}
			// Every backup is the origin or a relay of this tree: it has the route.
			setRoute(routes, bp, b.chain.Chain, b.j, func(r *wire.LiveRoute) { r.Standby = append(r.Standby, sb) })
		}
	}
	return out
}

// setRoute applies f to node's route of (chain, j), reporting whether it
// has one.
func setRoute(routes map[wire.NodeID][]wire.LiveRoute, node wire.NodeID, chain content.VideoID, j int, f func(*wire.LiveRoute)) bool {
	rs := routes[node]
	for i := range rs {
		if rs[i].Chain == chain && rs[i].Substream == j {
			f(&rs[i])
			return true
		}
	}
	return false
}

// backupParents is one substream's backup parent per node whose parent is
// not the origin.
func backupParents(in TreeInput, b builtSubstream, budget map[wire.NodeID]float64) map[wire.NodeID]wire.NodeID {
	origin := b.chain.Origin
	parent := b.parent
	children := map[wire.NodeID][]wire.NodeID{}
	for _, v := range sortedKeys(parent) {
		children[parent[v]] = append(children[parent[v]], v)
	}
	isRelay := func(id wire.NodeID) bool { return in.Nodes[id].Role == wire.RoleRelay }
	// level is the relays from the origin down to v, v included.
	level := func(v wire.NodeID) int {
		n := 0
		for p, hops := v, 0; p != origin && p != "" && hops <= len(parent); p, hops = parent[p], hops+1 {
			if isRelay(p) {
				n++
			}
		}
		return n
	}
	// height is the relay levels at and below v.
	var height func(v wire.NodeID, hops int) int
	height = func(v wire.NodeID, hops int) int {
		if !isRelay(v) || hops > len(parent) {
			return 0
		}
		h := 0
		for _, c := range children[v] {
			h = max(h, height(c, hops+1))
		}
		return 1 + h
	}
	within := func(v, root wire.NodeID) bool { // v in root's subtree
		for p, hops := v, 0; p != "" && hops <= len(parent); p, hops = parent[p], hops+1 {
			if p == root {
				return true
			}
		}
		return false
	}
	var forwarders []wire.NodeID // relays of this tree
	for _, v := range sortedKeys(parent) {
		if isRelay(v) {
			forwarders = append(forwarders, v)
		}
	}
	out := map[wire.NodeID]wire.NodeID{}
	order := sortedKeys(parent)
	// Children nearest the origin first: their backups are the scarcer.
	slices.SortStableFunc(order, func(a, c wire.NodeID) int { return cmp.Compare(level(parent[a]), level(parent[c])) })
	for _, v := range order {
		p := parent[v]
		if p == origin {
			continue // the root is never excluded
		}
		var best wire.NodeID
		bestDelay := 0.0
		for _, r := range forwarders {
			if r == p || within(r, p) || within(r, v) || budget[r] < b.rate || level(r)+height(v, 0) > MaxRelayLevels {
				continue
			}
			d := hopDelay(in.Nodes, r, v)
			if best == "" || d < bestDelay {
				best, bestDelay = r, d
			}
		}
		if best == "" {
			best = origin
		} else {
			budget[best] -= b.rate
		}
		out[v] = best
	}
	return out
}
