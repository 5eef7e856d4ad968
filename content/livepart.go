package content

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Low-Latency HLS parts (docs/LIVE.md "Low-Latency HLS"). A low-latency
// chain's genesis names a part target (LiveGenesis.PartTarget); while a
// segment is being encoded the origin cuts each rendition's output at
// frame boundaries into parts of about that duration and signs one
// LivePart per part. A part is verified on its own (publisher signature,
// its position, the SHA-256 of its ciphertext) and chains to the part
// before it in its segment (Prev), so a forged, reordered or spliced part
// is refused before any byte of it is served. A segment's parts
// concatenated are exactly its plaintext (MPEG-TS concatenates), and the
// segment's entry, signed when the segment closes, still commits to the
// whole segment as before: parts are an early, separately signed view of
// bytes the entry then fixes. Standard chains have no parts and their
// genesis encoding is unchanged.

var livePartMagic = [4]byte{'S', 'W', 'L', 'P'}

// LiveLowLatencyVersion is the genesis encoding of a chain with parts: the
// version-1 fields followed by the part target. A genesis without parts is
// written as LiveVersion, byte for byte as before.
const LiveLowLatencyVersion = 2

// Part limits.
const (
	// MaxLiveParts bounds the parts of one segment (and so the work one
	// segment can cause a verifier).
	MaxLiveParts     = 64
	maxLivePartBytes = 4 << 20
	maxLivePartLen   = 2 << 10
	// MinLivePartTarget and MaxLivePartTarget bound a genesis' part target
	// (µs): below 100 ms the per-part signature and request overheads
	// dominate; above 2 s a part is no lower latency than a segment.
	MinLivePartTarget = 100_000
	MaxLivePartTarget = 2_000_000
)

// LivePartPiece is one rendition's bytes of a part: the size and SHA-256 of
// its ciphertext (AES-128-CBC with PartIV, PKCS#7).
type LivePartPiece struct {
	Size   uint32
	Digest Hash
}

// LivePart commits to one part of one segment of every rendition.
type LivePart struct {
	Chain VideoID
	Seq   uint64 // the segment (entry Seq) the part belongs to
	Index uint16 // 0-based position in the segment
	// Independent marks a part that starts with a keyframe
	// (EXT-X-PART INDEPENDENT=YES): part 0 of every segment, only it.
	Independent bool
	// Last marks the segment's final part: its parts are complete.
	Last bool
	// ProgramTime is the segment's (the entry's ProgramTime, unix µs), so
	// a playlist dates the segment in progress before its entry exists.
	ProgramTime int64
	// Prev is the Hash of part Index-1 of the same segment; zero for part 0.
	Prev     Hash
	Duration uint32 // µs
	Pieces   []LivePartPiece
	// Signature is the chain publisher's over the fields above.
	Signature []byte
}

func (p *LivePart) encodeUnsigned(buf *bytes.Buffer) {
	w := encoder{buf: buf}
	buf.Write(livePartMagic[:])
	w.u8(LiveLowLatencyVersion)
	buf.Write(p.Chain[:])
	w.u64(p.Seq)
	w.u16(p.Index)
	var flags uint8
	if p.Independent {
		flags |= 1
	}
	if p.Last {
		flags |= 2
	}
	w.u8(flags)
	w.u64(uint64(p.ProgramTime))
	buf.Write(p.Prev[:])
	w.u32(p.Duration)
	w.u8(uint8(len(p.Pieces)))
	for _, s := range p.Pieces {
		w.u32(s.Size)
		buf.Write(s.Digest[:])
	}
}

// Encode is the canonical signed encoding.
func (p *LivePart) Encode() []byte {
	var buf bytes.Buffer
	p.encodeUnsigned(&buf)
	buf.Write(p.Signature)
	return buf.Bytes()
}

// Hash is SHA-256 of the signed encoding: what the next part's Prev names.
func (p *LivePart) Hash() Hash { return sha256.Sum256(p.Encode()) }

// Sign fills Signature with the publisher's signature.
func (p *LivePart) Sign(key ed25519.PrivateKey) {
	var buf bytes.Buffer
	p.encodeUnsigned(&buf)
	p.Signature = ed25519.Sign(key, buf.Bytes())
}

// Verify checks the part against its chain's genesis: a low-latency chain,
// the chain id, the shape (one piece per rendition, a valid ciphertext
// size, part 0 and only part 0 independent with a zero Prev) and the
// publisher's signature. Chaining is LiveParts.Add's.
func (p *LivePart) Verify(g *LiveGenesis, chain VideoID) error {
	switch {
	case g.PartTarget == 0:
		return fmt.Errorf("live part %d.%d: chain %s has no parts (not a low-latency channel)", p.Seq, p.Index, chain)
	case p.Chain != chain:
		return fmt.Errorf("live part %d.%d: belongs to chain %s, not %s", p.Seq, p.Index, p.Chain, chain)
	case p.Seq >= MaxLiveSegments:
		return fmt.Errorf("live part %d.%d: beyond the %d segments a chain may hold", p.Seq, p.Index, MaxLiveSegments)
	case p.Index >= MaxLiveParts:
		return fmt.Errorf("live part %d.%d: a segment has at most %d parts", p.Seq, p.Index, MaxLiveParts)
	case p.Independent != (p.Index == 0):
		return fmt.Errorf("live part %d.%d: only part 0 starts with a keyframe", p.Seq, p.Index)
	case p.Index == 0 && p.Prev != (Hash{}):
		return fmt.Errorf("live part %d.0: the first part of a segment names no predecessor", p.Seq)
	case p.Duration == 0 || p.Duration > g.TargetDuration:
		return fmt.Errorf("live part %d.%d: duration %dµs outside 1µs..the %dµs segment target", p.Seq, p.Index, p.Duration, g.TargetDuration)
	case len(p.Pieces) != len(g.Renditions):
		return fmt.Errorf("live part %d.%d: %d pieces, the ladder has %d renditions", p.Seq, p.Index, len(p.Pieces), len(g.Renditions))
	}
	for r, s := range p.Pieces {
		if s.Size == 0 || s.Size > maxLivePartBytes || s.Size%16 != 0 {
			return fmt.Errorf("live part %d.%d rendition %d: size %d is not a valid AES-128 ciphertext size", p.Seq, p.Index, r, s.Size)
		}
	}
	var buf bytes.Buffer
	p.encodeUnsigned(&buf)
	if len(p.Signature) != ed25519.SignatureSize || !ed25519.Verify(g.Publisher, buf.Bytes(), p.Signature) {
		return fmt.Errorf("live part %d.%d: bad signature: not signed by the channel's publisher", p.Seq, p.Index)
	}
	return nil
}

// CheckPiece verifies rendition r's ciphertext against the part.
func (p *LivePart) CheckPiece(r int, ciphertext []byte) error {
	if r < 0 || r >= len(p.Pieces) {
		return fmt.Errorf("live part %d.%d: no rendition %d", p.Seq, p.Index, r)
	}
	s := p.Pieces[r]
	if uint32(len(ciphertext)) != s.Size || sha256.Sum256(ciphertext) != s.Digest {
		return fmt.Errorf("live part %d.%d rendition %d: bytes do not match the signed digest", p.Seq, p.Index, r)
	}
	return nil
}

// DecodeLivePart parses a part from untrusted bytes and verifies it
// against the chain's genesis (see Verify).
func DecodeLivePart(data []byte, g *LiveGenesis, chain VideoID) (*LivePart, error) {
	if len(data) > maxLivePartLen {
		return nil, fmt.Errorf("live part: %d bytes exceeds the %d byte limit", len(data), maxLivePartLen)
	}
	d := decoder{buf: data}
	if m := d.bytes(4); d.err == nil && !bytes.Equal(m, livePartMagic[:]) {
		return nil, errors.New("live part: not a Swarmcast live part (bad magic)")
	}
	if v := d.u8(); d.err == nil && v != LiveLowLatencyVersion {
		return nil, fmt.Errorf("live part: version %d not supported (this build reads %d); upgrade swarmcast", v, LiveLowLatencyVersion)
	}
	p := &LivePart{}
	copy(p.Chain[:], d.bytes(32))
	p.Seq = d.u64()
	p.Index = d.u16()
	flags := d.u8()
	if d.err == nil && flags&^3 != 0 {
		return nil, fmt.Errorf("live part: unknown flags %#x", flags)
	}
	p.Independent, p.Last = flags&1 != 0, flags&2 != 0
	p.ProgramTime = int64(d.u64())
	copy(p.Prev[:], d.bytes(32))
	p.Duration = d.u32()
	n := int(d.u8())
	if d.err == nil && (n == 0 || n > maxRenditions) {
		return nil, fmt.Errorf("live part: %d pieces, want 1..%d", n, maxRenditions)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var s LivePartPiece
		s.Size = d.u32()
		copy(s.Digest[:], d.bytes(32))
		p.Pieces = append(p.Pieces, s)
	}
	p.Signature = bytes.Clone(d.bytes(ed25519.SignatureSize))
	if d.err != nil {
		return nil, fmt.Errorf("live part: %w", d.err)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("live part: %d unexpected trailing bytes", d.remaining())
	}
	if err := p.Verify(g, chain); err != nil {
		return nil, err
	}
	return p, nil
}

// PartIV is the CBC IV of part `part` of a segment: derived like
// SegmentIV, in its own domain, so no (rendition, segment, part) shares an
// IV with another or with a whole segment.
func (k ContentKey) PartIV(rendition, segment, part int) [16]byte {
	mac := hmac.New(sha256.New, k[:])
	var b [16]byte
	copy(b[:4], "pv\x00\x00")
	binary.BigEndian.PutUint32(b[4:], uint32(rendition))
	binary.BigEndian.PutUint32(b[8:], uint32(segment))
	binary.BigEndian.PutUint32(b[12:], uint32(part))
	mac.Write(b[:])
	var iv [16]byte
	copy(iv[:], mac.Sum(nil))
	return iv
}

// ErrLivePartFork: two different, validly signed parts at one position
// (the publisher signed two versions of one part).
var ErrLivePartFork = errors.New("fork: the publisher signed two different parts for one position")

// LiveParts holds the verified parts of a low-latency chain's recent
// segments, safe for concurrent use. Add takes a part only in order within
// its segment (part 0, or the successor of a held part whose hash it
// names); segments may start at any Seq (a viewer joins mid-broadcast),
// and only the newest `keep` segments are held.
type LiveParts struct {
	genesis *LiveGenesis
	id      VideoID
	keep    int

	mu   sync.Mutex
	segs map[uint64][]*LivePart
}

// NewLiveParts is an empty view holding the newest keep segments' parts.
func NewLiveParts(g *LiveGenesis, keep int) *LiveParts {
	return &LiveParts{genesis: g, id: g.ID(), keep: max(keep, 1), segs: map[uint64][]*LivePart{}}
}

// Add verifies p and appends it to its segment. An equal part already held
// is a no-op; a different one at a held position is ErrLivePartFork; a
// part whose predecessor is not held, or whose Prev does not name it, is
// ErrLiveOutOfOrder. Nothing is kept on an error.
func (lp *LiveParts) Add(p *LivePart) error {
	if err := p.Verify(lp.genesis, lp.id); err != nil {
		return err
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	held := lp.segs[p.Seq]
	if int(p.Index) < len(held) {
		if held[p.Index].Hash() == p.Hash() {
			return nil
		}
		return fmt.Errorf("live part %d.%d: %w", p.Seq, p.Index, ErrLivePartFork)
	}
	if len(held) > 0 && held[len(held)-1].Last {
		return fmt.Errorf("live part %d.%d: the segment ended at part %d: %w", p.Seq, p.Index, len(held)-1, ErrLiveOutOfOrder)
	}
	if int(p.Index) != len(held) {
		return fmt.Errorf("live part %d.%d: holds %d parts of the segment: %w", p.Seq, p.Index, len(held), ErrLiveOutOfOrder)
	}
	if p.Index > 0 && held[p.Index-1].Hash() != p.Prev {
		return fmt.Errorf("live part %d.%d: does not name part %d: %w", p.Seq, p.Index, p.Index-1, ErrLiveOutOfOrder)
	}
	if p.Index > 0 && held[0].ProgramTime != p.ProgramTime {
		return fmt.Errorf("live part %d.%d: program time differs from part 0's: %w", p.Seq, p.Index, ErrLiveOutOfOrder)
	}
	if held == nil {
		lp.evictLocked(p.Seq)
	}
	lp.segs[p.Seq] = append(held, p)
	return nil
}

// evictLocked drops the oldest segments so that, with newSeq, keep remain.
func (lp *LiveParts) evictLocked(newSeq uint64) {
	for len(lp.segs) >= lp.keep {
		oldest := newSeq
		for s := range lp.segs {
			oldest = min(oldest, s)
		}
		if oldest == newSeq {
			return
		}
		delete(lp.segs, oldest)
	}
}

// Segment is the held parts of segment seq, in order.
func (lp *LiveParts) Segment(seq uint64) []*LivePart {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return append([]*LivePart(nil), lp.segs[seq]...)
}

// Drop forgets segment seq's parts (its entry disagreed with them).
func (lp *LiveParts) Drop(seq uint64) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	delete(lp.segs, seq)
}
