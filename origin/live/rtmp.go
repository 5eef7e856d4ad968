package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/swarmcast/swarmcast/wire"
)

// rtmpIdle bounds every RTMP read: a publisher that sends nothing for this
// long has dropped.
const rtmpIdle = 10 * time.Second

// ServeRTMP takes RTMP publishers (rtmp://HOST:PORT/live/STREAM_KEY) on ln
// until ctx ends or the Ingest closes; it then closes ln and waits for
// every connection it accepted.
func (in *Ingest) ServeRTMP(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(in.ctx, cancel)
	defer stop()
	go func() { // owned: exits when ctx ends (this function's return at the latest)
		<-ctx.Done()
		_ = ln.Close()
	}()
	var conns sync.WaitGroup // this listener's connections
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			in.rtmpConn(ctx, c)
		}()
	}
	conns.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// streamKeyFromRTMP takes KEY from rtmp://HOST/live/KEY.
func streamKeyFromRTMP(path string) (string, error) {
	app, key, ok := strings.Cut(strings.Trim(path, "/"), "/")
	if !ok || app != "live" || key == "" || strings.Contains(key, "/") {
		return "", refuse("key", "publish to rtmp://HOST:PORT/live/STREAM_KEY (got path %q)", path)
	}
	return key, nil
}

func (in *Ingest) rtmpConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	unwatch := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer unwatch()
	remote := conn.RemoteAddr().String()
	log := in.log.With("ingest", "rtmp", "remote", remote)
	_ = conn.SetDeadline(time.Now().Add(rtmpIdle))
	sc := &gortmplib.ServerConn{RW: conn}
	if err := sc.Initialize(); err != nil {
		in.metrics.refused.WithLabelValues("garbage").Inc()
		log.Warn("not an RTMP publisher: handshake failed", "err", err)
		return
	}
	if err := sc.AcceptConn(); err != nil {
		in.metrics.refused.WithLabelValues("garbage").Inc()
		log.Warn("RTMP connect failed", "err", err)
		return
	}
	if !sc.Publish {
		_ = sc.RejectAction()
		log.Warn("refused an RTMP player: this port takes publishers only (players use the gateway's HLS)")
		return
	}
	key, err := streamKeyFromRTMP(sc.URL.Path)
	if err != nil {
		in.metrics.refused.WithLabelValues("key").Inc()
		_ = sc.RejectAction()
		log.Warn("RTMP publisher refused", "reason", err)
		return
	}
	ar, err := in.authorize(ctx, key)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			in.metrics.refused.WithLabelValues(r.reason).Inc()
		}
		_ = sc.RejectAction()
		log.Warn("RTMP publisher refused", "reason", err)
		return
	}
	ch := ar.Channel.ID
	log = log.With("channel", ch)
	reject := func(r *refusal) {
		in.metrics.refused.WithLabelValues(r.reason).Inc()
		log.Warn("RTMP publisher refused", "reason", r.err)
		rtmpStatusError(sc, r.Error())
		in.report(ch, wire.ChannelStateReport{State: wire.ChannelError, Error: r.Error()})
	}
	rd := &gortmplib.Reader{Conn: sc}
	if err := rd.Initialize(); err != nil {
		reject(refuse("codec", "cannot read the stream's tracks (this origin takes H.264 video with optional AAC audio: ffmpeg -c:v libx264 -c:a aac): %v", err))
		return
	}
	var (
		video, audio *gortmplib.Track
		tracks       sourceTracks
	)
	for _, t := range rd.Tracks() {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			if video == nil {
				video = t
			}
		case *codecs.MPEG4Audio:
			if audio == nil {
				audio = t
				tracks.audio = c.Config
			}
		default:
			reject(refuse("codec", "the stream carries %s; this origin takes H.264 video with optional AAC audio (ffmpeg -c:v libx264 -c:a aac; OBS: x264 + AAC)", codecName(t.Codec)))
			return
		}
	}
	if video == nil {
		reject(refuse("codec", "the stream has no H.264 video track (audio-only broadcasts are not supported): ffmpeg -c:v libx264"))
		return
	}
	s, err := in.open(ar, tracks, "rtmp")
	if err != nil {
		var r *refusal
		if !errors.As(err, &r) {
			r = &refusal{reason: "error", err: err}
		}
		reject(r)
		return
	}
	unwatchSource := context.AfterFunc(s.ctx, func() { _ = conn.Close() })
	defer unwatchSource()
	var failed error
	fail := func(err error) {
		if failed == nil {
			failed = err
			rtmpStatusError(sc, err.Error())
			_ = conn.Close()
		}
	}
	rd.OnDataH264(video, func(pts, dts time.Duration, au [][]byte) {
		if failed == nil {
			if err := s.video(durTicks(pts), durTicks(dts), au, time.Now()); err != nil {
				fail(err)
			}
		}
	})
	if audio != nil {
		rd.OnDataMPEG4Audio(audio, func(pts time.Duration, au []byte) {
			if failed == nil {
				if err := s.audio(durTicks(pts), [][]byte{au}); err != nil {
					fail(err)
				}
			}
		})
	}
	// The key is asked about again every Config.Reauth while the publisher
	// is live, so a revoked key stops publishing within that.
	revoked := make(chan error, 1)
	reauthDone := make(chan struct{})
	go func() { // owned: stops when the source ends (s.ctx) or this function returns
		defer close(reauthDone)
		t := time.NewTicker(in.cfg.Reauth)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				if _, err := in.authorize(s.ctx, key); err != nil {
					var r *refusal
					if errors.As(err, &r) && r.reason == "key" {
						revoked <- err
						_ = conn.Close()
						return
					}
				}
			}
		}
	}()
	for failed == nil {
		_ = conn.SetReadDeadline(time.Now().Add(rtmpIdle))
		if err := rd.Read(); err != nil {
			break // the publisher stopped or dropped (or fail closed the conn)
		}
	}
	select {
	case err := <-revoked:
		if failed == nil {
			failed = err
		}
	default:
	}
	s.finish(failed) // cancels s.ctx: the re-authorizer exits
	<-reauthDone
}

// durTicks converts an RTMP timestamp to 90 kHz ticks.
func durTicks(d time.Duration) int64 { return d.Nanoseconds() * 9 / 100_000 }

func codecName(c codecs.Codec) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", c), "*codecs.")
}

// rtmpStatusError tells an RTMP publisher why it is refused (ffmpeg and
// OBS log the description) before the connection closes.
func rtmpStatusError(sc *gortmplib.ServerConn, description string) {
	_ = sc.Write(&message.CommandAMF0{
		ChunkStreamID:   5,
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{nil, amf0.Object{
			{Key: "level", Value: "error"},
			{Key: "code", Value: "NetStream.Publish.Rejected"},
			{Key: "description", Value: description},
		}},
	})
}
