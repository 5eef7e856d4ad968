package live

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Every backup parent keeps the substream flowing when the parent fails:
// it is the origin or a relay of the same tree outside the parent's and
// the child's subtrees, the switched tree stays within MaxRelayLevels, no
// relay is promised more than its upload cap (primary and standby children
// together), and the routes carry the backups both ways.
func TestBackupParentsAreDisjointAndWithinCapacity(t *testing.T) {
	for _, tc := range []struct {
		relays int
		cap    int64
		edges  int
	}{{2, 10_000_000, 3}, {3, 10_000_000, 4}, {4, 60_000, 6}, {6, 45_000, 8}, {5, 25_000, 5}, {1, 10_000_000, 4}} {
		t.Run(fmt.Sprintf("relays=%d,cap=%d,edges=%d", tc.relays, tc.cap, tc.edges), func(t *testing.T) {
			nodes := network(tc.relays, tc.cap, tc.edges)
			edges := edgesOf(nodes)
			in := TreeInput{Nodes: nodes, Chains: watched(edges...), Substreams: 5, PushShards: 5, primOnly: true}
			out := BuildTrees(in)
			checkTrees(t, in, out, edges)
			checkBackups(t, in, out)
			if again := BuildTrees(in); !reflect.DeepEqual(again.Routes, out.Routes) {
				t.Fatal("two builds of one snapshot give different routes (backups must be deterministic)")
			}
		})
	}
}

func checkBackups(t *testing.T, in TreeInput, out TreeOutput) {
	t.Helper()
	ch := in.Chains[0]
	load := map[wire.NodeID]float64{} // relay → bytes/s promised
	backed, byRelay := 0, 0
	for j, parent := range out.Parent[testChainID] {
		backup := out.Backup[testChainID][j]
		rate := ch.RateBytes * float64(len(content.SubstreamIndices(j, in.Substreams, in.PushShards))) / float64(ch.K)
		within := func(v, root wire.NodeID) bool {
			for p := v; p != ""; p = parent[p] {
				if p == root {
					return true
				}
			}
			return false
		}
		levelOf := func(v wire.NodeID) int {
			n := 0
			for p := v; p != "origin"; p = parent[p] {
				n++
			}
			return n
		}
		for v, p := range parent {
			load[p] += rate
			b, ok := backup[v]
			if p == "origin" {
				if ok {
					t.Fatalf("substream %d: %s hangs from the origin yet has backup %s", j, v, b)
				}
				continue
			}
			if !ok {
				t.Fatalf("substream %d: %s (parent %s) has no backup", j, v, p)
			}
			backed++
			if b != "origin" {
				byRelay++
				if _, inTree := parent[b]; !inTree || in.Nodes[b].Role != wire.RoleRelay {
					t.Fatalf("substream %d: %s's backup %s is not a relay of the tree: %s", j, v, b, describe(parent))
				}
				if within(b, p) || within(b, v) {
					t.Fatalf("substream %d: %s's backup %s is inside its parent %s's or its own subtree: %s", j, v, b, p, describe(parent))
				}
				load[b] += rate
				// After the switch v (and what hangs below it) sits under b.
				depth := levelOf(b) + 1
				for _, c := range slices.Collect(func(yield func(wire.NodeID) bool) {
					for c, cp := range parent {
						if cp == v && !yield(c) {
							return
						}
					}
				}) {
					if in.Nodes[c].Role == wire.RoleRelay {
						depth = max(depth, levelOf(b)+2)
					}
				}
				if in.Nodes[v].Role == wire.RoleRelay && depth > MaxRelayLevels {
					t.Fatalf("substream %d: switching relay %s to %s makes it %d relays deep", j, v, b, depth)
				}
			}
			// The routes say it both ways.
			var route wire.LiveRoute
			for _, r := range out.Routes[v] {
				if r.Substream == j {
					route = r
				}
			}
			if route.BackupParent != b || route.BackupParentAddr != in.Nodes[b].Addr {
				t.Fatalf("substream %d: %s's route names backup %q at %q, want %s", j, v, route.BackupParent, route.BackupParentAddr, b)
			}
			found := false
			for _, r := range out.Routes[b] {
				for _, s := range r.Standby {
					if r.Substream == j && s.Child.NodeID == v && s.For == p && s.Child.Addr == in.Nodes[v].Addr {
						found = true
					}
				}
			}
			if !found {
				t.Fatalf("substream %d: backup %s's route does not list %s as a standby child for %s", j, b, v, p)
			}
		}
	}
	for id, l := range load {
		if n := in.Nodes[id]; n.Role == wire.RoleRelay && l > float64(n.UploadCap)+1e-6 {
			t.Fatalf("relay %s is promised %.0f B/s with its standby children, over its cap %d", id, l, n.UploadCap)
		}
	}
	t.Logf("%d children backed, %d of them by a relay (the rest by the origin)", backed, byRelay)
}
