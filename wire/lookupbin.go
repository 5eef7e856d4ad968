package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/swarmcast/swarmcast/content"
)

// ContentTypeLookupBinary is the compact encoding of a LookupResponse. A
// client that sends it in Accept gets it (CoordinatorClient.Lookup does);
// any other client gets JSON. It carries the same answer in about a
// quarter of the bytes: each node's id and address once, sources as
// indices into that node table, ids and signatures as raw bytes, and order
// limits without the viewer and video, which are the request's. At tens of
// thousands of lookups per second the answer's size is most of the cost
// of a lookup for both ends (docs/PERFORMANCE.md, "Coordinator lookups").
//
// Layout (uvarint: encoding/binary's unsigned varint; every count and
// index is one):
//
//	magic      "SCL1"
//	nodes      uvarint n, then n × (32-byte node id, uvarint len, addr)
//	segments   uvarint n, then n × (uvarint segment,
//	             uvarint sources, sources × (uvarint node, uvarint shards, shards × uvarint index),
//	             uvarint origins, origins × uvarint node)
//	origins    uvarint n, then n × uvarint node
//	limits     uvarint n, then n × (uvarint node (the edge), 16-byte serial,
//	             8-byte max bytes, 8-byte expiry in Unix ms (big-endian), 64-byte signature)
//
// A node index refers to the node table; nodes are listed once each.
const ContentTypeLookupBinary = "application/vnd.swarmcast.lookup.v1"

// lookupBinaryMagic opens every binary lookup answer.
const lookupBinaryMagic = "SCL1"

// LookupLimitSize is the fixed part of a limit in a binary lookup answer
// (AppendLookupLimit): serial, max bytes, expiry, signature.
const LookupLimitSize = 16 + 8 + 8 + 64

// AppendLookupMagic starts a binary lookup answer.
func AppendLookupMagic(b []byte) []byte { return append(b, lookupBinaryMagic...) }

// AppendLookupNode appends one node table entry. id must pass CheckNodeID
// (every registered node's does).
func AppendLookupNode(b []byte, id NodeID, addr string) []byte {
	var raw [32]byte
	_, _ = hex.Decode(raw[:], []byte(id))
	b = append(b, raw[:]...)
	b = binary.AppendUvarint(b, uint64(len(addr)))
	return append(b, addr...)
}

// AppendLookupLimit appends the fixed part of a limit (LookupLimitSize
// bytes; the caller writes the edge's node index before it). l.Signature
// must be an ed25519 signature (64 bytes).
func AppendLookupLimit(b []byte, l *OrderLimit) []byte {
	b = append(b, l.Serial[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(l.MaxBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(l.ExpiresUnixMs))
	var sig [64]byte
	copy(sig[:], l.Signature)
	return append(b, sig[:]...)
}

// EncodeLookupBinary renders resp in the binary layout. Every limit must be
// for an edge listed in resp; its viewer and video are not encoded (they
// are the request's). The coordinator renders the same layout straight
// from its state; this is the reference encoder for clients' tests and
// in-process answers.
func EncodeLookupBinary(resp *LookupResponse) ([]byte, error) {
	index := make(map[NodeID]uint64)
	var nodes []byte
	var count uint64
	add := func(s Source) uint64 {
		if i, ok := index[s.NodeID]; ok {
			return i
		}
		index[s.NodeID] = count
		nodes = AppendLookupNode(nodes, s.NodeID, s.Addr)
		count++
		return count - 1
	}
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(resp.Segments)))
	for _, seg := range resp.Segments {
		body = binary.AppendUvarint(body, uint64(seg.Segment))
		body = binary.AppendUvarint(body, uint64(len(seg.Sources)))
		for _, s := range seg.Sources {
			if err := CheckNodeID(s.NodeID); err != nil {
				return nil, err
			}
			body = binary.AppendUvarint(body, add(s))
			body = binary.AppendUvarint(body, uint64(len(s.Shards)))
			for _, sh := range s.Shards {
				body = binary.AppendUvarint(body, uint64(sh))
			}
		}
		body = binary.AppendUvarint(body, uint64(len(seg.Origins)))
		for _, o := range seg.Origins {
			if err := CheckNodeID(o.NodeID); err != nil {
				return nil, err
			}
			body = binary.AppendUvarint(body, add(o))
		}
	}
	body = binary.AppendUvarint(body, uint64(len(resp.Origins)))
	for _, o := range resp.Origins {
		if err := CheckNodeID(o.NodeID); err != nil {
			return nil, err
		}
		body = binary.AppendUvarint(body, add(o))
	}
	body = binary.AppendUvarint(body, uint64(len(resp.Limits)))
	for i := range resp.Limits {
		l := &resp.Limits[i]
		n, ok := index[l.Edge]
		if !ok {
			return nil, fmt.Errorf("limit for edge %s, which the answer does not list", l.Edge)
		}
		body = binary.AppendUvarint(body, n)
		body = AppendLookupLimit(body, l)
	}
	out := AppendLookupMagic(nil)
	out = binary.AppendUvarint(out, count)
	out = append(out, nodes...)
	return append(out, body...), nil
}

// errLookupShort is a binary lookup answer that ends early.
var errLookupShort = errors.New("lookup answer: truncated")

// lookupReader reads a binary lookup answer; a short or malformed one sets
// err, after which every read returns zero.
type lookupReader struct {
	b   []byte
	err error
}

func (r *lookupReader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("lookup answer: %s: bad varint", what)
		return 0
	}
	r.b = r.b[n:]
	if v > limit {
		r.err = fmt.Errorf("lookup answer: %s %d, limit %d", what, v, limit)
		return 0
	}
	return v
}

// count reads a list length; each element takes at least minSize bytes,
// so a length the rest of the answer cannot hold is refused before
// anything is allocated for it.
func (r *lookupReader) count(what string, minSize int) int {
	return int(r.uvarint(what, uint64(len(r.b)/minSize)))
}

func (r *lookupReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errLookupShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// DecodeLookupBinary decodes a binary lookup answer (untrusted bytes) to
// a request for viewer and video: its limits are filled in with them.
// Nothing in it is trusted beyond its shape: limits are checked by the
// edges they are shown to, sources by the shards they serve.
func DecodeLookupBinary(b []byte, viewer NodeID, video content.VideoID) (LookupResponse, error) {
	var resp LookupResponse
	if len(b) < len(lookupBinaryMagic) || string(b[:len(lookupBinaryMagic)]) != lookupBinaryMagic {
		return resp, errors.New("lookup answer: not a binary lookup answer (bad magic)")
	}
	r := &lookupReader{b: b[len(lookupBinaryMagic):]}
	nodes := make([]Source, r.count("nodes", 33))
	listed := make(map[NodeID]bool, len(nodes))
	for i := range nodes {
		id := r.bytes(32)
		addr := r.bytes(int(r.uvarint("address length", math.MaxUint16)))
		if r.err != nil {
			break
		}
		nodes[i] = Source{NodeID: NodeID(hex.EncodeToString(id)), Addr: string(addr)}
		if listed[nodes[i].NodeID] {
			r.err = fmt.Errorf("lookup answer: node %s listed twice", nodes[i].NodeID)
			break
		}
		listed[nodes[i].NodeID] = true
	}
	// source marks the nodes listed as a segment's source: only those may
	// have a limit (the coordinator signs limits only for edges it chose).
	source := make([]bool, len(nodes))
	nodeAt := func(what string) (Source, uint64) {
		i := r.uvarint(what, uint64(max(len(nodes), 1)-1))
		if r.err != nil || len(nodes) == 0 {
			if r.err == nil {
				r.err = fmt.Errorf("lookup answer: %s names a node of an empty table", what)
			}
			return Source{}, 0
		}
		return nodes[i], i
	}
	node := func(what string) Source { n, _ := nodeAt(what); return n }
	resp.Segments = make([]SegmentSources, r.count("segments", 3))
	for i := range resp.Segments {
		seg := &resp.Segments[i]
		seg.Segment = int(r.uvarint("segment", math.MaxInt32))
		seg.Sources = make([]Source, r.count("sources", 2))
		for j := range seg.Sources {
			src, at := nodeAt("source")
			if r.err == nil {
				source[at] = true
			}
			if n := r.count("shards", 1); n > 0 {
				src.Shards = make([]int, n)
				for k := range src.Shards {
					src.Shards[k] = int(r.uvarint("shard", math.MaxInt32))
				}
			}
			seg.Sources[j] = src
		}
		if n := r.count("segment origins", 1); n > 0 {
			seg.Origins = make([]Source, n)
			for j := range seg.Origins {
				seg.Origins[j] = node("segment origin")
			}
		}
		if r.err != nil {
			return LookupResponse{}, r.err
		}
	}
	resp.Origins = make([]Source, r.count("origins", 1))
	for i := range resp.Origins {
		resp.Origins[i] = node("origin")
	}
	if n := r.count("limits", 1+LookupLimitSize); n > 0 {
		resp.Limits = make([]OrderLimit, n)
		for i := range resp.Limits {
			edge, at := nodeAt("limit edge")
			fixed := r.bytes(LookupLimitSize)
			if r.err != nil {
				break
			}
			if !source[at] {
				r.err = fmt.Errorf("lookup answer: a limit for %s, which no segment lists as a source", edge.NodeID)
				break
			}
			l := &resp.Limits[i]
			l.Edge, l.Viewer, l.Video = edge.NodeID, viewer, video
			copy(l.Serial[:], fixed[:16])
			l.MaxBytes = int64(binary.BigEndian.Uint64(fixed[16:24]))
			l.ExpiresUnixMs = int64(binary.BigEndian.Uint64(fixed[24:32]))
			l.Signature = append([]byte(nil), fixed[32:]...)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("lookup answer: %d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return LookupResponse{}, r.err
	}
	return resp, nil
}
