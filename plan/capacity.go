package plan

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Allocation says which servers store which blocks. Servers are numbered in
// stack order: at auto-scaling level n the active servers are 0..n-1.
type Allocation struct {
	Servers int // servers in the data centre
	Slots   int // block slots per server
	// Replicas[m] lists the servers holding block m, ascending and without
	// duplicates.
	Replicas [][]int32
}

// Validate checks that the allocation stores every block at least once,
// within the slot limit of every server, on servers that exist.
func (a *Allocation) Validate() error {
	used := make([]int, a.Servers)
	for m, rs := range a.Replicas {
		if len(rs) == 0 {
			return fmt.Errorf("plan: allocation stores block %d nowhere", m)
		}
		for i, s := range rs {
			if s < 0 || int(s) >= a.Servers {
				return fmt.Errorf("plan: allocation puts block %d on server %d of %d", m, s, a.Servers)
			}
			if i > 0 && rs[i-1] >= s {
				return fmt.Errorf("plan: allocation replicas of block %d not ascending: %v", m, rs)
			}
			used[s]++
		}
	}
	for s, u := range used {
		if u > a.Slots {
			return fmt.Errorf("plan: allocation puts %d blocks on server %d, which has %d slots", u, s, a.Slots)
		}
	}
	return nil
}

// MinServers returns n0, the smallest stack depth whose servers hold every
// block, or Servers+1 if some block is stored nowhere.
func (a *Allocation) MinServers() int {
	n0 := 0
	for _, rs := range a.Replicas {
		if len(rs) == 0 {
			return a.Servers + 1
		}
		if int(rs[0])+1 > n0 {
			n0 = int(rs[0]) + 1
		}
	}
	return n0
}

// Level is the measured capacity of one auto-scaling level.
type Level struct {
	Servers    int     `json:"servers"`     // active servers: 0..Servers-1
	Capacity   float64 `json:"capacity"`    // max request rate with optimal dispatch (req/s)
	UpperBound float64 `json:"upper_bound"` // fluid bound Servers × per-server rate (req/s)
	Gap        float64 `json:"gap"`         // 1 − Capacity/UpperBound
}

// ErrNoBlocks is returned for an empty catalogue.
var ErrNoBlocks = errors.New("plan: the catalogue is empty; at least one block is needed")

// Capacities measures, for every level n in [from, to], the largest request
// rate the active servers 0..n-1 can serve when each request for block m
// (probability popularity[m]) may go to any active replica and every server
// serves at most perServer requests per second. The result is exact up to
// floating point: for each level it solves the max-flow
// source →(λ·p_m) block →(∞) server →(perServer) sink and moves λ by Newton
// steps on the minimum cut (Dinkelbach), which converge in a few max-flows.
// Blocks with the same set of active replicas are merged first, which keeps
// the network small. Levels where some block has no active replica have
// capacity 0.
func Capacities(popularity []float64, a *Allocation, from, to int, perServer float64) ([]Level, error) {
	if len(popularity) == 0 {
		return nil, ErrNoBlocks
	}
	if len(popularity) != len(a.Replicas) {
		return nil, fmt.Errorf("plan: %d popularities for %d blocks", len(popularity), len(a.Replicas))
	}
	if !(perServer > 0) {
		return nil, fmt.Errorf("plan: per-server rate must be > 0, got %v", perServer)
	}
	if from < 1 || to > a.Servers || from > to {
		return nil, fmt.Errorf("plan: levels %d..%d outside 1..%d", from, to, a.Servers)
	}
	gs := newGrouping(popularity, a, from)
	out := make([]Level, 0, to-from+1)
	for n := from; n <= to; n++ {
		if n > from {
			gs.activate(n - 1)
		}
		c := 0.0
		if gs.covered() {
			c = gs.capacity(n, perServer)
		}
		ub := float64(n) * perServer
		out = append(out, Level{Servers: n, Capacity: c, UpperBound: ub, Gap: 1 - c/ub})
	}
	return out, nil
}

// grouping merges blocks whose active replica sets are equal; activating
// one more server only splits the groups of the blocks it holds.
type grouping struct {
	group   []int32   // block -> group id
	mass    []float64 // group -> summed popularity
	servers [][]int32 // group -> active servers holding it
	held    [][]int32 // server -> blocks it holds
	pop     []float64
	orphans int // blocks with no active replica
}

func newGrouping(pop []float64, a *Allocation, n int) *grouping {
	g := &grouping{group: make([]int32, len(pop)), held: make([][]int32, a.Servers), pop: pop}
	ids := map[string]int32{}
	var key []byte
	for m, rs := range a.Replicas {
		key = key[:0]
		var act []int32
		for _, s := range rs {
			g.held[s] = append(g.held[s], int32(m))
			if int(s) < n {
				key = strconv.AppendInt(key, int64(s), 10)
				key = append(key, ',')
				act = append(act, s)
			}
		}
		if len(act) == 0 {
			g.orphans++
		}
		id, ok := ids[string(key)]
		if !ok {
			id = int32(len(g.mass))
			ids[string(key)] = id
			g.mass = append(g.mass, 0)
			g.servers = append(g.servers, act)
		}
		g.group[m] = id
		g.mass[id] += pop[m]
	}
	return g
}

func (g *grouping) covered() bool { return g.orphans == 0 }

// activate splits the groups of the blocks on server s, which just became
// active.
func (g *grouping) activate(s int) {
	split := map[int32]int32{}
	for _, m := range g.held[s] {
		old := g.group[m]
		id, ok := split[old]
		if !ok {
			id = int32(len(g.mass))
			split[old] = id
			list := append(append(make([]int32, 0, len(g.servers[old])+1), g.servers[old]...), int32(s))
			g.mass = append(g.mass, 0)
			g.servers = append(g.servers, list)
		}
		if len(g.servers[old]) == 0 {
			g.orphans--
		}
		g.group[m] = id
		g.mass[old] -= g.pop[m]
		g.mass[id] += g.pop[m]
	}
	for old := range split {
		if g.mass[old] < 1e-18 {
			g.mass[old] = 0
		}
	}
}

// capacity returns the largest λ for which the active groups can be served.
func (g *grouping) capacity(n int, perServer float64) float64 {
	var live []int32
	for id, m := range g.mass {
		if m > 0 && len(g.servers[id]) > 0 {
			live = append(live, int32(id))
		}
	}
	total := 0.0
	lambda := float64(n) * perServer
	for _, id := range live {
		total += g.mass[id]
		// A group can never get more than all of its servers.
		if b := float64(len(g.servers[id])) * perServer / g.mass[id]; b < lambda {
			lambda = b
		}
	}
	src, sink := 0, 1
	groupNode := func(k int) int { return 2 + k }
	serverNode := func(s int32) int { return 2 + len(live) + int(s) }
	for iter := 0; iter < 100; iter++ {
		net := newFlowNet(2+len(live)+n, 2*len(live)+n)
		for k, id := range live {
			net.addEdge(src, groupNode(k), lambda*g.mass[id])
			for _, s := range g.servers[id] {
				net.addEdge(groupNode(k), serverNode(s), math.Inf(1))
			}
		}
		for s := 0; s < n; s++ {
			net.addEdge(serverNode(int32(s)), sink, perServer)
		}
		f := net.maxFlow(src, sink)
		demand := lambda * total
		if f >= demand*(1-1e-10) {
			return lambda
		}
		side := net.sourceSide(src)
		cutMass, cutServers := 0.0, 0
		for k, id := range live {
			if side[groupNode(k)] {
				cutMass += g.mass[id]
			}
		}
		for s := 0; s < n; s++ {
			if side[serverNode(int32(s))] {
				cutServers++
			}
		}
		if cutMass <= 0 {
			return f / total
		}
		next := float64(cutServers) * perServer / cutMass
		if next >= lambda*(1-1e-12) {
			return f / total // numerical stall: the flow itself is feasible
		}
		lambda = next
	}
	return lambda
}
