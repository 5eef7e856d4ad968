package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

// Proof of delivery, after Storj's orders: the coordinator signs an
// OrderLimit that lets one edge serve one viewer up to MaxBytes of one video;
// while shards arrive the viewer signs Orders with a growing cumulative
// Amount; the edge keeps only the largest Order per serial and settles
// (limit, order) pairs with the coordinator. Every signature covers a
// deterministic binary encoding behind a domain-separation prefix, so a
// signature made for one message type can never be replayed as another.
const (
	orderLimitDomain   = "swarmcast order limit v1\x00"
	orderDomain        = "swarmcast order v1\x00"
	shardReceiptDomain = "swarmcast served shard receipt v2\x00" // v2: the hash covers the whole served message, not the data alone
)

// Serial names one OrderLimit; the coordinator settles each serial at most once.
// It is hex in JSON.
type Serial [16]byte

func (s Serial) String() string { return hex.EncodeToString(s[:]) }

// MarshalText encodes the serial as 32 hex digits.
func (s Serial) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses 32 hex digits.
func (s *Serial) UnmarshalText(b []byte) error {
	if len(b) != 2*len(s) {
		return fmt.Errorf("serial: want %d hex digits, got %d", 2*len(s), len(b))
	}
	_, err := hex.Decode(s[:], b)
	if err != nil {
		return fmt.Errorf("serial: %w", err)
	}
	return nil
}

// ParseSerial parses 32 hex digits.
func ParseSerial(s string) (Serial, error) {
	var out Serial
	err := out.UnmarshalText([]byte(s))
	return out, err
}

// OrderLimit is the coordinator's permission for Edge to serve Viewer up to
// MaxBytes of Video until ExpiresUnixMs.
type OrderLimit struct {
	Serial        Serial          `json:"serial"`
	Edge          NodeID          `json:"edge"`
	Viewer        NodeID          `json:"viewer"` // hex ed25519 public key that signs the Orders
	Video         content.VideoID `json:"video"`
	MaxBytes      int64           `json:"max_bytes"`
	ExpiresUnixMs int64           `json:"expires_unix_ms"`
	Signature     []byte          `json:"signature"` // coordinator's ed25519 signature over SigningBytes
}

// Order is the viewer's signed acknowledgement that it has received Amount
// bytes in total (cumulative, not a delta) under the limit with Serial.
type Order struct {
	Serial    Serial `json:"serial"`
	Amount    int64  `json:"amount"`
	Signature []byte `json:"signature"` // viewer's ed25519 signature over SigningBytes
}

// ServedShardReceipt is an edge's signed statement that it answered a
// request for a shard with exactly the bytes that hash to ShardSHA256: the
// whole encoded content.ShardMessage (header, data and Merkle proof), so
// the edge answers for every byte it sent, and a reporter cannot swap in a
// broken proof next to good data. Viewers ask for one with every shard; if
// the bytes do not decode, name another shard, or fail content.VerifyShard,
// the receipt plus the bytes are a proof anyone holding the manifest can
// check (ProveBadShard).
type ServedShardReceipt struct {
	Edge        NodeID          `json:"edge"`
	Video       content.VideoID `json:"video"`
	Rendition   int             `json:"rendition"`
	Segment     int             `json:"segment"`
	Shard       int             `json:"shard"`
	ShardSHA256 HexHash         `json:"shard_sha256"` // SHA-256 of the encoded ShardMessage as served
	Signature   []byte          `json:"signature"`
}

// Ref is the shard the receipt names.
func (r *ServedShardReceipt) Ref() content.ShardRef {
	return content.SegmentRef{Video: r.Video, Rendition: r.Rendition, Segment: r.Segment}.Shard(r.Shard)
}

// HexHash is a SHA-256 digest, hex in JSON.
type HexHash [32]byte

// MarshalText encodes the hash as 64 hex digits.
func (h HexHash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// UnmarshalText parses 64 hex digits.
func (h *HexHash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("sha256: want %d hex digits, got %d", 2*len(h), len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("sha256: %w", err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// SigningBytes is the deterministic encoding the coordinator signs:
// domain, serial, then length-prefixed edge, viewer and video (the video
// as its 64 lowercase hex digits, the encoding limits were first signed
// with), then MaxBytes and ExpiresUnixMs as big-endian 64-bit integers.
func (l *OrderLimit) SigningBytes() []byte {
	b := make([]byte, 0, len(orderLimitDomain)+16+3*4+64+64+64+16)
	b = append(b, orderLimitDomain...)
	b = append(b, l.Serial[:]...)
	b = appendString(b, string(l.Edge))
	b = appendString(b, string(l.Viewer))
	b = appendString(b, l.Video.String())
	b = binary.BigEndian.AppendUint64(b, uint64(l.MaxBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(l.ExpiresUnixMs))
	return b
}

// SigningBytes is the deterministic encoding the viewer signs: domain,
// serial, Amount as a big-endian 64-bit integer.
func (o *Order) SigningBytes() []byte {
	b := make([]byte, 0, len(orderDomain)+16+8)
	b = append(b, orderDomain...)
	b = append(b, o.Serial[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(o.Amount))
}

// SigningBytes is the deterministic encoding the edge signs: domain,
// length-prefixed edge and video (64 lowercase hex digits, as for
// OrderLimit), rendition, segment and shard as big-endian 32-bit integers,
// then the shard's SHA-256.
func (r *ServedShardReceipt) SigningBytes() []byte {
	b := make([]byte, 0, len(shardReceiptDomain)+64+64+12+32+8)
	b = append(b, shardReceiptDomain...)
	b = appendString(b, string(r.Edge))
	b = appendString(b, r.Video.String())
	b = binary.BigEndian.AppendUint32(b, uint32(r.Rendition))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Segment))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Shard))
	return append(b, r.ShardSHA256[:]...)
}

// SignOrderLimit fills l.Signature with the coordinator's signature.
func SignOrderLimit(coordinator ed25519.PrivateKey, l *OrderLimit) {
	l.Signature = ed25519.Sign(coordinator, l.SigningBytes())
}

// VerifyOrderLimit checks the coordinator's signature on l.
func VerifyOrderLimit(coordinator ed25519.PublicKey, l *OrderLimit) error {
	if len(coordinator) != ed25519.PublicKeySize || len(l.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(coordinator, l.SigningBytes(), l.Signature) {
		return errors.New("order limit: bad coordinator signature")
	}
	return nil
}

// SignOrder fills o.Signature with the viewer's signature.
func SignOrder(viewer ed25519.PrivateKey, o *Order) {
	o.Signature = ed25519.Sign(viewer, o.SigningBytes())
}

// VerifyOrder checks o against the limit it claims to spend: same serial and
// a valid signature by the limit's viewer key. It does not check Amount
// against MaxBytes (settlement counts that as its own rejection reason).
func VerifyOrder(l *OrderLimit, o *Order) error {
	if o.Serial != l.Serial {
		return fmt.Errorf("order: serial %s does not match limit serial %s", o.Serial, l.Serial)
	}
	pub, err := hex.DecodeString(string(l.Viewer))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("order: limit viewer %q is not a hex ed25519 public key", l.Viewer)
	}
	if len(o.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, o.SigningBytes(), o.Signature) {
		return errors.New("order: bad viewer signature")
	}
	return nil
}

// SignShardReceipt makes and signs the receipt for the encoded shard
// message body an edge serves in answer to a request for ref.
func SignShardReceipt(edge ed25519.PrivateKey, ref content.ShardRef, body []byte) ServedShardReceipt {
	r := ServedShardReceipt{
		Edge:        NodeID(hex.EncodeToString(edge.Public().(ed25519.PublicKey))),
		Video:       ref.Video,
		Rendition:   ref.Rendition,
		Segment:     ref.Segment,
		Shard:       ref.Shard,
		ShardSHA256: sha256.Sum256(body),
	}
	r.Signature = ed25519.Sign(edge, r.SigningBytes())
	return r
}

// VerifyShardReceipt checks that r is signed by r.Edge and covers exactly
// body (the encoded shard message as received).
func VerifyShardReceipt(r *ServedShardReceipt, body []byte) error {
	pub, err := hex.DecodeString(string(r.Edge))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("shard receipt: edge %q is not a hex ed25519 public key", r.Edge)
	}
	if len(r.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, r.SigningBytes(), r.Signature) {
		return errors.New("shard receipt: bad edge signature")
	}
	if sha256.Sum256(body) != r.ShardSHA256 {
		return errors.New("shard receipt: the bytes do not match the receipt's SHA-256")
	}
	return nil
}

// ErrShardIsGood is returned by ProveBadShard when the shard verifies: the
// receipt is genuine but proves nothing against the edge.
var ErrShardIsGood = errors.New("bad-shard proof: the shard verifies against the manifest; the edge served good data")

// ProveBadShard checks evidence that an edge served a bad shard: the
// receipt must be validly signed by r.Edge over exactly evidence (the
// encoded message as received), name m's video and a shard position that
// exists in m; then the evidence is conclusive and transferable if it does
// not decode as a shard message, is a message for another shard, or fails
// content.VerifyShard. A nil error means proven; ErrShardIsGood means the
// edge served good data; any other error means the receipt proves nothing
// (forged, other bytes, other video, no such shard).
func ProveBadShard(m *content.Manifest, r *ServedShardReceipt, evidence []byte) error {
	if err := VerifyShardReceipt(r, evidence); err != nil {
		return err
	}
	if id := m.ID(); id != r.Video {
		return fmt.Errorf("bad-shard proof: receipt names video %s, manifest is %s", r.Video, id)
	}
	if r.Rendition < 0 || r.Rendition >= len(m.Renditions) || r.Segment < 0 || r.Segment >= len(m.Renditions[r.Rendition].Segments) {
		return fmt.Errorf("bad-shard proof: rendition %d segment %d is not in the manifest", r.Rendition, r.Segment)
	}
	if r.Shard < 0 || r.Shard >= m.Params.NMax {
		return fmt.Errorf("bad-shard proof: shard %d is outside 0..%d", r.Shard, m.Params.NMax-1)
	}
	msg, err := content.DecodeShardMessage(evidence)
	if err != nil {
		return nil // the edge signed bytes that are not a shard message
	}
	if msg.Ref() != r.Ref() {
		return nil // the edge answered a request for r.Ref() with another shard
	}
	if err := content.VerifyShard(m, r.Rendition, r.Segment, msg.Shard); err == nil {
		return ErrShardIsGood
	}
	return nil
}

// SettlementPair is one limit and the largest order the edge holds for it.
type SettlementPair struct {
	Limit OrderLimit `json:"limit"`
	Order Order      `json:"order"`
}

// SettlementBatch is what an edge submits to be paid. ID is chosen by the
// edge (e.g. 16 random bytes in hex) and makes resubmission idempotent: the
// coordinator settles each batch id once and answers repeats with the
// stored result.
type SettlementBatch struct {
	ID    string           `json:"id"`
	Edge  NodeID           `json:"edge"`
	Pairs []SettlementPair `json:"pairs"`
}
