package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	// hlsReauth: a session asks the coordinator again whether its key may
	// still publish at most this long after it last did.
	hlsReauth = 10 * time.Second
	// maxHLSPushSegment bounds one PUT segment body; maxHLSPushPlaylist a playlist.
	maxHLSPushSegment  = 64 << 20
	maxHLSPushPlaylist = 1 << 20
)

// hlsSession is one stream key's pushing publisher.
type hlsSession struct {
	key    string
	s      *source
	mu     sync.Mutex // one PUT at a time feeds the source
	times  mpegts.TimeDecoder
	idle   *time.Timer
	authAt time.Time
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
		in.endHLS(sess, nil)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (in *Ingest) hlsSegment(w http.ResponseWriter, r *http.Request, key string) {
	body := http.MaxBytesReader(w, r.Body, maxHLSPushSegment)
	in.mu.Lock()
	sess := in.hls[key]
	in.mu.Unlock()
	if sess != nil && time.Since(sess.authAt) > hlsReauth {
		if _, err := in.authorize(r.Context(), key); err != nil {
			in.endHLS(sess, err)
			wire.WriteError(w, httpStatus(err), "%v", err)
			return
		}
		sess.authAt = time.Now()
	}
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
		sess = &hlsSession{key: key, s: s, authAt: time.Now()}
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
	sess.idle.Reset(hlsIdle)
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
