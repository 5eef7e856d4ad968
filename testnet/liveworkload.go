package testnet

import (
	"context"
	"fmt"
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
}

// Record keeps one report.
func (s *LiveStats) Record(r viewer.LiveServable) {
	s.LiveLatencies.Record(r.Latency())
	s.mu.Lock()
	s.originBytes += r.OriginBytes
	s.edgeBytes += r.EdgeBytes
	s.mu.Unlock()
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
	SegmentsPublished      int     `json:"segments_published"`
	LiveLatencyP50MS       float64 `json:"live_latency_p50_ms"`
	LiveLatencyP95MS       float64 `json:"live_latency_p95_ms"`
	Offload                float64 `json:"offload"`
	OriginCopiesPerSegment float64 `json:"origin_copies_per_segment"`
	RebufferRatio          float64 `json:"rebuffer_ratio"`
	PlaysFailed            int     `json:"plays_failed"`
	Plays                  int     `json:"plays"`
	Stalls                 int     `json:"stalls"`
	OriginBytes            int64   `json:"origin_bytes"`
	OriginPushedBytes      int64   `json:"origin_pushed_bytes"`
	DeliveredBytes         int64   `json:"delivered_bytes"`
	SegmentCopyBytes       int64   `json:"segment_copy_bytes"`
	ServableReports        int     `json:"servable_reports"`
	RelaysKilled           int     `json:"relays_killed"`
	FirstError             string  `json:"first_error,omitempty"`
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
	ch, err := n.CreateChannel(ctx, "demo live", w.Segment)
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
	}
	return rep, nil
}
