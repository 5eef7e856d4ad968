package coordinator

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// sourcesPerSegment bounds the ranked edges returned per segment: a viewer
// asks k+δ distinct sources (δ ≤ k), so 2k is plenty and more is wasted
// bytes and ranking work.
func sourcesPerSegment(k int) int { return min(max(2*k, 16), 128) }

// maxExclude bounds a lookup's Exclude list.
const maxExclude = 1024

// maxRegionLen bounds region names (they key the demand table).
const maxRegionLen = 64

// rankedSource is one candidate with its ranking key (lower is better):
// a holder of the segment, by node slot and shard code, so a result is
// only valid while the read lock that produced it is held (or, cached, at
// the segment version it was ranked at).
type rankedSource struct {
	score uint64
	holder
}

// rankedSegment is a segment's slice [start, end) of lookupResult.sources
// and [oStart, oEnd) of lookupResult.segOrigins (empty without an origin
// pool).
type rankedSegment struct {
	segment      int
	start, end   int
	oStart, oEnd int
}

// lookupResult is reusable scratch for one lookup (pooled by the caller).
type lookupResult struct {
	st       *state // what sources' slots and codes resolve in
	segments []rankedSegment
	sources  []rankedSource
	origins  []*node
	// segOrigins holds the origin pool's route of each segment.
	segOrigins []*node
}

func (r *lookupResult) reset() {
	r.st = nil
	r.segments = r.segments[:0]
	r.sources = r.sources[:0]
	clear(r.origins)
	r.origins = r.origins[:0]
	clear(r.segOrigins)
	r.segOrigins = r.segOrigins[:0]
}

// rankSlotCount is how many tie-break seeds lookups take turns with
// (rankSeed): the random order among equally good sources is one of this
// many per segment, each cached (rankSlots) until the segment's version
// changes, instead of drawn afresh per lookup. Over a play of hundreds of
// lookups every slot is used alike, so ties still share the load evenly.
const rankSlotCount = 64

// rankSlots caches one segment's rankings, one list of regions per
// tie-break slot.
type rankSlots [rankSlotCount]atomic.Pointer[rankEntry]

// rankEntry is one cached ranking of a segment (immutable once stored):
// for viewers in region, at the segment's version, valid while every
// listed source stays fresh (nowNS <= validUntilNS). next holds the same
// slot's rankings for other regions.
type rankEntry struct {
	version      uint64
	region       string
	validUntilNS int64
	sources      []rankedSource
	next         *rankEntry
}

// maxCachedRegions bounds the regions one slot of a segment remembers.
const maxCachedRegions = 8

// rankSeed is the tie-break of slot (0..rankSlotCount-1) under seed.
func rankSeed(seed uint64, slot int) uint64 { return splitmix64(seed + uint64(slot)) }

// cached returns the valid ranking of seg in slot for region, or nil.
func (seg *segmentEntry) cached(slot int, region string, nowNS int64) *rankEntry {
	slots := seg.ranks.Load()
	if slots == nil {
		return nil
	}
	for e := slots[slot].Load(); e != nil; e = e.next {
		if e.region == region {
			if e.version == seg.version && nowNS <= e.validUntilNS {
				return e
			}
			return nil
		}
	}
	return nil
}

// remember caches ranked as seg's ranking in slot for region; freshFor
// is how long a source stays fresh after its last heartbeat (ns).
func (s *state) remember(seg *segmentEntry, slot int, region string, ranked []rankedSource, freshFor int64) {
	slots := seg.ranks.Load()
	if slots == nil {
		seg.ranks.CompareAndSwap(nil, new(rankSlots))
		slots = seg.ranks.Load()
	}
	e := &rankEntry{version: seg.version, region: region, validUntilNS: math.MaxInt64, sources: slices.Clone(ranked)}
	for _, src := range ranked {
		if last := s.bySlot[src.node].lastSeenNS; last <= math.MaxInt64-freshFor {
			e.validUntilNS = min(e.validUntilNS, last+freshFor)
		}
	}
	// Keep the slot's rankings for other regions that are still current
	// (a lost race with another lookup only costs a re-rank later).
	tail := &e.next
	kept := 1
	for o := slots[slot].Load(); o != nil && kept < maxCachedRegions; o = o.next {
		if o.region != region && o.version == seg.version {
			*tail = &rankEntry{version: o.version, region: o.region, validUntilNS: o.validUntilNS, sources: o.sources}
			tail = &(*tail).next
			kept++
		}
	}
	slots[slot].Store(e)
}

// lookup ranks the alive holders of each segment in the window. It only
// reads state, so many run at once under the read lock. tiebreak seeds the
// random order among equally good sources: rankSeed(seed, slot), whose
// ranking of each segment is cached for the next lookups in that slot;
// a lookup with an Exclude list ranks afresh and caches nothing.
func (s *state) lookup(req *wire.LookupRequest, now time.Time, tiebreak uint64, slot int, out *lookupResult) error {
	v := s.videos[req.Video]
	if v == nil {
		return wire.NotFound("video %q is not in the catalogue", req.Video)
	}
	if req.Rendition < 0 || req.Rendition >= len(v.segs) {
		return wire.BadRequest("rendition %d does not exist (video has %d)", req.Rendition, len(v.segs))
	}
	segs := v.segs[req.Rendition]
	if req.From < 0 || req.From >= len(segs) {
		return wire.BadRequest("from %d: segment does not exist (rendition %d has %d)", req.From, req.Rendition, len(segs))
	}
	if req.Count < 1 || req.Count > wire.MaxLookupCount {
		return wire.BadRequest("count %d: want 1..%d", req.Count, wire.MaxLookupCount)
	}
	if len(req.Region) > maxRegionLen {
		return wire.BadRequest("region: %d bytes, limit %d", len(req.Region), maxRegionLen)
	}
	if len(req.Exclude) > maxExclude {
		return wire.BadRequest("exclude lists %d nodes, limit %d", len(req.Exclude), maxExclude)
	}
	end := min(req.From+req.Count, len(segs))
	limit := sourcesPerSegment(v.m.Params.K)
	// A node is fresh if it was seen at or after freshSince (see alive).
	freshFor := int64(missedHeartbeats * s.interval)
	nowNS := now.UnixNano()
	freshSince := nowNS - freshFor
	cache := len(req.Exclude) == 0
	out.st = s
	for i := req.From; i < end; i++ {
		start := len(out.sources)
		seg := &segs[i]
		if cache {
			if e := seg.cached(slot, req.Region, nowNS); e != nil {
				out.sources = append(out.sources, e.sources...)
				out.segments = append(out.segments, rankedSegment{segment: i, start: start, end: len(out.sources)})
				continue
			}
		}
		// Every holder is ranked when there are at most s.rankScan;
		// beyond that (10^4–10^5 holders of a popular segment at 10^5
		// edges), a sample: at most s.rankScan holders from a place
		// drawn from the tie-break (each slot samples elsewhere), and
		// none past the point where the best limit are all of the best
		// class there is (rankScoreClassFloor).
		holders := seg.holders
		visits, first, floor := len(holders), 0, uint64(0)
		if len(holders) > s.rankScan {
			visits = s.rankScan
			first = int(splitmix64(tiebreak^uint64(i)) % uint64(len(holders)))
			floor = rankScoreClassFloor(req.Region)
		}
		for v := range visits {
			j := first + v
			if j >= len(holders) {
				j -= len(holders)
			}
			h := holders[j]
			n := s.bySlot[h.node]
			if n.banned || n.lastSeenNS < freshSince || (len(req.Exclude) > 0 && slices.Contains(req.Exclude, n.id)) {
				continue
			}
			src := rankedSource{score: rankScore(n, req.Region, tiebreak), holder: h}
			// Keep the best limit in a max-heap on score, so
			// a segment with hundreds of holders costs one pass.
			top := out.sources[start:]
			switch {
			case len(top) < limit:
				out.sources = append(out.sources, src)
				heapUp(out.sources[start:], len(top))
			case src.score < top[0].score:
				top[0] = src
				heapDown(top, 0)
			}
			if floor != 0 && len(top) >= limit && out.sources[start].score < floor {
				break // no holder left can be of a better class
			}
		}
		ranked := out.sources[start:]
		slices.SortFunc(ranked, func(a, b rankedSource) int {
			switch {
			case a.score < b.score:
				return -1
			case a.score > b.score:
				return 1
			}
			return 0
		})
		if cache {
			s.remember(seg, slot, req.Region, ranked, freshFor)
		}
		out.segments = append(out.segments, rankedSegment{segment: i, start: start, end: len(out.sources)})
	}
	for _, o := range s.origins {
		if s.alive(o, now) {
			out.origins = append(out.origins, o)
		}
	}
	return nil
}

// heapUp restores the max-heap (on score) after appending h[i].
func heapUp(h []rankedSource, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].score >= h[i].score {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

// heapDown restores the max-heap after replacing h[i].
func heapDown(h []rankedSource, i int) {
	for {
		largest, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].score > h[largest].score {
			largest = l
		}
		if r < len(h) && h[r].score > h[largest].score {
			largest = r
		}
		if largest == i {
			return
		}
		h[i], h[largest] = h[largest], h[i]
		i = largest
	}
}

// rankScanBudget is how many holders a lookup ranks per segment at most:
// a segment with more is sampled (state.lookup), so a lookup's work is
// bounded whatever the holder count (~20 ns a visit: ≤ 20 µs a segment).
// 1,024 holders hold ~64 in-region ones for a region with 1/16 of them,
// far more than sourcesPerSegment.
const rankScanBudget = 1024

// rankScoreClassFloor is the lowest score of a source worse than the best
// class for a viewer in region: the best class is the viewer's region
// (any region for a viewer without one) at load bucket 0, whose sources
// differ only in their random tie-break.
func rankScoreClassFloor(region string) uint64 {
	if region == "" {
		return 1<<56 | 1<<48
	}
	return 1 << 48
}

// rankScore orders sources: same region first, then by load (measured
// upload rate over declared upload cap, in 10% steps so that nodes with
// similar load tie), then by a seeded random key that spreads load among
// the ties.
func rankScore(n *node, region string, tiebreak uint64) uint64 {
	return RankScore(region, n.region, n.loadBucket, n.salt, tiebreak)
}

// RankScore is rankScore on plain values, exported for the simulator
// (package sim), which ranks its edges with the lookup's own rule: a
// source in nodeRegion with loadBucket (see LoadBucket) and per-node salt,
// for a viewer in viewerRegion, under the lookup's tiebreak.
func RankScore(viewerRegion, nodeRegion string, loadBucket, salt, tiebreak uint64) uint64 {
	var tier uint64 = 1
	if viewerRegion != "" && nodeRegion == viewerRegion {
		tier = 0
	}
	return tier<<56 | loadBucket<<48 | splitmix64(tiebreak^salt)>>16
}

// LoadBucket is a node's ranking load: its smoothed served rate over its
// upload cap (both bytes per second) in 10% steps, 0..255.
func LoadBucket(servedRate float64, uploadCapBytes int64) uint64 {
	return uint64(min(max(servedRate/float64(max(uploadCapBytes, 1))*10, 0), 255))
}

// SourcesPerSegment is how many ranked edges a lookup returns per segment
// of a video coded with k data shards (exported for the simulator).
func SourcesPerSegment(k int) int { return sourcesPerSegment(k) }

// splitmix64 is a fast, well-mixed hash of x (Steele et al., 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// appendJSON renders the result as a wire.LookupResponse JSON document
// without reflection.
func (r *lookupResult) appendJSON(b []byte) []byte {
	b = append(b, `{"segments":[`...)
	for i, seg := range r.segments {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"segment":`...)
		b = strconv.AppendInt(b, int64(seg.segment), 10)
		b = append(b, `,"sources":[`...)
		for j, src := range r.sources[seg.start:seg.end] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, r.st.bySlot[src.node].jsonHead...)
			b = append(b, `,"shards":[`...)
			b = appendMask(b, r.st.shardsOf(src.shards))
			b = append(b, "]}"...)
		}
		b = append(b, ']')
		if seg.oEnd > seg.oStart {
			b = append(b, `,"origins":[`...)
			for j, o := range r.segOrigins[seg.oStart:seg.oEnd] {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, o.jsonHead...)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"origins":[`...)
	for i, o := range r.origins {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o.jsonHead...)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

func appendMask(b []byte, m ShardMask) []byte {
	first := true
	for w, word := range m {
		for word != 0 {
			bit := bits.TrailingZeros64(word)
			if !first {
				b = append(b, ',')
			}
			first = false
			b = strconv.AppendInt(b, int64(w*64+bit), 10)
			word &= word - 1
		}
	}
	return b
}

// response converts the result into the wire type (for in-process callers).
func (r *lookupResult) response() wire.LookupResponse {
	resp := wire.LookupResponse{Segments: make([]wire.SegmentSources, 0, len(r.segments)), Origins: []wire.Source{}}
	for _, seg := range r.segments {
		ss := wire.SegmentSources{Segment: seg.segment, Sources: make([]wire.Source, 0, seg.end-seg.start)}
		for _, src := range r.sources[seg.start:seg.end] {
			n := r.st.bySlot[src.node]
			ss.Sources = append(ss.Sources, wire.Source{NodeID: n.id, Addr: n.addr, Shards: r.st.shardsOf(src.shards).Indices()})
		}
		for _, o := range r.segOrigins[seg.oStart:seg.oEnd] {
			ss.Origins = append(ss.Origins, wire.Source{NodeID: o.id, Addr: o.addr})
		}
		resp.Segments = append(resp.Segments, ss)
	}
	for _, o := range r.origins {
		resp.Origins = append(resp.Origins, wire.Source{NodeID: o.id, Addr: o.addr})
	}
	return resp
}

// appendLimits splices `,"limits":[...]` into a rendered lookup response
// (which ends in "}\n"); nil entries are edges without a limit.
func appendLimits(buf []byte, limits []*accounting.IssuedLimit) []byte {
	if len(buf) < 2 {
		return buf
	}
	first := true
	for _, l := range limits {
		if l == nil {
			continue
		}
		if first {
			buf = append(buf[:len(buf)-2], `,"limits":[`...)
			first = false
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, l.JSON...)
	}
	if first {
		return buf
	}
	return append(buf, "]}\n"...)
}

// nodeMarks numbers the distinct nodes of one lookup by slot (node.slot)
// without hashing: pos[slot] is a node's place in the node table, valid
// when stamp[slot] is the current epoch. Reused across lookups (pooled).
type nodeMarks struct {
	stamp []uint32
	pos   []uint32
	epoch uint32
}

// next starts a lookup's numbering for slots below slots.
func (m *nodeMarks) next(slots int32) {
	if int(slots) > len(m.stamp) {
		m.stamp = append(m.stamp, make([]uint32, int(slots)-len(m.stamp))...)
		m.pos = append(m.pos, make([]uint32, int(slots)-len(m.pos))...)
	}
	m.epoch++
	if m.epoch == 0 { // wrapped: stamps of 2^32 lookups ago would match
		clear(m.stamp)
		m.epoch = 1
	}
}

// nodeTable lists the distinct nodes of r into nodes (reused) in order of
// first appearance: sources, then segment origins, then origins; marks
// (started with next for the state's slots) gives each one's position.
func (r *lookupResult) nodeTable(nodes []*node, marks *nodeMarks) []*node {
	nodes = nodes[:0]
	add := func(n *node) {
		if marks.stamp[n.slot] != marks.epoch {
			marks.stamp[n.slot] = marks.epoch
			marks.pos[n.slot] = uint32(len(nodes))
			nodes = append(nodes, n)
		}
	}
	for _, src := range r.sources {
		add(r.st.bySlot[src.node])
	}
	for _, o := range r.segOrigins {
		add(o)
	}
	for _, o := range r.origins {
		add(o)
	}
	return nodes
}

// collectEdges lists the edges of a node table into edges, with their
// positions in it into at and their node slots into slots (all reused).
func collectEdges(nodes []*node, edges []wire.NodeID, at []uint32, slots accounting.EdgeKeys) ([]wire.NodeID, []uint32, accounting.EdgeKeys) {
	edges, at, slots = edges[:0], at[:0], slots[:0]
	for i, n := range nodes {
		if n.role == wire.RoleEdge {
			edges = append(edges, n.id)
			at = append(at, uint32(i))
			slots = append(slots, uint32(n.slot))
		}
	}
	return edges, at, slots
}

// appendBinary renders the result as a wire.ContentTypeLookupBinary answer
// up to its limits (accounting.AppendBinaryLimits ends it), given the result's node
// table (nodeTable).
func (r *lookupResult) appendBinary(b []byte, nodes []*node, marks *nodeMarks) []byte {
	b = wire.AppendLookupMagic(b)
	b = binary.AppendUvarint(b, uint64(len(nodes)))
	for _, n := range nodes {
		b = append(b, n.binHead...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.segments)))
	for _, seg := range r.segments {
		b = binary.AppendUvarint(b, uint64(seg.segment))
		b = binary.AppendUvarint(b, uint64(seg.end-seg.start))
		for _, src := range r.sources[seg.start:seg.end] {
			b = binary.AppendUvarint(b, uint64(marks.pos[src.node]))
			b = r.st.appendShardsBinary(b, src.shards)
		}
		b = binary.AppendUvarint(b, uint64(seg.oEnd-seg.oStart))
		for _, o := range r.segOrigins[seg.oStart:seg.oEnd] {
			b = binary.AppendUvarint(b, uint64(marks.pos[o.slot]))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.origins)))
	for _, o := range r.origins {
		b = binary.AppendUvarint(b, uint64(marks.pos[o.slot]))
	}
	return b
}

// appendShardsBinary appends code's shards as appendMaskBinary does,
// straight from an inline code's bytes (its indices, ascending, as
// encodeShards packs them) without unpacking a mask.
func (s *state) appendShardsBinary(b []byte, c shardCode) []byte {
	if c&shardCodeTable != 0 {
		return appendMaskBinary(b, s.masks[c&^shardCodeTable])
	}
	n := int(c >> shardCodeCountShift)
	b = append(b, byte(n)) // n <= shardCodeInlineMax < 0x80: one uvarint byte
	for j := range n {
		b = binary.AppendUvarint(b, uint64(c>>(8*j)&0xff))
	}
	return b
}

// appendMaskBinary appends a shard count and the indices, ascending.
func appendMaskBinary(b []byte, m ShardMask) []byte {
	n := 0
	for _, word := range m {
		n += bits.OnesCount64(word)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for w, word := range m {
		for word != 0 {
			b = binary.AppendUvarint(b, uint64(w*64+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return b
}
