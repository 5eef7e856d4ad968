package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/swarmcast/swarmcast/wire"
)

// HLS push: ffmpeg -f hls -method PUT http://ORIGIN/live/KEY/index.m3u8
// PUTs each MPEG-TS segment and then the playlist. The segments' frames
// feed a source exactly as RTMP's do (the origin cuts its own segments at
// keyframes); playlists are accepted and read only for ENDLIST, the
// publisher's clean stop.

const (
	// hlsIdle: a pushing publisher that PUTs nothing for this long has dropped.
	hlsIdle = 10 * time.Second
	// maxHLSPushSegment bounds one PUT segment body; maxHLSPushPlaylist a playlist.
	maxHLSPushSegment  = 64 << 20
	maxHLSPushPlaylist = 1 << 20
)

// hlsSession is one stream key's pushing publisher.
type hlsSession struct {
	key  string
	s    *source
	idle *time.Timer

	mu     sync.Mutex // one PUT at a time feeds the source; guards the rest
	times  mpegts.TimeDecoder
	authAt time.Time
	// next is the number of the segment file expected next (ffmpeg names
	// them index0.ts, index1.ts, …): PUTs on separate connections may be
	// handled out of order, so a later one waits (bounded) for it.
	next     int
	progress chan struct{} // closed and replaced each time a segment is done
	received map[string]bool
	// endList, once the ENDLIST playlist came, names every segment it
	// lists: the session ends cleanly when all of them are received.
	endList []string
}

// hlsOrderWait bounds how long a segment PUT waits for an earlier one
// (a segment lost on the way is skipped after it).
const hlsOrderWait = 2 * time.Second

// segmentNumber is the number ending a segment file name (index12.ts →
// 12), or -1.
func segmentNumber(file string) int {
	base := strings.TrimSuffix(file, ".ts")
	i := len(base)
	for i > 0 && base[i-1] >= '0' && base[i-1] <= '9' {
		i--
	}
	if i == len(base) || len(base)-i > 9 {
		return -1
	}
	n := 0
	for _, c := range base[i:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// playlistSegments lists a media playlist's segment URIs (base names).
func playlistSegments(body []byte) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, path.Base(l))
		}
	}
	return out
}

// doneLocked records a finished segment and reports whether the ENDLIST
// playlist's segments are all in (the session should end).
func (sess *hlsSession) doneLocked(file string, num int) bool {
	sess.received[file] = true
	if num >= 0 && num >= sess.next {
		sess.next = num + 1
	}
	close(sess.progress)
	sess.progress = make(chan struct{})
	return sess.endList != nil && sess.allReceivedLocked()
}

func (sess *hlsSession) allReceivedLocked() bool {
	for _, f := range sess.endList {
		if !sess.received[f] {
			return false
		}
	}
	return true
}

// HandleHLSPush serves PUT wire.PathLiveIngestHLS.
func (in *Ingest) HandleHLSPush(w http.ResponseWriter, r *http.Request) {
	key, file := r.PathValue("key"), r.PathValue("file")
	switch {
	case strings.HasSuffix(file, ".m3u8"):
		in.hlsPlaylist(w, r, key)
	case strings.HasSuffix(file, ".ts"):
		in.hlsSegment(w, r, key)
	default:
		in.metrics.refused.WithLabelValues("codec").Inc()
		wire.WriteError(w, http.StatusBadRequest, "%s: push MPEG-TS segments (.ts) and .m3u8 playlists (ffmpeg -f hls -hls_segment_type mpegts -method PUT)", file)
	}
}

func (in *Ingest) hlsPlaylist(w http.ResponseWriter, r *http.Request, key string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHLSPushPlaylist))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "playlist: %v", err)
		return
	}
	in.mu.Lock()
	sess := in.hls[key]
	in.mu.Unlock()
	if sess == nil {
		// A playlist before any segment (or after the end): the key must
		// still be good, so a wrong one learns it at once.
		if _, err := in.authorize(r.Context(), key); err != nil {
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
		// The publisher stopped; its last segments may still be in flight
		// on other connections: end once every listed one is in.
		sess.mu.Lock()
		sess.endList = playlistSegments(body)
		all := sess.allReceivedLocked()
		sess.mu.Unlock()
		if all {
			in.endHLS(sess, nil)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (in *Ingest) hlsSegment(w http.ResponseWriter, r *http.Request, key string) {
	body := http.MaxBytesReader(w, r.Body, maxHLSPushSegment)
	file := r.PathValue("file")
	num := segmentNumber(file)
	in.mu.Lock()
	sess := in.hls[key]
	in.mu.Unlock()
	rd := &mpegts.Reader{R: body}
	if err := rd.Initialize(); err != nil {
		err := refuse("garbage", "not an MPEG-TS segment (push H.264/AAC in MPEG-TS: ffmpeg -f hls -hls_segment_type mpegts): %v", err)
		if sess != nil {
			in.endHLS(sess, err)
		} else {
			in.refuseUnattached(r.Context(), key, err)
		}
		wire.WriteError(w, httpStatus(err), "%v", err)
		return
	}
	video, audio, tracks, terr := hlsTracks(rd.Tracks())
	if sess == nil {
		auth, err := in.authorize(r.Context(), key)
		if err != nil {
			in.metrics.refused.WithLabelValues("key").Inc()
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
		if terr != nil {
			in.metrics.refused.WithLabelValues("codec").Inc()
			in.log.Warn("HLS publisher refused", "channel", auth.Channel.ID, "reason", terr)
			in.report(auth.Channel.ID, wire.ChannelStateReport{State: wire.ChannelError, Error: terr.Error()})
			wire.WriteError(w, httpStatus(terr), "%v", terr)
			return
		}
		s, err := in.open(auth, tracks, "hls")
		if err != nil {
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
		sess = &hlsSession{key: key, s: s, authAt: time.Now(), next: num, progress: make(chan struct{}), received: map[string]bool{}}
		sess.idle = time.AfterFunc(hlsIdle, func() { in.endHLS(sess, nil) })
		in.mu.Lock()
		in.hls[key] = sess
		in.mu.Unlock()
		context.AfterFunc(s.ctx, func() { in.endHLS(sess, nil) }) // stopped (owner ended it): end cleanly
	} else if terr != nil || (audio == nil) != (sess.s.tracks.audio == nil) {
		if terr == nil {
			terr = refuse("codec", "a segment's tracks differ from the first segment's: push one H.264 (+ AAC) stream")
		}
		in.endHLS(sess, terr)
		wire.WriteError(w, httpStatus(terr), "%v", terr)
		return
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for giveUp := time.After(hlsOrderWait); num >= 0 && num > sess.next; {
		wait := sess.progress
		sess.mu.Unlock()
		select {
		case <-wait:
		case <-giveUp:
			num = -1 // skip the missing one(s)
		case <-r.Context().Done():
			sess.mu.Lock()
			return
		}
		sess.mu.Lock()
	}
	sess.idle.Reset(hlsIdle)
	if time.Since(sess.authAt) > in.cfg.Reauth {
		if _, err := in.authorize(r.Context(), key); err != nil {
			sess.mu.Unlock()
			in.endHLS(sess, err)
			sess.mu.Lock()
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
		sess.authAt = time.Now()
	}
	s := sess.s
	rd.OnDecodeError(func(error) {}) // damaged packets are skipped, as a player would
	rd.OnDataH264(video, func(pts, dts int64, au [][]byte) error {
		return s.video(sess.times.Decode(pts), sess.times.Decode(dts), au, time.Now())
	})
	if audio != nil {
		rd.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
			return s.audio(sess.times.Decode(pts), aus)
		})
	}
	for {
		err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var rf *refusal
			if !errors.As(err, &rf) {
				err = refuse("garbage", "the segment is not valid MPEG-TS: %v", err)
			}
			sess.mu.Unlock()
			in.endHLS(sess, err)
			sess.mu.Lock()
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
	}
	if sess.doneLocked(file, segmentNumber(file)) {
		sess.mu.Unlock()
		in.endHLS(sess, nil)
		sess.mu.Lock()
	}
	w.WriteHeader(http.StatusCreated)
}

// refuseUnattached answers a refused first segment: the channel (if the
// key is good) is told why.
func (in *Ingest) refuseUnattached(ctx context.Context, key string, err error) {
	var r *refusal
	if errors.As(err, &r) {
		in.metrics.refused.WithLabelValues(r.reason).Inc()
	}
	if auth, aerr := in.authorize(ctx, key); aerr == nil {
		in.log.Warn("HLS publisher refused", "channel", auth.Channel.ID, "reason", err)
		in.report(auth.Channel.ID, wire.ChannelStateReport{State: wire.ChannelError, Error: err.Error()})
	}
}

// endHLS ends a pushing session (cause nil: cleanly).
func (in *Ingest) endHLS(sess *hlsSession, cause error) {
	in.mu.Lock()
	if in.hls[sess.key] != sess {
		in.mu.Unlock()
		return
	}
	delete(in.hls, sess.key)
	in.mu.Unlock()
	sess.idle.Stop()
	sess.s.finish(cause)
}

// hlsTracks picks the pushed stream's H.264 and AAC tracks.
func hlsTracks(ts []*mpegts.Track) (video, audio *mpegts.Track, tracks sourceTracks, err error) {
	for _, t := range ts {
		switch c := t.Codec.(type) {
		case *tscodecs.H264:
			if video == nil {
				video = t
			}
		case *tscodecs.MPEG4Audio:
			if audio == nil {
				audio = t
				cfg := c.Config
				tracks.audio = &cfg
			}
		default:
			return nil, nil, tracks, refuse("codec", "the stream carries %s; this origin takes H.264 video with optional AAC audio (ffmpeg -c:v libx264 -c:a aac)",
				strings.TrimPrefix(fmt.Sprintf("%T", c), "*codecs."))
		}
	}
	if video == nil {
		return nil, nil, tracks, refuse("codec", "the stream has no H.264 video track: ffmpeg -c:v libx264")
	}
	return video, audio, tracks, nil
}
