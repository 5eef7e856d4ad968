package content

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// encoders caches one Reed-Solomon encoder per Params: building the
// systematic matrix costs far more than encoding a segment.
var encoders sync.Map // Params -> reedsolomon.Encoder

func encoderFor(p Params) (reedsolomon.Encoder, error) {
	if e, ok := encoders.Load(p); ok {
		return e.(reedsolomon.Encoder), nil
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// The default construction is a Vandermonde matrix made systematic by
	// its top k×k inverse; parity row i depends only on i and k, so the
	// (k, n) code is a prefix of (k, n+x) and redundancy can grow later.
	e, err := reedsolomon.New(p.K, p.NMax-p.K)
	if err != nil {
		return nil, fmt.Errorf("reed-solomon k=%d n_max=%d: %w", p.K, p.NMax, err)
	}
	actual, _ := encoders.LoadOrStore(p, e)
	return actual.(reedsolomon.Encoder), nil
}

// EncodeShards splits a ciphertext segment into p.K zero-padded data shards
// and computes all parity shards. Shard i < K is bytes [i*s, (i+1)*s) of the
// segment (s = ShardSize), so an origin can serve it as a byte range.
func EncodeShards(p Params, segment []byte) ([][]byte, error) {
	enc, err := encoderFor(p)
	if err != nil {
		return nil, err
	}
	if len(segment) == 0 {
		return nil, errors.New("encode: empty segment")
	}
	size := p.ShardSize(len(segment))
	// One allocation for all shards keeps them contiguous and cheap to free.
	backing := make([]byte, size*p.NMax)
	copy(backing, segment)
	shards := make([][]byte, p.NMax)
	for i := range shards {
		shards[i] = backing[i*size : (i+1)*size : (i+1)*size]
	}
	if err := enc.Encode(shards); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return shards, nil
}

// ShardLeaves hashes every shard into its Merkle leaf.
func ShardLeaves(shards [][]byte) []Hash {
	leaves := make([]Hash, len(shards))
	for i, s := range shards {
		leaves[i] = LeafHash(s)
	}
	return leaves
}

// Shard is one erasure-coded piece of a segment with its inclusion proof.
type Shard struct {
	Index int
	Data  []byte
	Proof []Hash
}

// BadShardError names the shards that failed verification.
type BadShardError struct {
	Rendition, Segment int
	Indices            []int
}

func (e *BadShardError) Error() string {
	return fmt.Sprintf("rendition %d segment %d: shards %v failed verification against the manifest", e.Rendition, e.Segment, e.Indices)
}

// VerifyShard checks one shard against the manifest's segment root.
func VerifyShard(m *Manifest, rendition, segment int, sh Shard) error {
	seg, err := m.segment(rendition, segment)
	if err != nil {
		return err
	}
	if sh.Index < 0 || sh.Index >= m.Params.NMax {
		return fmt.Errorf("shard index %d outside 0..%d", sh.Index, m.Params.NMax-1)
	}
	if want := m.Params.ShardSize(int(seg.Size)); len(sh.Data) != want {
		return fmt.Errorf("shard %d of rendition %d segment %d: %d bytes, want %d", sh.Index, rendition, segment, len(sh.Data), want)
	}
	if err := VerifyInclusion(seg.Root, m.Params.NMax, sh.Index, LeafHash(sh.Data), sh.Proof); err != nil {
		return fmt.Errorf("shard %d of rendition %d segment %d: %w", sh.Index, rendition, segment, err)
	}
	return nil
}

func (m *Manifest) segment(r, s int) (Segment, error) {
	if r < 0 || r >= len(m.Renditions) {
		return Segment{}, fmt.Errorf("rendition %d does not exist (video has %d)", r, len(m.Renditions))
	}
	if s < 0 || s >= len(m.Renditions[r].Segments) {
		return Segment{}, fmt.Errorf("segment %d does not exist in rendition %d (it has %d)", s, r, len(m.Renditions[r].Segments))
	}
	return m.Renditions[r].Segments[s], nil
}

// Segment returns segment s of rendition r, or an error naming the bad index.
func (m *Manifest) Segment(r, s int) (Segment, error) { return m.segment(r, s) }

// Rebuild verifies the given shards and reconstructs the ciphertext segment
// from the first K distinct valid ones. It returns the indices of shards
// that failed verification (so their senders can be banned) even when the
// rebuild succeeds; err is non-nil only if fewer than K valid shards remain.
func Rebuild(m *Manifest, rendition, segment int, shards []Shard) (ciphertext []byte, bad []int, err error) {
	seg, err := m.segment(rendition, segment)
	if err != nil {
		return nil, nil, err
	}
	p := m.Params
	slots := make([][]byte, p.NMax)
	valid := 0
	for _, sh := range shards {
		if sh.Index >= 0 && sh.Index < p.NMax && slots[sh.Index] != nil {
			continue // duplicate of a shard already verified
		}
		if VerifyShard(m, rendition, segment, sh) != nil {
			bad = append(bad, sh.Index)
			continue
		}
		if valid < p.K {
			slots[sh.Index] = sh.Data
			valid++
		}
	}
	slices.Sort(bad)
	if valid < p.K {
		return nil, bad, fmt.Errorf("rendition %d segment %d: only %d valid distinct shards, need %d", rendition, segment, valid, p.K)
	}
	ct, err := joinData(p, slots, int(seg.Size))
	return ct, bad, err
}

// joinData reconstructs missing data shards (slots holds exactly K
// verified shards, nil elsewhere) and concatenates the first size bytes.
func joinData(p Params, slots [][]byte, size int) ([]byte, error) {
	enc, err := encoderFor(p)
	if err != nil {
		return nil, err
	}
	complete := true
	for i := 0; i < p.K; i++ {
		if slots[i] == nil {
			complete = false
			break
		}
	}
	if !complete {
		if err := enc.ReconstructData(slots); err != nil {
			return nil, fmt.Errorf("reconstruct: %w", err)
		}
	}
	out := make([]byte, 0, size)
	for i := 0; i < p.K && len(out) < size; i++ {
		n := min(len(slots[i]), size-len(out))
		out = append(out, slots[i][:n]...)
	}
	return out, nil
}
