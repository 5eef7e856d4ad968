package content

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// A live channel's broadcast is a chain: a signed genesis (the ladder, the
// coding parameters, the key id, the publisher) and then one signed entry
// per segment, each naming the hash of the entry before it. The chain id
// (the genesis hash) is a VideoID, and entry Seq is the segment index, so a
// live segment has the ordinary address SegmentRef{Video: chain, Rendition:
// r, Segment: seq}: shard routes, orders, receipts, bans and verification
// are the VoD ones. A chain is sealed into an ordinary Manifest when the
// broadcast ends (Seal): the recording plays as a video.
//
// Trust: every entry is signed on its own (a relay or player that receives
// entry 5123 can check it without entries 0..5122), and chaining makes two
// histories detectable: two validly signed entries with the same Seq and
// different bytes are a ForkProof against the publisher.

// Live encoding magics; versions share ManifestVersion's policy.
var (
	liveGenesisMagic = [4]byte{'S', 'W', 'L', 'G'}
	liveEntryMagic   = [4]byte{'S', 'W', 'L', 'E'}
)

// LiveVersion is the encoding of entries and of a standard chain's genesis
// (a low-latency genesis is LiveLowLatencyVersion).
const LiveVersion = 1

// Live limits, checked before any allocation an attacker could size.
const (
	maxLiveGenesisBytes = 8 << 10
	maxLiveEntryBytes   = 4 << 10
	// MaxLiveSegments bounds a chain: 2^20 segments is 12 days of 1 s
	// segments; a longer broadcast is sealed and a new chain starts.
	MaxLiveSegments = maxSegmentsPerRend
)

// DefaultLiveParams codes live segments k=4 of n_max=16. A 1 s segment is
// small (tens of KB), so k is lower than VoD's 8 to keep shards worth a
// request; the origin pushes only LivePushShards of them into the relay
// trees (see DefaultLivePushShards), the rest exist for regeneration.
func DefaultLiveParams() Params { return Params{K: 4, NMax: 16} }

// DefaultLivePushShards is how many shard indices (0..n-1) the origin pushes
// into the relay trees per segment per rendition: n/k = 1.25 copies of the
// segment leave the origin, and losing any one substream (one index each
// when Substreams == n) still leaves k.
const DefaultLivePushShards = 5

// DefaultLiveSegment is the default live segment duration.
const DefaultLiveSegment = time.Second

// SubstreamOf maps a pushed shard index to its substream: substream j of s
// carries the indices i < pushed with i mod s == j. Fixed for the life of a
// chain, so a relay's loss costs exactly one substream's indices.
func SubstreamOf(index, substreams int) int { return index % substreams }

// SubstreamIndices lists the shard indices substream j of s carries when
// pushed indices 0..pushed-1 go out.
func SubstreamIndices(j, substreams, pushed int) []int {
	var out []int
	for i := j; i < pushed; i += substreams {
		out = append(out, i)
	}
	return out
}

// LiveRendition is one rung of a live ladder, fixed at genesis.
type LiveRendition struct {
	Name      string // e.g. "360p"
	Bandwidth uint32 // peak bits per second the ladder is configured for
	Width     uint16
	Height    uint16
	Codecs    string // RFC 6381
}

// LiveGenesis starts a chain. Its hash is the chain id.
type LiveGenesis struct {
	Publisher      ed25519.PublicKey
	Channel        string // the coordinator's channel id (names the broadcast's channel)
	Title          string
	Params         Params
	KeyID          KeyID
	TargetDuration uint32 // µs; the nominal segment duration
	Renditions     []LiveRendition
	Started        int64    // unix µs when the broadcast started
	Nonce          [16]byte // distinct chains of one channel with equal settings
	// PartTarget (µs) makes a low-latency chain (livepart.go): its segments
	// are also published as signed parts of about this duration. 0: a
	// standard chain, encoded as LiveVersion exactly as before.
	PartTarget uint32
	Signature  []byte
}

func (g *LiveGenesis) encodeUnsigned(buf *bytes.Buffer) {
	w := encoder{buf: buf}
	buf.Write(liveGenesisMagic[:])
	if g.PartTarget > 0 {
		w.u8(LiveLowLatencyVersion)
	} else {
		w.u8(LiveVersion)
	}
	buf.Write(g.Publisher)
	w.str8(g.Channel)
	w.str16(g.Title)
	w.u8(uint8(g.Params.K))
	w.u16(uint16(g.Params.NMax))
	buf.Write(g.KeyID[:])
	w.u32(g.TargetDuration)
	w.u8(uint8(len(g.Renditions)))
	for _, r := range g.Renditions {
		w.str8(r.Name)
		w.u32(r.Bandwidth)
		w.u16(r.Width)
		w.u16(r.Height)
		w.str8(r.Codecs)
	}
	w.u64(uint64(g.Started))
	buf.Write(g.Nonce[:])
	if g.PartTarget > 0 {
		w.u32(g.PartTarget)
	}
}

// Encode is the canonical signed encoding.
func (g *LiveGenesis) Encode() []byte {
	var buf bytes.Buffer
	g.encodeUnsigned(&buf)
	buf.Write(g.Signature)
	return buf.Bytes()
}

// ID is the chain id: SHA-256 of the signed encoding.
func (g *LiveGenesis) ID() VideoID { return VideoID(sha256.Sum256(g.Encode())) }

// Sign fills Publisher and Signature.
func (g *LiveGenesis) Sign(key ed25519.PrivateKey) {
	g.Publisher = key.Public().(ed25519.PublicKey)
	var buf bytes.Buffer
	g.encodeUnsigned(&buf)
	g.Signature = ed25519.Sign(key, buf.Bytes())
}

func (g *LiveGenesis) checkShape() error {
	switch {
	case len(g.Publisher) != ed25519.PublicKeySize:
		return errors.New("live genesis: publisher key missing")
	case len(g.Channel) == 0 || len(g.Channel) > 255:
		return errors.New("live genesis: channel id must be 1..255 bytes")
	case len(g.Title) > 1024:
		return errors.New("live genesis: title longer than 1024 bytes")
	case g.TargetDuration == 0 || g.TargetDuration > maxSegmentDurationU:
		return fmt.Errorf("live genesis: target duration %dµs outside 1µs..60s", g.TargetDuration)
	case len(g.Renditions) == 0 || len(g.Renditions) > maxRenditions:
		return fmt.Errorf("live genesis: %d renditions, want 1..%d", len(g.Renditions), maxRenditions)
	case g.PartTarget != 0 && (g.PartTarget < MinLivePartTarget || g.PartTarget > MaxLivePartTarget || g.PartTarget >= g.TargetDuration):
		return fmt.Errorf("live genesis: part target %dµs: want %d..%dµs and shorter than the %dµs segment", g.PartTarget, MinLivePartTarget, MaxLivePartTarget, g.TargetDuration)
	}
	if err := g.Params.Validate(); err != nil {
		return fmt.Errorf("live genesis: %w", err)
	}
	for i, r := range g.Renditions {
		if len(r.Name) == 0 || len(r.Name) > 255 || len(r.Codecs) > 255 {
			return fmt.Errorf("live genesis: rendition %d: name must be 1..255 bytes, codecs ≤ 255", i)
		}
	}
	return nil
}

// Verify checks shape and signature; if trusted is non-nil the genesis must
// be signed by that key.
func (g *LiveGenesis) Verify(trusted ed25519.PublicKey) error {
	if err := g.checkShape(); err != nil {
		return err
	}
	if trusted != nil && !bytes.Equal(trusted, g.Publisher) {
		return fmt.Errorf("live genesis: signed by %x, not by the trusted publisher %x", []byte(g.Publisher[:8]), []byte(trusted[:8]))
	}
	var buf bytes.Buffer
	g.encodeUnsigned(&buf)
	if len(g.Signature) != ed25519.SignatureSize || !ed25519.Verify(g.Publisher, buf.Bytes(), g.Signature) {
		return errors.New("live genesis: bad signature: altered after signing or corrupted")
	}
	return nil
}

// DecodeLiveGenesis parses and verifies a genesis from untrusted bytes.
func DecodeLiveGenesis(data []byte) (*LiveGenesis, error) {
	if len(data) > maxLiveGenesisBytes {
		return nil, fmt.Errorf("live genesis: %d bytes exceeds the %d byte limit", len(data), maxLiveGenesisBytes)
	}
	d := decoder{buf: data}
	if m := d.bytes(4); d.err == nil && !bytes.Equal(m, liveGenesisMagic[:]) {
		return nil, errors.New("live genesis: not a Swarmcast live genesis (bad magic)")
	}
	v := d.u8()
	if d.err == nil && v != LiveVersion && v != LiveLowLatencyVersion {
		return nil, fmt.Errorf("live genesis: version %d not supported (this build reads %d and %d); upgrade swarmcast", v, LiveVersion, LiveLowLatencyVersion)
	}
	g := &LiveGenesis{}
	g.Publisher = ed25519.PublicKey(bytes.Clone(d.bytes(ed25519.PublicKeySize)))
	g.Channel = string(d.bytes(int(d.u8())))
	g.Title = string(d.bytes(int(d.u16())))
	g.Params.K = int(d.u8())
	g.Params.NMax = int(d.u16())
	copy(g.KeyID[:], d.bytes(16))
	g.TargetDuration = d.u32()
	nr := int(d.u8())
	if d.err == nil && (nr == 0 || nr > maxRenditions) {
		return nil, fmt.Errorf("live genesis: %d renditions, want 1..%d", nr, maxRenditions)
	}
	for i := 0; i < nr && d.err == nil; i++ {
		var r LiveRendition
		r.Name = string(d.bytes(int(d.u8())))
		r.Bandwidth = d.u32()
		r.Width = d.u16()
		r.Height = d.u16()
		r.Codecs = string(d.bytes(int(d.u8())))
		g.Renditions = append(g.Renditions, r)
	}
	g.Started = int64(d.u64())
	copy(g.Nonce[:], d.bytes(16))
	if v == LiveLowLatencyVersion {
		if g.PartTarget = d.u32(); d.err == nil && g.PartTarget == 0 {
			return nil, errors.New("live genesis: a low-latency genesis with no part target")
		}
	}
	g.Signature = bytes.Clone(d.bytes(ed25519.SignatureSize))
	if d.err != nil {
		return nil, fmt.Errorf("live genesis: %w", d.err)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("live genesis: %d unexpected trailing bytes", d.remaining())
	}
	if err := g.Verify(nil); err != nil {
		return nil, err
	}
	return g, nil
}

// LiveEntry commits to one segment of every rendition.
type LiveEntry struct {
	Chain VideoID
	Seq   uint64 // segment index, 0-based, consecutive
	// Prev is the hash of entry Seq-1 (Hash of its signed encoding), or the
	// chain id for Seq 0.
	Prev Hash
	// ProgramTime is the wall clock (unix µs, the origin's clock) of the
	// segment's first frame arriving at the origin: EXT-X-PROGRAM-DATE-TIME,
	// and the reference of glass-to-glass latency.
	ProgramTime int64
	// Discontinuity marks the first segment after the publisher resumed
	// (EXT-X-DISCONTINUITY: timestamps may jump).
	Discontinuity bool
	// Segments holds one segment per genesis rendition, in genesis order.
	Segments  []Segment
	Signature []byte
}

func (e *LiveEntry) encodeUnsigned(buf *bytes.Buffer) {
	w := encoder{buf: buf}
	buf.Write(liveEntryMagic[:])
	w.u8(LiveVersion)
	buf.Write(e.Chain[:])
	w.u64(e.Seq)
	buf.Write(e.Prev[:])
	w.u64(uint64(e.ProgramTime))
	var flags uint8
	if e.Discontinuity {
		flags |= 1
	}
	w.u8(flags)
	w.u8(uint8(len(e.Segments)))
	for _, s := range e.Segments {
		w.u32(s.Duration)
		w.u32(s.Size)
		buf.Write(s.Root[:])
	}
}

// Encode is the canonical signed encoding.
func (e *LiveEntry) Encode() []byte {
	var buf bytes.Buffer
	e.encodeUnsigned(&buf)
	buf.Write(e.Signature)
	return buf.Bytes()
}

// Hash is SHA-256 of the signed encoding: what the next entry's Prev names.
func (e *LiveEntry) Hash() Hash { return sha256.Sum256(e.Encode()) }

// Sign fills Signature with the publisher's signature.
func (e *LiveEntry) Sign(key ed25519.PrivateKey) {
	var buf bytes.Buffer
	e.encodeUnsigned(&buf)
	e.Signature = ed25519.Sign(key, buf.Bytes())
}

// Verify checks the entry against its chain's genesis: chain id, shape
// (one valid segment per rendition) and the publisher's signature. It does
// not check chaining (LiveChain.Append does).
func (e *LiveEntry) Verify(g *LiveGenesis, chain VideoID) error {
	if e.Chain != chain {
		return fmt.Errorf("live entry %d: belongs to chain %s, not %s", e.Seq, e.Chain, chain)
	}
	if e.Seq >= MaxLiveSegments {
		return fmt.Errorf("live entry %d: beyond the %d segments a chain may hold", e.Seq, MaxLiveSegments)
	}
	if len(e.Segments) != len(g.Renditions) {
		return fmt.Errorf("live entry %d: %d segments, the ladder has %d renditions", e.Seq, len(e.Segments), len(g.Renditions))
	}
	for r, s := range e.Segments {
		if s.Size == 0 || s.Size > maxSegmentBytes || s.Size%16 != 0 {
			return fmt.Errorf("live entry %d rendition %d: size %d is not a valid AES-128 ciphertext size", e.Seq, r, s.Size)
		}
		if s.Duration == 0 || s.Duration > maxSegmentDurationU {
			return fmt.Errorf("live entry %d rendition %d: duration %dµs outside 1µs..60s", e.Seq, r, s.Duration)
		}
	}
	var buf bytes.Buffer
	e.encodeUnsigned(&buf)
	if len(e.Signature) != ed25519.SignatureSize || !ed25519.Verify(g.Publisher, buf.Bytes(), e.Signature) {
		return fmt.Errorf("live entry %d: bad signature: not signed by the channel's publisher", e.Seq)
	}
	return nil
}

// DecodeLiveEntry parses an entry from untrusted bytes and verifies it
// against the chain's genesis (see Verify).
func DecodeLiveEntry(data []byte, g *LiveGenesis, chain VideoID) (*LiveEntry, error) {
	e, err := parseLiveEntry(data)
	if err != nil {
		return nil, err
	}
	if err := e.Verify(g, chain); err != nil {
		return nil, err
	}
	return e, nil
}

func parseLiveEntry(data []byte) (*LiveEntry, error) {
	if len(data) > maxLiveEntryBytes {
		return nil, fmt.Errorf("live entry: %d bytes exceeds the %d byte limit", len(data), maxLiveEntryBytes)
	}
	d := decoder{buf: data}
	if m := d.bytes(4); d.err == nil && !bytes.Equal(m, liveEntryMagic[:]) {
		return nil, errors.New("live entry: not a Swarmcast live entry (bad magic)")
	}
	if v := d.u8(); d.err == nil && v != LiveVersion {
		return nil, fmt.Errorf("live entry: version %d not supported (this build reads %d); upgrade swarmcast", v, LiveVersion)
	}
	e := &LiveEntry{}
	copy(e.Chain[:], d.bytes(32))
	e.Seq = d.u64()
	copy(e.Prev[:], d.bytes(32))
	e.ProgramTime = int64(d.u64())
	flags := d.u8()
	if d.err == nil && flags&^1 != 0 {
		return nil, fmt.Errorf("live entry: unknown flags %#x", flags)
	}
	e.Discontinuity = flags&1 != 0
	ns := int(d.u8())
	if d.err == nil && (ns == 0 || ns > maxRenditions) {
		return nil, fmt.Errorf("live entry: %d segments, want 1..%d", ns, maxRenditions)
	}
	for i := 0; i < ns && d.err == nil; i++ {
		var s Segment
		s.Duration = d.u32()
		s.Size = d.u32()
		copy(s.Root[:], d.bytes(32))
		e.Segments = append(e.Segments, s)
	}
	e.Signature = bytes.Clone(d.bytes(ed25519.SignatureSize))
	if d.err != nil {
		return nil, fmt.Errorf("live entry: %w", d.err)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("live entry: %d unexpected trailing bytes", d.remaining())
	}
	return e, nil
}

// ForkProof is two entries of one chain with the same Seq, both validly
// signed by the publisher, that differ: the publisher signed two histories.
// Anyone holding the genesis can check it (Check).
type ForkProof struct {
	A, B *LiveEntry
}

// Check verifies the proof against the chain's genesis.
func (p ForkProof) Check(g *LiveGenesis) error {
	chain := g.ID()
	if p.A == nil || p.B == nil {
		return errors.New("fork proof: needs two entries")
	}
	if err := p.A.Verify(g, chain); err != nil {
		return fmt.Errorf("fork proof: first entry: %w", err)
	}
	if err := p.B.Verify(g, chain); err != nil {
		return fmt.Errorf("fork proof: second entry: %w", err)
	}
	if p.A.Seq != p.B.Seq {
		return fmt.Errorf("fork proof: entries %d and %d are not the same position", p.A.Seq, p.B.Seq)
	}
	if p.A.Hash() == p.B.Hash() {
		return errors.New("fork proof: the two entries are identical")
	}
	return nil
}

// Chain errors; Append wraps them with the positions involved.
var (
	// ErrLiveFork: an entry at an already-held position differs from the
	// held one (the error is a *LiveForkError carrying the proof).
	ErrLiveFork = errors.New("fork: the publisher signed two different entries for one segment")
	// ErrLiveOutOfOrder: an entry whose Prev does not name the held
	// predecessor, or one older than the window.
	ErrLiveOutOfOrder = errors.New("entry does not follow the chain")
	// ErrLiveSealed: the chain is sealed; no entry follows.
	ErrLiveSealed = errors.New("the chain is sealed")
)

// LiveForkError carries the proof of a fork.
type LiveForkError struct{ Proof ForkProof }

func (e *LiveForkError) Error() string {
	return fmt.Sprintf("live entry %d: %v", e.Proof.A.Seq, ErrLiveFork)
}
func (e *LiveForkError) Unwrap() error { return ErrLiveFork }

// LiveChain is a verified view of one chain, safe for concurrent use. It
// may start at any entry (a node that joins mid-broadcast trusts the first
// entry it is given on its signature alone and chains from there); every
// later entry must name its predecessor. Entries that arrive ahead of a gap
// are refused (ErrLiveOutOfOrder): the caller fetches the missing ones first.
type LiveChain struct {
	genesis *LiveGenesis
	id      VideoID

	mu      sync.Mutex
	base    uint64 // Seq of the first held entry
	entries []*LiveEntry
	sealed  bool
	// snap is the manifest view of base..head, rebuilt by copy on append
	// (readers hold an immutable snapshot).
	snap *Manifest
}

// NewLiveChain starts an empty view of the chain g names. g must have been
// verified (DecodeLiveGenesis or Verify).
func NewLiveChain(g *LiveGenesis) *LiveChain {
	return &LiveChain{genesis: g, id: g.ID()}
}

// Genesis is the chain's genesis.
func (c *LiveChain) Genesis() *LiveGenesis { return c.genesis }

// ID is the chain id.
func (c *LiveChain) ID() VideoID { return c.id }

// Append verifies e and adds it at the head. An entry equal to a held one
// is a no-op (nil). A different entry at a held position is a
// *LiveForkError. The first entry of an empty view is accepted at any Seq
// (Seq 0 must name the chain id as Prev).
func (c *LiveChain) Append(e *LiveEntry) error {
	if err := e.Verify(c.genesis, c.id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 0 && e.Seq >= c.base && e.Seq < c.base+uint64(len(c.entries)) {
		held := c.entries[e.Seq-c.base]
		if held.Hash() == e.Hash() {
			return nil
		}
		return &LiveForkError{Proof: ForkProof{A: held, B: e}}
	}
	if c.sealed {
		return fmt.Errorf("live entry %d: %w", e.Seq, ErrLiveSealed)
	}
	if e.Seq == 0 && e.Prev != Hash(c.id) {
		return fmt.Errorf("live entry 0: %w: its predecessor must be the genesis", ErrLiveOutOfOrder)
	}
	if len(c.entries) == 0 {
		c.base = e.Seq
	} else {
		head := c.entries[len(c.entries)-1]
		if e.Seq != head.Seq+1 {
			return fmt.Errorf("live entry %d: %w: the head is %d; fetch the entries between first", e.Seq, ErrLiveOutOfOrder, head.Seq)
		}
		if e.Prev != head.Hash() {
			return fmt.Errorf("live entry %d: %w: it names a predecessor other than entry %d held here (a fork or a forgery)", e.Seq, ErrLiveOutOfOrder, head.Seq)
		}
	}
	c.entries = append(c.entries, e)
	c.snap = nil
	return nil
}

// Trim forgets entries below seq (a relay or edge keeps a window); the
// manifest view keeps their slots with zero roots, so no shard of them
// verifies.
func (c *LiveChain) Trim(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq <= c.base || len(c.entries) == 0 {
		return
	}
	drop := min(int(seq-c.base), len(c.entries)-1) // keep the head: it anchors the chaining
	c.entries = slices.Delete(c.entries, 0, drop)
	c.base += uint64(drop)
	c.snap = nil
}

// Head is the newest entry, or nil.
func (c *LiveChain) Head() *LiveEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return nil
	}
	return c.entries[len(c.entries)-1]
}

// Entry returns the held entry at seq.
func (c *LiveChain) Entry(seq uint64) (*LiveEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 || seq < c.base || seq >= c.base+uint64(len(c.entries)) {
		return nil, false
	}
	return c.entries[seq-c.base], true
}

// Entries returns the held entries from seq on (at most max; max ≤ 0 means all).
func (c *LiveChain) Entries(from uint64, max int) []*LiveEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return nil
	}
	from = maxU64(from, c.base)
	if from >= c.base+uint64(len(c.entries)) {
		return nil
	}
	out := c.entries[from-c.base:]
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return slices.Clone(out)
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Seal marks the chain ended: no entry may follow.
func (c *LiveChain) Seal() {
	c.mu.Lock()
	c.sealed = true
	c.mu.Unlock()
}

// Sealed reports whether Seal was called.
func (c *LiveChain) Sealed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sealed
}

// Manifest is an unsigned manifest view of the held entries, for
// VerifyShard, AcceptShard, Rebuild and JoinVerified: rendition r's
// Segments[seq] is entry seq's segment for seq in the held window, and a
// zero Segment (which no shard verifies against) below it. The returned
// manifest is immutable; each Append makes a new one on the next call.
// It is never signed or published: Seal makes the recording's manifest.
func (c *LiveChain) Manifest() *Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil {
		return c.snap
	}
	g := c.genesis
	m := &Manifest{Publisher: g.Publisher, Title: g.Title, Params: g.Params, KeyID: g.KeyID, TargetDuration: g.TargetDuration}
	end := c.base + uint64(len(c.entries))
	for r, lr := range g.Renditions {
		segs := make([]Segment, end)
		for i, e := range c.entries {
			segs[c.base+uint64(i)] = e.Segments[r]
		}
		m.Renditions = append(m.Renditions, Rendition{Name: lr.Name, Bandwidth: lr.Bandwidth, Width: lr.Width, Height: lr.Height, Codecs: lr.Codecs, Segments: segs})
	}
	c.snap = m
	return m
}

// SealManifest builds and signs the recording of a complete chain (held
// from entry 0): an ordinary VoD manifest with the same segments, roots and
// key, so the origin's packaged segments are the recording's unchanged
// (IVs derive from rendition and segment index, which are equal). Its id
// differs from the chain id.
func (c *LiveChain) SealManifest(key ed25519.PrivateKey) (*Manifest, error) {
	c.mu.Lock()
	entries := slices.Clone(c.entries)
	base := c.base
	c.mu.Unlock()
	if len(entries) == 0 {
		return nil, errors.New("seal: the chain has no entries")
	}
	if base != 0 {
		return nil, fmt.Errorf("seal: this view starts at entry %d; sealing needs the whole chain from 0", base)
	}
	g := c.genesis
	m := &Manifest{Title: g.Title, Params: g.Params, KeyID: g.KeyID, TargetDuration: g.TargetDuration}
	for r, lr := range g.Renditions {
		rend := Rendition{Name: lr.Name, Width: lr.Width, Height: lr.Height, Codecs: lr.Codecs}
		for _, e := range entries {
			rend.Segments = append(rend.Segments, e.Segments[r])
		}
		m.Renditions = append(m.Renditions, rend)
	}
	for r := range m.Renditions {
		peak, _ := m.Bitrates(r)
		m.Renditions[r].Bandwidth = uint32(min(peak, 1<<32-1))
	}
	m.Sign(key)
	if err := m.Verify(g.Publisher); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return m, nil
}

// encoder writes the big-endian fields of the binary encodings.
type encoder struct{ buf *bytes.Buffer }

func (w encoder) u8(v uint8) { w.buf.WriteByte(v) }
func (w encoder) u16(v uint16) {
	w.buf.WriteByte(byte(v >> 8))
	w.buf.WriteByte(byte(v))
}
func (w encoder) u32(v uint32) { w.u16(uint16(v >> 16)); w.u16(uint16(v)) }
func (w encoder) u64(v uint64) { w.u32(uint32(v >> 32)); w.u32(uint32(v)) }
func (w encoder) str8(s string) {
	w.u8(uint8(len(s)))
	w.buf.WriteString(s)
}
func (w encoder) str16(s string) {
	w.u16(uint16(len(s)))
	w.buf.WriteString(s)
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	}
	return 0
}
