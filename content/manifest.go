package content

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ManifestVersion is the only manifest encoding this code reads and writes.
const ManifestVersion = 1

var manifestMagic = [4]byte{'S', 'W', 'M', 'F'}

// Decoder limits: a manifest larger than these is rejected before any
// allocation proportional to attacker-chosen counts.
const (
	maxRenditions       = 16
	maxSegmentsPerRend  = 1 << 20 // ~24 days of 2 s segments
	maxManifestBytes    = 64 << 20
	maxSegmentBytes     = 64 << 20
	maxSegmentDurationU = 60_000_000 // 60 s in µs
)

// VideoID is the SHA-256 of a video's signed manifest bytes.
type VideoID Hash

// String is the lowercase hex form used in URLs, paths and the CLI.
func (id VideoID) String() string { return hex.EncodeToString(id[:]) }

// ParseVideoID parses the 64-character hex form of a video id.
func ParseVideoID(s string) (VideoID, error) {
	var id VideoID
	if len(s) != 64 {
		return id, fmt.Errorf("video id %q: want 64 hex characters, got %d", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("video id %q: not hex: %v", s, err)
	}
	return id, nil
}

// KeyID names a content key without revealing it.
type KeyID [16]byte

// Segment is one encrypted media segment as the manifest commits to it.
type Segment struct {
	Duration uint32 // microseconds of media
	Size     uint32 // bytes of ciphertext (AES-128-CBC, PKCS#7 padded)
	Root     Hash   // RFC 6962 root over the leaf hashes of all NMax shards
}

// Rendition is one rung of the ABR ladder.
type Rendition struct {
	Name      string // e.g. "360p"
	Bandwidth uint32 // peak bits per second, for EXT-X-STREAM-INF
	Width     uint16
	Height    uint16
	Codecs    string // RFC 6381 codecs string, may be empty
	Root      Hash   // RFC 6962 root over the segment roots
	Segments  []Segment
}

// Manifest describes a packaged video. Encode is deterministic: the same
// manifest always produces the same bytes, so the video id is stable.
type Manifest struct {
	Publisher      ed25519.PublicKey
	Title          string
	Params         Params
	KeyID          KeyID
	TargetDuration uint32 // microseconds; the nominal segment duration
	Renditions     []Rendition
	Signature      []byte // ed25519 over the encoding without the signature
}

// Duration is the media duration of rendition r.
func (m *Manifest) Duration(r int) time.Duration {
	var total time.Duration
	for _, s := range m.Renditions[r].Segments {
		total += time.Duration(s.Duration) * time.Microsecond
	}
	return total
}

// ID is the SHA-256 of the signed encoding.
func (m *Manifest) ID() VideoID {
	return VideoID(sha256.Sum256(m.Encode()))
}

// RenditionRoot recomputes a rendition's root from its segment roots.
func RenditionRoot(segs []Segment) Hash {
	leaves := make([]Hash, len(segs))
	for i, s := range segs {
		leaves[i] = s.Root
	}
	return MerkleRoot(leaves)
}

func (m *Manifest) encodeUnsigned(buf *bytes.Buffer) {
	var scratch [8]byte
	u8 := func(v uint8) { buf.WriteByte(v) }
	u16 := func(v uint16) { binary.BigEndian.PutUint16(scratch[:2], v); buf.Write(scratch[:2]) }
	u32 := func(v uint32) { binary.BigEndian.PutUint32(scratch[:4], v); buf.Write(scratch[:4]) }
	str8 := func(s string) { u8(uint8(len(s))); buf.WriteString(s) }

	buf.Write(manifestMagic[:])
	u8(ManifestVersion)
	buf.Write(m.Publisher)
	u16(uint16(len(m.Title)))
	buf.WriteString(m.Title)
	u8(uint8(m.Params.K))
	u16(uint16(m.Params.NMax))
	buf.Write(m.KeyID[:])
	u32(m.TargetDuration)
	u8(uint8(len(m.Renditions)))
	for _, r := range m.Renditions {
		str8(r.Name)
		u32(r.Bandwidth)
		u16(r.Width)
		u16(r.Height)
		str8(r.Codecs)
		buf.Write(r.Root[:])
		u32(uint32(len(r.Segments)))
		for _, s := range r.Segments {
			u32(s.Duration)
			u32(s.Size)
			buf.Write(s.Root[:])
		}
	}
}

// signedBytes is what the publisher signs.
func (m *Manifest) signedBytes() []byte {
	var buf bytes.Buffer
	m.encodeUnsigned(&buf)
	return buf.Bytes()
}

// Encode returns the canonical signed encoding.
func (m *Manifest) Encode() []byte {
	var buf bytes.Buffer
	m.encodeUnsigned(&buf)
	buf.Write(m.Signature)
	return buf.Bytes()
}

// Sign fills Publisher, rendition roots and Signature.
func (m *Manifest) Sign(key ed25519.PrivateKey) {
	m.Publisher = key.Public().(ed25519.PublicKey)
	for i := range m.Renditions {
		m.Renditions[i].Root = RenditionRoot(m.Renditions[i].Segments)
	}
	m.Signature = ed25519.Sign(key, m.signedBytes())
}

// checkShape validates everything about a manifest except its signature.
func (m *Manifest) checkShape() error {
	if len(m.Publisher) != ed25519.PublicKeySize {
		return errors.New("manifest: publisher key missing")
	}
	if len(m.Title) > 1024 {
		return errors.New("manifest: title longer than 1024 bytes")
	}
	if err := m.Params.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if len(m.Renditions) == 0 || len(m.Renditions) > maxRenditions {
		return fmt.Errorf("manifest: %d renditions, want 1..%d", len(m.Renditions), maxRenditions)
	}
	for ri, r := range m.Renditions {
		if len(r.Name) > 255 || len(r.Codecs) > 255 {
			return fmt.Errorf("manifest: rendition %d: name or codecs longer than 255 bytes", ri)
		}
		if len(r.Segments) == 0 {
			return fmt.Errorf("manifest: rendition %d (%s) has no segments", ri, r.Name)
		}
		if len(r.Segments) > maxSegmentsPerRend {
			return fmt.Errorf("manifest: rendition %d has %d segments, limit %d", ri, len(r.Segments), maxSegmentsPerRend)
		}
		for si, s := range r.Segments {
			if s.Size == 0 || s.Size > maxSegmentBytes || s.Size%16 != 0 {
				return fmt.Errorf("manifest: rendition %d segment %d: size %d is not a valid AES-128 ciphertext size (1..%d, multiple of 16)", ri, si, s.Size, maxSegmentBytes)
			}
			if s.Duration == 0 || s.Duration > maxSegmentDurationU {
				return fmt.Errorf("manifest: rendition %d segment %d: duration %dµs outside 1µs..60s", ri, si, s.Duration)
			}
		}
		if RenditionRoot(r.Segments) != r.Root {
			return fmt.Errorf("manifest: rendition %d (%s): root does not match its segment roots", ri, r.Name)
		}
	}
	return nil
}

// Verify checks shape, rendition roots and the publisher's signature. If
// trusted is non-nil the manifest must also be signed by that key.
func (m *Manifest) Verify(trusted ed25519.PublicKey) error {
	if err := m.checkShape(); err != nil {
		return err
	}
	if trusted != nil && !bytes.Equal(trusted, m.Publisher) {
		return fmt.Errorf("manifest: signed by publisher %x, not by the trusted publisher %x", []byte(m.Publisher[:8]), []byte(trusted[:8]))
	}
	if len(m.Signature) != ed25519.SignatureSize || !ed25519.Verify(m.Publisher, m.signedBytes(), m.Signature) {
		return errors.New("manifest: bad signature: the manifest was altered after signing or is corrupted")
	}
	return nil
}

// DecodeManifest parses and fully verifies (shape, roots, signature) a
// manifest from untrusted bytes. It never panics on malformed input.
func DecodeManifest(data []byte) (*Manifest, error) {
	m, err := parseManifest(data)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(nil); err != nil {
		return nil, err
	}
	return m, nil
}

// parseManifest decodes the framing only; DecodeManifest adds Verify. It is
// separate so the fuzzer can check canonical decoding past the signature.
func parseManifest(data []byte) (*Manifest, error) {
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("manifest: %d bytes exceeds the %d byte limit", len(data), maxManifestBytes)
	}
	d := decoder{buf: data}
	var magic [4]byte
	copy(magic[:], d.bytes(4))
	if d.err == nil && magic != manifestMagic {
		return nil, errors.New("manifest: not a Swarmcast manifest (bad magic)")
	}
	if v := d.u8(); d.err == nil && v != ManifestVersion {
		return nil, fmt.Errorf("manifest: version %d not supported (this build reads version %d); upgrade swarmcast", v, ManifestVersion)
	}
	m := &Manifest{}
	m.Publisher = ed25519.PublicKey(bytes.Clone(d.bytes(ed25519.PublicKeySize)))
	m.Title = string(d.bytes(int(d.u16())))
	m.Params.K = int(d.u8())
	m.Params.NMax = int(d.u16())
	copy(m.KeyID[:], d.bytes(16))
	m.TargetDuration = d.u32()
	nr := int(d.u8())
	if d.err == nil && (nr == 0 || nr > maxRenditions) {
		return nil, fmt.Errorf("manifest: %d renditions, want 1..%d", nr, maxRenditions)
	}
	for i := 0; i < nr && d.err == nil; i++ {
		var r Rendition
		r.Name = string(d.bytes(int(d.u8())))
		r.Bandwidth = d.u32()
		r.Width = d.u16()
		r.Height = d.u16()
		r.Codecs = string(d.bytes(int(d.u8())))
		copy(r.Root[:], d.bytes(32))
		ns := int(d.u32())
		if d.err == nil && (ns > maxSegmentsPerRend || ns*40 > d.remaining()) {
			return nil, fmt.Errorf("manifest: rendition %d claims %d segments but only %d bytes remain", i, ns, d.remaining())
		}
		r.Segments = make([]Segment, ns)
		for j := range r.Segments {
			r.Segments[j].Duration = d.u32()
			r.Segments[j].Size = d.u32()
			copy(r.Segments[j].Root[:], d.bytes(32))
		}
		m.Renditions = append(m.Renditions, r)
	}
	m.Signature = bytes.Clone(d.bytes(ed25519.SignatureSize))
	if d.err != nil {
		return nil, fmt.Errorf("manifest: %w", d.err)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("manifest: %d unexpected trailing bytes", d.remaining())
	}
	return m, nil
}

// decoder reads big-endian fields and remembers the first error, so decode
// code reads straight through without a check after every field.
type decoder struct {
	buf []byte
	off int
	err error
}

var errTruncated = errors.New("truncated: input ends in the middle of a field")

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.err = errTruncated
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// MarshalText encodes the id as 64 lowercase hex digits, so JSON bodies and
// map keys can carry typed ids.
func (id VideoID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses 64 hex digits (either case), with ParseVideoID's
// errors.
func (id *VideoID) UnmarshalText(b []byte) error {
	v, err := ParseVideoID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
