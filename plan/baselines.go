package plan

import "math"

// UniformAllocation is the uniform-replication baseline: every block gets
// ⌊servers·slots/blocks⌋ copies (capped at servers; the first blocks by id get
// one more while slots remain), the first copy round-robin on the base servers
// 0..n0-1 in block-id order and the others spread evenly over the servers that
// still have room. Placement ignores popularity.
func UniformAllocation(popularity []float64, servers, slots int) (*Allocation, error) {
	if err := checkShape(popularity, servers, slots); err != nil {
		return nil, err
	}
	M := len(popularity)
	c := min(servers, servers*slots/M)
	copies := make([]int, M)
	spare := servers*slots - c*M
	for m := range copies {
		copies[m] = c
		if spare > 0 && c < servers {
			copies[m]++
			spare--
		}
	}
	return placeRoundRobin(M, servers, slots, copies), nil
}

// HierarchicalAllocation is the hierarchical popularity-replication baseline:
// blocks get a power-of-two number of copies that grows with their popularity
// (tiers 1, 2, 4, …, capped at servers), with the largest scale that fits the
// slots, placed like UniformAllocation.
func HierarchicalAllocation(popularity []float64, servers, slots int) (*Allocation, error) {
	if err := checkShape(popularity, servers, slots); err != nil {
		return nil, err
	}
	M := len(popularity)
	budget := servers * slots
	tier := func(alpha, p float64) int {
		x := alpha * p * float64(M)
		if x < 2 {
			return 1
		}
		c := 1 << int(math.Floor(math.Log2(x)))
		return min(c, servers)
	}
	need := func(alpha float64) int {
		t := 0
		for _, p := range popularity {
			t += tier(alpha, p)
		}
		return t
	}
	lo, hi := 0.0, 1.0
	for need(hi) <= budget && hi < 1e15 {
		lo, hi = hi, hi*2
	}
	for range 60 {
		mid := (lo + hi) / 2
		if need(mid) <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	copies := make([]int, M)
	for m, p := range popularity {
		copies[m] = tier(lo, p)
	}
	return placeRoundRobin(M, servers, slots, copies), nil
}

// placeRoundRobin puts block m's first copy on base server m mod n0 and its
// other copies spread evenly over the servers that still have room.
func placeRoundRobin(M, servers, slots int, copies []int) *Allocation {
	n0 := (M + slots - 1) / slots
	a := &Allocation{Servers: servers, Slots: slots, Replicas: make([][]int32, M)}
	used := make([]int, servers)
	for m := 0; m < M; m++ {
		s := m % n0
		a.Replicas[m] = []int32{int32(s)}
		used[s]++
	}
	open := make([]int32, 0, servers) // servers with room, ascending
	for s := 0; s < servers; s++ {
		if used[s] < slots {
			open = append(open, int32(s))
		}
	}
	for m := 0; m < M && len(open) > 0; m++ {
		c := copies[m]
		for j := 1; j < c && len(open) > 0; j++ {
			start := (m/n0 + j*len(open)/c) % len(open)
			for probe := 0; probe < len(open); probe++ {
				k := (start + probe) % len(open)
				s := open[k]
				if holds(a.Replicas[m], s) {
					continue
				}
				a.Replicas[m] = insertSorted(a.Replicas[m], s)
				used[s]++
				if used[s] == slots {
					open = append(open[:k], open[k+1:]...)
				}
				break
			}
		}
	}
	return a
}

func holds(rs []int32, s int32) bool {
	for _, r := range rs {
		if r == s {
			return true
		}
	}
	return false
}

func insertSorted(rs []int32, s int32) []int32 {
	rs = append(rs, s)
	for i := len(rs) - 1; i > 0 && rs[i-1] > rs[i]; i-- {
		rs[i-1], rs[i] = rs[i], rs[i-1]
	}
	return rs
}
