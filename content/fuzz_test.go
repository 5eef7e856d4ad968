package content

import (
	"bytes"
	"testing"
)

// Round-trip fuzzing in the anacrolix style: whatever the decoder accepts
// must re-encode to exactly the input bytes. Anything else means two byte
// strings decode to the same value, i.e. the encoding is not canonical (and
// a video id, which hashes the bytes, could be forged for the same video).

func manifestSeeds(f *testing.F) [][]byte {
	st, id, _ := ingestSample(f, Params{})
	real, err := st.Manifest(id)
	if err != nil {
		f.Fatal(err)
	}
	small := syntheticManifest(testKey(1), Params{K: 1, NMax: 2}, 1, 1).Encode()
	big := syntheticManifest(testKey(2), Params{K: 128, NMax: 256}, 4, 5).Encode()
	seeds := [][]byte{real.Encode(), small, big, nil, []byte("SWMF"), []byte("SWMF\x01")}
	for _, n := range []int{1, 5, 37, 40, len(small) - 64, len(small) - 1} {
		seeds = append(seeds, small[:n])
	}
	return seeds
}

func FuzzDecodeManifest(f *testing.F) {
	for _, s := range manifestSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("non-nil manifest with an error")
			}
			return
		}
		if enc := m.Encode(); !bytes.Equal(enc, data) {
			t.Fatalf("accepted non-canonical manifest: re-encodes to %d bytes, input %d", len(enc), len(data))
		}
		if err := m.Verify(m.Publisher); err != nil {
			t.Fatalf("decoded manifest does not verify: %v", err)
		}
		for r := range m.Renditions {
			_ = m.Duration(r)
		}
	})
}

// FuzzParseManifest checks canonical framing without the signature, which
// random inputs almost never pass.
func FuzzParseManifest(f *testing.F) {
	for _, s := range manifestSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			return
		}
		if enc := m.Encode(); !bytes.Equal(enc, data) {
			t.Fatalf("non-canonical framing accepted:\n in  %x\n out %x", data, enc)
		}
		_ = m.Verify(nil) // must not panic on any parsed shape
	})
}

func FuzzDecodeShardMessage(f *testing.F) {
	c := makeCoded(f, Params{K: 4, NMax: 12}, bytes.Repeat([]byte("shard"), 50))
	for _, i := range []int{0, 3, 4, 11} {
		msg := ShardMessage{Video: c.m.ID(), Rendition: 0, Segment: 0, Shard: c.shard(i)}
		enc := msg.Encode()
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(enc[:ShardHeaderSize])
	}
	empty := ShardMessage{Rendition: 255, Segment: 1<<32 - 1, Shard: Shard{Index: 65535, Data: []byte{}}}
	f.Add(empty.Encode())
	f.Add([]byte("SWSH"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeShardMessage(data)
		if err != nil {
			return
		}
		if enc := s.Encode(); !bytes.Equal(enc, data) {
			t.Fatalf("non-canonical shard message accepted:\n in  %x\n out %x", data, enc)
		}
		// Whatever the framing carries, verification must fail cleanly or
		// succeed only for a genuine shard.
		if err := VerifyShard(c.m, s.Rendition, s.Segment, s.Shard); err == nil {
			if !bytes.Equal(s.Data, c.shards[s.Index]) {
				t.Fatalf("forged shard %d verified", s.Index)
			}
		}
		_, _, _ = Rebuild(c.m, s.Rendition, s.Segment, []Shard{s.Shard})
	})
}
