package viewer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Player buffer: the fetcher stays at most bufferSegments ahead of the
// segment being played. The first startupSegments are fetched as startup
// segments: edges first, with the origin hedging after Config.StartupHedge, since
// they have no playback slack to measure lateness against yet.
const (
	bufferSegments  = 5
	startupSegments = 2
)

// PlayOptions choose what and how fast to play.
type PlayOptions struct {
	Rendition   int     // index into the manifest's renditions; -1 = highest
	Speed       float64 // playback clock multiplier (1 = real time); the demo may compress time
	MaxSegments int     // 0 = whole video; else stop after this many segments
}

// QoE is the quality of experience of one play.
type QoE struct {
	Startup                time.Duration         // Play call → first segment ready to play
	Stalls                 int                   // times the next segment was not ready at its playback instant
	StallTime              time.Duration         // wall-clock time spent stalled
	PlayTime               time.Duration         // media time played
	BytesBySource          map[wire.NodeID]int64 // verified shard bytes used, by sending node
	OriginBytes, EdgeBytes int64                 // the same split by kind
	BadShards              int                   // shards that failed verification
	Banned                 []wire.NodeID
	Completed              bool
}

// readySegment is the fetcher's news for the player.
type readySegment struct {
	segment int
	at      time.Time
	res     *segmentResult
	err     error
}

// playing tells the fetcher which segment started playing when.
type playing struct {
	segment int
	at      time.Time
}

// Play plays a video at playback pace with a virtual player: a fetcher fills
// a buffer of up to bufferSegments ahead, the play clock runs at Speed × real
// time from the moment the first segment is ready, and a segment not ready at
// its playback instant is a stall. The QoE summary is reported to the
// coordinator at the end (also when the play fails).
func (v *Viewer) Play(ctx context.Context, id content.VideoID, opt PlayOptions) (QoE, error) {
	start := v.cfg.Now()
	q := QoE{BytesBySource: map[wire.NodeID]int64{}}
	e, err := v.video(ctx, id)
	// A manifest or key the coordinator failed to hand over (overloaded,
	// restarting) is asked again, with the segments' back-off; a video it
	// does not have or will not unlock is final.
	for attempt, wait := 1, retryBackoffMin; err != nil && attempt < segmentAttempts && ctx.Err() == nil &&
		!errors.Is(err, errUnknownVideo) && !errors.Is(err, ErrNotEntitled); attempt++ {
		v.log.Debug("cannot load the video; retrying", "video", id, "err", err, "in", wait)
		if sleepUntil(ctx, v.cfg.Now, v.cfg.Now().Add(wait)) != nil {
			break
		}
		wait = min(2*wait, retryBackoffMax)
		e, err = v.video(ctx, id)
	}
	if err != nil {
		return q, err
	}
	man := e.man
	rendition := opt.Rendition
	if rendition == -1 {
		rendition = highestRendition(man)
	}
	if rendition < 0 || rendition >= len(man.Renditions) {
		return q, fmt.Errorf("rendition %d does not exist: video %s has %d (use -1 for the highest)", rendition, id, len(man.Renditions))
	}
	speed := opt.Speed
	if speed <= 0 {
		speed = 1
	}
	segs := man.Renditions[rendition].Segments
	n := len(segs)
	if opt.MaxSegments > 0 && opt.MaxSegments < n {
		n = opt.MaxSegments
	}
	wallDur := make([]time.Duration, n) // wall-clock duration of each segment at this speed
	for i := range n {
		wallDur[i] = time.Duration(float64(time.Duration(segs[i].Duration)*time.Microsecond) / speed)
	}

	fctx, cancel := context.WithCancel(ctx)
	readyCh := make(chan readySegment, n) // buffered: the fetcher never blocks on the player
	playingCh := make(chan playing, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.fetchAhead(fctx, id, e, rendition, speed, wallDur, readyCh, playingCh)
	}()
	stopFetcher := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	defer stopFetcher()

	err = v.playOut(ctx, id, e.key, rendition, start, wallDur, segs, readyCh, playingCh, &q)
	stopFetcher() // no request is in flight: the final orders cover every verified byte
	v.sendFinalOrders(ctx)
	v.met.stalls.Add(float64(q.Stalls))
	v.met.stallTime.Add(q.StallTime.Seconds())
	v.reportPlay(ctx, id, rendition, q)
	return q, err
}

// playOut is the virtual player: it consumes ready segments in order and
// advances the play clock, counting stalls.
func (v *Viewer) playOut(ctx context.Context, id content.VideoID, key content.ContentKey, rendition int, start time.Time, wallDur []time.Duration, segs []content.Segment, readyCh <-chan readySegment, playingCh chan<- playing, q *QoE) error {
	var next time.Time // playback instant of segment i
	for i := range wallDur {
		var rd readySegment
		select {
		case rd = <-readyCh:
		case <-ctx.Done():
			return ctx.Err()
		}
		if rd.err != nil {
			return fmt.Errorf("play %s: segment %d: %w", id, i, rd.err)
		}
		q.OriginBytes += rd.res.originBytes
		q.EdgeBytes += rd.res.edgeBytes
		q.BadShards += rd.res.badShards
		q.Banned = append(q.Banned, rd.res.banned...)
		for node, b := range rd.res.bytesBy {
			q.BytesBySource[node] += b
		}
		if i == 0 {
			q.Startup = rd.at.Sub(start)
			v.met.startup.Observe(q.Startup.Seconds())
			next = rd.at
			// Sanity check once: the key must decrypt what the swarm sends,
			// or every HLS player would fail on it. The padding is the
			// check (as in DecryptSegment), and it needs the last block only;
			// the player decrypts the rest.
			if err := content.CheckSegmentKey(key, key.SegmentIV(rendition, 0), rd.res.ciphertext); err != nil {
				return fmt.Errorf("play %s: the content key does not decrypt segment 0: %w", id, err)
			}
		} else if rd.at.After(next) {
			q.Stalls++
			q.StallTime += rd.at.Sub(next)
			next = rd.at
		} else if err := sleepUntil(ctx, v.cfg.Now, next); err != nil {
			return err
		}
		playingCh <- playing{segment: i, at: next}
		next = next.Add(wallDur[i])
		q.PlayTime += time.Duration(segs[i].Duration) * time.Microsecond
	}
	// Play the last segment to its end.
	if err := sleepUntil(ctx, v.cfg.Now, next); err != nil {
		return err
	}
	q.Completed = true
	return nil
}

// fetchAhead fetches segments in order, staying at most bufferSegments ahead
// of the segment being played, each with its playback instant as deadline.
func (v *Viewer) fetchAhead(ctx context.Context, id content.VideoID, e *videoEntry, rendition int, speed float64, wallDur []time.Duration, readyCh chan<- readySegment, playingCh <-chan playing) {
	current := playing{segment: -1}
	for j := range wallDur {
		for j > current.segment+bufferSegments {
			select {
			case current = <-playingCh:
			case <-ctx.Done():
				return
			}
		}
		for drained := false; !drained; {
			select {
			case current = <-playingCh:
			default:
				drained = true
			}
		}
		// Deadline: the segment's playback instant as far as we know now.
		deadline := v.cfg.Now()
		from := 0
		if current.segment >= 0 {
			deadline, from = current.at, current.segment
		}
		for i := from; i < j; i++ {
			deadline = deadline.Add(wallDur[i])
		}
		res, err := v.fetchSegment(ctx, e, content.SegmentRef{Video: id, Rendition: rendition, Segment: j}, urgency{deadline: deadline, speed: speed, startup: j < startupSegments})
		readyCh <- readySegment{segment: j, at: v.cfg.Now(), res: res, err: err}
		if err != nil {
			return
		}
	}
}

// reportPlay sends the QoE summary; a play outlives its caller's
// cancellation just long enough to say how it went.
func (v *Viewer) reportPlay(ctx context.Context, id content.VideoID, rendition int, q QoE) {
	if v.cfg.Token == "" {
		// The coordinator counts plays only from a signed-in account's
		// bound player key; without a token there is nothing to send.
		v.log.Debug("play not reported: no account token", "video", id)
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rep := wire.PlayReport{
		ViewerID:      v.cfg.Identity.ID,
		Video:         id,
		Rendition:     rendition,
		StartupMS:     float64(q.Startup) / float64(time.Millisecond),
		Stalls:        q.Stalls,
		StallMS:       float64(q.StallTime) / float64(time.Millisecond),
		PlayedMS:      float64(q.PlayTime) / float64(time.Millisecond),
		BytesBySource: q.BytesBySource,
		BadShards:     q.BadShards,
		Completed:     q.Completed,
	}
	if err := v.coord.ReportPlay(rctx, rep); err != nil {
		v.log.Warn("could not report the play to the coordinator", "video", id, "err", err)
	}
}

func highestRendition(m *content.Manifest) int {
	best := 0
	for i, r := range m.Renditions {
		if r.Bandwidth > m.Renditions[best].Bandwidth {
			best = i
		}
	}
	return best
}

func sleepUntil(ctx context.Context, now func() time.Time, t time.Time) error {
	d := t.Sub(now())
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
