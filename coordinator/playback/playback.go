// Package playback is the coordinator's HTTP fallback for web playback: a
// browser whose viewer runs no player (or whose player's gateway is not
// reachable) plays a video as ordinary HLS from the coordinator itself,
// under /watch/{id}/ in the playback layout of content (master.m3u8,
// {r}/index.m3u8, {r}/{s}.ts, key).
//
// Every route is gated by the signed-in account's entitlement, the rule of
// the content-key route (a free video is unlocked on the spot). Segments
// are the origins' ciphertext, streamed through unchanged (Range passed
// on, bounded by the manifest's segment size), so the browser decrypts
// exactly what a swarm player would rebuild; the key goes only to the
// entitled session. It is a last resort: every byte comes from an origin
// and crosses the coordinator twice (counted as origin egress, see
// Service.OriginEgressBytes), where the gateway would have fetched most of
// it from edges.
package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/wire"
)

// Network is what the fallback asks of the control plane.
// Implementations must be safe for concurrent use.
type Network interface {
	// Manifest is a catalogued video's verified manifest.
	Manifest(video content.VideoID) (*content.Manifest, bool)
	// ContentKey is a catalogued video's AES-128 key (false if its origin
	// published none).
	ContentKey(video content.VideoID) (content.ContentKey, bool)
	// AliveOrigins lists the shard-server base URLs of alive origins.
	AliveOrigins(now time.Time) []string
}

// Access is the entitlement rule, the accounting subsystem's.
type Access interface {
	// AuthorizeKey authorises handing out video's key to r's account (and
	// counts it as a key request).
	AuthorizeKey(r *http.Request, video content.VideoID) error
	// AuthorizePlayback is AuthorizeKey's rule for the rest of the layout
	// (playlists, segments), not counted as key requests.
	AuthorizePlayback(r *http.Request, video content.VideoID) error
	// WriteError answers an error of the two with the status it means
	// (401 anonymous, 403 not entitled, 404 unknown video, ...).
	WriteError(w http.ResponseWriter, err error)
}

// EgressSource is what an overview reads of the fallback: ciphertext bytes
// relayed from origins to browsers since start (cumulative, monotonic).
// *Service implements it; sample it to draw a rate.
type EgressSource interface {
	OriginEgressBytes() int64
}

var _ EgressSource = (*Service)(nil)

// Config configures a Service. Zero values take the defaults.
type Config struct {
	// HTTPClient fetches segments from origins; default
	// wire.NewHTTPClient().
	HTTPClient *http.Client
	// OriginHeaderTimeout bounds the wait for one origin's answer before
	// the next is tried; default 10 s. The body streams without a deadline
	// beyond the browser's own connection.
	OriginHeaderTimeout time.Duration
	Now                 func() time.Time // default time.Now
	Log                 *slog.Logger
	Registry            prometheus.Registerer // metrics; required (the coordinator's registry)
}

// Service serves the fallback routes (Routes).
type Service struct {
	cfg    Config
	net    Network
	access Access
	log    *slog.Logger

	egress   atomic.Int64
	requests *prometheus.CounterVec // by resource, outcome
	bytes    prometheus.Counter
}

// New builds the fallback over the control plane net and the entitlement
// rule access.
func New(cfg Config, net Network, access Access) *Service {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.NewHTTPClient()
	}
	if cfg.OriginHeaderTimeout <= 0 {
		cfg.OriginHeaderTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := metric.For(cfg.Registry, "coordinator")
	return &Service{
		cfg: cfg, net: net, access: access, log: cfg.Log,
		requests: f.CounterVec("fallback_requests_total", "Requests to the HTTP playback fallback (/watch), by resource (master, media, segment, key) and outcome (ok, refused, not_found, origin_failed).", "resource", "outcome"),
		bytes:    f.Counter("fallback_origin_bytes_total", "Ciphertext bytes the HTTP playback fallback relayed from origins to browsers: origin egress that bypassed the swarm."),
	}
}

// OriginEgressBytes is the ciphertext the fallback relayed from origins
// since start.
func (s *Service) OriginEgressBytes() int64 { return s.egress.Load() }

// Routes registers wire.PathWatchMaster and wire.PathWatch on mux.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+wire.PathWatchMaster, s.handle)
	mux.HandleFunc("GET "+wire.PathWatch, s.handle)
}

var resourceNames = map[content.PlaybackResource]string{
	content.ResourceMaster:  "master",
	content.ResourceMedia:   "media",
	content.ResourceSegment: "segment",
	content.ResourceKey:     "key",
}

func (s *Service) handle(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	rel := r.PathValue("path")
	if rel == "" {
		rel = content.MasterPlaylistName // wire.PathWatchMaster
	}
	p, err := content.ParsePlaybackPath(rel)
	if err != nil {
		wire.WriteError(w, http.StatusNotFound, "%v", err)
		return
	}
	resource := resourceNames[p.Resource]
	outcome := s.serve(w, r, id, p)
	s.requests.WithLabelValues(resource, outcome).Inc()
}

// serve answers one resource after the entitlement check and returns the
// outcome label.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, id content.VideoID, p content.PlaybackPath) string {
	m, ok := s.net.Manifest(id)
	if !ok {
		wire.WriteError(w, http.StatusNotFound, "video %s is not in the catalogue", id)
		return "not_found"
	}
	authorize := s.access.AuthorizePlayback
	if p.Resource == content.ResourceKey {
		authorize = s.access.AuthorizeKey
	}
	if err := authorize(r, id); err != nil {
		s.access.WriteError(w, err)
		return "refused"
	}
	// Everything below is for this account only.
	w.Header().Set("Cache-Control", "private, no-store")
	key, haveKey := s.net.ContentKey(id)
	if !haveKey && p.Resource != content.ResourceMaster && p.Resource != content.ResourceSegment {
		wire.WriteError(w, http.StatusNotFound, "video %s: its origin published no content key", id)
		return "not_found"
	}
	switch p.Resource {
	case content.ResourceMaster:
		w.Header().Set("Content-Type", content.PlaylistContentType)
		_, _ = io.WriteString(w, content.MasterPlaylist(m))
	case content.ResourceMedia:
		pl, err := content.MediaPlaylist(m, p.Rendition, key)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return "not_found"
		}
		w.Header().Set("Content-Type", content.PlaylistContentType)
		_, _ = io.WriteString(w, pl)
	case content.ResourceKey:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(key[:])
	case content.ResourceSegment:
		seg := content.SegmentRef{Video: id, Rendition: p.Rendition, Segment: p.Segment}
		meta, err := m.CheckSegment(seg)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return "not_found"
		}
		return s.relaySegment(w, r, seg, meta)
	}
	return "ok"
}

// errOriginAnswer is an origin's answer the fallback will not relay.
var errOriginAnswer = errors.New("origin answer refused")

// relaySegment streams a segment's ciphertext from the first alive origin
// (in random order) that answers it as the manifest describes: 200 with
// exactly the segment's size, 206 within it, or 416 (passed on). Nothing is
// written before an origin answered so, so a failing origin costs the
// browser nothing but time.
func (s *Service) relaySegment(w http.ResponseWriter, r *http.Request, seg content.SegmentRef, meta content.Segment) string {
	origins := s.net.AliveOrigins(s.cfg.Now())
	rand.Shuffle(len(origins), func(i, j int) { origins[i], origins[j] = origins[j], origins[i] })
	var lastErr error
	for _, base := range origins {
		resp, err := s.fetch(r, base, seg, int64(meta.Size))
		if err != nil {
			if r.Context().Err() != nil {
				return "ok" // the browser went away
			}
			lastErr = err
			s.log.Debug("fallback: origin failed", "origin", base, "segment", seg, "err", err)
			continue
		}
		h := w.Header()
		h.Set("Content-Type", content.SegmentContentType)
		h.Set("Accept-Ranges", "bytes")
		for _, k := range []string{"Content-Length", "Content-Range"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method != http.MethodHead {
			// The origin's answer was checked to carry at most the
			// segment's size; the limit holds even if it lies.
			_, _ = io.Copy(egressWriter{w, s}, io.LimitReader(resp.Body, int64(meta.Size)))
		}
		resp.Body.Close()
		return "ok"
	}
	if lastErr == nil {
		lastErr = errors.New("no origin is alive")
	}
	wire.WriteError(w, http.StatusBadGateway, "segment %d of rendition %d of video %s: %v; retry shortly", seg.Segment, seg.Rendition, seg.Video, lastErr)
	return "origin_failed"
}

// fetch asks one origin for the segment with the browser's Range, and
// returns its response if it is one to relay (the caller closes the body).
func (s *Service) fetch(r *http.Request, base string, seg content.SegmentRef, size int64) (*http.Response, error) {
	ctx, cancelHeaders := context.WithCancel(r.Context())
	timer := time.AfterFunc(s.cfg.OriginHeaderTimeout, cancelHeaders)
	req, err := http.NewRequestWithContext(ctx, r.Method, wire.SegmentURL(base, seg), nil)
	if err != nil {
		timer.Stop()
		cancelHeaders()
		return nil, err
	}
	// One range is passed on; a multi-range request is answered whole
	// (RFC 9110 lets a server ignore Range), so the relayed body is
	// always the segment's bytes and never a multipart document.
	if rg := r.Header.Get("Range"); rg != "" && !strings.Contains(rg, ",") {
		req.Header.Set("Range", rg)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if !timer.Stop() || err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		cancelHeaders()
		if err == nil {
			err = fmt.Errorf("origin %s: no answer within %v", base, s.cfg.OriginHeaderTimeout)
		}
		return nil, err
	}
	body := resp.Body
	resp.Body = readCloser{body, func() error { err := body.Close(); cancelHeaders(); return err }}
	if err := checkOriginAnswer(resp, size); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("origin %s: %w", base, err)
	}
	return resp, nil
}

// checkOriginAnswer accepts 200 with exactly size bytes, 206 with a
// Content-Length within size, and 416.
func checkOriginAnswer(resp *http.Response, size int64) error {
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength != size {
			return fmt.Errorf("%w: %d bytes for a segment of %d", errOriginAnswer, resp.ContentLength, size)
		}
	case http.StatusPartialContent:
		if resp.ContentLength < 0 || resp.ContentLength > size || resp.Header.Get("Content-Range") == "" {
			return fmt.Errorf("%w: a range of %d bytes (Content-Range %q) for a segment of %d", errOriginAnswer, resp.ContentLength, resp.Header.Get("Content-Range"), size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if resp.Header.Get("Content-Range") != "bytes */"+strconv.FormatInt(size, 10) {
			return fmt.Errorf("%w: 416 naming %q for a segment of %d", errOriginAnswer, resp.Header.Get("Content-Range"), size)
		}
	default:
		return fmt.Errorf("%w: status %d", errOriginAnswer, resp.StatusCode)
	}
	return nil
}

// egressWriter counts what it writes as origin egress as it goes, so an
// overview sampling during a long segment sees it move.
type egressWriter struct {
	w io.Writer
	s *Service
}

func (e egressWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	e.s.egress.Add(int64(n))
	e.s.bytes.Add(float64(n))
	return n, err
}

type readCloser struct {
	io.Reader
	close func() error
}

func (rc readCloser) Close() error { return rc.close() }
