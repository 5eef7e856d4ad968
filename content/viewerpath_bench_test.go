package content

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// viewerPathSizes are ciphertext segment sizes: the bundled sample's
// renditions (240p ≈ 62 KB, 360p ≈ 94 KB per 2 s segment, i.e. 7.8 and
// 11.8 KB shards at k = 8) and a 1 MiB segment (≈ 4 Mbit/s video).
var viewerPathSizes = []struct {
	name string
	size int
}{{"62KB", 62_800}, {"94KB", 94_400}, {"1MiB", 1 << 20}}

// viewerPathFixture is one packaged segment and k of its shards as the
// viewer receives them: encoded ShardMessages, as HTTP bodies.
type viewerPathFixture struct {
	m      *Manifest
	key    ContentKey
	iv     [16]byte
	plain  []byte
	bodies [][]byte // k encoded shard messages
	data   [][]byte // the same k shards' bytes
}

// newViewerPathFixture packages a random segment of size ciphertext bytes;
// mixed picks k-2 data shards and 2 parity shards (two reconstructed), else
// the k data shards (no reconstruction needed).
func newViewerPathFixture(tb testing.TB, size int, mixed bool) *viewerPathFixture {
	tb.Helper()
	p := DefaultParams()
	var key ContentKey
	copy(key[:], "benchmark key 16")
	plain := make([]byte, size-1-(size-1)%16+15) // pads to a multiple of 16 ≥ size
	r := rand.New(rand.NewPCG(2, uint64(size)))
	for i := range plain {
		plain[i] = byte(r.Uint32())
	}
	ct, root, err := PackageSegment(p, key, 0, 0, plain)
	if err != nil {
		tb.Fatal(err)
	}
	m := &Manifest{Params: p, Renditions: []Rendition{{Segments: []Segment{{Duration: 2_000_000, Size: uint32(len(ct)), Root: root}}}}}
	shards, err := EncodeShards(p, ct)
	if err != nil {
		tb.Fatal(err)
	}
	leaves := ShardLeaves(shards)
	var picked []int
	if mixed {
		for i := 0; i < p.K-2; i++ {
			picked = append(picked, i)
		}
		picked = append(picked, p.K, p.NMax-1)
	} else {
		for i := 0; i < p.K; i++ {
			picked = append(picked, i)
		}
	}
	f := &viewerPathFixture{m: m, key: key, iv: key.SegmentIV(0, 0), plain: plain}
	for _, i := range picked {
		msg := ShardMessage{Shard: Shard{Index: i, Data: shards[i], Proof: InclusionProof(leaves, i)}}
		f.bodies = append(f.bodies, msg.Encode())
		f.data = append(f.data, shards[i])
	}
	return f
}

// BenchmarkViewerPath is the player's whole per-segment CPU path, as
// viewer.fetchSegment and play call content: decode each of the k shard
// messages and verify it on arrival (VerifyShard), rebuild the ciphertext,
// then AES-128-CBC decrypt it. SetBytes is the ciphertext segment size;
// cpu-ns/op is process CPU time per op, the per-core figure (MB/s per core
// = segment bytes / cpu-ns/op) and the steadier one on a shared machine.
//
//	viewer-v1  the calls the viewer made before: VerifyShard per shard,
//	           Rebuild (which verifies every shard again), DecryptSegment
//	           into a new buffer
//	viewer     the calls it makes now: AcceptShard per shard, JoinVerified
//	           (no second hash), DecryptSegmentInPlace into the joined buffer
//	viewer-reuse  the same into one recycled segment buffer
//	           (JoinVerifiedInto), as a player that recycles them would
//	hash-only  the floor: SHA-256 of the k shards' bytes alone
func BenchmarkViewerPath(b *testing.B) {
	for _, sz := range viewerPathSizes {
		for _, mixed := range []bool{false, true} {
			f := newViewerPathFixture(b, sz.size, mixed)
			shape := "data"
			if mixed {
				shape = "mixed"
			}
			b.Run(fmt.Sprintf("%s/%s/viewer-v1", sz.name, shape), func(b *testing.B) {
				b.SetBytes(int64(f.m.Renditions[0].Segments[0].Size))
				b.ReportAllocs()
				defer reportCPU(b, processCPU())
				for b.Loop() {
					shards := make([]Shard, 0, len(f.bodies))
					for _, body := range f.bodies {
						msg, err := DecodeShardMessage(body)
						if err != nil {
							b.Fatal(err)
						}
						if err := VerifyShard(f.m, 0, 0, msg.Shard); err != nil {
							b.Fatal(err)
						}
						shards = append(shards, msg.Shard)
					}
					ct, bad, err := Rebuild(f.m, 0, 0, shards)
					if err != nil || len(bad) > 0 {
						b.Fatal(err, bad)
					}
					if _, err := DecryptSegment(f.key, f.iv, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/viewer", sz.name, shape), func(b *testing.B) {
				b.SetBytes(int64(f.m.Renditions[0].Segments[0].Size))
				b.ReportAllocs()
				defer reportCPU(b, processCPU())
				for b.Loop() {
					shards := make([]VerifiedShard, 0, len(f.bodies))
					for _, body := range f.bodies {
						msg, err := DecodeShardMessage(body)
						if err != nil {
							b.Fatal(err)
						}
						v, err := AcceptShard(f.m, 0, 0, msg.Shard)
						if err != nil {
							b.Fatal(err)
						}
						shards = append(shards, v)
					}
					ct, err := JoinVerified(f.m, 0, 0, shards)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := DecryptSegmentInPlace(f.key, f.iv, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/viewer-reuse", sz.name, shape), func(b *testing.B) {
				b.SetBytes(int64(f.m.Renditions[0].Segments[0].Size))
				b.ReportAllocs()
				defer reportCPU(b, processCPU())
				var segBuf []byte
				shards := make([]VerifiedShard, 0, len(f.bodies))
				for b.Loop() {
					shards = shards[:0]
					for _, body := range f.bodies {
						msg, err := DecodeShardMessage(body)
						if err != nil {
							b.Fatal(err)
						}
						v, err := AcceptShard(f.m, 0, 0, msg.Shard)
						if err != nil {
							b.Fatal(err)
						}
						shards = append(shards, v)
					}
					ct, err := JoinVerifiedInto(segBuf, f.m, 0, 0, shards)
					if err != nil {
						b.Fatal(err)
					}
					segBuf = ct
					if _, err := DecryptSegmentInPlace(f.key, f.iv, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/hash-only", sz.name, shape), func(b *testing.B) {
				b.SetBytes(int64(f.m.Renditions[0].Segments[0].Size))
				defer reportCPU(b, processCPU())
				var sink byte
				for b.Loop() {
					for _, d := range f.data {
						h := sha256.Sum256(d)
						sink ^= h[0]
					}
				}
			})
		}
	}
}
