package coordinator

import (
	"math/bits"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// The holder index is the coordinator's largest state: at 10^5 edges with
// realistic disks (~2,000 shards each) it has 2·10^8 entries, so every
// entry is packed. Nodes have dense slots (node.slot, state.bySlot) and
// catalogued segments dense slots (video.base + offset), so one (node,
// segment) holding costs 16 bytes: a holder in the segment's list (node
// slot + shardCode, 8 B) and a heldSegment in the node's sorted
// inventory (segment slot + place in that list, 8 B). Shards held beyond
// three of one segment spill into state.masks (32 B, rare: placement
// assigns one shard per edge, a watched segment brings k).
//
// Invariants (under the Coordinator's write lock):
//   - a node holds a segment iff exactly one holder of the segment's list
//     names its slot, and node.held has the segment's slot once, with at
//     the holder's place in that list;
//   - node.held is sorted by segment slot; node.shards counts the shards
//     of node.held and node.unknown;
//   - a holder's shardCode is never empty.

// shardCode packs the shards one node holds of one segment: with bit 31
// clear, a count of 1..3 in bits 24..25 and as many ascending indices in
// bytes 0..2; with bit 31 set, an index into state.masks.
type shardCode uint32

const (
	shardCodeTable      shardCode = 1 << 31
	shardCodeCountShift           = 24
	shardCodeInlineMax            = 3
)

// holder is one node's holding of a segment, in the segment's list.
type holder struct {
	node   uint32 // node slot (state.bySlot)
	shards shardCode
}

// heldSegment is one entry of a node's inventory: a catalogued segment's
// slot and the node's place in that segment's holder list.
type heldSegment struct {
	seg uint32
	at  uint32
}

// encodeShards packs m (not empty) into a code, taking a table entry when
// it does not fit inline.
func (s *state) encodeShards(m ShardMask) shardCode {
	if m.Count() <= shardCodeInlineMax {
		var c shardCode
		j := 0
		for w, word := range m {
			for word != 0 {
				c |= shardCode(w*64+bits.TrailingZeros64(word)) << (8 * j)
				j++
				word &= word - 1
			}
		}
		return c | shardCode(j)<<shardCodeCountShift
	}
	var i uint32
	if k := len(s.freeMasks); k > 0 {
		i, s.freeMasks = s.freeMasks[k-1], s.freeMasks[:k-1]
		s.masks[i] = m
	} else {
		i = uint32(len(s.masks))
		s.masks = append(s.masks, m)
	}
	return shardCodeTable | shardCode(i)
}

// shardsOf unpacks a code.
func (s *state) shardsOf(c shardCode) ShardMask {
	if c&shardCodeTable != 0 {
		return s.masks[c&^shardCodeTable]
	}
	var m ShardMask
	for j := range int(c >> shardCodeCountShift) {
		m.Set(int(c >> (8 * j) & 0xff))
	}
	return m
}

// shardCount is the number of shards in c.
func (s *state) shardCount(c shardCode) int {
	if c&shardCodeTable != 0 {
		return s.masks[c&^shardCodeTable].Count()
	}
	return int(c >> shardCodeCountShift)
}

// releaseShards frees c's table entry, if it has one.
func (s *state) releaseShards(c shardCode) {
	if c&shardCodeTable != 0 {
		i := uint32(c &^ shardCodeTable)
		s.masks[i] = ShardMask{}
		s.freeMasks = append(s.freeMasks, i)
	}
}

// segmentSlot is the slot of segment (r, seg) of v, which must exist.
func (v *video) segmentSlot(r, seg int) uint32 { return v.base + v.renditionBase[r] + uint32(seg) }

// segmentAt is the video, rendition and segment of a catalogued segment
// slot; hint, when it holds the slot, saves the search (walks of a sorted
// inventory meet one video's segments in a row).
func (s *state) segmentAt(slot uint32, hint *video) (v *video, r, seg int) {
	v = hint
	if v == nil || slot < v.base || slot >= v.base+v.segments {
		lo, hi := 0, len(s.byBase) // the first video whose base is > slot, less one
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if s.byBase[mid].base <= slot {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		v = s.byBase[lo-1]
	}
	off := slot - v.base
	r = len(v.renditionBase) - 1
	for v.renditionBase[r] > off {
		r--
	}
	return v, r, int(off - v.renditionBase[r])
}

// find is the place of segment slot seg in n.held, and whether it is there
// (if not, where it would go).
func (n *node) find(seg uint32) (int, bool) {
	return slices.BinarySearchFunc(n.held, seg, func(h heldSegment, seg uint32) int {
		switch {
		case h.seg < seg:
			return -1
		case h.seg > seg:
			return 1
		}
		return 0
	})
}

// holding is what n holds of key.
func (s *state) holding(n *node, key content.SegmentRef) ShardMask {
	v, seg := s.catalogued(key)
	if v == nil {
		return n.unknown[key]
	}
	if seg == nil {
		return ShardMask{}
	}
	if i, ok := n.find(v.segmentSlot(key.Rendition, key.Segment)); ok {
		return s.shardsOf(seg.holders[n.held[i].at].shards)
	}
	return ShardMask{}
}

// catalogued is key's video and index entry: (nil, nil) for a video not in
// the catalogue, (v, nil) for a segment the video does not have.
func (s *state) catalogued(key content.SegmentRef) (*video, *segmentEntry) {
	v := s.videos[key.Video]
	if v == nil {
		return nil, nil
	}
	if key.Rendition < 0 || key.Rendition >= len(v.segs) || key.Segment < 0 || key.Segment >= len(v.segs[key.Rendition]) {
		return v, nil
	}
	return v, &v.segs[key.Rendition][key.Segment]
}

// setHolding records that n holds exactly shards of key, updating the
// node's inventory and the segment's holder list.
func (s *state) setHolding(n *node, key content.SegmentRef, shards ShardMask) {
	v, seg := s.catalogued(key)
	if v == nil {
		old := n.unknown[key]
		n.shards += shards.Count() - old.Count()
		switch {
		case !shards.Empty():
			if n.unknown == nil {
				n.unknown = make(map[content.SegmentRef]ShardMask)
			}
			n.unknown[key] = shards
		case n.unknown != nil:
			delete(n.unknown, key)
		}
		return
	}
	if seg == nil {
		return
	}
	slot := v.segmentSlot(key.Rendition, key.Segment)
	i, found := n.find(slot)
	switch {
	case found && shards.Empty():
		s.dropHolding(n, i, seg)
	case found:
		h := &seg.holders[n.held[i].at]
		if old := s.shardsOf(h.shards); old != shards {
			n.shards += shards.Count() - old.Count()
			s.releaseShards(h.shards)
			h.shards = s.encodeShards(shards)
			seg.version++
		}
	case shards.Empty():
	default:
		n.held = slices.Insert(n.held, i, heldSegment{seg: slot, at: uint32(len(seg.holders))})
		seg.holders = append(seg.holders, holder{node: uint32(n.slot), shards: s.encodeShards(shards)})
		n.shards += shards.Count()
		seg.version++
	}
}

// dropHolding removes n.held[i] (of segment seg) from the index: the
// segment's last holder takes its place in the list, and that holder's
// node learns its new place.
func (s *state) dropHolding(n *node, i int, seg *segmentEntry) {
	at := n.held[i].at
	h := seg.holders[at]
	n.shards -= s.shardCount(h.shards)
	s.releaseShards(h.shards)
	last := uint32(len(seg.holders) - 1)
	if at != last {
		moved := seg.holders[last]
		seg.holders[at] = moved
		other := s.bySlot[moved.node]
		j, _ := other.find(n.held[i].seg)
		other.held[j].at = at
	}
	seg.holders[last] = holder{}
	seg.holders = seg.holders[:last]
	if c := cap(seg.holders); c > 64 && int(last) < c/4 {
		seg.holders = slices.Clip(slices.Clone(seg.holders)) // give back a list that shrank
	}
	seg.version++
	n.held = slices.Delete(n.held, i, i+1)
}

// clearHoldings empties n's inventory (catalogued and not).
func (s *state) clearHoldings(n *node) {
	var hint *video
	for i := len(n.held) - 1; i >= 0; i-- {
		var r, seg int
		hint, r, seg = s.segmentAt(n.held[i].seg, hint)
		s.dropHolding(n, i, &hint.segs[r][seg])
	}
	n.held = nil
	n.unknown = nil
	n.shards = 0
}

// heldBuild is one segment of a full inventory being indexed.
type heldBuild struct {
	slot   uint32
	seg    *segmentEntry
	shards ShardMask
}

// addFullInventory indexes a full inventory for n, whose inventory is
// empty: sets of catalogued videos are sorted by slot and merged in one
// pass, so a node with thousands of segments costs a sort, not thousands
// of insertions. The sets must have passed checkShardSets.
func (s *state) addFullInventory(n *node, sets []wire.ShardSet) {
	build := s.build[:0]
	for _, set := range sets {
		key := content.SegmentRef{Video: set.Video, Rendition: set.Rendition, Segment: set.Segment}
		v, seg := s.catalogued(key)
		switch {
		case v == nil:
			s.setHolding(n, key, s.holding(n, key).Union(maskOf(set.Shards...)))
		case seg != nil:
			build = append(build, heldBuild{slot: v.segmentSlot(key.Rendition, key.Segment), seg: seg, shards: maskOf(set.Shards...)})
		}
	}
	slices.SortFunc(build, func(a, b heldBuild) int {
		switch {
		case a.slot < b.slot:
			return -1
		case a.slot > b.slot:
			return 1
		}
		return 0
	})
	k := 0 // merge repeated segments
	for _, b := range build {
		if k > 0 && build[k-1].slot == b.slot {
			build[k-1].shards = build[k-1].shards.Union(b.shards)
			continue
		}
		build[k] = b
		k++
	}
	build = build[:k]
	n.held = make([]heldSegment, 0, len(build))
	for _, b := range build {
		if b.shards.Empty() {
			continue
		}
		n.held = append(n.held, heldSegment{seg: b.slot, at: uint32(len(b.seg.holders))})
		b.seg.holders = append(b.seg.holders, holder{node: uint32(n.slot), shards: s.encodeShards(b.shards)})
		b.seg.version++
		n.shards += b.shards.Count()
	}
	clear(build) // drop segment pointers
	s.build = build[:0]
}

// eachHeld calls f for every catalogued segment n holds, in slot order,
// with the segment's ref and entry and n's holder in it.
func (s *state) eachHeld(n *node, f func(key content.SegmentRef, seg *segmentEntry, h holder)) {
	var v *video
	for _, e := range n.held {
		var r, i int
		v, r, i = s.segmentAt(e.seg, v)
		seg := &v.segs[r][i]
		f(content.SegmentRef{Video: v.id, Rendition: r, Segment: i}, seg, seg.holders[e.at])
	}
}
