package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/swarmcast/swarmcast/content"
)

func key(seed byte) (ed25519.PrivateKey, NodeID) {
	s := make([]byte, 32)
	s[0] = seed
	k := ed25519.NewKeyFromSeed(s)
	return k, NodeID(hex.EncodeToString(k.Public().(ed25519.PublicKey)))
}

// videoID is the id whose every byte is b.
func videoID(b byte) content.VideoID {
	var id content.VideoID
	for i := range id {
		id[i] = b
	}
	return id
}

func TestOrderSignatures(t *testing.T) {
	coord, _ := key(1)
	viewer, viewerID := key(2)
	_, edgeID := key(3)
	l := OrderLimit{Serial: Serial{1, 2, 3}, Edge: edgeID, Viewer: viewerID, Video: videoID(0xab), MaxBytes: 1 << 20, ExpiresUnixMs: 1_700_000_000_000}
	SignOrderLimit(coord, &l)
	pub := coord.Public().(ed25519.PublicKey)
	if err := VerifyOrderLimit(pub, &l); err != nil {
		t.Fatal(err)
	}
	o := Order{Serial: l.Serial, Amount: 4096}
	SignOrder(viewer, &o)
	if err := VerifyOrder(&l, &o); err != nil {
		t.Fatal(err)
	}

	// JSON round trip keeps signatures valid; serial is hex.
	b, err := json.Marshal(SettlementPair{Limit: l, Order: o})
	if err != nil || !bytes.Contains(b, []byte(`"serial":"01020300000000000000000000000000"`)) {
		t.Fatalf("json %s %v", b, err)
	}
	var back SettlementPair
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if VerifyOrderLimit(pub, &back.Limit) != nil || VerifyOrder(&back.Limit, &back.Order) != nil {
		t.Fatal("signatures broke in a JSON round trip")
	}
	if err := json.Unmarshal([]byte(`{"serial":"zz"}`), &back.Order); err == nil {
		t.Fatal("bad serial parsed")
	}

	// Every field is covered by the signature.
	for name, tamper := range map[string]func(*OrderLimit){
		"serial":  func(l *OrderLimit) { l.Serial[15] ^= 1 },
		"edge":    func(l *OrderLimit) { l.Edge = viewerID },
		"viewer":  func(l *OrderLimit) { l.Viewer = edgeID },
		"video":   func(l *OrderLimit) { l.Video = videoID(0xcd) },
		"max":     func(l *OrderLimit) { l.MaxBytes++ },
		"expires": func(l *OrderLimit) { l.ExpiresUnixMs++ },
		"sig":     func(l *OrderLimit) { l.Signature = l.Signature[:10] },
	} {
		c := l
		c.Signature = bytes.Clone(l.Signature)
		tamper(&c)
		if VerifyOrderLimit(pub, &c) == nil {
			t.Errorf("limit with tampered %s verifies", name)
		}
	}
	o2 := o
	o2.Amount++
	if VerifyOrder(&l, &o2) == nil {
		t.Error("order with tampered amount verifies")
	}
	// Domain separation: the coordinator's limit signature is not an order signature.
	forged := Order{Serial: l.Serial, Amount: 1, Signature: l.Signature}
	if VerifyOrder(&l, &forged) == nil {
		t.Error("limit signature accepted as an order signature")
	}
	if VerifyOrderLimit(nil, &l) == nil {
		t.Error("nil key verifies")
	}
	bad := l
	bad.Viewer = "nothex"
	if VerifyOrder(&bad, &o) == nil {
		t.Error("order under a limit with a malformed viewer key verifies")
	}
}

func TestEncodingsAreDomainSeparated(t *testing.T) {
	l := OrderLimit{}
	o := Order{}
	r := ServedShardReceipt{}
	for _, pfx := range []struct {
		b    []byte
		want string
	}{{l.SigningBytes(), orderLimitDomain}, {o.SigningBytes(), orderDomain}, {r.SigningBytes(), shardReceiptDomain}} {
		if !bytes.HasPrefix(pfx.b, []byte(pfx.want)) {
			t.Errorf("encoding %q lacks prefix %q", pfx.b, pfx.want)
		}
	}
	// Length prefixes: moving bytes between string fields changes the encoding.
	a := OrderLimit{Edge: "ab", Viewer: "c"}
	b := OrderLimit{Edge: "a", Viewer: "bc"}
	if bytes.Equal(a.SigningBytes(), b.SigningBytes()) {
		t.Error("ambiguous encoding")
	}
}

func TestShardReceiptProvesBadShard(t *testing.T) {
	edge, edgeID := key(4)
	m, shard := sampleShard(t)
	ref := content.SegmentRef{Video: m.ID()}.Shard(shard.Index)
	encode := func(sh content.Shard) []byte {
		return (&content.ShardMessage{Video: ref.Video, Rendition: ref.Rendition, Segment: ref.Segment, Shard: sh}).Encode()
	}
	good := encode(shard)
	r := SignShardReceipt(edge, ref, good)
	if r.Edge != edgeID || r.ShardSHA256 != sha256.Sum256(good) {
		t.Fatalf("receipt %+v", r)
	}
	if err := VerifyShardReceipt(&r, good); err != nil {
		t.Fatal(err)
	}
	// A good shard proves nothing.
	if err := ProveBadShard(m, &r, good); !errors.Is(err, ErrShardIsGood) {
		t.Fatalf("good shard: %v", err)
	}
	// The edge signed bad bytes: conclusive.
	badData := bytes.Clone(shard.Data)
	badData[0] ^= 0xff
	bad := encode(content.Shard{Index: shard.Index, Data: badData, Proof: shard.Proof})
	rb := SignShardReceipt(edge, ref, bad)
	if err := ProveBadShard(m, &rb, bad); err != nil {
		t.Fatalf("bad shard not proven: %v", err)
	}
	// JSON round trip keeps the proof.
	j, _ := json.Marshal(rb)
	var back ServedShardReceipt
	if err := json.Unmarshal(j, &back); err != nil || ProveBadShard(m, &back, bad) != nil {
		t.Fatalf("proof lost in JSON: %v", err)
	}
	// Bytes the edge did not sign prove nothing against it.
	if err := ProveBadShard(m, &r, bad); err == nil || errors.Is(err, ErrShardIsGood) {
		t.Fatalf("unsigned bad bytes blamed on the edge: %v", err)
	}
	// ATTACK: keep the edge's good data, swap in a broken Merkle proof. The
	// receipt covers the whole message, so the swap proves nothing.
	broken := slices.Clone(shard.Proof)
	if len(broken) == 0 {
		t.Fatal("sample shard has no proof to break")
	}
	broken[0][0] ^= 0xff
	framed := encode(content.Shard{Index: shard.Index, Data: shard.Data, Proof: broken})
	if err := ProveBadShard(m, &r, framed); err == nil || errors.Is(err, ErrShardIsGood) {
		t.Fatalf("good data with a swapped proof blamed on the edge: %v", err)
	}
	// The edge signed for bytes that are no shard message, or for another
	// shard's message in answer to this one: conclusive too.
	garbage := []byte("not a shard message")
	if rg := SignShardReceipt(edge, ref, garbage); ProveBadShard(m, &rg, garbage) != nil {
		t.Fatal("signed garbage not proven")
	}
	if rw := SignShardReceipt(edge, ref.SegmentRef.Shard(shard.Index+1), good); ProveBadShard(m, &rw, good) != nil {
		t.Fatal("a message for shard 0 signed as the answer for shard 1 not proven")
	}
	// A forged receipt (wrong signer) proves nothing.
	other, _ := key(5)
	forged := SignShardReceipt(other, ref, bad)
	forged.Edge = edgeID
	if ProveBadShard(m, &forged, bad) == nil {
		t.Fatal("forged receipt accepted")
	}
	// Positions outside the manifest prove nothing.
	rv := SignShardReceipt(edge, content.SegmentRef{Video: content.VideoID{}}.Shard(shard.Index), bad)
	if ProveBadShard(m, &rv, bad) == nil {
		t.Fatal("receipt for another video accepted")
	}
	rs := SignShardReceipt(edge, content.SegmentRef{Video: m.ID(), Segment: 999}.Shard(shard.Index), bad)
	if ProveBadShard(m, &rs, bad) == nil {
		t.Fatal("receipt for a segment outside the manifest accepted")
	}
	ri := SignShardReceipt(edge, ref.SegmentRef.Shard(m.Params.NMax), bad)
	if ProveBadShard(m, &ri, bad) == nil {
		t.Fatal("receipt for a shard index outside n_max accepted")
	}
}

// sampleShard packages one tiny segment and returns its manifest and shard 0.
func sampleShard(t testing.TB) (*content.Manifest, content.Shard) {
	t.Helper()
	pub, _ := key(9)
	p := content.DefaultParams()
	var ck content.ContentKey
	plain := bytes.Repeat([]byte("swarmcast"), 500)
	ct, root, err := content.PackageSegment(p, ck, 0, 0, plain)
	if err != nil {
		t.Fatal(err)
	}
	m := &content.Manifest{
		Publisher: pub.Public().(ed25519.PublicKey), Title: "t", Params: p, TargetDuration: 2_000_000,
		Renditions: []content.Rendition{{Bandwidth: 1, Width: 2, Height: 2, Segments: []content.Segment{{Duration: 2_000_000, Size: uint32(len(ct)), Root: root}}}},
	}
	m.Renditions[0].Root = content.RenditionRoot(m.Renditions[0].Segments)
	shards, err := content.EncodeShards(p, ct)
	if err != nil {
		t.Fatal(err)
	}
	leaves := content.ShardLeaves(shards)
	return m, content.Shard{Index: 0, Data: shards[0], Proof: content.InclusionProof(leaves, 0)}
}

// FuzzSettlementBatchJSON feeds untrusted settlement bodies through decoding
// and every verifier: nothing may panic, and a decoded pair re-encodes to
// JSON that decodes to the same signing bytes.
func FuzzSettlementBatchJSON(f *testing.F) {
	coord, _ := key(1)
	viewer, viewerID := key(2)
	_, edgeID := key(3)
	l := OrderLimit{Serial: Serial{7}, Edge: edgeID, Viewer: viewerID, Video: videoID(0xab), MaxBytes: 100, ExpiresUnixMs: 5}
	SignOrderLimit(coord, &l)
	o := Order{Serial: l.Serial, Amount: 50}
	SignOrder(viewer, &o)
	good, _ := json.Marshal(SettlementBatch{ID: "b1", Edge: edgeID, Pairs: []SettlementPair{{l, o}}})
	f.Add(good)
	f.Add([]byte(`{"id":"x","pairs":[{"limit":{"serial":"00"},"order":{}}]}`))
	f.Add([]byte(`{"pairs":[{"limit":{"viewer":"zz","max_bytes":-1},"order":{"amount":-5,"signature":"AAAA"}}]}`))
	f.Add([]byte(`[]`))
	pub := coord.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, body []byte) {
		var b SettlementBatch
		if json.Unmarshal(body, &b) != nil {
			return
		}
		for i := range b.Pairs {
			p := &b.Pairs[i]
			VerifyOrderLimit(pub, &p.Limit)
			VerifyOrder(&p.Limit, &p.Order)
			again, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back SettlementPair
			if err := json.Unmarshal(again, &back); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Limit.SigningBytes(), p.Limit.SigningBytes()) || !bytes.Equal(back.Order.SigningBytes(), p.Order.SigningBytes()) {
				t.Fatal("JSON round trip changed the signed bytes")
			}
		}
	})
}

// FuzzProveBadShard feeds untrusted evidence (the reported bytes) and
// receipt JSON through the bad-shard judge: nothing may panic, and nothing
// but a receipt the edge really signed over exactly those bytes may prove
// anything.
func FuzzProveBadShard(f *testing.F) {
	edge, _ := key(4)
	m, shard := sampleShard(f)
	ref := content.SegmentRef{Video: m.ID()}.Shard(shard.Index)
	good := (&content.ShardMessage{Video: ref.Video, Shard: shard}).Encode()
	rc, _ := json.Marshal(SignShardReceipt(edge, ref, good))
	f.Add(good, rc)
	f.Add([]byte("junk"), rc)
	f.Add(good[:len(good)/2], []byte(`{"edge":"zz","shard":-1}`))
	f.Fuzz(func(t *testing.T, evidence, receipt []byte) {
		var r ServedShardReceipt
		if json.Unmarshal(receipt, &r) != nil {
			return
		}
		if err := ProveBadShard(m, &r, evidence); err == nil && VerifyShardReceipt(&r, evidence) != nil {
			t.Fatalf("proven without a valid receipt over the evidence")
		}
	})
}
