package content

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"
)

// Pipeline cost against the bare libraries on the same bytes. Each size has
// six sub-benchmarks; docs/PERFORMANCE.md compares package with
// package-ref and verify with verify-ref from the same run:
//
//	package      PackageSegment: AES-128-CBC encrypt + RS encode + leaf hash
//	             of all n_max shards + Merkle root
//	package-ref  klauspost Encode on preallocated shards + SHA-256 of every
//	             shard (no allocation, no encryption, no tree)
//	verify       Rebuild from k shards (k-2 data + 2 parity): per-shard
//	             SHA-256 + inclusion proof check, RS reconstruct, join,
//	             then DecryptSegment
//	verify-ref   SHA-256 of the same k shards + klauspost ReconstructData
//	             of the same 2 missing data shards
//	*-ref-aes    the reference plus raw single-threaded AES-128-CBC of the
//	             segment into a preallocated buffer, i.e. every library call
//	             the pipeline makes, without the pipeline's own glue
//
// SetBytes is the segment size, so MB/s is segment throughput; cpu-ns/op is
// process CPU time per op (all cores), the steadier figure on a shared box.
func BenchmarkPipeline(b *testing.B) {
	p := DefaultParams()
	var key ContentKey
	copy(key[:], "benchmark key 16")
	for _, size := range []int{1 << 20, 4 << 20} {
		plain := make([]byte, size-1) // PKCS#7 pads to exactly size bytes
		r := rand.New(rand.NewPCG(1, uint64(size)))
		for i := range plain {
			plain[i] = byte(r.Uint32())
		}
		name := fmt.Sprintf("%dMiB", size>>20)

		b.Run(name+"/package", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			for b.Loop() {
				if _, _, err := PackageSegment(p, key, 0, 0, plain); err != nil {
					b.Fatal(err)
				}
			}
		})

		enc, err := reedsolomon.New(p.K, p.NMax-p.K)
		if err != nil {
			b.Fatal(err)
		}
		ct := EncryptSegment(key, key.SegmentIV(0, 0), plain)
		refShards, err := enc.Split(ct)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/package-ref", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			var sink [32]byte
			for b.Loop() {
				if err := enc.Encode(refShards); err != nil {
					b.Fatal(err)
				}
				for _, s := range refShards {
					h := sha256.Sum256(s)
					sink[0] ^= h[0]
				}
			}
		})

		// The same plus raw AES-128-CBC encryption of the segment into a
		// preallocated buffer: the libraries PackageSegment composes.
		ctBuf := make([]byte, len(ct))
		iv := key.SegmentIV(0, 0)
		block, _ := aes.NewCipher(key[:])
		padded := append(bytes.Clone(plain), 1)
		b.Run(name+"/package-ref-aes", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			var sink [32]byte
			for b.Loop() {
				cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(ctBuf, padded)
				if err := enc.Encode(refShards); err != nil {
					b.Fatal(err)
				}
				for _, s := range refShards {
					h := sha256.Sum256(s)
					sink[0] ^= h[0]
				}
			}
		})

		// The viewer's side: k shards, two of them parity.
		ct, root, err := PackageSegment(p, key, 0, 0, plain)
		if err != nil {
			b.Fatal(err)
		}
		m := &Manifest{Params: p, Renditions: []Rendition{{Segments: []Segment{{Duration: 2_000_000, Size: uint32(len(ct)), Root: root}}}}}
		shards, err := EncodeShards(p, ct)
		if err != nil {
			b.Fatal(err)
		}
		leaves := ShardLeaves(shards)
		var picked []int
		for i := 0; i < p.K-2; i++ {
			picked = append(picked, i)
		}
		picked = append(picked, p.K, p.NMax-1)
		in := make([]Shard, len(picked))
		for j, i := range picked {
			in[j] = Shard{Index: i, Data: shards[i], Proof: InclusionProof(leaves, i)}
		}
		b.Run(name+"/verify", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			for b.Loop() {
				got, bad, err := Rebuild(m, 0, 0, in)
				if err != nil || len(bad) != 0 {
					b.Fatal(err, bad)
				}
				if _, err := DecryptSegment(key, key.SegmentIV(0, 0), got); err != nil {
					b.Fatal(err)
				}
			}
		})

		refIn := make([][]byte, p.NMax)
		b.Run(name+"/verify-ref", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			var sink [32]byte
			for b.Loop() {
				clear(refIn)
				for _, i := range picked {
					refIn[i] = shards[i]
					h := sha256.Sum256(shards[i])
					sink[0] ^= h[0]
				}
				if err := enc.ReconstructData(refIn); err != nil {
					b.Fatal(err)
				}
			}
		})

		ptBuf := make([]byte, len(ct))
		b.Run(name+"/verify-ref-aes", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			defer reportCPU(b, processCPU())
			var sink [32]byte
			for b.Loop() {
				clear(refIn)
				for _, i := range picked {
					refIn[i] = shards[i]
					h := sha256.Sum256(shards[i])
					sink[0] ^= h[0]
				}
				if err := enc.ReconstructData(refIn); err != nil {
					b.Fatal(err)
				}
				cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(ptBuf, ct)
			}
		})
	}
}

// reportCPU adds cpu-ns/op: process CPU time (all cores, GC included) per
// iteration since start.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkManifestBytesPerSegment reports the encoded manifest size per
// segment per rendition for a synthetic one-hour, three-rendition video
// (TestManifestBytesPerSegment asserts the bound).
func BenchmarkManifestBytesPerSegment(b *testing.B) {
	m := syntheticManifest(testKey(1), DefaultParams(), 3, 1800)
	var n int
	for b.Loop() {
		n = len(m.Encode())
	}
	b.ReportMetric(float64(n)/(3*1800), "bytes/seg/rendition")
}

// The manifest costs at most 48 bytes per segment per rendition for a long
// video; each segment entry itself is exactly 40 bytes (duration, size,
// root). Short videos pay the fixed header over fewer segments.
func TestManifestBytesPerSegment(t *testing.T) {
	st, id, _ := ingestSample(t, Params{})
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	segs := 0
	for _, r := range m.Renditions {
		segs += len(r.Segments)
	}
	sampleBytes := len(m.Encode())
	t.Logf("sample: %d bytes for %d renditions × %d segments = %.1f bytes/segment/rendition",
		sampleBytes, len(m.Renditions), segs/len(m.Renditions), float64(sampleBytes)/float64(segs))

	hour := syntheticManifest(testKey(1), DefaultParams(), 3, 1800)
	hourBytes := len(hour.Encode())
	per := float64(hourBytes) / (3 * 1800)
	t.Logf("1 hour, 3 renditions of 2 s segments: %d bytes = %.2f bytes/segment/rendition", hourBytes, per)
	if per > 48 {
		t.Fatalf("%.2f bytes per segment per rendition, target ≤ 48", per)
	}
	longer := syntheticManifest(testKey(1), DefaultParams(), 3, 1801)
	if d := len(longer.Encode()) - hourBytes; d != 3*40 {
		t.Fatalf("one more segment in each of 3 renditions costs %d bytes, want 120", d)
	}
}
