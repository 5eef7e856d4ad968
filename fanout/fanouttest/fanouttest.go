// Package fanouttest makes real live chains for tests of the fan-out:
// a publisher that signs a genesis and chained entries over erasure-coded
// segments with Merkle proofs, exactly as the origin's packager does (the
// segment bytes are random, AES-block-sized ciphertext: the fan-out never
// decrypts), and the coordinator's live chain routes served from it.
package fanouttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/wire"
)

// Publisher signs one chain.
type Publisher struct {
	Key     ed25519.PrivateKey
	Genesis *content.LiveGenesis
	Chain   content.VideoID
	// Pushed is how many indices (0..Pushed-1) Next packages per rendition.
	Pushed int

	rng *mrand.Rand

	mu      sync.Mutex
	entries []*content.LiveEntry
}

// NewPublisher starts a chain of renditions rungs coded k=4 of n=16
// (content.DefaultLiveParams), 1 s segments, seeded by seed.
func NewPublisher(renditions int, seed uint64) *Publisher {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return NewPublisherFor(key, "ch_0123456789abcdef", content.KeyID{}, renditions, seed)
}

// NewPublisherFor is NewPublisher signing with key (an origin's node key,
// for a coordinator that checks who starts a chain) for channel, with the
// content key id keyID.
func NewPublisherFor(key ed25519.PrivateKey, channel string, keyID content.KeyID, renditions int, seed uint64) *Publisher {
	g := &content.LiveGenesis{Channel: channel, KeyID: keyID, Title: "fanout test", Params: content.DefaultLiveParams(),
		TargetDuration: uint32(content.DefaultLiveSegment / time.Microsecond), Started: 1_780_000_000_000_000}
	for r := range renditions {
		g.Renditions = append(g.Renditions, content.LiveRendition{Name: fmt.Sprintf("r%d", r), Bandwidth: 800_000, Width: 640, Height: 360, Codecs: "avc1.64001e"})
	}
	g.Nonce[0] = byte(seed)
	g.Sign(key)
	return &Publisher{Key: key, Genesis: g, Chain: g.ID(), Pushed: content.DefaultLivePushShards, rng: mrand.New(mrand.NewPCG(seed, 1))}
}

// Next packages and signs the next segment: its entry and the shards of
// indices 0..Pushed-1 of every rendition.
func (p *Publisher) Next() (*content.LiveEntry, fanout.Segment) { return p.NextSized(0) }

// NextSized is Next with every rendition's segment size bytes (rounded up
// to the AES block); 0 is a random 1–2 KB.
func (p *Publisher) NextSized(size int) (*content.LiveEntry, fanout.Segment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq := uint64(len(p.entries))
	prev := content.Hash(p.Chain)
	if seq > 0 {
		prev = p.entries[seq-1].Hash()
	}
	e := &content.LiveEntry{Chain: p.Chain, Seq: seq, Prev: prev, ProgramTime: p.Genesis.Started + int64(seq)*1_000_000}
	var shards []*content.ShardMessage
	for r := range p.Genesis.Renditions {
		n := 16 * (64 + p.rng.IntN(64))
		if size > 0 {
			n = (size + 15) / 16 * 16
		}
		ct := make([]byte, n)
		for i := range ct {
			ct[i] = byte(p.rng.Uint32())
		}
		seg, msgs := Package(p.Genesis.Params, p.Chain, r, int(seq), ct, p.Pushed)
		e.Segments = append(e.Segments, seg)
		shards = append(shards, msgs...)
	}
	e.Sign(p.Key)
	p.entries = append(p.entries, e)
	return e, fanout.Segment{Chain: p.Chain, Seq: seq, Entry: e.Encode(), Shards: shards}
}

// Package codes ciphertext ct as segment seg of rendition r and returns
// its Segment and the shard messages of indices 0..pushed-1.
func Package(params content.Params, chain content.VideoID, r, seg int, ct []byte, pushed int) (content.Segment, []*content.ShardMessage) {
	data, err := content.EncodeShards(params, ct)
	if err != nil {
		panic(err) // params and sizes are this package's own
	}
	leaves := content.ShardLeaves(data)
	out := make([]*content.ShardMessage, 0, pushed)
	for i := range pushed {
		out = append(out, &content.ShardMessage{Video: chain, Rendition: r, Segment: seg,
			Shard: content.Shard{Index: i, Data: data[i], Proof: content.InclusionProof(leaves, i)}})
	}
	return content.Segment{Duration: 1_000_000, Size: uint32(len(ct)), Root: content.MerkleRoot(leaves)}, out
}

// Fork signs a different entry at seq (another segment 0 root): the
// publisher's second history.
func (p *Publisher) Fork(seq uint64) (*content.LiveEntry, fanout.Segment) {
	p.mu.Lock()
	held := *p.entries[seq]
	p.mu.Unlock()
	e := held
	e.Segments = append([]content.Segment(nil), held.Segments...)
	var shards []*content.ShardMessage
	for r := range e.Segments {
		ct := make([]byte, 16*80)
		ct[0] = byte(r + 1)
		seg, msgs := Package(p.Genesis.Params, p.Chain, r, int(seq), ct, p.Pushed)
		e.Segments[r] = seg
		shards = append(shards, msgs...)
	}
	e.Sign(p.Key)
	return &e, fanout.Segment{Chain: p.Chain, Seq: seq, Entry: e.Encode(), Shards: shards}
}

// LiveGenesis serves the genesis (fanout.Coordinator).
func (p *Publisher) LiveGenesis(_ context.Context, chain content.VideoID) ([]byte, error) {
	if chain != p.Chain {
		return nil, fmt.Errorf("no chain %s", chain)
	}
	return p.Genesis.Encode(), nil
}

// LiveEntries serves the signed entries from seq on (fanout.Coordinator).
func (p *Publisher) LiveEntries(_ context.Context, chain content.VideoID, from uint64, _ int) ([][]byte, error) {
	if chain != p.Chain {
		return nil, fmt.Errorf("no chain %s", chain)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, e := range p.entries[min(int(from), len(p.entries)):] {
		out = append(out, e.Encode())
	}
	return out, nil
}

// Routes serves the coordinator's genesis and entries routes for this
// chain on mux, as the coordinator answers them.
func (p *Publisher) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+wire.PathLiveGenesis, func(w http.ResponseWriter, r *http.Request) {
		id, err := content.ParseVideoID(r.PathValue("chain"))
		b, gerr := p.LiveGenesis(r.Context(), id)
		if err != nil || gerr != nil {
			wire.WriteError(w, http.StatusNotFound, "no chain %s", r.PathValue("chain"))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("GET "+wire.PathLiveEntries, func(w http.ResponseWriter, r *http.Request) {
		id, err := content.ParseVideoID(r.PathValue("chain"))
		from, ferr := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		es, gerr := p.LiveEntries(r.Context(), id, from, 0)
		if err != nil || ferr != nil || gerr != nil {
			wire.WriteError(w, http.StatusNotFound, "no chain %s", r.PathValue("chain"))
			return
		}
		w.Header().Set("Content-Type", wire.ContentTypeLiveEntries)
		w.Write(wire.EncodeLiveEntries(es))
	})
}
