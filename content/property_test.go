package content

import (
	"bytes"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// codedSegment is one encrypted segment with everything a test needs to
// play the roles of origin (shards, proofs) and viewer (manifest).
type codedSegment struct {
	m      *Manifest
	plain  []byte
	ct     []byte
	key    ContentKey
	shards [][]byte
	leaves []Hash
}

func (c *codedSegment) shard(i int) Shard {
	return Shard{Index: i, Data: bytes.Clone(c.shards[i]), Proof: InclusionProof(c.leaves, i)}
}

func genParams(t *rapid.T) Params {
	k := rapid.IntRange(1, 20).Draw(t, "k")
	n := rapid.IntRange(k+1, min(k+24, MaxTotalShards)).Draw(t, "n_max")
	return Params{K: k, NMax: n}
}

// makeCoded packages plain as segment 0 of rendition 0 of a one-segment
// signed manifest.
func makeCoded(t interface{ Fatalf(string, ...any) }, p Params, plain []byte) *codedSegment {
	var key ContentKey
	copy(key[:], "0123456789abcdef")
	ct, root, err := PackageSegment(p, key, 0, 0, plain)
	if err != nil {
		t.Fatalf("package: %v", err)
	}
	shards, err := EncodeShards(p, ct)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	leaves := ShardLeaves(shards)
	if MerkleRoot(leaves) != root {
		t.Fatalf("PackageSegment root differs from the root over EncodeShards")
	}
	m := &Manifest{Title: "prop", Params: p, KeyID: key.ID(), TargetDuration: 2_000_000,
		Renditions: []Rendition{{Name: "r", Segments: []Segment{{Duration: 2_000_000, Size: uint32(len(ct)), Root: root}}}}}
	m.Sign(testKey(1))
	return &codedSegment{m: m, plain: plain, ct: ct, key: key, shards: shards, leaves: leaves}
}

// Any k distinct shards of n_max rebuild the ciphertext bit-exactly, and
// decrypting it gives back the plaintext.
func TestPropertyAnyKShardsRebuild(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genParams(t)
		plain := rapid.SliceOfN(rapid.Byte(), 1, 4096).Draw(t, "plain")
		c := makeCoded(t, p, plain)
		idx := rapid.Permutation(seq(p.NMax)).Draw(t, "order")[:p.K]
		var in []Shard
		for _, i := range idx {
			if err := VerifyShard(c.m, 0, 0, c.shard(i)); err != nil {
				t.Fatalf("valid shard %d rejected: %v", i, err)
			}
			in = append(in, c.shard(i))
		}
		ct, bad, err := Rebuild(c.m, 0, 0, in)
		if err != nil || len(bad) != 0 {
			t.Fatalf("rebuild from %v: bad=%v err=%v", idx, bad, err)
		}
		if !bytes.Equal(ct, c.ct) {
			t.Fatalf("rebuild from %v is not bit-exact", idx)
		}
		pt, err := DecryptSegment(c.key, c.key.SegmentIV(0, 0), ct)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatalf("decrypt after rebuild: err=%v equal=%v", err, bytes.Equal(pt, plain))
		}
		// k-1 shards are never enough.
		if _, _, err := Rebuild(c.m, 0, 0, in[:p.K-1]); err == nil {
			t.Fatalf("rebuild from %d < k shards succeeded", p.K-1)
		}
	})
}

// Any single flipped bit in any shard (data or proof) is detected by
// VerifyShard and attributed to that shard by Rebuild, which still rebuilds
// from the remaining good shards.
func TestPropertyBitFlipAttributed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genParams(t)
		plain := rapid.SliceOfN(rapid.Byte(), 1, 2048).Draw(t, "plain")
		c := makeCoded(t, p, plain)
		victim := rapid.IntRange(0, p.NMax-1).Draw(t, "victim")
		sh := c.shard(victim)
		inProof := len(sh.Proof) > 0 && rapid.Bool().Draw(t, "flip in proof")
		if inProof {
			h := rapid.IntRange(0, len(sh.Proof)-1).Draw(t, "proof hash")
			bit := rapid.IntRange(0, 255).Draw(t, "bit")
			sh.Proof[h][bit/8] ^= 1 << (bit % 8)
		} else {
			bit := rapid.IntRange(0, 8*len(sh.Data)-1).Draw(t, "bit")
			sh.Data[bit/8] ^= 1 << (bit % 8)
		}
		if err := VerifyShard(c.m, 0, 0, sh); err == nil {
			t.Fatalf("flipped bit in shard %d (proof=%v) not detected", victim, inProof)
		}
		// The bad shard first, then every good shard but the victim in a
		// random order: the rebuild succeeds iff k good ones remain, and
		// the bad list names exactly the victim.
		in := []Shard{sh}
		for _, i := range rapid.Permutation(seq(p.NMax)).Draw(t, "order") {
			if i != victim {
				in = append(in, c.shard(i))
			}
		}
		ct, bad, err := Rebuild(c.m, 0, 0, in)
		if !slices.Equal(bad, []int{victim}) {
			t.Fatalf("bad = %v, want [%d]", bad, victim)
		}
		if err != nil || !bytes.Equal(ct, c.ct) {
			t.Fatalf("rebuild with one bad shard: err=%v exact=%v", err, bytes.Equal(ct, c.ct))
		}
		// A wrong index (valid bytes claimed for another slot) is also caught.
		other := (victim + 1 + rapid.IntRange(0, p.NMax-2).Draw(t, "shift")) % p.NMax
		moved := c.shard(victim)
		moved.Index = other
		if !bytes.Equal(c.shards[victim], c.shards[other]) {
			if err := VerifyShard(c.m, 0, 0, moved); err == nil {
				t.Fatalf("shard %d accepted as shard %d", victim, other)
			}
		}
	})
}

// Flipping a bit in a shard that arrives after k good shards is still
// reported, so its sender can be banned.
func TestRebuildReportsLateBadShard(t *testing.T) {
	p := Params{K: 4, NMax: 8}
	c := makeCoded(t, p, bytes.Repeat([]byte("swarmcast"), 100))
	in := []Shard{c.shard(0), c.shard(5), c.shard(2), c.shard(7)}
	late := c.shard(6)
	late.Data[3] ^= 0x10
	in = append(in, late)
	ct, bad, err := Rebuild(c.m, 0, 0, in)
	if err != nil || !bytes.Equal(ct, c.ct) || !slices.Equal(bad, []int{6}) {
		t.Fatalf("err=%v exact=%v bad=%v, want bad=[6]", err, bytes.Equal(ct, c.ct), bad)
	}
	// Out-of-range indices are attributed, not a panic.
	_, bad, err = Rebuild(c.m, 0, 0, []Shard{{Index: -1}, {Index: 8, Data: c.shards[0]}})
	requireErr(t, err, "only 0 valid", "need 4")
	if !slices.Equal(bad, []int{-1, 8}) {
		t.Fatalf("bad = %v, want [-1 8]", bad)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Merkle inclusion proofs verify for every size and index, and fail for a
// wrong leaf, a wrong index, a wrong size, a wrong root and a tampered,
// truncated or extended path.
func TestPropertyMerkleInclusion(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 300).Draw(t, "size")
		leaves := make([]Hash, n)
		for i := range leaves {
			leaves[i] = LeafHash([]byte{byte(i), byte(i >> 8), 7})
		}
		root := MerkleRoot(leaves)
		i := rapid.IntRange(0, n-1).Draw(t, "index")
		proof := InclusionProof(leaves, i)
		if err := VerifyInclusion(root, n, i, leaves[i], proof); err != nil {
			t.Fatalf("valid proof for %d of %d rejected: %v", i, n, err)
		}
		wrongLeaf := LeafHash([]byte("not a leaf"))
		if VerifyInclusion(root, n, i, wrongLeaf, proof) == nil {
			t.Fatalf("wrong leaf accepted at %d of %d", i, n)
		}
		if n > 1 {
			j := (i + 1 + rapid.IntRange(0, n-2).Draw(t, "shift")) % n
			if VerifyInclusion(root, n, j, leaves[i], proof) == nil {
				t.Fatalf("leaf %d accepted at index %d of %d", i, j, n)
			}
			if VerifyInclusion(root, n, i, leaves[j], proof) == nil {
				t.Fatalf("leaf %d accepted in place of %d of %d", j, i, n)
			}
			h := rapid.IntRange(0, len(proof)-1).Draw(t, "tampered hash")
			bad := slices.Clone(proof)
			bad[h][rapid.IntRange(0, 31).Draw(t, "byte")] ^= 1
			if VerifyInclusion(root, n, i, leaves[i], bad) == nil {
				t.Fatalf("tampered path accepted")
			}
			if VerifyInclusion(root, n, i, leaves[i], proof[:len(proof)-1]) == nil {
				t.Fatalf("truncated path accepted")
			}
		}
		if VerifyInclusion(root, n, i, leaves[i], append(slices.Clone(proof), root)) == nil {
			t.Fatalf("extended path accepted")
		}
		if VerifyInclusion(root, n, n, leaves[i], proof) == nil || VerifyInclusion(root, n, -1, leaves[i], proof) == nil {
			t.Fatalf("out-of-range index accepted")
		}
		var wrongRoot Hash
		if VerifyInclusion(wrongRoot, n, i, leaves[i], proof) == nil {
			t.Fatalf("wrong root accepted")
		}
	})
}

// The RFC 6962 test vectors' shape: the root of one leaf is the leaf, and
// domain separation keeps a leaf from posing as an interior node.
func TestMerkleDomainSeparation(t *testing.T) {
	a, b := LeafHash([]byte("a")), LeafHash([]byte("b"))
	root := MerkleRoot([]Hash{a, b})
	if MerkleRoot([]Hash{a}) != a {
		t.Fatal("root of a single leaf must be the leaf")
	}
	// A "leaf" whose data is the concatenation of two child hashes must not
	// hash to their parent.
	if LeafHash(append(a[:], b[:]...)) == root {
		t.Fatal("leaf hash collides with node hash: no domain separation")
	}
	if LeafHash(nil) == MerkleRoot(nil) {
		t.Fatal("empty leaf equals empty tree hash")
	}
}

// A (k, n) code is a prefix of (k, n+x): growing redundancy never changes
// shards that edges already hold.
func TestPropertyCodePrefix(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.IntRange(1, 15).Draw(t, "k")
		seg := rapid.SliceOfN(rapid.Byte(), 1, 3000).Draw(t, "segment")
		small, err := EncodeShards(Params{K: k, NMax: 16}, seg)
		if err != nil {
			t.Fatal(err)
		}
		big, err := EncodeShards(Params{K: k, NMax: 32}, seg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range small {
			if !bytes.Equal(small[i], big[i]) {
				t.Fatalf("k=%d: shard %d of (k,16) differs from shard %d of (k,32)", k, i, i)
			}
		}
		// Systematic: data shards are plain byte ranges of the segment.
		s := len(small[0])
		padded := make([]byte, s*k)
		copy(padded, seg)
		for i := 0; i < k; i++ {
			if !bytes.Equal(small[i], padded[i*s:(i+1)*s]) {
				t.Fatalf("data shard %d is not bytes [%d,%d) of the segment", i, i*s, (i+1)*s)
			}
		}
	})
}

func TestPropertyEncryptRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var key ContentKey
		copy(key[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "key"))
		r := rapid.IntRange(0, 15).Draw(t, "rendition")
		s := rapid.IntRange(0, 1<<20).Draw(t, "segment")
		plain := rapid.SliceOfN(rapid.Byte(), 0, 1000).Draw(t, "plain")
		iv := key.SegmentIV(r, s)
		ct := EncryptSegment(key, iv, plain)
		if len(ct)%16 != 0 || len(ct) <= len(plain) || len(ct) > len(plain)+16 {
			t.Fatalf("ciphertext of %d bytes for %d plain bytes", len(ct), len(plain))
		}
		if len(plain) >= 16 && bytes.Equal(ct[:16], plain[:16]) {
			t.Fatalf("ciphertext equals plaintext")
		}
		pt, err := DecryptSegment(key, iv, ct)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatalf("round trip: err=%v", err)
		}
		if key.SegmentIV(r, s+1) == iv || key.SegmentIV(r+1, s) == iv {
			t.Fatalf("IV repeats across segments")
		}
		// A wrong key either fails the padding check or yields other bytes.
		other := key
		other[0] ^= 1
		if pt, err := DecryptSegment(other, iv, ct); err == nil && bytes.Equal(pt, plain) {
			t.Fatalf("wrong key decrypted to the plaintext")
		}
	})
}

func TestDecryptRejectsBadLengths(t *testing.T) {
	var key ContentKey
	requireErr(t, func() error { _, err := DecryptSegment(key, [16]byte{}, nil); return err }(), "multiple of 16")
	requireErr(t, func() error { _, err := DecryptSegment(key, [16]byte{}, make([]byte, 17)); return err }(), "multiple of 16")
	// Corrupting the final block garbles its padding (deterministic: fixed
	// key, IV and plaintext).
	ct := EncryptSegment(key, key.SegmentIV(0, 0), []byte("hello"))
	ct[len(ct)-1] ^= 0xff
	if _, err := DecryptSegment(key, key.SegmentIV(0, 0), ct); err != ErrBadKey {
		t.Fatalf("corrupted last block: err=%v, want ErrBadKey", err)
	}
}

// Large segments decrypt in parallel chunks; every chunk boundary must
// chain correctly, whatever GOMAXPROCS is.
func TestDecryptLargeSegments(t *testing.T) {
	var key ContentKey
	copy(key[:], "large segment k!")
	for _, n := range []int{2*parallelDecryptChunk - 17, 2 * parallelDecryptChunk, 5*parallelDecryptChunk + 3, 4<<20 - 1} {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(i*7 + i>>9)
		}
		iv := key.SegmentIV(2, 9)
		ct := EncryptSegment(key, iv, plain)
		pt, err := DecryptSegment(key, iv, ct)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatalf("%d bytes: round trip failed: %v", n, err)
		}
		// Corrupting one block garbles exactly that block and the next.
		bad := bytes.Clone(ct)
		bad[len(bad)/2] ^= 1
		pt, err = DecryptSegment(key, iv, bad)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		diff := 0
		for i := range plain {
			if pt[i] != plain[i] {
				diff++
			}
		}
		if diff == 0 || diff > 17 {
			t.Fatalf("%d bytes: one flipped ciphertext bit changed %d plaintext bytes, want 1..17", n, diff)
		}
	}
}

// PackageSegment works in recycled scratch space: its roots must match a
// fresh EncodeShards whatever sizes ran before it.
func TestPackageSegmentScratchReuse(t *testing.T) {
	var key ContentKey
	p := DefaultParams()
	for _, n := range []int{4 << 20, 1000, 300_000, 17, 1 << 20} {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		ct, root, err := PackageSegment(p, key, 0, n, plain)
		if err != nil {
			t.Fatal(err)
		}
		shards, err := EncodeShards(p, ct)
		if err != nil {
			t.Fatal(err)
		}
		if MerkleRoot(ShardLeaves(shards)) != root {
			t.Fatalf("%d bytes: PackageSegment root differs from EncodeShards after scratch reuse", n)
		}
	}
}
