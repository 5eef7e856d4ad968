package testnet

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// LiveStats collects the edge players' servable reports (set
// Config.OnLiveServable to its Record): glass-to-glass latencies and the
// shard bytes the gateways rebuilt live segments from.
type LiveStats struct {
	LiveLatencies
	mu                     sync.Mutex
	originBytes, edgeBytes int64
	byCause                map[string]int64 // origin bytes by OriginCause
	// The parts of T_serve − segment end (viewer.LiveServable.EntryAt),
	// for the reports whose entry arrived as the chain's newest.
	entryDelay, pushWait, fetchTime LiveLatencies
	// segmentAge is every report's viewer.LiveServable.SegmentAgeLatency
	// (a joining player's window at its segments' own age).
	segmentAge LiveLatencies

	// Low-Latency HLS (Config.OnLivePartServable = RecordPart).
	Parts     LiveLatencies
	partBytes int64
	partSeen  map[[2]uint64]bool
	partHold  time.Duration
}

// RecordPart keeps one low-latency part report: its glass-to-glass latency
// (with PART-HOLD-BACK) and the bytes the origin sent the gateway for it.
func (s *LiveStats) RecordPart(p viewer.LivePartServable) {
	s.Parts.Record(p.Latency())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partBytes += p.Bytes
	s.partHold = p.HoldBack
	if s.partSeen == nil {
		s.partSeen = map[[2]uint64]bool{}
	}
	s.partSeen[[2]uint64{p.Seq, uint64(p.Part)}] = true
}

// Record keeps one report.
func (s *LiveStats) Record(r viewer.LiveServable) {
	s.LiveLatencies.Record(r.Latency())
	s.segmentAge.Record(r.SegmentAgeLatency())
	if !r.EntryAt.IsZero() {
		s.entryDelay.Record(r.EntryAt.Sub(r.ProgramTime.Add(r.Duration)))
		s.pushWait.Record(r.FetchStart.Sub(r.EntryAt))
		s.fetchTime.Record(r.At.Sub(r.FetchStart))
	}
	s.mu.Lock()
	s.originBytes += r.OriginBytes
	s.edgeBytes += r.EdgeBytes
	if r.OriginBytes > 0 {
		if s.byCause == nil {
			s.byCause = map[string]int64{}
		}
		s.byCause[OriginCause(r)] += r.OriginBytes
	}
	s.mu.Unlock()
}

// OriginCause says why a live segment's fetch took shards from the origin:
// "no_carriers" (the lookup listed no carrier: the chain's trees reached no
// edge yet), "join_late" / "entry_late" / "request_late" (carriers did not
// deliver k shards before the segment was one duration from the player's
// playhead: its push was late or lost; the prefix is what started the
// fetch, viewer.LiveServable.Fetch), or "other".
func OriginCause(r viewer.LiveServable) string {
	switch {
	case r.NoCarriers:
		return "no_carriers"
	case r.OriginFallback:
		return r.Fetch + "_late"
	}
	return "other"
}

// LatencyParts is LiveReport.LatencyPartsMS (nil before any report).
func (s *LiveStats) LatencyParts() map[string]map[string]float64 {
	var out map[string]map[string]float64
	for name, l := range map[string]*LiveLatencies{"entry": &s.entryDelay, "wait": &s.pushWait, "fetch": &s.fetchTime} {
		p50, n := l.Percentile(50)
		if n == 0 {
			continue
		}
		p95, _ := l.Percentile(95)
		if out == nil {
			out = map[string]map[string]float64{}
		}
		out[name] = map[string]float64{"p50": float64(p50) / 1e6, "p95": float64(p95) / 1e6}
	}
	return out
}

// OriginBytesByCause is the origin's shard bytes to players by OriginCause.
func (s *LiveStats) OriginBytesByCause() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byCause)
}

// Bytes are the shard bytes the players' gateways used, from origins and
// from edges/relays.
func (s *LiveStats) Bytes() (origin, edge int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.originBytes, s.edgeBytes
}

// LiveWorkload is the live demo's and benchmark's scenario: one channel, a
// real ffmpeg publisher over RTMP into origin 0, Viewers edge players
// joining one at a time and playing the channel's live playlist through
// their own gateways until the broadcast ends.
type LiveWorkload struct {
	Viewers      int           // players, one per edge (≤ edges alive)
	Duration     time.Duration // media the publisher sends
	Segment      time.Duration // segment duration (default 1 s)
	PartMS       int           // > 0: a Low-Latency HLS channel with parts of this many ms
	JoinInterval time.Duration // between players joining
	// KillRelayAfter > 0 kills one relay that carries a substream this long
	// after the first player joined.
	KillRelayAfter time.Duration
	Stats          *LiveStats // the network's Config.OnLiveServable records here (required)
	// OnReady, if set, is told the channel and a gateway's master playlist
	// URL once the first segment is out.
	OnReady func(ch wire.ChannelCreated, playURL string)
	// OnPlay, if set, is told each finished play.
	OnPlay func(viewer int, p LivePlay)
}

// LiveReport is the live demo's figures (docs/LIVE.md defines latency).
type LiveReport struct {
	SegmentsPublished int     `json:"segments_published"`
	LiveLatencyP50MS  float64 `json:"live_latency_p50_ms"`
	LiveLatencyP95MS  float64 `json:"live_latency_p95_ms"`
	// LiveLatencySegmentAgeP95MS is the p95 of T_serve − segment end +
	// HOLD-BACK over every report, a joining player's first window at its
	// segments' own age (docs/LIVE.md "Glass-to-glass latency": the
	// live_latency_* figures take that window at the latency the player
	// plays it at).
	LiveLatencySegmentAgeP95MS float64 `json:"live_latency_segment_age_p95_ms"`
	Offload                    float64 `json:"offload"`
	OriginCopiesPerSegment     float64 `json:"origin_copies_per_segment"`
	RebufferRatio              float64 `json:"rebuffer_ratio"`
	PlaysFailed                int     `json:"plays_failed"`
	Plays                      int     `json:"plays"`
	Stalls                     int     `json:"stalls"`
	OriginBytes                int64   `json:"origin_bytes"`
	OriginPushedBytes          int64   `json:"origin_pushed_bytes"`
	DeliveredBytes             int64   `json:"delivered_bytes"`
	SegmentCopyBytes           int64   `json:"segment_copy_bytes"`
	ServableReports            int     `json:"servable_reports"`
	RelaysKilled               int     `json:"relays_killed"`
	// OriginCopiesByCause splits the players' share of the origin copies
	// per segment by OriginCause (the rest of OriginCopiesPerSegment is
	// the origin's pushes into the trees).
	OriginCopiesByCause map[string]float64 `json:"origin_copies_by_cause,omitempty"`
	// OriginPushCopiesPerSegment is the origin's pushes alone.
	OriginPushCopiesPerSegment float64 `json:"origin_push_copies_per_segment"`
	// TreeRelayLevels is the most relays between the origin and an edge in
	// the chain's trees as sampled every second while players watched;
	// TreeRelaysUsed the relays those trees used (the last sample).
	TreeRelayLevels int `json:"tree_relay_levels"`
	TreeRelaysUsed  int `json:"tree_relays_used"`
	// OriginChildrenPerSubstream is the mean number of the origin's
	// children per substream tree over the samples (1 is a push of one
	// copy of each substream).
	OriginChildrenPerSubstream float64 `json:"origin_children_per_substream"`
	// LatencyPartsMS splits T_serve − segment end (latency − HOLD-BACK) of
	// the segments fetched after their entry arrived: "entry" (the origin's
	// transcode and publish, and the entry's long-poll to the gateway),
	// "wait" (the gateway's wait for the push, livePushGrace), "fetch"
	// (the carriers' rounds and any origin fallback); each "p50" and "p95"
	// in ms. The parts' p95s need not add up to the latency's.
	LatencyPartsMS map[string]map[string]float64 `json:"latency_parts_ms,omitempty"`
	// RelaysAlive and RelaysExcluded are, at the end, the relays the trees
	// could use (registered and heartbeating) and those the relays' judge
	// excluded for good: why the trees had fewer relays than started.
	RelaysAlive    int    `json:"relays_alive"`
	RelaysExcluded int    `json:"relays_excluded"`
	FirstError     string `json:"first_error,omitempty"`

	// Low-Latency HLS (LiveWorkload.PartMS > 0): glass-to-glass of parts
	// (when a gateway verified each, minus its end's program time, plus
	// the PART-HOLD-BACK advertised), the parts the gateways verified,
	// signed statements (entries + parts) per second of broadcast, and
	// the origin's part bytes to gateways (not in OriginBytes: parts go
	// origin → gateway directly, docs/LIVE.md) as copies per segment.
	LivePartLatencyP50MS       float64 `json:"live_part_latency_p50_ms,omitempty"`
	LivePartLatencyP95MS       float64 `json:"live_part_latency_p95_ms,omitempty"`
	PartHoldBackMS             float64 `json:"part_hold_back_ms,omitempty"`
	PartsPublished             int     `json:"parts_published,omitempty"`
	SignaturesPerSecond        float64 `json:"signatures_per_second,omitempty"`
	OriginPartBytes            int64   `json:"origin_part_bytes,omitempty"`
	OriginPartCopiesPerSegment float64 `json:"origin_part_copies_per_segment,omitempty"`
}

// RunLive runs w on the network (started with Config.Live and
// OnLiveServable = w.Stats.Record) and returns its figures.
func (n *Network) RunLive(ctx context.Context, w LiveWorkload) (LiveReport, error) {
	var rep LiveReport
	if w.Stats == nil {
		return rep, fmt.Errorf("testnet: LiveWorkload.Stats is required (and the network's Config.OnLiveServable must record into it)")
	}
	if w.Segment <= 0 {
		w.Segment = content.DefaultLiveSegment
	}
	ch, err := n.Admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "demo live", SegmentMS: int(w.Segment / time.Millisecond), PartMS: w.PartMS})
	if err != nil {
		return rep, err
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), PublishOptions{Duration: w.Duration, Segment: w.Segment})
	if err != nil {
		return rep, err
	}
	defer pub.Stop()
	// Wait for the first entry.
	var chain content.VideoID
	for chain == (content.VideoID{}) {
		info, err := n.Admin.Channel(ctx, ch.Channel.ID)
		if err == nil && info.Head >= 0 {
			chain = info.Chain
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-pub.Done():
			return rep, fmt.Errorf("the publisher exited before a segment was published: %v", pub.Wait())
		case <-time.After(100 * time.Millisecond):
		}
	}
	edges := n.AliveEdges()
	viewers := min(w.Viewers, len(edges))
	gws := make([]string, viewers)
	for i := range viewers {
		gw, err := httpserve.Listen(ctx, "127.0.0.1:0", "", edges[i].Viewer.Handler(), n.cfg.Log)
		if err != nil {
			return rep, err
		}
		defer gw.Close()
		gws[i] = gw.Advertise
	}
	if w.OnReady != nil && viewers > 0 {
		w.OnReady(ch, gws[0]+"/live/"+string(ch.Channel.ID)+"/master.m3u8")
	}
	// Sample the chain's trees every second while the players watch.
	var shape treeShape
	sampleStop, sampleDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-t.C:
				shape.sample(n.Coordinator.Live().Trees()[chain], n.originIDs[0].ID)
			}
		}
	}()
	started := time.Now()
	stop := started.Add(w.Duration)
	plays := make([]LivePlay, viewers)
	var wg sync.WaitGroup
	hc := &http.Client{Transport: wire.NewHTTPClient().Transport}
	for i := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			join := time.Duration(i) * w.JoinInterval
			select {
			case <-ctx.Done():
				return
			case <-time.After(join):
			}
			plays[i] = PlayLive(ctx, hc, gws[i]+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", time.Until(stop)+5*time.Second)
			if w.OnPlay != nil {
				w.OnPlay(i, plays[i])
			}
		}()
	}
	if w.KillRelayAfter > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(w.KillRelayAfter):
			for _, r := range n.Relays() {
				if len(r.Relay.Routes()) > 0 {
					n.KillRelay(r)
					rep.RelaysKilled++
					break
				}
			}
		}
	}
	wg.Wait()
	_ = pub.Wait()
	f := SumLivePlays(plays)
	rep.Plays, rep.PlaysFailed, rep.Stalls, rep.RebufferRatio, rep.FirstError = f.Plays, f.PlaysFailed, f.Stalls, f.RebufferRatio, f.FirstError
	p50, count := w.Stats.Percentile(50)
	p95, _ := w.Stats.Percentile(95)
	rep.LiveLatencyP50MS, rep.LiveLatencyP95MS, rep.ServableReports = float64(p50.Microseconds())/1000, float64(p95.Microseconds())/1000, count
	agedP95, _ := w.Stats.segmentAge.Percentile(95)
	rep.LiveLatencySegmentAgeP95MS = float64(agedP95.Microseconds()) / 1000
	fromOrigin, fromEdges := w.Stats.Bytes()
	rep.DeliveredBytes = fromOrigin + fromEdges
	o := n.Origins[0]
	rep.OriginPushedBytes = o.Live.PushedBytes()
	// Origin bytes of the broadcast: what it pushed into the trees plus
	// the shard bytes players took from it directly (the catalogue's VoD
	// prefetch to edges is not the broadcast's).
	rep.OriginBytes = fromOrigin + rep.OriginPushedBytes
	if info, err := n.Admin.Channel(context.Background(), ch.Channel.ID); err == nil {
		rep.SegmentsPublished = int(info.Head + 1)
	}
	if m, ok := o.Live.Manifest(chain); ok {
		for _, r := range m.Renditions {
			for _, s := range r.Segments {
				rep.SegmentCopyBytes += int64(s.Size)
			}
		}
	}
	if rep.DeliveredBytes > 0 {
		rep.Offload = 1 - float64(rep.OriginBytes)/float64(rep.DeliveredBytes)
	}
	if rep.SegmentCopyBytes > 0 {
		rep.OriginCopiesPerSegment = float64(rep.OriginBytes) / float64(rep.SegmentCopyBytes)
		rep.OriginPushCopiesPerSegment = float64(rep.OriginPushedBytes) / float64(rep.SegmentCopyBytes)
		for cause, b := range w.Stats.OriginBytesByCause() {
			if rep.OriginCopiesByCause == nil {
				rep.OriginCopiesByCause = map[string]float64{}
			}
			rep.OriginCopiesByCause[cause] = float64(b) / float64(rep.SegmentCopyBytes)
		}
	}
	rep.LatencyPartsMS = w.Stats.LatencyParts()
	rep.RelaysAlive, rep.RelaysExcluded = n.Coordinator.Live().RelayCounts()
	if w.PartMS > 0 {
		p50, _ := w.Stats.Parts.Percentile(50)
		p95, _ := w.Stats.Parts.Percentile(95)
		rep.LivePartLatencyP50MS, rep.LivePartLatencyP95MS = float64(p50.Microseconds())/1000, float64(p95.Microseconds())/1000
		w.Stats.mu.Lock()
		rep.PartsPublished, rep.OriginPartBytes = len(w.Stats.partSeen), w.Stats.partBytes
		rep.PartHoldBackMS = float64(w.Stats.partHold.Microseconds()) / 1000
		w.Stats.mu.Unlock()
		if secs := float64(rep.SegmentsPublished) * w.Segment.Seconds(); secs > 0 {
			rep.SignaturesPerSecond = float64(rep.SegmentsPublished+rep.PartsPublished) / secs
		}
		if rep.SegmentCopyBytes > 0 {
			rep.OriginPartCopiesPerSegment = float64(rep.OriginPartBytes) / float64(rep.SegmentCopyBytes)
		}
	}
	close(sampleStop)
	<-sampleDone
	rep.TreeRelayLevels, rep.TreeRelaysUsed = shape.levels, shape.relays
	if shape.samples > 0 {
		rep.OriginChildrenPerSubstream = shape.originChildren / float64(shape.samples)
	}
	return rep, nil
}

// treeShape sums samples of one chain's trees (substream → node → parent).
type treeShape struct {
	samples        int
	originChildren float64 // per substream, summed over samples
	levels, relays int
}

func (t *treeShape) sample(trees []map[wire.NodeID]wire.NodeID, origin wire.NodeID) {
	if len(trees) == 0 {
		return
	}
	used := map[wire.NodeID]bool{}
	children := 0
	for _, parent := range trees {
		for _, p := range parent {
			if p == origin {
				children++
			}
			if p != origin {
				used[p] = true
			}
			levels := 0
			for a := p; a != origin && a != "" && levels <= len(parent); a = parent[a] {
				levels++
			}
			t.levels = max(t.levels, levels)
		}
	}
	t.samples++
	t.originChildren += float64(children) / float64(len(trees))
	t.relays = len(used)
}
