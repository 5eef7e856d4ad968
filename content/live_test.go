package content

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

func testGenesis(t testing.TB) (*LiveGenesis, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	g := &LiveGenesis{Channel: "ch1", Title: "Launch", Params: DefaultLiveParams(), TargetDuration: 1_000_000,
		Renditions: []LiveRendition{{Name: "240p", Bandwidth: 400_000, Width: 426, Height: 240, Codecs: "avc1.42c015,mp4a.40.2"}},
		Started:    1_700_000_000_000_000}
	g.Sign(priv)
	return g, priv
}

func testEntry(g *LiveGenesis, priv ed25519.PrivateKey, seq uint64, prev Hash, root byte) *LiveEntry {
	e := &LiveEntry{Chain: g.ID(), Seq: seq, Prev: prev, ProgramTime: g.Started + int64(seq)*1_000_000,
		Segments: []Segment{{Duration: 1_000_000, Size: 4096, Root: Hash{root}}}}
	e.Sign(priv)
	return e
}

func TestLiveGenesisAndEntryRoundTrip(t *testing.T) {
	g, priv := testGenesis(t)
	g2, err := DecodeLiveGenesis(g.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if g2.ID() != g.ID() {
		t.Fatal("genesis id changed in a round trip")
	}
	e := testEntry(g, priv, 0, Hash(g.ID()), 1)
	e2, err := DecodeLiveEntry(e.Encode(), g2, g.ID())
	if err != nil {
		t.Fatal(err)
	}
	if e2.Hash() != e.Hash() {
		t.Fatal("entry hash changed in a round trip")
	}
	// One flipped byte anywhere fails: shape, magic or signature.
	b := e.Encode()
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := DecodeLiveEntry(c, g, g.ID()); err == nil {
			t.Fatalf("entry with byte %d flipped was accepted", i)
		}
	}
	// Another publisher's entry is refused.
	_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	forged := testEntry(g, other, 0, Hash(g.ID()), 1)
	if _, err := DecodeLiveEntry(forged.Encode(), g, g.ID()); err == nil {
		t.Fatal("an entry signed by another key was accepted")
	}
}

func TestLiveChainRejectsForksGapsAndReorders(t *testing.T) {
	g, priv := testGenesis(t)
	c := NewLiveChain(g)
	e0 := testEntry(g, priv, 0, Hash(g.ID()), 1)
	e1 := testEntry(g, priv, 1, e0.Hash(), 2)
	e2 := testEntry(g, priv, 2, e1.Hash(), 3)
	if err := c.Append(e0); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(e2); !errors.Is(err, ErrLiveOutOfOrder) {
		t.Fatalf("a gap: got %v, want ErrLiveOutOfOrder", err)
	}
	if err := c.Append(e1); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(e1); err != nil {
		t.Fatalf("a repeated entry is a no-op, got %v", err)
	}
	fork := testEntry(g, priv, 1, e0.Hash(), 9)
	err := c.Append(fork)
	var fe *LiveForkError
	if !errors.As(err, &fe) {
		t.Fatalf("a fork: got %v, want *LiveForkError", err)
	}
	if err := fe.Proof.Check(g); err != nil {
		t.Fatalf("the fork proof does not check: %v", err)
	}
	// An entry that names a predecessor the chain does not hold.
	bad := testEntry(g, priv, 2, Hash{0xee}, 3)
	if err := c.Append(bad); !errors.Is(err, ErrLiveOutOfOrder) {
		t.Fatalf("wrong prev: got %v", err)
	}
	if h := c.Head(); h.Seq != 1 {
		t.Fatalf("refused entries changed the head: %d", h.Seq)
	}
	if err := c.Append(e2); err != nil {
		t.Fatal(err)
	}
	m := c.Manifest()
	if got := m.Renditions[0].Segments[2].Root; got != (Hash{3}) {
		t.Fatalf("manifest view segment 2 root %x", got[:1])
	}
	sealed, err := c.SealManifest(priv)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sealed.Renditions[0].Segments); n != 3 {
		t.Fatalf("sealed %d segments, want 3", n)
	}
	if _, err := DecodeManifest(sealed.Encode()); err != nil {
		t.Fatalf("sealed manifest does not decode: %v", err)
	}
	c.Seal()
	e3 := testEntry(g, priv, 3, e2.Hash(), 4)
	if err := c.Append(e3); !errors.Is(err, ErrLiveSealed) {
		t.Fatalf("after seal: got %v", err)
	}
}

func TestLiveChainJoinsMidBroadcastAndTrims(t *testing.T) {
	g, priv := testGenesis(t)
	prev := Hash(g.ID())
	var es []*LiveEntry
	for i := range 10 {
		e := testEntry(g, priv, uint64(i), prev, byte(i+1))
		prev = e.Hash()
		es = append(es, e)
	}
	c := NewLiveChain(g)
	for _, e := range es[6:] {
		if err := c.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Entries(0, 0); len(got) != 4 || got[0].Seq != 6 {
		t.Fatalf("entries from a mid-broadcast join: %d", len(got))
	}
	m := c.Manifest()
	if m.Renditions[0].Segments[3].Root != (Hash{}) {
		t.Fatal("a segment before the join has a root")
	}
	c.Trim(8)
	if _, ok := c.Entry(7); ok {
		t.Fatal("trimmed entry still held")
	}
	if _, err := c.SealManifest(priv); err == nil {
		t.Fatal("sealed a view that does not start at 0")
	}
}

func TestSubstreamIndicesPartitionPushedShards(t *testing.T) {
	seen := map[int]int{}
	for j := range 3 {
		for _, i := range SubstreamIndices(j, 3, DefaultLivePushShards) {
			if SubstreamOf(i, 3) != j {
				t.Fatalf("index %d in substream %d maps to %d", i, j, SubstreamOf(i, 3))
			}
			seen[i]++
		}
	}
	for i := range DefaultLivePushShards {
		if seen[i] != 1 {
			t.Fatalf("index %d carried %d times", i, seen[i])
		}
	}
}

func FuzzDecodeLiveEntry(f *testing.F) {
	g, priv := testGenesis(f)
	f.Add(testEntry(g, priv, 0, Hash(g.ID()), 1).Encode())
	f.Add(g.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeLiveEntry(b, g, g.ID())
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatal("accepted entry does not re-encode to its bytes")
		}
		if gg, err := DecodeLiveGenesis(b); err == nil && !bytes.Equal(gg.Encode(), b) {
			t.Fatal("accepted genesis does not re-encode")
		}
	})
}

func FuzzDecodeLiveGenesis(f *testing.F) {
	g, _ := testGenesis(f)
	f.Add(g.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		gg, err := DecodeLiveGenesis(b)
		if err != nil {
			return
		}
		if !bytes.Equal(gg.Encode(), b) {
			t.Fatal("accepted genesis does not re-encode to its bytes")
		}
	})
}
