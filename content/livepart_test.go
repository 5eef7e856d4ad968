package content

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func testLLGenesis(t testing.TB) (*LiveGenesis, ed25519.PrivateKey) {
	t.Helper()
	g, priv := testGenesis(t)
	g.PartTarget = 250_000
	g.Sign(priv)
	return g, priv
}

// testPart signs a part whose one piece is body padded to a ciphertext size.
func testPart(g *LiveGenesis, priv ed25519.PrivateKey, seq uint64, index uint16, prev *LivePart, body []byte) *LivePart {
	body = padTo16(body)
	p := &LivePart{Chain: g.ID(), Seq: seq, Index: index, Independent: index == 0, Duration: 250_000,
		Pieces: []LivePartPiece{{Size: uint32(len(body)), Digest: sha256.Sum256(body)}}}
	if prev != nil {
		p.Prev = prev.Hash()
	}
	p.Sign(priv)
	return p
}

func TestLowLatencyGenesisKeepsStandardEncoding(t *testing.T) {
	std, _ := testGenesis(t)
	if v := std.Encode()[4]; v != LiveVersion {
		t.Fatalf("a standard genesis is encoded as version %d, want %d (unchanged)", v, LiveVersion)
	}
	ll, _ := testLLGenesis(t)
	b := ll.Encode()
	if b[4] != LiveLowLatencyVersion || len(b) != len(std.Encode())+4 {
		t.Fatalf("low-latency genesis: version %d, %d bytes; want version %d and 4 bytes more than the standard %d", b[4], len(b), LiveLowLatencyVersion, len(std.Encode()))
	}
	g2, err := DecodeLiveGenesis(b)
	if err != nil || g2.PartTarget != 250_000 || g2.ID() != ll.ID() {
		t.Fatalf("round trip: %v, part target %d", err, g2.PartTarget)
	}
	// The part target is signed: changing it breaks the signature.
	c := bytes.Clone(b)
	c[len(c)-ed25519.SignatureSize-1] ^= 1
	if _, err := DecodeLiveGenesis(c); err == nil {
		t.Fatal("a genesis with an altered part target was accepted")
	}
	bad := *ll
	bad.PartTarget = ll.TargetDuration
	bad.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	if err := bad.Verify(nil); err == nil || !strings.Contains(err.Error(), "part target") {
		t.Fatalf("a part as long as the segment: %v, want a part target error", err)
	}
}

func TestLivePartVerifies(t *testing.T) {
	g, priv := testLLGenesis(t)
	p0 := testPart(g, priv, 7, 0, nil, []byte("part zero bytes."))
	got, err := DecodeLivePart(p0.Encode(), g, g.ID())
	if err != nil || got.Hash() != p0.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	b := p0.Encode()
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := DecodeLivePart(c, g, g.ID()); err == nil {
			t.Fatalf("part with byte %d flipped was accepted", i)
		}
	}
	_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	if _, err := DecodeLivePart(testPart(g, other, 7, 0, nil, []byte("x")).Encode(), g, g.ID()); err == nil {
		t.Fatal("a part signed by another key was accepted")
	}
	std, stdPriv := testGenesis(t)
	if _, err := DecodeLivePart(testPart(std, stdPriv, 0, 0, nil, []byte("x")).Encode(), std, std.ID()); err == nil {
		t.Fatal("a part of a standard chain was accepted")
	}
	if err := p0.CheckPiece(0, padTo16([]byte("part zero bytes."))); err != nil {
		t.Fatal(err)
	}
	if err := p0.CheckPiece(0, padTo16([]byte("part zero bytes!"))); err == nil {
		t.Fatal("altered part bytes passed CheckPiece")
	}
	// Only part 0 is independent.
	p1 := testPart(g, priv, 7, 1, p0, []byte("one"))
	p1.Independent = true
	p1.Sign(priv)
	if err := p1.Verify(g, g.ID()); err == nil {
		t.Fatal("an independent part 1 was accepted")
	}
}

func TestLivePartsRefuseReorderedAndForked(t *testing.T) {
	g, priv := testLLGenesis(t)
	lp := NewLiveParts(g, 2)
	p0 := testPart(g, priv, 3, 0, nil, []byte("zero"))
	p1 := testPart(g, priv, 3, 1, p0, []byte("one"))
	p2 := testPart(g, priv, 3, 2, p1, []byte("two"))
	if err := lp.Add(p1); !errors.Is(err, ErrLiveOutOfOrder) {
		t.Fatalf("part 1 before part 0: %v, want out of order", err)
	}
	if len(lp.Segment(3)) != 0 {
		t.Fatal("a refused part was kept")
	}
	for _, p := range []*LivePart{p0, p1, p1} {
		if err := lp.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	// A part 2 naming another part 1 (spliced from another history).
	other1 := testPart(g, priv, 3, 1, p0, []byte("another one"))
	if err := lp.Add(testPart(g, priv, 3, 2, other1, []byte("two"))); !errors.Is(err, ErrLiveOutOfOrder) {
		t.Fatalf("a part naming a part not held: %v", err)
	}
	if err := lp.Add(other1); !errors.Is(err, ErrLivePartFork) {
		t.Fatalf("a second part 1: %v, want a fork", err)
	}
	p2.Last = true
	p2.Sign(priv)
	if err := lp.Add(p2); err != nil {
		t.Fatal(err)
	}
	if err := lp.Add(testPart(g, priv, 3, 3, p2, []byte("three"))); !errors.Is(err, ErrLiveOutOfOrder) {
		t.Fatalf("a part after the last: %v", err)
	}
	if got := lp.Segment(3); len(got) != 3 || got[2].Hash() != p2.Hash() {
		t.Fatalf("held %d parts", len(got))
	}
	// keep = 2: a third segment evicts the oldest.
	lp.Add(testPart(g, priv, 4, 0, nil, []byte("a")))
	lp.Add(testPart(g, priv, 5, 0, nil, []byte("b")))
	if len(lp.Segment(3)) != 0 || len(lp.Segment(5)) != 1 || len(lp.Segment(4)) != 1 {
		t.Fatal("eviction kept the wrong segments")
	}
}

func TestPartIVsAreDistinct(t *testing.T) {
	var k ContentKey
	seen := map[[16]byte]bool{k.SegmentIV(0, 1): true}
	for _, iv := range [][16]byte{k.PartIV(0, 1, 0), k.PartIV(0, 1, 1), k.PartIV(1, 1, 0), k.PartIV(0, 2, 0)} {
		if seen[iv] {
			t.Fatal("two parts (or a part and a segment) share an IV")
		}
		seen[iv] = true
	}
}

func FuzzDecodeLivePart(f *testing.F) {
	g, priv := testLLGenesis(f)
	p0 := testPart(g, priv, 0, 0, nil, []byte("0123456789abcdef"))
	f.Add(p0.Encode())
	f.Add(testPart(g, priv, 9, 3, p0, []byte("x")).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeLivePart(b, g, g.ID())
		if err != nil {
			return
		}
		if !bytes.Equal(p.Encode(), b) {
			t.Fatal("accepted part does not re-encode to its bytes")
		}
	})
}

func padTo16(b []byte) []byte { return append(bytes.Clone(b), make([]byte, (16-len(b)%16)%16)...) }
