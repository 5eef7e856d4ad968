package fanout

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Push is the body of one POST wire.PathLivePush (wire.ContentTypeLivePush):
// one segment of one chain as a parent sends it to a child: the signed entry
// that commits to the segment and the shards of the child's substream(s),
// of every rendition. Decoding checks only the framing and that every shard
// names the chain and the entry's Seq; the receiver verifies the entry and
// each shard (Receiver.Receive).
type Push struct {
	Chain content.VideoID
	// Seq is the segment index (the entry's Seq, repeated so a receiver
	// can refuse a push by position before it parses the entry).
	Seq uint64
	// Entry is the signed content.LiveEntry encoding, as the origin signed it.
	Entry []byte
	// Shards are the pushed shards; each has Video == Chain and Segment == Seq.
	Shards []*content.ShardMessage
}

var pushMagic = [4]byte{'S', 'W', 'L', 'P'}

// pushVersion is the only push encoding this code reads and writes.
const pushVersion = 1

// Push limits, checked before anything an attacker could size is allocated.
const (
	// MaxPushBytes bounds one push body: a substream's shards of one
	// segment of every rendition (a 1 s segment of a 16-rung ladder at
	// 8 Mbit/s is a few MB; this leaves room for 6 s segments).
	MaxPushBytes = wire.MaxLivePushBytes
	// MaxPushShards bounds the shards of one push: every index of every
	// rendition (16 renditions × content.MaxTotalShards would be far more
	// than any tree pushes; one segment's pushed indices of 16 renditions).
	MaxPushShards = 16 * 16
	// maxPushEntryBytes is content's live entry limit.
	maxPushEntryBytes = 4 << 10
	// pushHeaderSize: magic, version, chain, seq, entry length, shard count.
	pushHeaderSize = 4 + 1 + 32 + 8 + 2 + 2
)

// Encode frames the push: magic "SWLP", version (u8), chain (32 bytes), seq
// (u64), entry length (u16) and bytes, shard count (u16), then each shard
// as a u32 length and its content.ShardMessage encoding. Integers are
// big-endian.
func (p *Push) Encode() []byte {
	size := pushHeaderSize + len(p.Entry)
	msgs := make([][]byte, len(p.Shards))
	for i, s := range p.Shards {
		msgs[i] = s.Encode()
		size += 4 + len(msgs[i])
	}
	b := make([]byte, 0, size)
	b = append(b, pushMagic[:]...)
	b = append(b, pushVersion)
	b = append(b, p.Chain[:]...)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Entry)))
	b = append(b, p.Entry...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msgs)))
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

// ErrBadPush wraps every framing error of DecodePush: the sender sent bytes
// that are not a push (answer 400).
var ErrBadPush = errors.New("bad live push")

// DecodePush parses a push from untrusted bytes. The shards' Data alias b.
func DecodePush(b []byte) (*Push, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadPush, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxPushBytes {
		return nil, bad("%d bytes exceeds the %d byte limit", len(b), MaxPushBytes)
	}
	if len(b) < pushHeaderSize {
		return nil, bad("%d bytes is shorter than the %d byte header", len(b), pushHeaderSize)
	}
	if [4]byte(b[:4]) != pushMagic {
		return nil, bad("not a Swarmcast live push (bad magic)")
	}
	if b[4] != pushVersion {
		return nil, bad("version %d not supported (this build reads %d); upgrade swarmcast", b[4], pushVersion)
	}
	p := &Push{}
	copy(p.Chain[:], b[5:37])
	p.Seq = binary.BigEndian.Uint64(b[37:45])
	if p.Seq >= content.MaxLiveSegments {
		return nil, bad("segment %d beyond the %d a chain may hold", p.Seq, content.MaxLiveSegments)
	}
	n := int(binary.BigEndian.Uint16(b[45:47]))
	rest := b[47:]
	if n == 0 || n > maxPushEntryBytes {
		return nil, bad("entry of %d bytes, want 1..%d", n, maxPushEntryBytes)
	}
	if n+2 > len(rest) {
		return nil, bad("entry of %d bytes, only %d remain", n, len(rest))
	}
	p.Entry = rest[:n:n]
	rest = rest[n:]
	count := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if count == 0 || count > MaxPushShards {
		return nil, bad("%d shards, want 1..%d", count, MaxPushShards)
	}
	// Each shard takes at least its length and header: a count the bytes
	// cannot hold is refused before the slice is made.
	if count*(4+content.ShardHeaderSize+4) > len(rest) {
		return nil, bad("%d shards cannot fit in %d bytes", count, len(rest))
	}
	p.Shards = make([]*content.ShardMessage, 0, count)
	for i := range count {
		if len(rest) < 4 {
			return nil, bad("shard %d: truncated length", i)
		}
		m := int(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if m > len(rest) {
			return nil, bad("shard %d of %d bytes, only %d remain", i, m, len(rest))
		}
		s, err := content.DecodeShardMessage(rest[:m:m])
		if err != nil {
			return nil, bad("shard %d: %v", i, err)
		}
		if s.Video != p.Chain || uint64(s.Segment) != p.Seq {
			return nil, bad("shard %d names %s segment %d, not the push's chain %s segment %d", i, s.Video, s.Segment, p.Chain, p.Seq)
		}
		p.Shards = append(p.Shards, s)
		rest = rest[m:]
	}
	if len(rest) != 0 {
		return nil, bad("%d unexpected trailing bytes", len(rest))
	}
	return p, nil
}
