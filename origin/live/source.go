package live

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// refusal is a publish attempt the origin turns down, with the reason the
// publisher (and the channel state) is told and the metric label.
type refusal struct {
	reason string // key, codec, keyframe, garbage, busy, coordinator
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, format string, args ...any) *refusal {
	return &refusal{reason: reason, err: fmt.Errorf(format, args...)}
}

// authorize asks the coordinator whether key may publish; every publish
// attempt asks again (nothing is cached).
func (in *Ingest) authorize(ctx context.Context, key string) (wire.IngestAuthResponse, error) {
	if key == "" {
		return wire.IngestAuthResponse{}, refuse("key", "no stream key: publish to .../live/STREAM_KEY (swarmcast live create prints it)")
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	auth, err := in.cfg.Coordinator.AuthorizeIngest(actx, key)
	if err != nil {
		var ae *wire.APIError
		if errors.As(err, &ae) && ae.Status/100 == 4 {
			return auth, refuse("key", "stream key refused by the coordinator (wrong, revoked or for an ended channel): %s", ae.Message)
		}
		return auth, refuse("coordinator", "cannot check the stream key with the coordinator, try again: %v", err)
	}
	return auth, nil
}

// sourceTracks is what a publisher sends: H.264 and, optionally, AAC.
type sourceTracks struct {
	audio *mpeg4audio.AudioSpecificConfig // nil: video only
}

// open attaches a new source to the channel's broadcast: the one waiting
// for its publisher (resumed), or a new one.
func (in *Ingest) open(auth wire.IngestAuthResponse, tracks sourceTracks, kind string) (*source, error) {
	ch := auth.Channel
	if err := in.awaitRestored(); err != nil {
		return nil, err
	}
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil, refuse("busy", "the origin is shutting down")
	}
	b := in.byChannel[ch.ID]
	in.mu.Unlock()
	if g, _ := b.begun(); g != nil && auth.Resume != g.ID() {
		// The coordinator is the authority on what may resume (its owner
		// may have ended the channel meanwhile): seal the held broadcast
		// and start a new one.
		b.requestEnd()
	}
	if b != nil {
		b.mu.Lock()
		finished := b.ending || b.state == wire.ChannelEnded
		b.mu.Unlock()
		if finished {
			select {
			case <-b.done:
			case <-time.After(10 * time.Second):
				return nil, refuse("busy", "the channel's last broadcast is still being sealed; publish again in a moment")
			}
			b = nil
		}
	}
	if b == nil {
		nb, err := in.newBroadcast(ch, auth)
		if err != nil {
			return nil, err
		}
		in.mu.Lock()
		in.byChannel[ch.ID] = nb
		in.mu.Unlock()
		b = nb
	} else if g, rec := b.begun(); g != nil && rec.Audio != (tracks.audio != nil) {
		return nil, refuse("codec", "the broadcast being resumed had audio=%v; publish the same tracks to resume it (or wait %v for it to end)", rec.Audio, in.cfg.Resume)
	}
	ctx, cancel := context.WithCancel(in.ctx)
	s := &source{in: in, b: b, kind: kind, tracks: tracks, ctx: ctx, cancel: cancel, cut: newCutter(b.targetTicks())}
	if err := b.attach(s); err != nil {
		cancel()
		return nil, refuse("busy", "%v", err)
	}
	b.enqueue(&closedSegment{report: &wire.ChannelStateReport{State: wire.ChannelPublishing}})
	in.log.Info("publisher connected", "channel", ch.ID, "ingest", kind, "audio", tracks.audio != nil)
	return s, nil
}

// begun is the genesis and recipe once the first keyframe fixed them (nil before).
func (b *broadcast) begun() (*content.LiveGenesis, Recipe) {
	if b == nil {
		return nil, Recipe{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.genesis, b.recipe
}

// source is one publisher connection feeding a broadcast: it cuts the
// source at keyframes and streams each source segment, as MPEG-TS, into
// its own transcode. Frames arrive from one goroutine at a time (mu).
type source struct {
	in     *Ingest
	b      *broadcast
	kind   string // rtmp | hls
	tracks sourceTracks
	ctx    context.Context // cancelled by stop: the transport closes
	cancel context.CancelFunc

	mu       sync.Mutex
	finished bool
	cut      *cutter
	offset   int64 // added to source timestamps: the output timeline runs on across resumes
	seg      *openSegment
	queued   int   // segments handed to the worker
	lastPTS  int64 // source PTS of the newest video frame
	frameDur int64 // ticks between the last two video frames
	sps, pps []byte
}

// openSegment is the source segment being received and transcoded.
type openSegment struct {
	start       int64 // source PTS of its keyframe
	programTime time.Time
	disc        bool
	job         *transcodeJob
	dir         string
	buf         *bufio.Writer
	w           *mpegts.Writer
	video       *mpegts.Track
	audio       *mpegts.Track
}

// stop asks the transport to end the source (it then calls finish).
func (s *source) stop() { s.cancel() }

// video takes one H.264 access unit (NAL units without start codes) with
// its source timestamps in 90 kHz ticks, arrived at the origin at now.
func (s *source) video(pts, dts int64, au [][]byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errors.New("the source has ended")
	}
	nalus := au[:0:0]
	hasSPS := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			s.sps, hasSPS = n, true
		case h264.NALUTypePPS:
			s.pps = n
		}
		nalus = append(nalus, n)
	}
	if len(nalus) == 0 {
		return nil
	}
	key := h264.IsRandomAccess(nalus)
	if key && !hasSPS {
		if s.sps == nil || s.pps == nil {
			return refuse("garbage", "a keyframe arrived before the stream's SPS/PPS: the H.264 stream is malformed")
		}
		// RTMP carries the parameter sets once, in the sequence header;
		// each source segment must decode on its own.
		nalus = append([][]byte{s.sps, s.pps}, nalus...)
	}
	if s.lastPTS != 0 && pts > s.lastPTS {
		s.frameDur = pts - s.lastPTS
	}
	act, err := s.cut.video(pts, key)
	if err != nil {
		return &refusal{reason: "keyframe", err: err}
	}
	switch act {
	case cutDrop:
		return nil
	case cutOpen:
		if err := s.first(pts); err != nil {
			return err
		}
		if err := s.openSegment(pts, now); err != nil {
			return err
		}
	case cutClose:
		if err := s.closeSegment(pts-s.seg.start, now); err != nil {
			return err
		}
		if err := s.openSegment(pts, now); err != nil {
			return err
		}
	}
	s.lastPTS = max(s.lastPTS, pts)
	if err := s.seg.w.WriteH264(s.seg.video, pts+s.offset, dts+s.offset, nalus); err != nil {
		return refuse("garbage", "cannot remux an H.264 frame: %v", err)
	}
	return s.seg.buf.Flush()
}

// audio takes AAC access units with the source PTS of the first.
func (s *source) audio(pts int64, aus [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errors.New("the source has ended")
	}
	if s.tracks.audio == nil || len(aus) == 0 || s.cut.audio() == cutDrop {
		return nil
	}
	if err := s.seg.w.WriteMPEG4Audio(s.seg.audio, pts+s.offset, aus); err != nil {
		return refuse("garbage", "cannot remux an AAC frame: %v", err)
	}
	return s.seg.buf.Flush()
}

// first handles the source's first keyframe: a new broadcast fixes its
// ladder from the SPS; every source fixes its timestamp offset so the
// output timeline continues where the broadcast's last segment ended (1 s
// for a new one, which keeps B-frame DTS positive).
func (s *source) first(pts int64) error {
	b := s.b
	if g, _ := b.begun(); g == nil {
		var sps h264.SPS
		if err := sps.Unmarshal(s.sps); err != nil {
			return refuse("garbage", "the H.264 SPS does not parse: %v", err)
		}
		if err := b.begin(sps.Width(), sps.Height(), s.tracks.audio != nil); err != nil {
			return refuse("codec", "%v", err)
		}
	}
	b.mu.Lock()
	end := b.end
	b.mu.Unlock()
	if end == 0 {
		end = ticksPerSecond
	}
	s.offset = end - pts
	return nil
}

func (s *source) openSegment(pts int64, now time.Time) error {
	b := s.b
	tmp := filepath.Join(s.in.cfg.Store.Dir(), "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmp, "live-segment-")
	if err != nil {
		return err
	}
	var job *transcodeJob
	if s.in.cfg.Replicas != nil {
		job = sourceOnlyJob()
	} else if b.parts != nil {
		if job, err = b.startSegmentTranscode(now); err != nil {
			_ = os.RemoveAll(dir)
			return err
		}
	} else if job, err = startTranscode(s.in.ctx, s.in.cfg.FFmpeg, b.recipe, dir); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	seg := &openSegment{start: pts, programTime: now, job: job, dir: dir, buf: bufio.NewWriterSize(job, 64<<10),
		video: &mpegts.Track{Codec: &tscodecs.H264{}}}
	tracks := []*mpegts.Track{seg.video}
	if s.tracks.audio != nil {
		seg.audio = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: *s.tracks.audio}}
		tracks = append(tracks, seg.audio)
	}
	seg.w = &mpegts.Writer{W: seg.buf, Tracks: tracks}
	if err := seg.w.Initialize(); err != nil {
		job.abort()
		_ = os.RemoveAll(dir)
		return err
	}
	b.mu.Lock()
	seg.disc, b.nextDisc = b.nextDisc, false
	b.mu.Unlock()
	s.seg = seg
	return nil
}

// closeSegment hands the open segment (duration ticks long) to the
// broadcast's worker, which finishes its transcode and publishes it.
func (s *source) closeSegment(duration int64, closedAt time.Time) error {
	seg := s.seg
	s.seg = nil
	if err := seg.buf.Flush(); err != nil {
		seg.job.abort()
		_ = os.RemoveAll(seg.dir)
		return err
	}
	duration = max(duration, 1)
	s.b.mu.Lock()
	s.b.end = seg.start + s.offset + duration
	s.b.queued++
	s.b.mu.Unlock()
	s.queued++
	if !s.b.enqueue(&closedSegment{job: seg.job, dir: seg.dir, duration: uint32(duration * 1_000_000 / ticksPerSecond),
		programTime: seg.programTime, disc: seg.disc, closedAt: closedAt}) {
		seg.job.abort()
		_ = os.RemoveAll(seg.dir)
		return errors.New("the broadcast is being sealed")
	}
	return nil
}

// finish ends the source. cause nil is a clean end (the publisher stopped
// or dropped): the open segment is published and the broadcast waits for
// the publisher to return. A refusal aborts the open segment and tells
// the channel why; a broadcast it started that never published anything
// is discarded.
func (s *source) finish(cause error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	if s.seg != nil {
		if cause == nil {
			dur := s.lastPTS - s.seg.start + max(s.frameDur, 1)
			if err := s.closeSegment(dur, time.Now()); err != nil {
				cause = err
			}
		} else {
			s.seg.job.abort()
			_ = os.RemoveAll(s.seg.dir)
			s.seg = nil
		}
	}
	queued := s.queued
	s.mu.Unlock()
	s.cancel()
	ch := s.b.channel.ID
	if cause != nil {
		var r *refusal
		reason := "error"
		if errors.As(cause, &r) {
			reason = r.reason
		}
		s.in.metrics.refused.WithLabelValues(reason).Inc()
		s.in.log.Warn("publisher refused", "channel", ch, "ingest", s.kind, "reason", cause)
		s.b.enqueue(&closedSegment{report: &wire.ChannelStateReport{State: wire.ChannelError, Error: cause.Error()}})
	} else {
		s.in.log.Info("publisher left", "channel", ch, "ingest", s.kind)
	}
	s.b.detach(s, queued == 0 && s.b.fresh())
}

// httpStatus is the HTTP answer to a refusal.
func httpStatus(err error) int {
	var r *refusal
	if errors.As(err, &r) {
		switch r.reason {
		case "key":
			return http.StatusForbidden
		case "busy":
			return http.StatusConflict
		case "coordinator":
			return http.StatusServiceUnavailable
		}
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
