package content

import "fmt"

// Limits on the erasure code. klauspost/reedsolomon's classic GF(2^8) path
// handles up to 256 total shards; beyond that it switches to a slower codec.
const (
	MaxDataShards  = 128
	MaxTotalShards = 256

	DefaultDataShards  = 8
	DefaultTotalShards = 32
)

// Params are the erasure-coding parameters of one video: any K of the first
// NMax shards of a segment rebuild it. Shard i < K is plain ciphertext bytes.
type Params struct {
	K    int // data shards per segment, 1..MaxDataShards
	NMax int // total shards per segment (data + parity), K..MaxTotalShards
}

// DefaultParams is k=8 of n_max=32: a segment survives losing 24 of 32 shards,
// and 4x redundancy is enough for the placement to spread hot segments widely.
func DefaultParams() Params { return Params{K: DefaultDataShards, NMax: DefaultTotalShards} }

// Validate reports a parameter error that tells the user the allowed range.
func (p Params) Validate() error {
	if p.K < 1 || p.K > MaxDataShards {
		return fmt.Errorf("k=%d out of range: the number of data shards must be between 1 and %d", p.K, MaxDataShards)
	}
	if p.NMax < p.K+1 || p.NMax > MaxTotalShards {
		return fmt.Errorf("n_max=%d out of range: total shards must be between k+1=%d and %d", p.NMax, p.K+1, MaxTotalShards)
	}
	return nil
}

// ShardSize is the size in bytes of every shard of a segment of size bytes:
// the segment is zero-padded to a multiple of K.
func (p Params) ShardSize(size int) int {
	if size <= 0 {
		return 0
	}
	return (size + p.K - 1) / p.K
}
