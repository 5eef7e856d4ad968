package content

import (
	"bytes"
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
	// One allocation for all shards keeps them contiguous and cheap to free.
	backing := make([]byte, p.ShardSize(len(segment))*p.NMax)
	return encodeInto(enc, p, segment, backing)
}

// encodeInto lays the segment out as K data shards in backing (at least
// ShardSize*NMax bytes, any content) and computes the parity shards.
func encodeInto(enc reedsolomon.Encoder, p Params, segment, backing []byte) ([][]byte, error) {
	size := p.ShardSize(len(segment))
	copy(backing, segment)
	clear(backing[len(segment) : size*p.K]) // zero padding; parity is overwritten
	shards := make([][]byte, p.NMax)
	for i := range shards {
		shards[i] = backing[i*size : (i+1)*size : (i+1)*size]
	}
	if err := enc.Encode(shards); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return shards, nil
}

// ShardLeaves hashes every shard into its Merkle leaf, spreading the
// shards over the available cores.
func ShardLeaves(shards [][]byte) []Hash {
	leaves := make([]Hash, len(shards))
	parallelFor(len(shards), func(i int) { leaves[i] = LeafHash(shards[i]) })
	return leaves
}

// segmentRoot is the Merkle root over all NMax shards of a ciphertext
// segment, computed in recycled scratch space.
func segmentRoot(p Params, ct []byte) (Hash, error) {
	enc, err := encoderFor(p)
	if err != nil {
		return Hash{}, err
	}
	if len(ct) == 0 {
		return Hash{}, errors.New("encode: empty segment")
	}
	buf := getScratch(p.ShardSize(len(ct)) * p.NMax)
	defer putScratch(buf)
	shards, err := encodeInto(enc, p, ct, *buf)
	if err != nil {
		return Hash{}, err
	}
	return MerkleRoot(ShardLeaves(shards)), nil
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
	// Hash and check every shard up front, spread over the cores; the
	// sequential pass below only reads the verdicts.
	verdicts := make([]error, len(shards))
	parallelFor(len(shards), func(i int) { verdicts[i] = VerifyShard(m, rendition, segment, shards[i]) })
	slots := make([][]byte, p.NMax)
	valid := 0
	for i, sh := range shards {
		if sh.Index >= 0 && sh.Index < p.NMax && slots[sh.Index] != nil {
			continue // duplicate of a shard already verified
		}
		if verdicts[i] != nil {
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
	ct, err := joinData(nil, p, slots, int(seg.Size))
	return ct, bad, err
}

// VerifiedShard is a shard VerifyShard accepted for one segment of one
// manifest. Only AcceptShard makes one, so JoinVerified can rebuild from
// shards checked on arrival without hashing them a second time. Its bytes
// alias the accepted Shard's: the holder must not change them.
type VerifiedShard struct {
	m                  *Manifest
	rendition, segment int
	shard              Shard
}

// Shard is the accepted shard (its Data aliases the bytes that were checked).
func (v VerifiedShard) Shard() Shard { return v.shard }

// AcceptShard is VerifyShard that returns the verdict as a VerifiedShard.
func AcceptShard(m *Manifest, rendition, segment int, sh Shard) (VerifiedShard, error) {
	if err := VerifyShard(m, rendition, segment, sh); err != nil {
		return VerifiedShard{}, err
	}
	return VerifiedShard{m: m, rendition: rendition, segment: segment, shard: sh}, nil
}

// JoinVerified rebuilds the ciphertext segment from shards AcceptShard
// accepted for this manifest (the same *Manifest), rendition and segment,
// using the first K distinct indices. It refuses a shard accepted for
// anything else and fewer than K distinct shards. When the K shards are the
// data shards, this is a concatenation (the code is systematic).
func JoinVerified(m *Manifest, rendition, segment int, shards []VerifiedShard) ([]byte, error) {
	return JoinVerifiedInto(nil, m, rendition, segment, shards)
}

// JoinVerifiedInto is JoinVerified writing the ciphertext into dst's
// memory when its capacity suffices (else into a new buffer), so a player
// that recycles segment buffers allocates nothing per segment. It returns
// the ciphertext; dst's previous contents are overwritten.
func JoinVerifiedInto(dst []byte, m *Manifest, rendition, segment int, shards []VerifiedShard) ([]byte, error) {
	seg, err := m.segment(rendition, segment)
	if err != nil {
		return nil, err
	}
	p := m.Params
	slots := make([][]byte, p.NMax)
	valid := 0
	for _, v := range shards {
		if v.m != m || v.rendition != rendition || v.segment != segment {
			return nil, fmt.Errorf("rendition %d segment %d: shard %d was not accepted for this segment of this manifest (AcceptShard it first)", rendition, segment, v.shard.Index)
		}
		if slots[v.shard.Index] != nil || valid == p.K {
			continue
		}
		slots[v.shard.Index] = v.shard.Data
		valid++
	}
	if valid < p.K {
		return nil, fmt.Errorf("rendition %d segment %d: only %d verified distinct shards, need %d", rendition, segment, valid, p.K)
	}
	return joinData(dst, p, slots, int(seg.Size))
}

// joinData reconstructs missing data shards (slots holds exactly K
// verified shards, nil elsewhere) and concatenates the first size bytes,
// into dst's memory if its capacity suffices.
func joinData(dst []byte, p Params, slots [][]byte, size int) ([]byte, error) {
	enc, err := encoderFor(p)
	if err != nil {
		return nil, err
	}
	var missing []int
	shardSize := 0
	for i, s := range slots {
		if s == nil && i < p.K {
			missing = append(missing, i)
		} else if s != nil {
			shardSize = len(s)
		}
	}
	if len(missing) > 0 {
		// Reconstruct into recycled space (ReconstructData uses a missing
		// slot's capacity); only the joined output is a new allocation.
		buf := getScratch(len(missing) * shardSize)
		defer putScratch(buf)
		for j, i := range missing {
			slots[i] = (*buf)[j*shardSize : j*shardSize : (j+1)*shardSize]
		}
		if err := enc.ReconstructData(slots); err != nil {
			return nil, fmt.Errorf("reconstruct: %w", err)
		}
	}
	if cap(dst) < size {
		// bytes.Join allocates without zeroing the buffer it fills; the
		// data shards' zero padding beyond size is cut off.
		return bytes.Join(slots[:p.K], nil)[:size:size], nil
	}
	out := dst[:size]
	off := 0
	for i := 0; i < p.K && off < size; i++ {
		off += copy(out[off:], slots[i])
	}
	return out, nil
}
