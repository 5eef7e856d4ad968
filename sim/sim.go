// Package sim is a deterministic discrete-event simulator of a Swarmcast
// network. It drives the real sans-IO cores — the viewer's any-k-of-n
// fetch scheduler (viewer.SegmentFetch), the coordinator's placer
// (coordinator.Placer), demand tracker (coordinator.DemandTracker) and
// lookup ranking (coordinator.RankScore, coordinator.LoadBucket) — over a
// simulated clock and network; it implements no protocol decision itself.
//
// What the simulator models, and how:
//   - Time is a heap of events ordered by (instant, sequence number); the
//     only randomness is one seeded *rand.Rand, so a seed gives the same
//     report byte for byte (the golden tests check it).
//   - Network: every node has an uplink and a downlink with a capacity; a
//     transfer queues first-come-first-served on the sender's uplink, then
//     plus the one-way latency each way, and never faster than the
//     receiver's downlink (which caps each transfer but is not shared: the
//     uplinks are the bottleneck this models): a fluid, FIFO-per-uplink
//     model at shard granularity. A cancelled
//     transfer that is the last in its uplink's queue gives back the time
//     it had not used. Loss is modelled as delay: with probability loss a
//     transfer takes one retransmission timeout longer.
//   - The coordinator's soft state (holders per segment, liveness, bans,
//     load buckets from heartbeats) is kept here as plain data; inventory
//     changes reach it at once rather than at the next heartbeat.
//   - The edge's prefetch driver follows edge/run.go's policy: a directed
//     shard comes from an edge holding it or holding k shards of its
//     segment (which regenerates it); if none, the edge waits
//     edge.DefaultPrefetchOriginDelay before asking the origin.
//   - Byzantine edges serve bad shards to viewers; the scheduler bans the
//     liar and the viewer's proof bans it network-wide (as the receipt
//     does).
//   - Churn: edges leave as a Poisson process and are replaced by empty
//     ones; the coordinator lists a dead edge until it misses 3 heartbeats.
//
// With several origins and a per-server rate, the coordinator's origin
// pool (coordinator.OriginPool, AVARDO) routes each segment's origin.
// Not driven: the edge's order book and settlement (payment does not
// change who serves what).
package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// epoch is the simulated clock's zero (any fixed instant works: the cores
// only compare times).
var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// missedHeartbeats mirrors the coordinator's liveness rule: a node silent
// for this many intervals leaves lookups.
const missedHeartbeats = 3

// retransmitTimeout is the delay one lost transfer adds (Linux's minimum RTO).
const retransmitTimeout = 200 * time.Millisecond

// maxFetchAttempts is how many times the player retries a failed segment
// (the real viewer's fetchSegment loop), each attempt as a startup fetch.
const maxFetchAttempts = 3

type eventKind uint8

const (
	evViewerStart eventKind = iota // viewer id starts (or resumes) watching
	evViewerWake                   // viewer id's scheduler asked to be ticked at this instant
	evViewerShard                  // a shard transfer to viewer id ended
	evViewerNext                   // viewer id may fetch its next segment (buffer room)
	evViewerEnd                    // viewer id's playback ended
	evEdgeShard                    // a prefetch transfer to edge id ended
	evEdgeWork                     // edge id's prefetch worker runs
	evHeartbeat                    // all edges heartbeat
	evPlacement                    // a placement round
	evChurn                        // one edge leaves
	evSweep                        // the coordinator forgets dead edge id
	evSample                       // close a curve point
)

// event is 32 bytes (two per cache line): the kind rides in the low
// byte of the sequence number (seqKind = seq<<8 | kind), so ordering by
// seqKind orders by seq (unique per event).
type event struct {
	at      int64 // ns since epoch
	seqKind uint64
	id      int32
	gen     uint32
	a, b    int32
}

func (e event) kind() eventKind { return eventKind(e.seqKind) }

// eventHeap is a 4-ary min-heap of events by (at, seq): half the depth
// of a binary heap, and a node's children share a cache line or two (the
// scale hour pushes and pops ~10^8 events). (at, seq) is a strict order,
// so the pop sequence is the same whatever the heap's shape.
type eventHeap []event

func (h eventHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seqKind < h[j].seqKind
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !(e.at < q[p].at || e.at == q[p].at && e.seqKind < q[p].seqKind) {
			break
		}
		q[i] = q[p]
		i = p
	}
	q[i] = e
}

func (h *eventHeap) pop() event {
	q := *h
	top := q[0]
	n := len(q) - 1
	last := q[n]
	q = q[:n]
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for k := c + 1; k < min(c+4, n); k++ {
				if q.less(k, m) {
					m = k
				}
			}
			if !(q[m].at < last.at || q[m].at == last.at && q[m].seqKind < last.seqKind) {
				break
			}
			q[i] = q[m]
			i = m
		}
		q[i] = last
	}
	*h = q
	return top
}

// link is one direction of a node's access link: FIFO, rate bytes/ns
// (0 = unlimited), busy until free.
type link struct {
	rate float64
	free int64
}

func (l *link) dur(bytes int64) int64 {
	if l.rate <= 0 {
		return 0
	}
	return int64(float64(bytes) / l.rate)
}

func mbpsToBytesPerNS(mbps float64) float64 { return mbps * 1e6 / 8 / 1e9 }

type title struct {
	id       content.VideoID
	segments int
}

type edgeState struct {
	// What rank reads of every holder it scores comes first, in one cache
	// line (rank scores thousands of holders per lookup of a popular
	// segment; the rest of the struct is read when an edge serves).
	alive    bool
	banned   bool
	liar     bool
	beats    int32
	diedAt   int64
	beatAt   int64 // the heartbeat (Sim.beatN) its rate and bucket are as of
	bucket   uint64
	salt     uint64
	served   int64
	rate     float64
	upCap    int64 // bytes per second, as advertised
	id       wire.NodeID
	region   string
	up, down link
	diskCap  int64
	latency  int64
	loss     float64
	used     int64
	// inv is what it stores of each segment it holds, by dense segment
	// number: its reported inventory is the entries' held(). An entry
	// exists exactly when it holds a shard of the segment.
	inv      map[segID]invEntry
	dropFIFO []segID
	assigned map[content.SegmentRef]coordinator.ShardMask // the coordinator's last plan for it
	// assignedList is assigned as a list sorted by segment number (the
	// same entries), so a placement round walks the previous plan and
	// the new one side by side instead of sorting and hashing keys.
	assignedList []assignedShards
	jobs         []prefetchJob // directed shards to fetch, in order
	cur          prefetchJob   // the one in flight while busy
	busy         bool
	waiting      bool  // a worker event is queued
	player       int32 // the viewer it hosts (players_are_edges), or -1
}

// segID is a segment's dense number, title·(segments per title) +
// segment (every title has one rendition and the same length), so the
// simulator's per-segment state is slices and small-keyed maps instead of
// maps keyed by the 48-byte content.SegmentRef. Ordering segIDs orders
// their SegmentRefs (content.CompareSegmentRefs): title ids are
// zero-padded numbers.
type segID int32

// invEntry is an edge's store of one segment. Invariant: dropped ⊆ placed.
type invEntry struct {
	placed   coordinator.ShardMask // directed shards it holds
	watched  coordinator.ShardMask // shards its player kept
	dropped  coordinator.ShardMask // placed shards a drop directive unassigned: still served, evicted first
	lastUsed int64                 // when a shard of the segment was last stored or served (the edge's LRU clock)
}

// held is what the edge stores of the segment: its reported inventory.
func (x *invEntry) held() coordinator.ShardMask { return x.placed.Union(x.watched) }

// cell is one placement shard: a coordinator placing for its own edges
// over the demand of the viewers they host (one cell = the single
// coordinator of today).
type cell struct {
	demand *coordinator.DemandTracker
	placer *coordinator.Placer
	// lookups are the demand records (DemandTracker.RecordBy calls) of
	// the cell's viewers since its last round, in event order: the
	// tracker is read only by a placement round, so the round records
	// them, in the same order, just before it folds them in (in parallel
	// with the other cells) and the event loop only appends.
	lookups []lookupRecord
}

// lookupRecord is one lookup's RecordBy: viewer's lookup of segments
// [from, to) of title.
type lookupRecord struct {
	viewer, title, from, to int32
	playhead                bool // also RecordPlayhead(to-1)
}

type prefetchJob struct {
	seg      content.SegmentRef
	sid      segID // seg's dense number
	shard    int
	firstTry int64 // when no edge could supply it first (-1: not yet)
}

// inflight is one request of a viewer's current fetch, named by its
// source and shard (the scheduler's own key: one per node and shard).
type inflight struct {
	src          int32 // edge index, or -1-o for origin o
	shard        int32
	start, upEnd int64 // transmission on the uplink
	arriveAt     int64
	bytes        int64
}

type viewerState struct {
	id        wire.NodeID // as its lookups name it
	region    string
	regionIdx int   // region's index in Sim.regionNames
	edge      int32 // its own edge (players_are_edges), or -1
	down      link
	latency   int64
	loss      float64
	flash     bool
	active    bool
	title     int
	next      int // next segment to fetch
	end       int // segments to watch in this session: [0, end)
	joinAt    int64
	started   bool  // segment 0 arrived
	playAt    int64 // playback instant of segment 0
	stall     int64 // ns stalled so far in this session
	winFrom   int   // current lookup window [winFrom, winFrom+window)
	winAt     int64
	fetch     *viewer.SegmentFetch // the current segment's, or nil
	fetchBuf  *viewer.SegmentFetch // the scheduler every fetch of this viewer reuses (Reset)
	fetchGen  uint32
	attempt   int
	wakeAt    int64
	// inflight is the current fetch's requests in the order they were
	// made (a handful: k plus the scheduler's spares), searched linearly.
	inflight []inflight
	banned   map[wire.NodeID]bool
	// cand is the edge index of each candidate handed to the current
	// fetch, so the scheduler's actions (which name nodes) map back to
	// edges without hashing node ids; candBuf and shardBuf back the
	// candidates' lists (the fetch keeps them until it is replaced).
	cand     []int32
	candBuf  []viewer.Candidate
	shardBuf []int
}

// findInflight is the index of the request for shard from src, or -1.
func (v *viewerState) findInflight(src int32, shard int) int {
	for j := range v.inflight {
		if v.inflight[j].src == src && int(v.inflight[j].shard) == shard {
			return j
		}
	}
	return -1
}

// removeInflight deletes request j, keeping the others in order.
func (v *viewerState) removeInflight(j int) {
	v.inflight = slices.Delete(v.inflight, j, j+1)
}

// Sim is one run of a scenario.
type Sim struct {
	sc  *Scenario
	rng *rand.Rand
	now int64
	seq uint64
	evs eventHeap

	segNS int64
	// The player's buffer, lookup window and startup segments, in sim
	// segments: the real player's counts of 2 s segments, converted to the
	// same durations when a sim segment is longer.
	bufferSegs, windowSegs, startupSegs int
	segBytes                            int64
	shardBytes                          int64
	msgBytes                            int64 // an encoded shard message: shardBytes plus header and proof, as sent and stored
	k, nmax                             int
	titles                              []title
	zipfCDF                             []float64

	edges []*edgeState
	// edgeRegion is edge i's region as an index of regionNames, in one
	// dense array so rank can skip holders of other regions cheaply.
	edgeRegion  []uint16
	regionNames []string // "r0", "r1", ...: one string per region, shared
	nextID      int
	viewers     []*viewerState
	// holders is the coordinator's holder index, by segID: each list is
	// sorted by (placement cell, edge index), so a cell finds its own
	// holders of a segment by binary search (holderCmp). Nothing else
	// depends on the order: rank's result is a strict order's prefix.
	holders [][]int32
	// holderHeld[seg][j] is what holder holders[seg][j] stores of seg
	// (its invEntry's held(), word 0), kept in step with the inventories
	// when every shard index fits one word (compactHeld: nmax ≤ 64), so a
	// lookup's answer and a placement round read the holders' shards from
	// the list they scan instead of one map lookup per holder (a cache
	// miss or three each; 12 % of the scale hour's CPU).
	holderHeld  [][]uint64
	compactHeld bool
	// edgeSalt is edge i's ranking salt in one dense array: rank bounds a
	// holder's score from it (coordinator.RankScore with load bucket 0)
	// and skips the holders that bound already puts out of the list
	// without reading their state.
	edgeSalt []uint64
	titleOf  map[content.VideoID]int32
	nseg     int // segments per title

	originIDs   []wire.NodeID
	originUps   []link                  // origin o's uplink; a transfer's src is -1-o
	pool        *coordinator.OriginPool // nil with one origin
	route       []int
	rankScratch []scored
	originLat   int64
	origins     []viewer.Candidate
	cells       []cell
	heartbeatN  int64
	beatN       int64 // heartbeats so far
	deadEdges   int   // churned edges (their slots stay, replaced by new ones)
	placeNS     int64
	placing     bool // placement rounds run
	prefDelay   int64

	m          metrics
	x          *explainState // nil unless Explain
	report     *Report
	cpuAtStart float64 // processCPUSeconds when Run began
}

// metrics accumulates what the report shows.
type metrics struct {
	binOriginViewers, binOriginEdges, binEdgeViewers, binEdgeEdges float64 // bytes in the open bin
	originViewers, originEdges, edgeViewers, edgeEdges             float64
	startupsMS                                                     []float64
	rebufferNS, playNS                                             int64
	byOrigin                                                       []float64 // bytes sent by each origin
	playRebuffer                                                   []float64 // per finished play: stall/(play+stall)
	stalls                                                         int
	plays, segments, failedSegments                                int
	badShards, bannedEdges                                         int
	lookups, heartbeats, churned                                   int64
	placementRounds                                                int
	placementWall                                                  []time.Duration
	activeNow                                                      int
	points                                                         []Point
}

// New prepares a run of sc with seed (0 = the scenario's seed).
func New(sc *Scenario, seed int64) (*Sim, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if seed == 0 {
		seed = sc.Seed
	}
	if seed == 0 {
		seed = 1
	}
	s := &Sim{sc: sc, rng: rand.New(rand.NewSource(seed)), titleOf: map[content.VideoID]int32{}}
	s.report = &Report{Scenario: sc.Name, Seed: seed}
	segS := sc.SegmentS
	if segS == 0 {
		segS = 2
	}
	s.segNS = int64(segS * 1e9)
	inSimSegments := func(realSegments int) int { return max(1, int(math.Round(float64(realSegments)*2/segS))) }
	// The buffer keeps at least two sim segments: the scheduler deems a
	// fetch late once its deadline is one segment away (and the origin
	// then races the edges for every missing shard), and the real player
	// starts each fetch BufferSegments (5) segments ahead, well before
	// that. A one-segment buffer, what 10 s of buffer rounds to with 60 s
	// batches, would start every batch already late: the origin raced
	// every edge from the first instant (the scale scenario's 7 % offload
	// before this floor; docs/PERFORMANCE.md "Scale").
	s.bufferSegs = max(2, inSimSegments(viewer.BufferSegments))
	s.windowSegs = inSimSegments(viewer.LookupWindow)
	s.startupSegs = inSimSegments(viewer.StartupSegments)
	s.segBytes = int64(sc.Titles.BitrateMbps * 1e6 / 8 * segS)
	s.k, s.nmax = sc.K, sc.NMax
	if s.k == 0 {
		s.k = content.DefaultDataShards
	}
	if s.nmax == 0 {
		s.nmax = max(content.DefaultTotalShards, s.k)
	}
	s.shardBytes = (s.segBytes + int64(s.k) - 1) / int64(s.k)
	s.msgBytes = s.shardBytes + shardMessageOverhead(s.nmax)
	nseg := int(math.Ceil(sc.Titles.DurationS / segS))
	for i := range sc.Titles.Count {
		var id content.VideoID
		copy(id[:], fmt.Sprintf("sim-title-%08d", i))
		s.titles = append(s.titles, title{id: id, segments: nseg})
		s.titleOf[id] = int32(i)
	}
	s.nseg = nseg
	s.holders = make([][]int32, len(s.titles)*nseg)
	if s.compactHeld = s.nmax <= 64; s.compactHeld {
		s.holderHeld = make([][]uint64, len(s.titles)*nseg)
	}
	if sc.Titles.Zipf > 0 {
		s.zipfCDF = make([]float64, sc.Titles.Count)
		sum := 0.0
		for i := range s.zipfCDF {
			sum += 1 / math.Pow(float64(i+1), sc.Titles.Zipf)
			s.zipfCDF[i] = sum
		}
		for i := range s.zipfCDF {
			s.zipfCDF[i] /= sum
		}
	}
	cs := sc.Coordinator
	hb := secOr(cs.HeartbeatS, 2)
	s.heartbeatN = int64(hb * 1e9)
	s.placeNS = int64(secOr(cs.PlacementS, 2) * 1e9)
	s.prefDelay = int64(secOr(cs.PrefetchOriginDelayS, edge.DefaultPrefetchOriginDelay.Seconds()) * 1e9)
	minViewers := cs.PlacementMinViewers
	if minViewers <= 0 {
		minViewers = coordinator.DefaultPlacementMinViewers
	}
	lead := coordinator.DefaultPredictLead(time.Duration(s.placeNS))
	if cs.PredictLeadS != 0 {
		lead = time.Duration(cs.PredictLeadS * 1e9)
	}
	for c := range max(cs.PlacementCells, 1) {
		placer := coordinator.NewPlacer(seed + int64(c))
		placer.MinViewers = minViewers
		demand := coordinator.NewDemandTracker(time.Duration(secOr(cs.DemandHalfLifeS, 60)*1e9), epoch)
		if lead > 0 {
			// As Coordinator.predictionDepth, from the titles' length.
			demand.SetPrediction(func(video content.VideoID, _ int) coordinator.PredictionDepth {
				return coordinator.PredictionDepthFor(lead, time.Duration(s.segNS), s.titles[s.titleOf[video]].segments)
			})
		}
		s.cells = append(s.cells, cell{demand: demand, placer: placer})
	}

	s.m.byOrigin = make([]float64, max(sc.Origin.Count, 1))
	for o := range max(sc.Origin.Count, 1) {
		id := wire.NodeID("origin-" + strconv.Itoa(o))
		s.originIDs = append(s.originIDs, id)
		s.originUps = append(s.originUps, link{rate: mbpsToBytesPerNS(sc.Origin.UplinkMbps)})
		s.origins = append(s.origins, viewer.Candidate{Node: id, Origin: true})
	}
	if len(s.originIDs) > 1 && sc.Origin.PerServerRate > 0 {
		// The coordinator's origin pool (AVARDO) routes each segment to
		// one active origin and switches origins on with the request rate.
		pool, err := coordinator.NewOriginPool(coordinator.OriginPoolConfig{PerServerRate: sc.Origin.PerServerRate, Hysteresis: 0.1}, epoch)
		if err != nil {
			return nil, err
		}
		var blocks []content.SegmentRef
		for _, t := range s.titles {
			for j := range t.segments {
				blocks = append(blocks, content.SegmentRef{Video: t.id, Segment: j})
			}
		}
		if err := pool.Rebuild(blocks, nil, s.originIDs); err != nil {
			return nil, err
		}
		s.pool = pool
	}
	s.originLat = int64(sc.Origin.LatencyMS * 1e6)

	for r := range max(sc.Edges.Regions, 1) {
		s.regionNames = append(s.regionNames, "r"+strconv.Itoa(r))
	}
	for i := range sc.Edges.Count {
		s.edges = append(s.edges, nil)
		s.newEdge(int32(i))
	}
	vs := sc.Viewers
	for i := range vs.Count {
		v := s.newViewer(i, false)
		if vs.PlayersAreEdges {
			v.edge = int32(i)
			v.region, v.regionIdx = s.edges[i].region, int(s.edgeRegion[i])
			s.edges[i].player = int32(i)
		}
		switch vs.Mode {
		case "continuous":
			s.at(int64(float64(i)*vs.JoinIntervalS*1e9), evViewerStart, int32(i), 0)
		case "sessions":
			// First attempts spread over one mean idle period.
			s.at(int64(s.rng.Float64()*vs.IdleMeanS*1e9), evViewerStart, int32(i), 0)
		}
	}
	if f := sc.Flash; f != nil {
		for range f.Viewers {
			v := s.newViewer(len(s.viewers), true)
			v.title = f.Title
			s.at(int64((f.AtS+s.rng.Float64()*f.OverS)*1e9), evViewerStart, int32(len(s.viewers)-1), 0)
		}
	}
	s.at(s.heartbeatN, evHeartbeat, 0, 0)
	if s.placing = !cs.NoPlacement && len(s.edges) > 0; s.placing {
		s.at(s.placeNS, evPlacement, 0, 0)
	}
	s.scheduleChurn()
	s.at(s.sampleNS(), evSample, 0, 0)
	return s, nil
}

func secOr(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

func (s *Sim) sampleNS() int64 { return int64(secOr(s.sc.SampleS, 60) * 1e9) }

func (s *Sim) at(t int64, kind eventKind, id int32, gen uint32) {
	s.seq++
	s.evs.push(event{at: t, seqKind: s.seq<<8 | uint64(kind), id: id, gen: gen})
}

func (s *Sim) atAB(t int64, kind eventKind, id int32, gen uint32, a, b int32) {
	s.seq++
	s.evs.push(event{at: t, seqKind: s.seq<<8 | uint64(kind), id: id, gen: gen, a: a, b: b})
}

func (s *Sim) clock() time.Time { return epoch.Add(time.Duration(s.now)) }

// newEdge puts a fresh edge in slot i (at start, or replacing a churned one).
func (s *Sim) newEdge(i int32) {
	es := s.sc.Edges
	mult := 1.0
	if len(es.Multipliers) > 0 {
		mult = es.Multipliers[s.nextID%len(es.Multipliers)]
	}
	region := s.nextID % max(es.Regions, 1)
	e := &edgeState{
		id:       wire.NodeID("edge-" + strconv.Itoa(s.nextID)),
		region:   s.regionNames[region],
		up:       link{rate: mbpsToBytesPerNS(es.UploadMbps * mult)},
		down:     link{rate: mbpsToBytesPerNS(secOr(es.DownlinkMbps, 100))},
		upCap:    int64(es.UploadMbps * mult * 1e6 / 8),
		diskCap:  int64(es.DiskGB * mult * 1e9),
		latency:  int64(es.LatencyMS * 1e6),
		loss:     es.Loss,
		alive:    true,
		liar:     s.rng.Float64() < es.LiarFraction,
		salt:     s.rng.Uint64(),
		inv:      map[segID]invEntry{},
		assigned: map[content.SegmentRef]coordinator.ShardMask{},
	}
	e.player = -1
	s.nextID++
	e.beatAt = s.beatN
	s.edges[i] = e
	if int(i) == len(s.edgeRegion) {
		s.edgeRegion = append(s.edgeRegion, uint16(region))
		s.edgeSalt = append(s.edgeSalt, e.salt)
	} else {
		s.edgeRegion[i] = uint16(region)
		s.edgeSalt[i] = e.salt
	}
}

func (s *Sim) newViewer(i int, flash bool) *viewerState {
	vs := s.sc.Viewers
	v := &viewerState{
		id:        wire.NodeID("viewer-" + strconv.Itoa(i)),
		region:    s.regionNames[i%len(s.regionNames)],
		regionIdx: i % len(s.regionNames),
		edge:      -1,
		down:      link{rate: mbpsToBytesPerNS(secOr(vs.DownlinkMbps, 50))},
		latency:   int64(vs.LatencyMS * 1e6),
		loss:      vs.Loss,
		flash:     flash,
		banned:    map[wire.NodeID]bool{},
		wakeAt:    -1,
	}
	s.viewers = append(s.viewers, v)
	return v
}

func (s *Sim) scheduleChurn() {
	rate := s.sc.Edges.ChurnPerHour * float64(s.sc.Edges.Count) / 3600 // leaves per second
	if rate <= 0 {
		return
	}
	s.at(s.now+int64(s.rng.ExpFloat64()/rate*1e9), evChurn, 0, 0)
}

// Run simulates the scenario to its end and returns the report.
func (s *Sim) Run() *Report {
	wall := time.Now()
	s.cpuAtStart = processCPUSeconds()
	end := int64(s.sc.DurationS * 1e9)
	for len(s.evs) > 0 {
		ev := s.evs.pop()
		if ev.at > end {
			break
		}
		s.now = ev.at
		s.handle(ev)
	}
	s.now = end
	s.finish(time.Since(wall))
	return s.report
}

func (s *Sim) handle(ev event) {
	switch ev.kind() {
	case evViewerStart:
		s.viewerStart(ev.id)
	case evViewerWake:
		v := s.viewers[ev.id]
		if ev.gen == v.fetchGen && v.fetch != nil && v.wakeAt == ev.at {
			v.wakeAt = -1
			s.apply(ev.id, v.fetch.Tick(s.clock()))
			s.afterFetchEvent(ev.id)
		}
	case evViewerShard:
		s.viewerShard(ev)
	case evViewerNext:
		v := s.viewers[ev.id]
		if v.active && ev.gen == v.fetchGen && v.fetch == nil {
			s.fetchNext(ev.id)
		}
	case evViewerEnd:
		v := s.viewers[ev.id]
		if v.active && ev.gen == v.fetchGen {
			s.viewerEnd(ev.id)
		}
	case evEdgeShard:
		s.edgeShard(ev)
	case evEdgeWork:
		s.edges[ev.id].waiting = false
		s.edgeWork(ev.id)
	case evHeartbeat:
		s.heartbeat()
		s.at(s.now+s.heartbeatN, evHeartbeat, 0, 0)
	case evPlacement:
		s.place()
		s.at(s.now+s.placeNS, evPlacement, 0, 0)
	case evChurn:
		s.churn()
		s.scheduleChurn()
	case evSweep:
		e := s.edges[ev.id]
		for sid := range e.inv {
			s.dropHolder(sid, ev.id)
		}
		e.inv, e.assigned, e.assignedList, e.jobs = nil, nil, nil, nil
	case evSample:
		s.sample()
		s.at(s.now+s.sampleNS(), evSample, 0, 0)
	}
}

// pickTitle draws a title by the catalogue's popularity.
func (s *Sim) pickTitle() int {
	if s.zipfCDF == nil {
		return s.rng.Intn(len(s.titles))
	}
	i, _ := slices.BinarySearch(s.zipfCDF, s.rng.Float64())
	return min(i, len(s.titles)-1)
}

// diurnal is the session-start acceptance at now: 1 at the peak, 1/swing
// at the trough (the run starts at the trough).
func (s *Sim) diurnal() float64 {
	vs := s.sc.Viewers
	if vs.DiurnalPeriodS <= 0 || vs.DiurnalSwing <= 1 {
		return 1
	}
	phase := 0.5 - 0.5*math.Cos(2*math.Pi*float64(s.now)/1e9/vs.DiurnalPeriodS)
	return (1 + (vs.DiurnalSwing-1)*phase) / vs.DiurnalSwing
}

func (s *Sim) viewerStart(id int32) {
	v := s.viewers[id]
	vs := s.sc.Viewers
	if v.active {
		return
	}
	if !v.flash && vs.Mode == "sessions" && s.rng.Float64() >= s.diurnal() {
		// Thinned: try again after another idle period.
		s.at(s.now+int64(s.rng.ExpFloat64()*max(vs.IdleMeanS, 60)*1e9), evViewerStart, id, 0)
		return
	}
	if !v.flash {
		v.title = s.pickTitle()
	}
	v.end = s.titles[v.title].segments
	if !v.flash && vs.Mode == "sessions" {
		v.end = min(v.end, max(1, int(s.rng.ExpFloat64()*vs.SessionMeanS*1e9/float64(s.segNS))))
	}
	v.active = true
	v.next, v.started, v.stall, v.joinAt = 0, false, 0, s.now
	v.winFrom, v.winAt = -1, 0
	v.fetchGen++
	s.m.plays++
	s.m.activeNow++
	s.fetchNext(id)
}

func (s *Sim) viewerEnd(id int32) {
	v := s.viewers[id]
	v.active = false
	v.fetch = nil
	v.fetchGen++
	s.m.activeNow--
	s.m.rebufferNS += v.stall
	s.m.playNS += int64(v.end) * s.segNS
	s.m.playRebuffer = append(s.m.playRebuffer, float64(v.stall)/float64(int64(v.end)*s.segNS+v.stall))
	vs := s.sc.Viewers
	switch {
	case v.flash:
	case vs.Mode == "continuous":
		s.at(s.now, evViewerStart, id, 0)
	default:
		s.at(s.now+int64(s.rng.ExpFloat64()*vs.IdleMeanS*1e9), evViewerStart, id, 0)
	}
}

// deadline is segment j's playback instant as the viewer knows it now
// (before segment 0 arrives, "now": it is a startup segment).
func (s *Sim) deadline(v *viewerState, j int) int64 {
	if !v.started {
		return s.now
	}
	return v.playAt + int64(j)*s.segNS + v.stall
}

// fetchNext starts the fetch of the viewer's next segment, or waits for
// buffer room, or ends the session.
func (s *Sim) fetchNext(id int32) {
	v := s.viewers[id]
	if v.next >= v.end {
		s.at(max(s.deadline(v, v.end), s.now), evViewerEnd, id, v.fetchGen)
		return
	}
	j := v.next
	if v.started {
		// The player's buffer: at most BufferSegments ahead of playback.
		playing := (s.now - v.playAt - v.stall) / s.segNS
		if int64(j) > playing+int64(s.bufferSegs) {
			s.at(v.playAt+v.stall+int64(j-s.bufferSegs)*s.segNS, evViewerNext, id, v.fetchGen)
			return
		}
	}
	t := &s.titles[v.title]
	// A new lookup when the segment leaves the window or the answer is
	// older than the viewer's lookupMaxAge (5 s): it counts as demand.
	if v.winFrom < 0 || j >= v.winFrom+s.windowSegs || s.now-v.winAt > 5e9 {
		v.winFrom, v.winAt = j, s.now
		c := &s.cells[s.cellOf(id)]
		to := min(j+s.windowSegs, t.segments)
		// As the coordinator's lookup: no prediction ahead of a player
		// that is an alive, unbanned edge.
		playhead := v.edge < 0 || s.edges[v.edge].banned || !s.coordAlive(s.edges[v.edge])
		if !s.placing {
			c.demand.RecordBy(t.id, 0, j, to, v.region, v.id) // no round reads it
			if playhead {
				c.demand.RecordPlayhead(t.id, 0, to-1, v.region)
			}
		} else {
			c.lookups = append(c.lookups, lookupRecord{viewer: id, title: int32(v.title), from: int32(j), to: int32(to), playhead: playhead})
		}
		s.m.lookups++
	}
	v.attempt = 0
	s.startFetch(id)
}

func (s *Sim) startFetch(id int32) {
	v := s.viewers[id]
	j := v.next
	startup := j < s.startupSegs || v.attempt > 0
	v.fetchGen++
	if v.fetchBuf == nil {
		v.fetchBuf = viewer.NewSegmentFetch(s.k, s.nmax, epoch.Add(time.Duration(s.deadline(v, j))), time.Duration(s.segNS), startup, v.banned, s.rng)
	} else {
		v.fetchBuf.Reset(s.k, s.nmax, epoch.Add(time.Duration(s.deadline(v, j))), time.Duration(s.segNS), startup, v.banned, s.rng)
	}
	v.fetch = v.fetchBuf
	v.inflight = v.inflight[:0]
	v.wakeAt = -1
	cands := s.viewerCandidates(v, s.segOf(v.title, j))
	if s.x != nil {
		s.explainFetch(id, s.segOf(v.title, j))
	}
	s.apply(id, v.fetch.Sources(s.clock(), cands, s.originsFor(content.SegmentRef{Video: s.titles[v.title].id, Rendition: 0, Segment: j})))
	s.afterFetchEvent(id)
}

// originsFor lists the origins a lookup names for seg: the origin pool's
// route (dispatched origin first), or every origin without a pool.
func (s *Sim) originsFor(seg content.SegmentRef) []viewer.Candidate {
	if s.pool == nil {
		return s.origins
	}
	s.pool.Observe(s.clock(), 1)
	s.route = s.pool.Route(s.route[:0], seg, s.rng.Float64(), func(int) bool { return true })
	out := make([]viewer.Candidate, 0, len(s.route))
	for _, o := range s.route {
		out = append(out, s.origins[o])
	}
	return out
}

// scored is a ranked holder: its coordinator.RankScore, edge index and
// position in the segment's holder list.
type scored struct {
	score uint64
	i     int32
	pos   int32
}

// viewerCandidates is the lookup's answer for seg as viewer v's fetch
// takes it: the ranked holders with the shards each holds, built in v's
// buffers (the previous fetch, which used them, is over).
func (s *Sim) viewerCandidates(v *viewerState, seg segID) []viewer.Candidate {
	ranked := s.rank(seg, v.regionIdx, -1)
	v.cand, v.candBuf, v.shardBuf = v.cand[:0], v.candBuf[:0], v.shardBuf[:0]
	if len(ranked) == 0 {
		return nil
	}
	for _, sc := range ranked {
		e := s.edges[sc.i]
		from := len(v.shardBuf)
		v.shardBuf = s.heldAt(seg, sc.pos, sc.i).AppendIndices(v.shardBuf)
		v.cand = append(v.cand, sc.i)
		v.candBuf = append(v.candBuf, viewer.Candidate{Node: e.id, Shards: v.shardBuf[from:len(v.shardBuf):len(v.shardBuf)]})
	}
	return v.candBuf
}

// noSource is what candidateEdge answers for a node that is not one of
// the fetch's candidates (-1 would name origin 0).
const noSource = math.MinInt32

// candidateEdge is the edge index of node among v's current candidates,
// or noSource. It compares the candidates' own names (candBuf, in the
// order of cand), not the edges', so the search reads no edge's state.
func (s *Sim) candidateEdge(v *viewerState, node wire.NodeID) int32 {
	for j := range v.candBuf {
		if v.candBuf[j].Node == node {
			return v.cand[j]
		}
	}
	return noSource
}

// originOf is the index of origin node, or -1.
func (s *Sim) originOf(node wire.NodeID) int32 {
	for o, id := range s.originIDs {
		if id == node {
			return int32(o)
		}
	}
	return -1
}

// rank is the lookup ranking of seg's holders for a viewer in region (an
// index of regionNames): alive in the coordinator's eyes, not banned, not
// exclude, best coordinator.SourcesPerSegment first by
// coordinator.RankScore. The result is scratch, valid until the next call.
func (s *Sim) rank(seg segID, region int, exclude int32) []scored {
	hs := s.holders[seg]
	if len(hs) == 0 {
		return nil
	}
	tiebreak := s.rng.Uint64()
	// Keep the best SourcesPerSegment in a bounded max-heap (root = worst
	// kept), as the coordinator's lookup does, so a segment with thousands
	// of holders costs one pass; (score, index) is a strict order, so the
	// result is the sorted list's prefix. A holder in the viewer's region
	// outranks every other (RankScore's top bits), so when those fill the
	// list the others need not be scored: a popular segment's thousands
	// of holders cost one byte each (edgeRegion) instead of a score.
	//
	// Once the list is full, a holder whose score with load bucket 0 (its
	// lowest: RankScore grows with the bucket) is already worse than the
	// worst kept cannot enter it, so it is skipped on its salt alone
	// (edgeSalt), without reading its state or applying its missed
	// heartbeats (syncLoad is lazy: applied later, it gives the same).
	limit := coordinator.SourcesPerSegment(s.k)
	list := s.rankScratch[:0]
	viewerRegion := s.regionNames[region]
	for j, i := range hs {
		if int(s.edgeRegion[i]) == region {
			if len(list) == limit && worseScore(scored{score: coordinator.RankScore(viewerRegion, viewerRegion, 0, s.edgeSalt[i], tiebreak), i: i}, list[0]) {
				continue
			}
			list = s.consider(list, limit, i, int32(j), region, exclude, tiebreak)
		}
	}
	if len(list) < limit {
		for j, i := range hs {
			if r := int(s.edgeRegion[i]); r != region {
				if len(list) == limit && worseScore(scored{score: coordinator.RankScore(viewerRegion, s.regionNames[r], 0, s.edgeSalt[i], tiebreak), i: i}, list[0]) {
					continue
				}
				list = s.consider(list, limit, i, int32(j), region, exclude, tiebreak)
			}
		}
	}
	s.rankScratch = list
	slices.SortFunc(list, func(a, b scored) int {
		if worseScore(b, a) {
			return -1
		}
		return 1
	})
	return list
}

// worseScore orders ranked holders: a higher score, then a higher index, is worse.
func worseScore(a, b scored) bool { return a.score > b.score || a.score == b.score && a.i > b.i }

// consider scores holder i for rank and keeps it in list, a max-heap of
// at most limit entries (root = worst kept).
func (s *Sim) consider(list []scored, limit int, i, pos int32, region int, exclude int32, tiebreak uint64) []scored {
	e := s.edges[i]
	if i == exclude || e.banned || !s.coordAlive(e) {
		return list
	}
	s.syncLoad(e)
	c := scored{coordinator.RankScore(s.regionNames[region], e.region, e.bucket, e.salt, tiebreak), i, pos}
	switch {
	case len(list) < limit:
		list = append(list, c)
		for j := len(list) - 1; j > 0; {
			p := (j - 1) / 2
			if !worseScore(list[j], list[p]) {
				break
			}
			list[j], list[p] = list[p], list[j]
			j = p
		}
	case worseScore(list[0], c):
		list[0] = c
		for j := 0; ; {
			l, r, m := 2*j+1, 2*j+2, j
			if l < len(list) && worseScore(list[l], list[m]) {
				m = l
			}
			if r < len(list) && worseScore(list[r], list[m]) {
				m = r
			}
			if m == j {
				break
			}
			list[j], list[m] = list[m], list[j]
			j = m
		}
	}
	return list
}

// coordAlive is the coordinator's view: alive, or dead for less than
// missedHeartbeats intervals.
func (s *Sim) coordAlive(e *edgeState) bool {
	return e.alive || s.now-e.diedAt <= missedHeartbeats*s.heartbeatN
}

// transfer queues bytes from up to down and returns when the uplink
// starts and stops sending and when the last byte arrives.
func (s *Sim) transfer(up, down *link, bytes, latency int64, loss float64) (start, upEnd, arrive int64) {
	t := s.now + latency
	start = max(t, up.free)
	upEnd = start + up.dur(bytes)
	up.free = upEnd
	// The downlink caps the transfer's rate but is not a shared queue: a
	// FIFO there would hold the origin's shards behind a slow edge's.
	arrive = max(upEnd, start+down.dur(bytes)) + latency
	if loss > 0 && s.rng.Float64() < loss {
		arrive += int64(max(retransmitTimeout, time.Duration(4*latency)))
	}
	return start, upEnd, arrive
}

// apply carries out the scheduler's actions for viewer id.
func (s *Sim) apply(id int32, acts []viewer.Action) {
	v := s.viewers[id]
	for _, a := range acts {
		switch a.Kind {
		case viewer.ActRequest:
			var start, upEnd, arrive int64
			var src int32
			if a.Origin {
				o := s.originOf(a.Node)
				src = -1 - o
				start, upEnd, arrive = s.transfer(&s.originUps[o], &v.down, s.msgBytes, v.latency+s.originLat, v.loss)
			} else {
				src = s.candidateEdge(v, a.Node)
				e := s.edges[src]
				if !e.alive {
					// A dead edge: the connection fails after a round trip.
					arrive = s.now + 2*(v.latency+e.latency) + int64(time.Millisecond)
					start, upEnd = arrive, arrive
				} else {
					start, upEnd, arrive = s.transfer(&e.up, &v.down, s.msgBytes, v.latency+e.latency, v.loss+e.loss)
					s.touch(e, s.segOf(v.title, v.next))
				}
			}
			r := inflight{src: src, shard: int32(a.Shard), start: start, upEnd: upEnd, arriveAt: arrive, bytes: s.msgBytes}
			if j := v.findInflight(src, a.Shard); j >= 0 {
				v.inflight[j] = r
			} else {
				v.inflight = append(v.inflight, r)
			}
			s.atAB(arrive, evViewerShard, id, v.fetchGen, src, int32(a.Shard))
		case viewer.ActCancel:
			// (A cancel names the node, not whether it is an origin.)
			src := s.candidateEdge(v, a.Node)
			if o := s.originOf(a.Node); o >= 0 {
				src = -1 - o
			}
			if j := v.findInflight(src, a.Shard); src != noSource && j >= 0 {
				r := v.inflight[j]
				v.removeInflight(j)
				s.cancelled(id, v, r)
			}
		case viewer.ActBan:
			if i := s.candidateEdge(v, a.Node); i != noSource && !s.edges[i].banned {
				// The viewer's report carries the edge's receipt over the
				// bad bytes: the coordinator bans it network-wide.
				s.edges[i].banned = true
				s.m.bannedEdges++
			}
		}
	}
}

// cancelled accounts the part of a cancelled transfer already sent and
// gives the uplink back the rest if nothing queued behind it.
func (s *Sim) cancelled(id int32, v *viewerState, r inflight) {
	var up *link
	if r.src < 0 {
		up = &s.originUps[-1-r.src]
	} else {
		e := s.edges[r.src]
		if !e.alive {
			return
		}
		up = &e.up
	}
	sent := r.bytes
	if s.now < r.upEnd {
		sent = 0
		if s.now > r.start && r.upEnd > r.start {
			sent = int64(float64(r.bytes) * float64(s.now-r.start) / float64(r.upEnd-r.start))
		}
		if up.free == r.upEnd {
			up.free = max(s.now, r.start)
		}
	}
	s.countToViewer(r.src, sent)
	if s.x != nil {
		s.explainToViewer(id, r.src, r.shard, sent)
	}
}

func (s *Sim) countToViewer(src int32, bytes int64) {
	if src < 0 {
		s.m.binOriginViewers += float64(bytes)
		s.m.byOrigin[-1-src] += float64(bytes)
	} else {
		s.m.binEdgeViewers += float64(bytes)
		s.syncLoad(s.edges[src])
		s.edges[src].served += bytes
	}
}

func (s *Sim) viewerShard(ev event) {
	v := s.viewers[ev.id]
	if ev.gen != v.fetchGen || v.fetch == nil {
		return
	}
	var node wire.NodeID
	if ev.a < 0 {
		node = s.originIDs[-1-ev.a]
	} else {
		node = s.edges[ev.a].id
	}
	j := v.findInflight(ev.a, int(ev.b))
	if j < 0 {
		return
	}
	r := v.inflight[j]
	v.removeInflight(j)
	now := s.clock()
	switch {
	case ev.a >= 0 && !s.edges[ev.a].alive && s.edges[ev.a].diedAt < r.arriveAt:
		s.apply(ev.id, v.fetch.RequestFailed(now, node, int(ev.b)))
	case ev.a >= 0 && s.edges[ev.a].liar:
		s.countToViewer(ev.a, r.bytes)
		s.m.badShards++
		s.apply(ev.id, v.fetch.ShardBad(now, node, int(ev.b)))
	default:
		s.countToViewer(ev.a, r.bytes)
		if s.x != nil {
			s.explainToViewer(ev.id, ev.a, ev.b, r.bytes)
		}
		s.apply(ev.id, v.fetch.ShardVerified(now, node, int(ev.b)))
	}
	s.afterFetchEvent(ev.id)
}

// afterFetchEvent finishes, retries or re-arms the viewer's fetch.
func (s *Sim) afterFetchEvent(id int32) {
	v := s.viewers[id]
	f := v.fetch
	switch {
	case f.Done():
		s.segmentDone(id)
	case f.Failed():
		for _, r := range v.inflight {
			s.cancelled(id, v, r)
		}
		if v.attempt++; v.attempt < maxFetchAttempts {
			s.startFetch(id)
			return
		}
		// Given up: the player skips it (counted as failed, and as a
		// stall until the next segment plays).
		s.m.failedSegments++
		s.segmentDone(id)
	default:
		if w := f.NextWake(s.clock()); !w.IsZero() {
			at := int64(w.Sub(epoch))
			if at != v.wakeAt {
				v.wakeAt = at
				s.at(at, evViewerWake, id, v.fetchGen)
			}
		}
	}
}

// segmentDone records the arrival of segment v.next and moves on.
func (s *Sim) segmentDone(id int32) {
	v := s.viewers[id]
	for _, r := range v.inflight {
		s.cancelled(id, v, r)
	}
	v.inflight = v.inflight[:0]
	j := v.next
	s.m.segments++
	if !v.started {
		v.started = true
		v.playAt = s.now
		s.m.startupsMS = append(s.m.startupsMS, float64(s.now-v.joinAt)/1e6)
	} else if d := s.deadline(v, j); s.now > d {
		v.stall += s.now - d
		s.m.stalls++
	}
	if v.edge >= 0 && v.fetch.Done() {
		s.keepWatched(v.edge, s.segOf(v.title, j), v.fetch.Verified())
	}
	v.fetch = nil
	v.fetchGen++
	v.next++
	s.fetchNext(id)
}

// keepWatched is edge.Keep: the edge stores the k shards its player
// verified, evicting its oldest watched segments to fit.
func (s *Sim) keepWatched(i int32, seg segID, shards []int) {
	e := s.edges[i]
	if !e.alive || e.diskCap <= 0 {
		return
	}
	var m coordinator.ShardMask
	for _, sh := range shards {
		m.Set(sh)
	}
	x := e.inv[seg]
	add := m.Minus(x.held())
	if !s.makeRoom(i, int64(add.Count())*s.msgBytes, seg) {
		return
	}
	x = e.inv[seg]
	x.watched = x.watched.Union(m)
	s.setHeld(i, seg, x)
}

// makeRoom evicts from edge i until need more bytes fit, as the edge's
// inventory does (edge.inventory.victims): dropped shards first (oldest
// drop first), then the least recently used shards, assigned or watched
// alike: the edge stores shard messages (data plus header and proof)
// while the placer budgets data bytes, so a plan that fills the disk makes
// the edge evict assigned shards, which the coordinator's reissue then
// fetches again. Shards of except (the segment being stored) stay. It
// reports whether they fit.
func (s *Sim) makeRoom(i int32, need int64, except segID) bool {
	e := s.edges[i]
	for e.used+need > e.diskCap && len(e.dropFIFO) > 0 {
		seg := e.dropFIFO[0]
		e.dropFIFO = e.dropFIFO[1:]
		x := e.inv[seg]
		if x.dropped.Empty() {
			continue
		}
		x.placed = x.placed.Minus(x.dropped)
		x.dropped = coordinator.ShardMask{}
		s.setHeld(i, seg, x)
	}
	for e.used+need > e.diskCap {
		// The least recently used segment (ties by key, so map order never
		// leaks into the run); its shards on this edge were stored or
		// served together, so they go together.
		var lru segID
		var at int64
		found := false
		for seg, x := range e.inv {
			if seg == except {
				continue
			}
			if u := x.lastUsed; !found || u < at || u == at && seg < lru {
				lru, at, found = seg, u, true
			}
		}
		if !found {
			break
		}
		s.setHeld(i, lru, invEntry{})
	}
	return e.used+need <= e.diskCap
}

// touch marks edge e's shards of seg as just used (a request for one
// arrived), as edge.inventory.touch does.
func (s *Sim) touch(e *edgeState, seg segID) {
	if x, ok := e.inv[seg]; ok {
		x.lastUsed = s.now
		e.inv[seg] = x
	}
}

// shardMessageOverhead is what an encoded content.ShardMessage adds to its
// data: the fixed header, the Merkle proof over nmax leaves and the data
// length.
func shardMessageOverhead(nmax int) int64 {
	depth := 0
	for 1<<depth < nmax {
		depth++
	}
	return int64(content.ShardHeaderSize + 32*depth + 4)
}

// setHeld sets edge i's store of seg to x (held: x.placed ∪ x.watched),
// keeping its reported inventory, disk use, LRU clock and the
// coordinator's holder index in step.
func (s *Sim) setHeld(i int32, seg segID, x invEntry) {
	e := s.edges[i]
	oldX := e.inv[seg]
	old := oldX.held()
	m := x.held()
	e.used += int64(m.Count()-old.Count()) * s.msgBytes
	if m.Count() > old.Count() {
		x.lastUsed = s.now
	}
	switch {
	case m.Empty():
		delete(e.inv, seg)
	default:
		e.inv[seg] = x
	}
	if old.Empty() == m.Empty() {
		if s.compactHeld && m != old {
			j, _ := slices.BinarySearchFunc(s.holders[seg], i, s.holderCmp)
			s.holderHeld[seg][j] = m[0]
		}
		return
	}
	if m.Empty() {
		s.dropHolder(seg, i)
	} else {
		hs := s.holders[seg]
		j, _ := slices.BinarySearchFunc(hs, i, s.holderCmp)
		s.holders[seg] = slices.Insert(hs, j, i)
		if s.compactHeld {
			s.holderHeld[seg] = slices.Insert(s.holderHeld[seg], j, m[0])
		}
	}
}

// heartbeat is every alive edge's heartbeat: its served bytes become the
// smoothed rate and load bucket the lookup ranks by (as state.heartbeat).
// Edges apply their heartbeats lazily (syncLoad), when they serve or are
// ranked: an edge that served nothing since its last beat only halves its
// rate, so catching up gives the same rate and bucket as beating every
// edge every interval, and a beat costs nothing for the 10^5 edges of the
// scale scenario that nobody asked.
func (s *Sim) heartbeat() {
	s.beatN++
	s.m.heartbeats += int64(len(s.edges) - s.deadEdges)
}

// syncLoad applies the heartbeats alive edge e missed since it last
// served or was ranked.
func (s *Sim) syncLoad(e *edgeState) {
	if !e.alive || e.beatAt == s.beatN {
		return
	}
	missed := int(s.beatN - e.beatAt)
	rate := float64(e.served) / (float64(s.heartbeatN) / 1e9)
	if e.beats == 0 {
		e.rate = rate
	} else {
		e.rate = 0.5*e.rate + 0.5*rate
	}
	// The other missed beats had nothing served: each halves the rate
	// (exact in binary floating point).
	e.rate = math.Ldexp(e.rate, -(missed - 1))
	e.bucket = coordinator.LoadBucket(e.rate, e.upCap)
	e.beats += int32(missed)
	e.served = 0
	e.beatAt = s.beatN
}

// cellOf is the placement cell of viewer id: its edge's, else by index.
func (s *Sim) cellOf(id int32) int {
	if e := s.viewers[id].edge; e >= 0 {
		return int(e) % len(s.cells)
	}
	return int(id) % len(s.cells)
}

// place runs one placement round in every cell. The cells' plans are
// computed in parallel (each reads only its own edges and demand, and
// its placer has its own seeded random source) and applied one cell
// after another in cell order as they are ready, so the events they
// schedule, and the report, are the same on any number of cores.
// Applying cell c while later cells are planned is safe: applyCell
// writes only cell c's edges (and the event queue), and planCell reads
// only its own cell's edges, demand and placer, and the holder index,
// which applyCell does not change.
func (s *Sim) place() {
	wall := time.Now()
	now := s.clock()
	plans := make([]cellPlan, len(s.cells))
	ready := make([]chan struct{}, len(s.cells))
	for c := range ready {
		ready[c] = make(chan struct{})
	}
	workers := min(runtime.GOMAXPROCS(0), len(s.cells))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := int(next.Add(1) - 1); c < len(s.cells); c = int(next.Add(1) - 1) {
				plans[c] = s.planCell(c, now)
				close(ready[c])
			}
		}()
	}
	for c := range s.cells {
		<-ready[c]
		s.applyCell(plans[c])
		plans[c] = cellPlan{}
	}
	wg.Wait()
	s.m.placementWall = append(s.m.placementWall, time.Since(wall))
	s.m.placementRounds++
}

// cellPlan is one cell's placement round: its edges (indices, in cell
// order) and the real placer's plan for them, by edge: the p-th edge's
// target is targets[spans[p]:spans[p+1]], sorted by segment number.
type cellPlan struct {
	idx     []int32
	targets []assignedShards
	spans   []int32
}

// assignedShards is a plan's shards of one segment for one edge.
type assignedShards struct {
	sid    segID
	seg    content.SegmentRef
	shards coordinator.ShardMask
}

// planCell runs one placement round of cell c with the real placer. It
// changes nothing outside the cell's demand tracker and placer (it runs
// concurrently with the other cells').
func (s *Sim) planCell(c int, now time.Time) cellPlan {
	cl := &s.cells[c]
	for _, r := range cl.lookups {
		v := s.viewers[r.viewer]
		cl.demand.RecordBy(s.titles[r.title].id, 0, int(r.from), int(r.to), v.region, v.id)
		if r.playhead {
			cl.demand.RecordPlayhead(s.titles[r.title].id, 0, int(r.to)-1, v.region)
		}
	}
	cl.lookups = cl.lookups[:0]
	cl.demand.Fold(now)
	demand := cl.demand.Demand()
	cells := len(s.cells)
	// pos[m] is the index in st.Edges of the cell's m-th edge (edge
	// c + m·cells), or -1 when it is not placed on.
	pos := make([]int32, (len(s.edges)-c+cells-1)/cells)
	st := coordinator.PlacementState{
		Edges:    make([]coordinator.PlacementEdge, 0, len(pos)),
		Segments: make([]coordinator.PlacementSegment, 0, len(demand)),
	}
	idx := make([]int32, 0, len(pos))
	for i := c; i < len(s.edges); i += cells { // edge i is in cell i mod cells
		e := s.edges[i]
		pos[(i-c)/cells] = -1
		if e.banned || !s.coordAlive(e) {
			continue
		}
		pos[(i-c)/cells] = int32(len(st.Edges))
		idx = append(idx, int32(i))
		st.Edges = append(st.Edges, coordinator.PlacementEdge{
			ID: e.id, Region: e.region, DiskCapBytes: e.diskCap, UploadCapBytes: e.upCap,
			Assigned: e.assigned,
		})
	}
	// holds are the cell's holdings of demanded segments, gathered first
	// so that each edge's Held map is made at its size.
	type hold struct {
		edge, seg int32 // index in st.Edges, in demand
		shards    coordinator.ShardMask
	}
	var holds []hold
	count := make([]int32, len(st.Edges))
	for n, d := range demand {
		st.Segments = append(st.Segments, coordinator.PlacementSegment{
			Key: d.Key, Rate: d.Rate, ByRegion: d.ByRegion, ShardBytes: s.shardBytes, K: s.k, NMax: s.nmax, Viewers: d.Viewers,
			Predicted: d.Predicted,
		})
		// What edges hold is given for the segments with demand only, as
		// the coordinator gives it (Coordinator.Place): the placer reads
		// holdings of those alone, so the plan is the one whole
		// inventories would give, at a cost that follows demand. The
		// cell's holders are a run of the segment's holder list.
		sid := s.sid(d.Key)
		hs := s.holders[sid]
		j, _ := slices.BinarySearchFunc(hs, int32(c), func(h, cell int32) int { return int(h%int32(cells) - cell) })
		for ; j < len(hs) && int(hs[j])%cells == c; j++ {
			p := pos[(int(hs[j])-c)/cells]
			if p < 0 {
				continue
			}
			holds = append(holds, hold{p, int32(n), s.heldAt(sid, int32(j), hs[j])})
			count[p]++
		}
	}
	for _, h := range holds {
		pe := &st.Edges[h.edge]
		if pe.Held == nil {
			pe.Held = make(map[content.SegmentRef]coordinator.ShardMask, count[h.edge])
		}
		pe.Held[demand[h.seg].Key] = h.shards
	}
	plan := cl.placer.Plan(now, st)
	return s.groupPlan(idx, st.Edges, plan)
}

// groupPlan orders a cell's plan by edge (the cell's order, idx) and,
// for each edge, by segment number. An edge's last assignment of a
// segment wins, as in a map of the plan.
func (s *Sim) groupPlan(idx []int32, edges []coordinator.PlacementEdge, plan []coordinator.Assignment) cellPlan {
	at := make(map[wire.NodeID]int32, len(edges))
	for p := range edges {
		at[edges[p].ID] = int32(p)
	}
	type entry struct {
		pos int32
		assignedShards
	}
	all := make([]entry, len(plan))
	first := make([]int32, len(edges)) // where the edge's run starts in all, +1
	sorted := true
	for j, a := range plan {
		p, ok := at[a.Edge]
		if !ok {
			p = -1 // not the cell's: applied to no edge (as before)
		}
		all[j] = entry{p, assignedShards{s.sid(a.Segment), a.Segment, a.Shards}}
		// The placer lists an edge's segments in one run, in key order; the
		// cell's order of edges is another, so only the runs are checked.
		switch {
		case j > 0 && all[j-1].pos == p:
			sorted = sorted && all[j-1].sid < all[j].sid
		case p >= 0 && first[p] != 0:
			sorted = false // a second run of the edge
		case p >= 0:
			first[p] = int32(j) + 1
		}
	}
	if !sorted {
		slices.SortStableFunc(all, func(a, b entry) int { return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.sid, b.sid)) })
		clear(first)
		for j := range all {
			if p := all[j].pos; p >= 0 && first[p] == 0 {
				first[p] = int32(j) + 1
			}
		}
	}
	spans := make([]int32, len(edges)+1)
	targets := make([]assignedShards, 0, len(all))
	for p := range edges {
		spans[p] = int32(len(targets))
		if first[p] == 0 {
			continue
		}
		for j := int(first[p]) - 1; j < len(all) && all[j].pos == int32(p); j++ {
			if n := len(targets); n > int(spans[p]) && targets[n-1].sid == all[j].sid {
				targets[n-1] = all[j].assignedShards
				continue
			}
			targets = append(targets, all[j].assignedShards)
		}
	}
	spans[len(edges)] = int32(len(targets))
	return cellPlan{idx: idx, targets: targets, spans: spans}
}

// applyCell hands each edge of a cell its fetch and drop directives from
// the cell's plan (as Coordinator.Place and state.assign do).
func (s *Sim) applyCell(p cellPlan) {
	// Every coordinator.ReissueRounds rounds the coordinator sends fetch
	// directives again for assigned shards the edge does not hold (an
	// earlier fetch failed, or the edge evicted the shard).
	reissue := (s.m.placementRounds+1)%coordinator.ReissueRounds == 0
	for pi, i := range p.idx {
		e := s.edges[i]
		target := p.targets[p.spans[pi]:p.spans[pi+1]]
		// Drops: shards no longer assigned stay servable but are marked
		// to be evicted first (edge.dropShards). Both lists are sorted by
		// segment number (the order of their SegmentRefs).
		t := 0
		for _, a := range e.assignedList {
			for t < len(target) && target[t].sid < a.sid {
				t++
			}
			var now coordinator.ShardMask
			if t < len(target) && target[t].sid == a.sid {
				now = target[t].shards
			}
			x := e.inv[a.sid]
			if drop := a.shards.Minus(now).Minus(x.dropped); !drop.Empty() {
				if d := drop.Minus(drop.Minus(x.placed)); !d.Empty() {
					x.dropped = x.dropped.Union(d)
					e.inv[a.sid] = x // d ⊆ placed: the entry exists
					e.dropFIFO = append(e.dropFIFO, a.sid)
				}
			}
		}
		o := 0
		for _, a := range target {
			sid := a.sid
			x, ok := e.inv[sid]
			if ok && !x.dropped.Empty() {
				// Assigned again: no longer first to go.
				x.dropped = x.dropped.Minus(a.shards)
				e.inv[sid] = x
			}
			fetch := a.shards.Minus(x.held())
			if !reissue {
				for o < len(e.assignedList) && e.assignedList[o].sid < sid {
					o++
				}
				if o < len(e.assignedList) && e.assignedList[o].sid == sid {
					fetch = fetch.Minus(e.assignedList[o].shards)
				}
			}
			for _, sh := range fetch.Indices() {
				e.jobs = append(e.jobs, prefetchJob{seg: a.seg, sid: sid, shard: sh, firstTry: -1})
			}
		}
		// The new plan replaces the old in place: the old map and list are
		// read by nothing else once the round's plans are made.
		if e.assigned == nil {
			e.assigned = make(map[content.SegmentRef]coordinator.ShardMask, len(target))
		} else {
			clear(e.assigned)
		}
		for _, a := range target {
			e.assigned[a.seg] = a.shards
		}
		e.assignedList = append(e.assignedList[:0], target...)
		if len(e.jobs) > 0 && !e.busy && !e.waiting {
			e.waiting = true
			s.at(s.now, evEdgeWork, i, 0)
		}
	}
}

// edgeWork runs edge i's prefetch worker: one directed shard at a time,
// from an edge that holds it or can regenerate it, else (after
// PrefetchOriginDelay without one) from the origin.
func (s *Sim) edgeWork(i int32) {
	e := s.edges[i]
	if !e.alive || e.busy {
		return
	}
	var deferred []prefetchJob
	defer func() {
		e.jobs = append(e.jobs, deferred...)
	}()
	for len(e.jobs) > 0 {
		j := e.jobs[0]
		e.jobs = e.jobs[1:]
		if x := e.inv[j.sid]; !e.assigned[j.seg].Has(j.shard) || x.held().Has(j.shard) {
			continue // dropped meanwhile, or already here
		}
		src := int32(-1)
		for _, c := range s.rank(j.sid, int(s.edgeRegion[i]), i) {
			ci := c.i
			h := s.heldAt(j.sid, c.pos, ci)
			if s.edges[ci].alive && !s.edges[ci].liar && (h.Has(j.shard) || h.Count() >= s.k) {
				src = ci
				break
			}
		}
		if src < 0 {
			if j.firstTry < 0 {
				j.firstTry = s.now
			}
			if s.now-j.firstTry < s.prefDelay {
				// No edge can supply it yet: wait for one rather than
				// pull it from the origin.
				deferred = append(deferred, j)
				continue
			}
		}
		var arrive int64
		if src < 0 {
			// The edge asks the lookup's first origin.
			_, _, arrive = s.transfer(&s.originUps[0], &e.down, s.msgBytes, e.latency+s.originLat, e.loss)
		} else {
			se := s.edges[src]
			_, _, arrive = s.transfer(&se.up, &e.down, s.msgBytes, e.latency+se.latency, e.loss+se.loss)
			s.touch(se, j.sid)
		}
		e.busy, e.cur = true, j
		s.atAB(arrive, evEdgeShard, i, 0, src, int32(j.shard))
		if len(deferred) > 0 {
			s.wakeEdge(i, s.now+s.prefDelay)
		}
		return
	}
	if len(deferred) > 0 {
		s.wakeEdge(i, s.now+s.prefDelay)
	}
}

func (s *Sim) wakeEdge(i int32, at int64) {
	e := s.edges[i]
	if e.waiting {
		return
	}
	e.waiting = true
	s.at(at, evEdgeWork, i, 0)
}

func (s *Sim) edgeShard(ev event) {
	e := s.edges[ev.id]
	e.busy = false
	j := e.cur
	if !e.alive {
		return
	}
	if ev.a >= 0 && !s.edges[ev.a].alive {
		// The source left mid-transfer: try again (another source).
		e.jobs = append([]prefetchJob{j}, e.jobs...)
		s.edgeWork(ev.id)
		return
	}
	if s.x != nil {
		if ev.a < 0 {
			s.explainFill(ev.id, j.sid, int32(j.shard))
		} else {
			s.explainServed(ev.a, j.sid, int32(j.shard), s.msgBytes)
		}
	}
	if ev.a < 0 {
		s.m.binOriginEdges += float64(s.msgBytes)
		s.m.byOrigin[0] += float64(s.msgBytes)
	} else {
		s.m.binEdgeEdges += float64(s.msgBytes)
		s.syncLoad(s.edges[ev.a])
		s.edges[ev.a].served += s.msgBytes
	}
	if x := e.inv[j.sid]; e.alive && e.assigned[j.seg].Has(j.shard) && !x.held().Has(j.shard) && s.makeRoom(ev.id, s.msgBytes, j.sid) {
		x = e.inv[j.sid]
		x.placed.Set(j.shard)
		s.setHeld(ev.id, j.sid, x)
	}
	s.edgeWork(ev.id)
}

// churn makes one random alive edge leave and a fresh, empty one join
// (hosting the leaver's player, if any). The coordinator lists the dead
// edge until it has missed missedHeartbeats heartbeats.
func (s *Sim) churn() {
	if len(s.edges) == 0 {
		return
	}
	i := int32(s.rng.Intn(len(s.edges)))
	for !s.edges[i].alive {
		i = int32(s.rng.Intn(len(s.edges)))
	}
	old := s.edges[i]
	s.syncLoad(old) // its beats while alive
	old.alive = false
	s.deadEdges++
	old.diedAt = s.now
	s.at(s.now+missedHeartbeats*s.heartbeatN, evSweep, i, 0)
	s.m.churned++
	n := int32(len(s.edges))
	s.edges = append(s.edges, nil)
	s.newEdge(n)
	if p := old.player; p >= 0 {
		s.edges[n].player, old.player = p, -1
		s.viewers[p].edge = n
	}
}

// dropHolder removes edge i from seg's holder index.
func (s *Sim) dropHolder(seg segID, i int32) {
	hs := s.holders[seg]
	if j, ok := slices.BinarySearchFunc(hs, i, s.holderCmp); ok {
		s.holders[seg] = slices.Delete(hs, j, j+1)
		if s.compactHeld {
			s.holderHeld[seg] = slices.Delete(s.holderHeld[seg], j, j+1)
		}
	}
}

// heldAt is what edge i, the holder at position pos of seg's holder list,
// stores of seg.
func (s *Sim) heldAt(seg segID, pos, i int32) coordinator.ShardMask {
	if s.compactHeld {
		return coordinator.ShardMask{s.holderHeld[seg][pos]}
	}
	x := s.edges[i].inv[seg]
	return x.held()
}

// holderCmp is the holder lists' order: by placement cell, then index.
func (s *Sim) holderCmp(a, b int32) int {
	n := int32(len(s.cells))
	if ca, cb := a%n, b%n; ca != cb {
		return int(ca - cb)
	}
	return int(a - b)
}

// segOf is the dense number of segment j of title t.
func (s *Sim) segOf(t, j int) segID { return segID(t*s.nseg + j) }

// sid is seg's dense number (seg is a segment of a simulated title).
func (s *Sim) sid(seg content.SegmentRef) segID {
	return s.segOf(int(s.titleOf[seg.Video]), seg.Segment)
}

// sample closes one curve point.
func (s *Sim) sample() {
	w := float64(s.sampleNS()) / 1e9
	toMbps := func(b float64) float64 { return round3(b * 8 / w / 1e6) }
	m := &s.m
	p := Point{
		Minute:           round3(float64(s.now) / 60e9),
		OriginMbps:       toMbps(m.binOriginViewers + m.binOriginEdges),
		OriginToViewers:  toMbps(m.binOriginViewers),
		OriginToEdges:    toMbps(m.binOriginEdges),
		EdgeToViewers:    toMbps(m.binEdgeViewers),
		EdgeToEdges:      toMbps(m.binEdgeEdges),
		BaselineMbps:     round3(float64(m.activeNow) * s.sc.Titles.BitrateMbps),
		ActiveViewers:    m.activeNow,
		ViewerOffload:    0,
		AliveEdges:       0,
		CumulativeLookup: m.lookups,
	}
	if tot := m.binOriginViewers + m.binEdgeViewers; tot > 0 {
		p.ViewerOffload = round3(m.binEdgeViewers / tot)
	}
	for _, e := range s.edges {
		if e.alive && !e.banned {
			p.AliveEdges++
		}
	}
	m.originViewers += m.binOriginViewers
	m.originEdges += m.binOriginEdges
	m.edgeViewers += m.binEdgeViewers
	m.edgeEdges += m.binEdgeEdges
	m.binOriginViewers, m.binOriginEdges, m.binEdgeViewers, m.binEdgeEdges = 0, 0, 0, 0
	m.points = append(m.points, p)
	if s.x != nil {
		s.explainSample(p.Minute, toMbps)
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
