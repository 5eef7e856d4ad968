package plan

import "math"

// flowNet is a directed network with float64 capacities for Dinic's max-flow.
// Edges are stored in pairs: edge e and its residual twin e^1.
type flowNet struct {
	head  []int32 // node -> first edge, -1 if none
	next  []int32 // edge -> next edge of the same tail
	to    []int32 // edge -> head node
	cap   []float64
	level []int32
	iter  []int32
	queue []int32
}

func newFlowNet(nodes, edgeHint int) *flowNet {
	g := &flowNet{
		head:  make([]int32, nodes),
		next:  make([]int32, 0, 2*edgeHint),
		to:    make([]int32, 0, 2*edgeHint),
		cap:   make([]float64, 0, 2*edgeHint),
		level: make([]int32, nodes),
		iter:  make([]int32, nodes),
		queue: make([]int32, 0, nodes),
	}
	for i := range g.head {
		g.head[i] = -1
	}
	return g
}

// addEdge adds u→v with capacity c and returns the edge index.
func (g *flowNet) addEdge(u, v int, c float64) int {
	e := len(g.to)
	g.to = append(g.to, int32(v), int32(u))
	g.cap = append(g.cap, c, 0)
	g.next = append(g.next, g.head[u], g.head[v])
	g.head[u] = int32(e)
	g.head[v] = int32(e + 1)
	return e
}

// flowEps is the residual capacity below which an edge counts as saturated.
const flowEps = 1e-12

func (g *flowNet) bfs(s, t int) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.queue = append(g.queue[:0], int32(s))
	g.level[s] = 0
	for qi := 0; qi < len(g.queue); qi++ {
		u := g.queue[qi]
		for e := g.head[u]; e >= 0; e = g.next[e] {
			if v := g.to[e]; g.cap[e] > flowEps && g.level[v] < 0 {
				g.level[v] = g.level[u] + 1
				g.queue = append(g.queue, v)
			}
		}
	}
	return g.level[t] >= 0
}

func (g *flowNet) dfs(u, t int32, f float64) float64 {
	if u == t {
		return f
	}
	for ; g.iter[u] >= 0; g.iter[u] = g.next[g.iter[u]] {
		e := g.iter[u]
		v := g.to[e]
		if g.cap[e] > flowEps && g.level[v] == g.level[u]+1 {
			if d := g.dfs(v, t, math.Min(f, g.cap[e])); d > 0 {
				g.cap[e] -= d
				g.cap[e^1] += d
				return d
			}
		}
	}
	return 0
}

// maxFlow pushes as much flow from s to t as the capacities allow and returns
// its value; the residual capacities stay in g for minCutSide.
func (g *flowNet) maxFlow(s, t int) float64 {
	total := 0.0
	for g.bfs(s, t) {
		copy(g.iter, g.head)
		for {
			f := g.dfs(int32(s), int32(t), math.Inf(1))
			if f <= 0 {
				break
			}
			total += f
		}
	}
	return total
}

// sourceSide reports, after maxFlow, which nodes the source still reaches in
// the residual network (the source side of a minimum cut).
func (g *flowNet) sourceSide(s int) []bool {
	seen := make([]bool, len(g.head))
	stack := []int32{int32(s)}
	seen[s] = true
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for e := g.head[u]; e >= 0; e = g.next[e] {
			if v := g.to[e]; g.cap[e] > flowEps && !seen[v] {
				seen[v] = true
				stack = append(stack, v)
			}
		}
	}
	return seen
}
