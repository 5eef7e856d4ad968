package content

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

var shardMagic = [4]byte{'S', 'W', 'S', 'H'}

// maxProofLen bounds the audit path: a tree of MaxTotalShards leaves is 8 deep.
const maxProofLen = 8

// ShardMessage is a shard on the wire: which segment it belongs to, its
// index, its inclusion proof and its bytes. The receiver must still call
// VerifyShard: decoding only checks the framing.
type ShardMessage struct {
	Video     VideoID
	Rendition int
	Segment   int
	Shard
}

// ShardHeaderSize is the fixed part of an encoded ShardMessage.
const ShardHeaderSize = 4 + 1 + 32 + 1 + 4 + 2 + 1

// Encode frames the message: magic, version, video id, rendition (u8),
// segment (u32), index (u16), proof count (u8), proof hashes, data length
// (u32), data.
func (s *ShardMessage) Encode() []byte {
	buf := bytes.NewBuffer(make([]byte, 0, ShardHeaderSize+32*len(s.Proof)+4+len(s.Data)))
	buf.Write(shardMagic[:])
	buf.WriteByte(1)
	buf.Write(s.Video[:])
	buf.WriteByte(uint8(s.Rendition))
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(s.Segment)))
	buf.Write(binary.BigEndian.AppendUint16(nil, uint16(s.Index)))
	buf.WriteByte(uint8(len(s.Proof)))
	for _, h := range s.Proof {
		buf.Write(h[:])
	}
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s.Data))))
	buf.Write(s.Data)
	return buf.Bytes()
}

// DecodeShardMessage parses an encoded ShardMessage from untrusted bytes.
// Data aliases the input.
func DecodeShardMessage(b []byte) (*ShardMessage, error) {
	d := decoder{buf: b}
	var magic [4]byte
	copy(magic[:], d.bytes(4))
	if d.err == nil && magic != shardMagic {
		return nil, errors.New("shard message: bad magic (not a Swarmcast shard)")
	}
	if v := d.u8(); d.err == nil && v != 1 {
		return nil, fmt.Errorf("shard message: version %d not supported", v)
	}
	s := &ShardMessage{}
	copy(s.Video[:], d.bytes(32))
	s.Rendition = int(d.u8())
	s.Segment = int(d.u32())
	s.Index = int(d.u16())
	np := int(d.u8())
	if d.err == nil && np > maxProofLen {
		return nil, fmt.Errorf("shard message: proof of %d hashes, limit %d", np, maxProofLen)
	}
	if d.err == nil && np > 0 {
		s.Proof = make([]Hash, 0, np) // one allocation, not append's doublings
	}
	for i := 0; i < np && d.err == nil; i++ {
		var h Hash
		copy(h[:], d.bytes(32))
		s.Proof = append(s.Proof, h)
	}
	n := int(d.u32())
	if d.err == nil && n > maxSegmentBytes {
		return nil, fmt.Errorf("shard message: %d data bytes exceeds the %d limit", n, maxSegmentBytes)
	}
	s.Data = d.bytes(n)
	if d.err != nil {
		return nil, fmt.Errorf("shard message: %w", d.err)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("shard message: %d unexpected trailing bytes", d.remaining())
	}
	if s.Data == nil {
		s.Data = []byte{}
	}
	return s, nil
}
