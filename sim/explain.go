package sim

import (
	"slices"

	"github.com/swarmcast/swarmcast/content"
)

// Explain (Sim.Explain, `swarmcast sim --explain`) decomposes the origin's
// bytes: what it sent to viewers by the reason the viewer's fetch asked it,
// and what it sent to edges (placement fills) by whether the filled shard
// was ever served again. It observes the run without changing it: a run
// with and without it prints the same report apart from this section.
type Explain struct {
	// ToViewersMbps is the origin's bytes to viewers by cause, averaged
	// over the run, in Mbit/s (the causes are MissCauses' keys).
	ToViewersMbps map[string]float64 `json:"to_viewers_mbps"`
	// ToEdgesMbps splits the fills: "served" (the shard was served at least
	// once afterwards, to a viewer or an edge), "asked_not_served" (a viewer
	// fetched the segment after the fill, from other sources), "never_asked"
	// (no viewer fetched the segment again after the fill: waste).
	ToEdgesMbps map[string]float64 `json:"to_edges_mbps"`
	// FilledSegments is how many distinct segments received an origin fill,
	// and ShardsPerFilledSegment the fills per such segment (k = one copy).
	FilledSegments         int     `json:"filled_segments"`
	ShardsPerFilledSegment float64 `json:"shards_per_filled_segment"`
	// ServedPerFillByte is the bytes edges served out of origin-filled
	// shards per byte the origin spent filling them (the fills' return).
	ServedPerFillByte float64 `json:"served_per_fill_byte"`
	// ViewsPerSegment is segment fetches per distinct segment fetched: the
	// catalogue's re-watch rate in this run, the ceiling on any cache's gain.
	ViewsPerSegment float64 `json:"views_per_segment"`
	// Curve is the same split per sample (Mbit/s over each sample).
	Curve []ExplainPoint `json:"curve"`
}

// ExplainPoint is one sample of Explain.
type ExplainPoint struct {
	Minute        float64            `json:"minute"`
	ToViewersMbps map[string]float64 `json:"to_viewers_mbps"`
	ToEdgesMbps   float64            `json:"to_edges_mbps"`
}

// Why a viewer's fetch took shards from the origin, decided from the
// lookup answer the fetch started with.
const (
	// Fewer than k holders, and nobody had fetched the segment before:
	// its first viewing (only prediction could have placed it).
	causeFirstView = "first_view"
	// Fewer than k holders; placement assigned it to more edges than
	// hold it: the fill had not arrived.
	causeNotFilled = "placed_not_yet_filled"
	// Fewer than k holders, not assigned beyond them, but edges held more
	// of it earlier: evicted (disk) or the holders left.
	causeEvicted = "evicted"
	// Fewer than k holders, re-watched, never held by k: placement did
	// not replicate it (budget spent elsewhere, or below its minimum).
	causeNotPlaced = "not_placed"
	// k or more holders, a startup fetch: the origin's hedge raced them.
	causeStartup = "startup_hedge"
	// k or more holders, past startup: the fetch ran late (holders slow
	// or their uplinks queued) and the origin raced them.
	causeLate = "late_holders_busy"
)

var explainCauses = []string{causeFirstView, causeNotFilled, causeEvicted, causeNotPlaced, causeStartup, causeLate}

type fillKey struct {
	edge, shard int32
	seg         segID
}

type fillRec struct {
	at     int64
	served int64 // bytes served out of it since
}

type explainState struct {
	fetches []int32 // per segID: fetches started (first attempts)
	maxHeld []uint8 // per segID: the most edges that held a shard of it at once
	cause   []uint8 // per viewer: its current fetch's cause index
	lastAsk []int64 // per segID: when a viewer last started fetching it
	fills   map[fillKey]*fillRec
	nfills  int
	// closed are fills whose record a later fill of the same shard
	// replaced (evicted, then filled again), already classified.
	closedServed, closedAsked, closedNever, closedServedBytes float64
	bin                                                       [6]float64 // bytes in the open sample, by cause
	total                                                     [6]float64
	binFill                                                   float64
	fillSegs                                                  map[segID]int
	curve                                                     []ExplainPoint
}

// Explain turns on the origin's decomposition (Report.Explain). Call it
// before Run. It costs memory per segment and per fill, so the scale
// scenario runs without it.
func (s *Sim) Explain() {
	n := len(s.titles) * s.nseg
	s.x = &explainState{
		fetches:  make([]int32, n),
		maxHeld:  make([]uint8, n),
		lastAsk:  make([]int64, n),
		cause:    make([]uint8, len(s.viewers)),
		fills:    map[fillKey]*fillRec{},
		fillSegs: map[segID]int{},
	}
}

// explainFetch classifies viewer id's new fetch of seg (first attempt or
// retry) from the lookup answer it starts with.
func (s *Sim) explainFetch(id int32, seg segID) {
	x, v := s.x, s.viewers[id]
	if int(id) >= len(x.cause) {
		x.cause = append(x.cause, make([]uint8, int(id)+1-len(x.cause))...)
	}
	holders := len(v.cand)
	startup := v.next < s.startupSegs || v.attempt > 0
	var c string
	switch {
	case holders >= s.k && startup:
		c = causeStartup
	case holders >= s.k:
		c = causeLate
	case x.fetches[seg] == 0:
		c = causeFirstView
	default:
		ref := s.refOf(seg)
		assigned := 0
		for _, e := range s.edges {
			if e.alive && e.assigned[ref].Count() > 0 {
				assigned++
			}
		}
		switch {
		case assigned > holders:
			c = causeNotFilled
		case int(x.maxHeld[seg]) > holders:
			c = causeEvicted
		default:
			c = causeNotPlaced
		}
	}
	x.cause[id] = uint8(slices.Index(explainCauses, c))
	if v.attempt == 0 {
		x.fetches[seg]++
	}
	x.lastAsk[seg] = s.now
	if h := len(s.holders[seg]); h > int(x.maxHeld[seg]) {
		x.maxHeld[seg] = uint8(min(h, 255))
	}
}

// explainToViewer counts bytes the origin (src < 0) sent viewer id, or
// the bytes edge src served out of a fill.
func (s *Sim) explainToViewer(id int32, src int32, shard int32, bytes int64) {
	x := s.x
	if src < 0 {
		x.bin[x.cause[id]] += float64(bytes)
		return
	}
	v := s.viewers[id]
	s.explainServed(src, s.segOf(v.title, v.next), shard, bytes)
}

func (s *Sim) explainServed(edge int32, seg segID, shard int32, bytes int64) {
	if f := s.x.fills[fillKey{edge, shard, seg}]; f != nil {
		f.served += bytes
	}
}

// explainFill counts an origin fill of shard of seg to edge.
func (s *Sim) explainFill(edge int32, seg segID, shard int32) {
	x := s.x
	x.binFill += float64(s.msgBytes)
	k := fillKey{edge, shard, seg}
	if f := x.fills[k]; f != nil {
		x.closedServedBytes += float64(f.served)
		switch {
		case f.served > 0:
			x.closedServed += float64(s.msgBytes)
		case x.lastAsk[seg] > f.at:
			x.closedAsked += float64(s.msgBytes)
		default:
			x.closedNever += float64(s.msgBytes)
		}
	}
	x.fills[k] = &fillRec{at: s.now}
	x.nfills++
	x.fillSegs[seg]++
	if h := len(s.holders[seg]); h > int(x.maxHeld[seg]) {
		x.maxHeld[seg] = uint8(min(h, 255))
	}
}

// refOf is the SegmentRef of dense segment seg.
func (s *Sim) refOf(seg segID) content.SegmentRef {
	return content.SegmentRef{Video: s.titles[int(seg)/s.nseg].id, Segment: int(seg) % s.nseg}
}

func (s *Sim) explainSample(minute float64, toMbps func(float64) float64) {
	x := s.x
	p := ExplainPoint{Minute: minute, ToViewersMbps: map[string]float64{}, ToEdgesMbps: toMbps(x.binFill)}
	for i, c := range explainCauses {
		p.ToViewersMbps[c] = toMbps(x.bin[i])
		x.total[i] += x.bin[i]
		x.bin[i] = 0
	}
	x.binFill = 0
	x.curve = append(x.curve, p)
}

func (s *Sim) explainReport(mbps func(float64) float64) *Explain {
	x := s.x
	for i := range x.bin { // the partial last bin
		x.total[i] += x.bin[i]
	}
	out := &Explain{ToViewersMbps: map[string]float64{}, ToEdgesMbps: map[string]float64{}, Curve: x.curve}
	for i, c := range explainCauses {
		out.ToViewersMbps[c] = mbps(x.total[i])
	}
	served, asked, never, servedBytes := x.closedServed, x.closedAsked, x.closedNever, x.closedServedBytes
	for k, f := range x.fills {
		b := float64(s.msgBytes)
		switch {
		case f.served > 0:
			served += b
		case x.lastAsk[k.seg] > f.at:
			asked += b
		default:
			never += b
		}
		servedBytes += float64(f.served)
	}
	out.ToEdgesMbps["served"] = mbps(served)
	out.ToEdgesMbps["asked_not_served"] = mbps(asked)
	out.ToEdgesMbps["never_asked"] = mbps(never)
	out.FilledSegments = len(x.fillSegs)
	if len(x.fillSegs) > 0 {
		out.ShardsPerFilledSegment = round3(float64(x.nfills) / float64(len(x.fillSegs)))
	}
	if tot := served + asked + never; tot > 0 {
		out.ServedPerFillByte = round3(servedBytes / tot)
	}
	var views, distinct int
	for _, n := range x.fetches {
		if n > 0 {
			views += int(n)
			distinct++
		}
	}
	if distinct > 0 {
		out.ViewsPerSegment = round3(float64(views) / float64(distinct))
	}
	return out
}
