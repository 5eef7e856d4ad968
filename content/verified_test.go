package content

import (
	"bytes"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// Any k distinct accepted shards join to the same bit-exact ciphertext
// Rebuild gives, whatever mix of data and parity they are, duplicates
// included; k-1 are refused.
func TestPropertyJoinVerifiedMatchesRebuild(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genParams(t)
		plain := rapid.SliceOfN(rapid.Byte(), 1, 4096).Draw(t, "plain")
		c := makeCoded(t, p, plain)
		idx := rapid.Permutation(seq(p.NMax)).Draw(t, "order")[:p.K]
		var accepted []VerifiedShard
		var raw []Shard
		for _, i := range idx {
			v, err := AcceptShard(c.m, 0, 0, c.shard(i))
			if err != nil {
				t.Fatalf("valid shard %d refused: %v", i, err)
			}
			if v.Shard().Index != i {
				t.Fatalf("accepted shard says index %d, want %d", v.Shard().Index, i)
			}
			accepted = append(accepted, v)
			raw = append(raw, c.shard(i))
		}
		if rapid.Bool().Draw(t, "duplicate") {
			accepted = append([]VerifiedShard{accepted[0]}, accepted...)
		}
		ct, err := JoinVerified(c.m, 0, 0, accepted)
		if err != nil {
			t.Fatalf("join from %v: %v", idx, err)
		}
		want, _, err := Rebuild(c.m, 0, 0, raw)
		if err != nil || !bytes.Equal(ct, want) || !bytes.Equal(ct, c.ct) {
			t.Fatalf("join from %v differs from Rebuild and from the packaged ciphertext (rebuild err %v)", idx, err)
		}
		// Into a recycled buffer (too small, then large enough and dirty).
		for _, dst := range [][]byte{make([]byte, len(c.ct)/2), bytes.Repeat([]byte{0xee}, len(c.ct)+7)} {
			into, err := JoinVerifiedInto(dst, c.m, 0, 0, accepted)
			if err != nil || !bytes.Equal(into, c.ct) {
				t.Fatalf("join into a %d-byte buffer differs (err %v)", len(dst), err)
			}
			if cap(dst) >= len(c.ct) && &into[0] != &dst[0] {
				t.Fatalf("join into a large enough buffer allocated a new one")
			}
		}
		pt, err := DecryptSegmentInPlace(c.key, c.key.SegmentIV(0, 0), ct)
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatalf("in-place decrypt after join: err=%v", err)
		}
		if _, err := JoinVerified(c.m, 0, 0, accepted[len(accepted)-p.K+1:]); err == nil {
			t.Fatalf("join from %d < k shards succeeded", p.K-1)
		}
	})
}

// A bad shard is never accepted, and a shard accepted for one segment (or
// one manifest) cannot be joined into another: the check is not skipped by
// moving a verdict around.
func TestJoinVerifiedRefusesForeignShards(t *testing.T) {
	p := Params{K: 2, NMax: 4}
	c := makeCoded(t, p, bytes.Repeat([]byte("segment "), 100))
	bad := c.shard(1)
	bad.Data[0] ^= 1
	if _, err := AcceptShard(c.m, 0, 0, bad); err == nil {
		t.Fatal("a corrupted shard was accepted")
	}
	var good []VerifiedShard
	for i := range p.K {
		v, err := AcceptShard(c.m, 0, 0, c.shard(i))
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, v)
	}
	// Segment 1 of a manifest whose segment 1 has the same size but
	// another root: same bytes, other segment.
	two := *c.m
	two.Renditions = []Rendition{{Name: "r", Segments: slices.Repeat(c.m.Renditions[0].Segments, 2)}}
	two.Renditions[0].Segments[1].Root = Hash{1}
	if _, err := JoinVerified(&two, 0, 1, good); err == nil {
		t.Fatal("shards accepted for another manifest were joined")
	}
	if _, err := JoinVerified(&two, 0, 0, good); err == nil {
		t.Fatal("shards accepted for another manifest (equal segment 0) were joined")
	}
	if _, err := JoinVerified(c.m, 0, 0, []VerifiedShard{good[0], {}}); err == nil {
		t.Fatal("a zero VerifiedShard was joined")
	}
	if _, err := JoinVerified(c.m, 0, 0, []VerifiedShard{good[0], good[0]}); err == nil {
		t.Fatal("one shard twice counted as two")
	}
	if _, err := JoinVerified(c.m, 0, 1, good); err == nil {
		t.Fatal("a segment the manifest lacks was joined")
	}
}

// CheckSegmentKey gives DecryptSegment's verdict without decrypting the
// whole segment, for short (one-block) and long segments.
func TestPropertyCheckSegmentKeyMatchesDecrypt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var key ContentKey
		copy(key[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "key"))
		plain := rapid.SliceOfN(rapid.Byte(), 0, 600).Draw(t, "plain")
		iv := key.SegmentIV(0, 3)
		ct := EncryptSegment(key, iv, plain)
		if err := CheckSegmentKey(key, iv, ct); err != nil {
			t.Fatalf("the right key: %v", err)
		}
		other := key
		other[rapid.IntRange(0, 15).Draw(t, "flip")] ^= 1
		_, decErr := DecryptSegment(other, iv, ct)
		if chkErr := CheckSegmentKey(other, iv, ct); (chkErr == nil) != (decErr == nil) {
			t.Fatalf("wrong key: CheckSegmentKey says %v, DecryptSegment says %v", chkErr, decErr)
		}
	})
	var key ContentKey
	requireErr(t, CheckSegmentKey(key, [16]byte{}, make([]byte, 17)), "multiple of 16")
}

// In-place decryption of large segments (parallel chunks, each chunk's IV
// taken before the chunk before it is overwritten) gives DecryptSegment's
// bytes.
func TestDecryptInPlaceLargeSegments(t *testing.T) {
	var key ContentKey
	copy(key[:], "in place segment")
	for _, n := range []int{15, 2*parallelDecryptChunk - 17, 5*parallelDecryptChunk + 3, 4<<20 - 1} {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(i*13 + i>>7)
		}
		iv := key.SegmentIV(1, 4)
		ct := EncryptSegment(key, iv, plain)
		pt, err := DecryptSegmentInPlace(key, iv, bytes.Clone(ct))
		if err != nil || !bytes.Equal(pt, plain) {
			t.Fatalf("%d bytes: in-place round trip failed: %v", n, err)
		}
	}
}
