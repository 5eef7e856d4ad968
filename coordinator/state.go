package coordinator

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// missedHeartbeats is how many heartbeat intervals a node may stay silent
// before it leaves lookups (and, at the next sweep, the registry).
const missedHeartbeats = 3

// node is the registry's view of one node. Fields are guarded by the
// Coordinator's mutex: written under the write lock, read under either.
type node struct {
	// What ranking reads for every holder of every segment of a lookup
	// comes first, within one cache line (a lookup visits hundreds of
	// holders, and the node behind each is a pointer away).
	lastSeenNS int64  // lastSeen.UnixNano(), or MaxInt64 for an origin that never heartbeats
	loadBucket uint64 // servedRate/uploadCap in 10% steps, 0..255, for ranking
	salt       uint64 // per-node input to the seeded lookup tie-break
	banned     bool
	region     string
	id         wire.NodeID
	slot       int32 // dense number among registered nodes (state.slots)

	role         wire.Role
	addr         string
	rtmpAddr     string  // an origin's RTMP ingest listener (rtmp://IP:PORT), or ""
	pricePerGB   float64 // a relay's upload price (COCOS), points per GB
	btrSlots     int     // a worker's concurrent transcodes
	btrBusy      int     // a worker's busy slots at its last heartbeat
	diskCap      int64   // bytes
	uploadCap    int64   // bytes per second
	registeredAt time.Time
	lastSeen     time.Time
	heartbeats   int     // heartbeats since registration
	usedBytes    int64   // as the edge reports it
	servedRate   float64 // bytes per second uploaded, smoothed over heartbeats
	servedTotal  int64   // bytes counted from heartbeats since registration (self-reported, bounded by servedBound)

	// held is what the node reports holding of catalogued segments (the
	// holder index, index.go), sorted by segment slot; unknown is what it
	// reports of videos not (yet) in the catalogue (nil when nothing),
	// which joins the index on publish.
	held    []heldSegment
	unknown map[content.SegmentRef]ShardMask
	shards  int // total shards held (both)

	// assigned is the current placement for this edge; pending holds
	// directives not yet delivered in a heartbeat response.
	assigned map[content.SegmentRef]ShardMask
	pending  map[content.SegmentRef]pendingDirective

	// jsonHead is `{"node_id":"…","addr":"…"`, and binHead the node's entry
	// in a binary lookup answer's node table (wire.AppendLookupNode),
	// rendered once so the lookup hot path only copies bytes.
	jsonHead, binHead []byte
}

type pendingDirective struct{ fetch, drop ShardMask }

// video is a catalogue entry plus the holder index of its segments.
type video struct {
	id       content.VideoID
	m        *content.Manifest
	manifest []byte
	key      []byte // nil if the origin did not publish one
	origin   wire.NodeID
	info     wire.VideoInfo
	segs     [][]segmentEntry // [rendition][segment]
	// Segment slots: segment s of rendition r is base+renditionBase[r]+s;
	// the video has segments slots in all.
	base, segments uint32
	renditionBase  []uint32
}

// segmentEntry lists the nodes holding shards of one segment (unordered;
// lookups rank them).
type segmentEntry struct {
	holders []holder
	// version changes (under the write lock) whenever anything a ranking
	// of this segment reads changes: the holder list, a holder's shards,
	// or a holder's load bucket, ban or return from silence. Rankings
	// cached at another version are stale (rankCache).
	version uint64
	// ranks caches this segment's rankings (allocated by the first lookup).
	ranks atomic.Pointer[rankSlots]
}

// bumpHoldings invalidates the cached rankings of every segment n holds:
// what ranking reads of n itself changed.
func (s *state) bumpHoldings(n *node) {
	var v *video
	for _, e := range n.held {
		var r, i int
		v, r, i = s.segmentAt(e.seg, v)
		v.segs[r][i].version++
	}
}

// state is the coordinator's sans-IO core: registry, inventory index,
// catalogue and bans. Every method takes the time it acts at; none does IO
// or locking (the Coordinator serialises writers and lets lookups share).
type state struct {
	interval time.Duration
	nodes    map[wire.NodeID]*node
	origins  []*node // the subset of nodes with role origin
	videos   map[content.VideoID]*video
	banned   map[wire.NodeID]string // node -> reason; survives re-registration
	// slots numbers registered nodes densely (node.slot), so a lookup can
	// mark the nodes it lists in a plain array instead of a map; a removed
	// node's slot goes to freeSlots for the next registration.
	slots     int32
	freeSlots []int32
	bySlot    []*node // node by slot; nil for a free slot

	// The holder index's spill (index.go): shard sets of more than three
	// shards, with free entries for reuse.
	masks     []ShardMask
	freeMasks []uint32
	// byBase lists the catalogue by segment slot (video.base, ascending);
	// segmentSlots is the next video's base.
	byBase       []*video
	segmentSlots uint32
	build        []heldBuild // scratch of addFullInventory
	// rankScan bounds the holders one lookup visits per segment
	// (rankScanBudget; tests lower it to exercise sampling).
	rankScan int
}

func newState(heartbeat time.Duration) *state {
	return &state{
		interval: heartbeat,
		nodes:    make(map[wire.NodeID]*node),
		videos:   make(map[content.VideoID]*video),
		banned:   make(map[wire.NodeID]string),
		rankScan: rankScanBudget,
	}
}

// alive reports whether n may appear in lookups at now. An origin that has
// never heartbeated stays listed until it leaves: origins are long-lived
// servers, and heartbeating is only required of edges.
func (s *state) alive(n *node, now time.Time) bool {
	if n.banned {
		return false
	}
	return n.lastSeenNS >= now.UnixNano()-int64(missedHeartbeats*s.interval)
}

// checkRegister validates a registration without changing state.
func checkRegister(req *wire.RegisterRequest) error {
	if err := wire.CheckNodeID(req.NodeID); err != nil {
		return err
	}
	if req.Role != wire.RoleEdge && wire.CheckAllowListedRole(req.Role) != nil {
		return fmt.Errorf("role %q: want %q, %q, %q or %q", req.Role, wire.RoleEdge, wire.RoleOrigin, wire.RoleRelay, wire.RoleWorker)
	}
	if req.Role == wire.RoleWorker && (req.BTRSlots < 0 || req.BTRSlots > maxBTRSlots) {
		return fmt.Errorf("btr_slots %d: a worker registers its concurrent transcodes, 1..%d (0: 1)", req.BTRSlots, maxBTRSlots)
	}
	if req.Role != wire.RoleWorker && req.BTRSlots != 0 {
		return fmt.Errorf("btr_slots: only workers transcode; leave it 0 for a %s", req.Role)
	}
	if req.PricePerGB < 0 || math.IsNaN(req.PricePerGB) || math.IsInf(req.PricePerGB, 0) {
		return fmt.Errorf("price_per_gb %v: want a finite price of 0 or more", req.PricePerGB)
	}
	if req.RTMPAddr != "" && req.Role != wire.RoleOrigin {
		return fmt.Errorf("rtmp_addr: only origins ingest RTMP; leave it empty for a %s", req.Role)
	}
	u, err := url.Parse(req.Addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("addr %q: want the advertised base URL of the node's shard server, like http://203.0.113.7:7001", req.Addr)
	}
	if len(req.Region) > maxRegionLen {
		return fmt.Errorf("region: %d bytes, limit %d", len(req.Region), maxRegionLen)
	}
	if req.DiskCapBytes < 0 || req.UploadCapBytes < 0 {
		return fmt.Errorf("disk_cap_bytes and upload_cap_bytes_per_s must not be negative")
	}
	return nil
}

// register adds or refreshes a node. A re-registering node starts with an
// empty inventory: it sends a full one in its next heartbeat.
func (s *state) register(req wire.RegisterRequest, now time.Time, salt uint64) *node {
	if req.DiskCapBytes == 0 {
		req.DiskCapBytes = wire.DefaultDiskCapBytes
	}
	if req.UploadCapBytes == 0 {
		req.UploadCapBytes = wire.DefaultUploadCapBytes
	}
	if old := s.nodes[req.NodeID]; old != nil {
		s.remove(old)
	}
	head, _ := json.Marshal(struct {
		NodeID wire.NodeID `json:"node_id"`
		Addr   string      `json:"addr"`
	}{req.NodeID, strings.TrimRight(req.Addr, "/")})
	n := &node{
		id:           req.NodeID,
		role:         req.Role,
		addr:         strings.TrimRight(req.Addr, "/"),
		rtmpAddr:     req.RTMPAddr,
		pricePerGB:   req.PricePerGB,
		btrSlots:     max(req.BTRSlots, 1), // 0 (unset) is one slot
		region:       req.Region,
		diskCap:      req.DiskCapBytes,
		uploadCap:    req.UploadCapBytes,
		registeredAt: now,
		lastSeen:     now,
		lastSeenNS:   now.UnixNano(),
		salt:         salt,
		assigned:     make(map[content.SegmentRef]ShardMask),
		pending:      make(map[content.SegmentRef]pendingDirective),
		jsonHead:     head[:len(head)-1], // without the closing brace
		binHead:      wire.AppendLookupNode(nil, req.NodeID, strings.TrimRight(req.Addr, "/")),
	}
	if k := len(s.freeSlots); k > 0 {
		n.slot, s.freeSlots = s.freeSlots[k-1], s.freeSlots[:k-1]
		s.bySlot[n.slot] = n
	} else {
		n.slot = s.slots
		s.slots++
		s.bySlot = append(s.bySlot, n)
	}
	_, n.banned = s.banned[n.id]
	if n.role == wire.RoleOrigin {
		n.lastSeenNS = math.MaxInt64 // listed until it leaves or starts heartbeating
	}
	s.nodes[n.id] = n
	if n.role == wire.RoleOrigin {
		s.origins = append(s.origins, n)
	}
	return n
}

// remove drops a node from the registry and the holder index.
func (s *state) remove(n *node) {
	s.clearHoldings(n)
	delete(s.nodes, n.id)
	s.bySlot[n.slot] = nil
	s.freeSlots = append(s.freeSlots, n.slot)
	if i := slices.Index(s.origins, n); i >= 0 {
		s.origins = slices.Delete(s.origins, i, i+1)
	}
}

// checkShardSets validates inventory sets: indices in range, and in range of
// the manifest when the video is known. Unknown videos are allowed (the
// coordinator may have restarted before the origin republished).
func (s *state) checkShardSets(field string, sets []wire.ShardSet) error {
	for i, set := range sets {
		nmax := content.MaxTotalShards
		if v := s.videos[set.Video]; v != nil {
			if set.Rendition < 0 || set.Rendition >= len(v.segs) {
				return fmt.Errorf("%s[%d]: rendition %d does not exist (video %s has %d)", field, i, set.Rendition, set.Video, len(v.segs))
			}
			if set.Segment < 0 || set.Segment >= len(v.segs[set.Rendition]) {
				return fmt.Errorf("%s[%d]: segment %d does not exist (rendition %d has %d)", field, i, set.Segment, set.Rendition, len(v.segs[set.Rendition]))
			}
			nmax = v.m.Params.NMax
		} else if set.Rendition < 0 || set.Rendition > 255 || set.Segment < 0 || set.Segment >= 1<<20 {
			return fmt.Errorf("%s[%d]: rendition %d / segment %d out of range", field, i, set.Rendition, set.Segment)
		}
		for _, sh := range set.Shards {
			if sh < 0 || sh >= nmax {
				return fmt.Errorf("%s[%d]: shard index %d outside 0..%d", field, i, sh, nmax-1)
			}
		}
	}
	return nil
}

// Bounds on a heartbeat's served-bytes delta (self-reported): an edge may
// report at most servedCapFactor times its upload cap over the time since
// its previous heartbeat (at most missedHeartbeats intervals) plus
// servedBurstBytes; an origin, which has no enforced cap, at most
// originServedCeiling bytes/s over that time. More is counted as the bound,
// so a node can overstate only its own figure, and only by that much.
const (
	servedCapFactor     = 2
	servedBurstBytes    = 8 << 20
	originServedCeiling = 10e9 / 8 // 10 Gbit/s in bytes/s
)

// servedBound is the most served bytes a heartbeat from n at now counts.
func (s *state) servedBound(n *node, now time.Time) int64 {
	elapsed := now.Sub(n.lastSeen)
	if n.heartbeats == 0 || elapsed <= 0 {
		elapsed = s.interval
	}
	elapsed = min(elapsed, missedHeartbeats*s.interval)
	if n.role == wire.RoleOrigin {
		return int64(originServedCeiling*elapsed.Seconds()) + servedBurstBytes
	}
	return int64(float64(servedCapFactor*max(n.uploadCap, 1))*elapsed.Seconds()) + servedBurstBytes
}

// heartbeat applies a heartbeat from a known node and returns the
// directives waiting for it and the served bytes it counted (the request's
// delta, at most servedBound). The request must have passed
// checkShardSets and carry a non-negative ServedBytes.
func (s *state) heartbeat(n *node, req *wire.HeartbeatRequest, now time.Time) ([]wire.Directive, int64) {
	elapsed := now.Sub(n.lastSeen)
	if n.heartbeats == 0 || elapsed <= 0 {
		elapsed = s.interval
	}
	served := min(max(req.ServedBytes, 0), s.servedBound(n, now))
	n.servedTotal += served
	rate := float64(served) / elapsed.Seconds()
	if n.heartbeats == 0 {
		n.servedRate = rate
	} else {
		n.servedRate = 0.5*n.servedRate + 0.5*rate
	}
	bucket := LoadBucket(n.servedRate, n.uploadCap)
	if bucket != n.loadBucket || !s.alive(n, now) || n.lastSeenNS == math.MaxInt64 {
		// Ranked differently from now on, back from silence (a cached
		// ranking left it out), or an origin's first heartbeat (cached
		// rankings took it as fresh forever): its segments re-rank.
		s.bumpHoldings(n)
	}
	n.loadBucket = bucket
	n.heartbeats++
	n.lastSeen = now
	n.lastSeenNS = now.UnixNano()
	n.usedBytes = max(req.UsedBytes, 0)
	if n.role == wire.RoleWorker {
		n.btrBusy = min(max(req.BTRBusy, 0), n.btrSlots)
	}
	if req.DiskCapBytes > 0 { // an edge whose filesystem filled up advertises less
		n.diskCap = req.DiskCapBytes
	}

	if req.Full {
		// Everything is replaced (what Removed names is then already
		// gone), in one sorted pass.
		s.clearHoldings(n)
		s.addFullInventory(n, req.Added)
		return n.takeDirectives(), served
	}
	for _, set := range req.Removed {
		key := content.SegmentRef{Video: set.Video, Rendition: set.Rendition, Segment: set.Segment}
		s.setHolding(n, key, s.holding(n, key).Minus(maskOf(set.Shards...)))
	}
	for _, set := range req.Added {
		key := content.SegmentRef{Video: set.Video, Rendition: set.Rendition, Segment: set.Segment}
		s.setHolding(n, key, s.holding(n, key).Union(maskOf(set.Shards...)))
	}
	return n.takeDirectives(), served
}

// takeDirectives drains n's pending directives in a stable order.
func (n *node) takeDirectives() []wire.Directive {
	if len(n.pending) == 0 {
		return nil
	}
	keys := make([]content.SegmentRef, 0, len(n.pending))
	for k := range n.pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, content.CompareSegmentRefs)
	var out []wire.Directive
	for _, k := range keys {
		p := n.pending[k]
		set := wire.NewShardSet(k, nil)
		if !p.fetch.Empty() {
			set.Shards = p.fetch.Indices()
			out = append(out, wire.Directive{Action: wire.ActionFetch, ShardSet: set})
		}
		if !p.drop.Empty() {
			set.Shards = p.drop.Indices()
			out = append(out, wire.Directive{Action: wire.ActionDrop, ShardSet: set})
		}
	}
	clear(n.pending)
	return out
}

// assign replaces n's placement with shards per segment and queues the
// difference as directives: fetch what is newly assigned and not held, drop
// what was assigned and no longer is. With reissue, fetch everything
// assigned and still not held, for edges whose earlier fetch failed.
func (s *state) assign(n *node, target map[content.SegmentRef]ShardMask, reissue bool) (fetches, drops int) {
	queue := func(key content.SegmentRef, fetch, drop ShardMask) {
		if fetch.Empty() && drop.Empty() {
			return
		}
		p := n.pending[key]
		p.fetch = p.fetch.Minus(drop).Union(fetch)
		p.drop = p.drop.Minus(fetch).Union(drop)
		n.pending[key] = p
		fetches += fetch.Count()
		drops += drop.Count()
	}
	for key, old := range n.assigned {
		queue(key, ShardMask{}, old.Minus(target[key]))
	}
	for key, want := range target {
		fetch := want.Minus(s.holding(n, key))
		if !reissue {
			fetch = fetch.Minus(n.assigned[key])
		}
		queue(key, fetch, ShardMask{})
	}
	n.assigned = target
	return fetches, drops
}

// sweep removes nodes silent for more than missedHeartbeats intervals and
// returns them. Their next heartbeat answers Unknown, so they re-register.
func (s *state) sweep(now time.Time) []*node {
	var gone []*node
	for _, n := range s.nodes {
		if n.role == wire.RoleOrigin && n.heartbeats == 0 {
			continue
		}
		if now.Sub(n.lastSeen) > missedHeartbeats*s.interval {
			gone = append(gone, n)
		}
	}
	for _, n := range gone {
		s.remove(n)
	}
	return gone
}

// addVideo puts a verified video in the catalogue and indexes the shards
// nodes already reported for it.
func (s *state) addVideo(rec coordinatordb.CatalogueVideo, m *content.Manifest) {
	if old := s.videos[rec.ID]; old != nil {
		old.key, old.origin = rec.Key, rec.Origin
		return
	}
	v := &video{id: rec.ID, m: m, manifest: rec.Manifest, key: rec.Key, origin: rec.Origin}
	v.info = wire.VideoInfo{ID: rec.ID, Title: m.Title, DurationMS: m.Duration(0).Milliseconds(), K: m.Params.K, NMax: m.Params.NMax}
	v.segs = make([][]segmentEntry, len(m.Renditions))
	v.base = s.segmentSlots
	for i, r := range m.Renditions {
		v.info.Renditions = append(v.info.Renditions, wire.RenditionInfo{
			Name: r.Name, Bandwidth: r.Bandwidth, Width: r.Width, Height: r.Height, Segments: len(r.Segments),
		})
		v.segs[i] = make([]segmentEntry, len(r.Segments))
		v.renditionBase = append(v.renditionBase, v.segments)
		v.segments += uint32(len(r.Segments))
	}
	s.segmentSlots += v.segments
	s.videos[rec.ID] = v
	s.byBase = append(s.byBase, v)
	// What nodes reported of the video before it was published joins the
	// index, less indices the manifest does not have.
	for _, n := range s.nodes {
		for key, shards := range n.unknown {
			if key.Video != rec.ID {
				continue
			}
			delete(n.unknown, key)
			n.shards -= shards.Count()
			if s.checkShardSets("inventory", []wire.ShardSet{wire.NewShardSet(key, shards.Indices())}) == nil {
				s.setHolding(n, key, shards)
			}
		}
	}
}

// ban excludes a node from lookups and placement, now and after it
// re-registers.
func (s *state) ban(id wire.NodeID, reason string) (newly bool) {
	if _, ok := s.banned[id]; ok {
		return false
	}
	s.banned[id] = reason
	if n := s.nodes[id]; n != nil {
		n.banned = true
		s.bumpHoldings(n)
	}
	return true
}

// unban lets a node back into lookups and placement (its ban was lifted in
// the store); its inventory was kept, so it is listed again at once.
func (s *state) unban(id wire.NodeID) {
	delete(s.banned, id)
	if n := s.nodes[id]; n != nil {
		n.banned = false
		s.bumpHoldings(n)
	}
}

// nodeInfos lists nodes sorted by id.
func (s *state) nodeInfos(now time.Time) []wire.NodeInfo {
	out := make([]wire.NodeInfo, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, wire.NodeInfo{
			NodeID: n.id, Role: n.role, Addr: n.addr, Region: n.region,
			Alive: s.alive(n, now), LastSeen: n.lastSeen, Shards: n.shards,
			UsedBytes: n.usedBytes, DiskCapBytes: n.diskCap, UploadCapBytes: n.uploadCap,
			Banned: n.banned,
		})
	}
	slices.SortFunc(out, func(a, b wire.NodeInfo) int { return strings.Compare(string(a.NodeID), string(b.NodeID)) })
	return out
}

// pickAudits is the sans-IO choice of one round: up to n random alive,
// unbanned edges, each with a random shard from its inventory (of a video
// in the catalogue) and a random byte range inside that shard's data.
//
// Edges for which audited is false come first (in random order among
// themselves), so a new edge gets its first audit, and with it its first
// earnings, in its first rounds rather than after N/n of them.
func (s *state) pickAudits(now time.Time, rng *rand.Rand, n int, audited func(wire.NodeID) bool) []accounting.AuditTarget {
	var edges []*node
	for _, nd := range s.nodes {
		if nd.role == wire.RoleEdge && s.alive(nd, now) && nd.shards > 0 {
			edges = append(edges, nd)
		}
	}
	slices.SortFunc(edges, func(a, b *node) int { return strings.Compare(string(a.id), string(b.id)) })
	rng.Shuffle(len(edges), func(i, j int) { edges[i], edges[j] = edges[j], edges[i] })
	if audited != nil {
		slices.SortStableFunc(edges, func(a, b *node) int {
			switch aa, ba := audited(a.id), audited(b.id); {
			case aa == ba:
				return 0
			case !aa:
				return -1
			default:
				return 1
			}
		})
	}
	var out []accounting.AuditTarget
	for _, nd := range edges {
		if len(out) == n {
			break
		}
		if len(nd.held) == 0 { // holds nothing of the catalogue
			continue
		}
		e := nd.held[rng.Intn(len(nd.held))]
		v, r, i := s.segmentAt(e.seg, nil)
		key := content.SegmentRef{Video: v.id, Rendition: r, Segment: i}
		shards := s.shardsOf(v.segs[r][i].holders[e.at].shards).Indices()
		seg, err := v.m.Segment(key.Rendition, key.Segment)
		if err != nil || len(shards) == 0 {
			continue
		}
		size := int64(v.m.Params.ShardSize(int(seg.Size)))
		if size <= 0 {
			continue
		}
		length := 1 + rng.Int63n(min(size, 4096))
		out = append(out, accounting.AuditTarget{Addr: nd.addr, Challenge: coordinatordb.Challenge{
			Edge: nd.id, Ref: key.Shard(shards[rng.Intn(len(shards))]), Offset: rng.Int63n(size - length + 1), Length: length,
		}})
	}
	return out
}
