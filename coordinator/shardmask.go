package coordinator

import "math/bits"

// ShardMask is a set of shard indices of one segment, 0..content.MaxTotalShards-1.
type ShardMask [4]uint64

// maskOf builds a mask from indices the caller has checked are in range.
func maskOf(indices ...int) ShardMask {
	var m ShardMask
	for _, i := range indices {
		m.Set(i)
	}
	return m
}

// Set adds shard i.
func (m *ShardMask) Set(i int) { m[i>>6] |= 1 << (uint(i) & 63) }

// Clear removes shard i.
func (m *ShardMask) Clear(i int) { m[i>>6] &^= 1 << (uint(i) & 63) }

// Has reports whether shard i is in the set.
func (m ShardMask) Has(i int) bool { return m[i>>6]&(1<<(uint(i)&63)) != 0 }

// Count is the number of shards in the set.
func (m ShardMask) Count() int {
	return bits.OnesCount64(m[0]) + bits.OnesCount64(m[1]) + bits.OnesCount64(m[2]) + bits.OnesCount64(m[3])
}

// Empty reports whether the set has no shards.
func (m ShardMask) Empty() bool { return m == ShardMask{} }

// Union is m ∪ o.
func (m ShardMask) Union(o ShardMask) ShardMask {
	return ShardMask{m[0] | o[0], m[1] | o[1], m[2] | o[2], m[3] | o[3]}
}

// Minus is m \ o.
func (m ShardMask) Minus(o ShardMask) ShardMask {
	return ShardMask{m[0] &^ o[0], m[1] &^ o[1], m[2] &^ o[2], m[3] &^ o[3]}
}

// AppendIndices appends the indices in ascending order.
func (m ShardMask) AppendIndices(dst []int) []int {
	for w, word := range m {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			dst = append(dst, w*64+b)
			word &= word - 1
		}
	}
	return dst
}

// Indices returns the indices in ascending order.
func (m ShardMask) Indices() []int { return m.AppendIndices(nil) }
