package viewer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// gatewayReadahead is how many segments after the one a player asked for are
// fetched in the background.
const gatewayReadahead = 3

// gatewayRoute is a parsed gateway path: the catalogue page, or a video and
// a resource of the playback layout under /videos/{id}/.
type gatewayRoute struct {
	index bool
	video content.VideoID
	res   content.PlaybackPath
}

// gatewayVideosPrefix is where the playback layout of each video lives:
// /videos/{id}/master.m3u8 and the rest (content.ParsePlaybackPath).
const gatewayVideosPrefix = "/videos/"

// parseGatewayPath parses / and /videos/{id}/{playback path}. Bounds
// against the manifest are checked later.
func parseGatewayPath(p string) (gatewayRoute, error) {
	if p == "/" {
		return gatewayRoute{index: true}, nil
	}
	rest, ok := strings.CutPrefix(p, gatewayVideosPrefix)
	if !ok {
		return gatewayRoute{}, fmt.Errorf("no such page %q: open / for the catalogue or /videos/{id}/master.m3u8", p)
	}
	ids, rel, _ := strings.Cut(rest, "/")
	id, err := content.ParseVideoID(ids)
	if err != nil {
		return gatewayRoute{}, err
	}
	res, err := content.ParsePlaybackPath(rel)
	if err != nil {
		return gatewayRoute{}, err
	}
	return gatewayRoute{video: id, res: res}, nil
}

// Gateway is the local HLS gateway: any HLS player opens
// /videos/{id}/master.m3u8 and gets ciphertext rebuilt from the swarm, the
// key and playlists with per-segment IVs (content's playback layout, every
// URI relative), segments with byte ranges. Web pages of the allowed
// origins (Config.WebOrigins) read it across origins. Background readahead
// is owned by the viewer and stopped by Close. Servers serve Handler,
// which adds /healthz and /metrics.
func (v *Viewer) Gateway() http.Handler {
	return http.HandlerFunc(v.serveGateway)
}

// Handler is what a gateway server serves: the Gateway plus /healthz and
// /metrics of the viewer's registry, like every role's server. A viewer
// hosted in an edge shares the edge's registry, so both /metrics answer
// with the same series.
func (v *Viewer) Handler() http.Handler {
	mux := httpserve.NewMux(v.cfg.Registry)
	mux.Handle("/", v.Gateway())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A web page probes /healthz before it plays through the gateway,
		// so it has the gateway's CORS policy too.
		if r.URL.Path == wire.PathHealth && !v.cors(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// gatewayHostAllowed reports whether a request's Host names this machine's
// loopback: 127.0.0.1, [::1] or localhost, with any port or none. The
// gateway hands out content keys to whoever asks, trusting that only local
// programs can reach 127.0.0.1; a web page on a DNS name the attacker
// controls can re-point that name at 127.0.0.1 (DNS rebinding) and read
// the answers as same-origin, but its requests still carry the attacker's
// name as Host, so naming the loopback is what proves the page is local.
func gatewayHostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	switch h {
	case "127.0.0.1", "::1", "[::1]", "localhost":
		return true
	}
	return false
}

// gatewayPeerAllowed reports whether the request comes from this machine
// (a loopback source address). The Host check alone trusts a header the
// client writes; a gateway bound to a non-loopback address must still
// serve keys only to local programs.
func gatewayPeerAllowed(remoteAddr string) bool {
	h, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		h = remoteAddr
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (v *Viewer) serveGateway(w http.ResponseWriter, r *http.Request) {
	if !gatewayPeerAllowed(r.RemoteAddr) {
		wire.WriteError(w, http.StatusForbidden, "the player gateway serves only programs on this machine (it hands out content keys); connect from 127.0.0.1 or [::1]")
		return
	}
	if !gatewayHostAllowed(r.Host) {
		wire.WriteError(w, http.StatusMisdirectedRequest, "host %q: the player gateway answers only for 127.0.0.1, [::1] or localhost (open http://127.0.0.1:PORT/...)", r.Host)
		return
	}
	if !v.cors(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		wire.WriteError(w, http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, gatewayLivePrefix); ok {
		v.serveLive(w, r, rest)
		return
	}
	rt, err := parseGatewayPath(r.URL.Path)
	if err != nil {
		wire.WriteError(w, http.StatusNotFound, "%v", err)
		return
	}
	if rt.index {
		v.serveIndex(w, r)
		return
	}
	e, err := v.video(r.Context(), rt.video)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, errUnknownVideo) {
			status = http.StatusNotFound
		}
		wire.WriteError(w, status, "%v", err)
		return
	}
	man := e.man
	seg := content.SegmentRef{Video: rt.video, Rendition: rt.res.Rendition, Segment: rt.res.Segment}
	switch rt.res.Resource {
	case content.ResourceMaster:
		w.Header().Set("Content-Type", content.PlaylistContentType)
		_, _ = w.Write([]byte(content.MasterPlaylist(man)))
	case content.ResourceKey:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(e.key[:])
	case content.ResourceMedia:
		pl, err := content.MediaPlaylist(man, rt.res.Rendition, e.key)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return
		}
		w.Header().Set("Content-Type", content.PlaylistContentType)
		_, _ = w.Write([]byte(pl))
	case content.ResourceSegment:
		meta, err := man.CheckSegment(seg)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return
		}
		segDur := time.Duration(meta.Duration) * time.Microsecond
		// A player waiting on a segment readahead did not bring is urgent:
		// half a segment of slack makes the origin race the edges at once.
		ct, err := v.cachedSegment(r.Context(), e, seg, v.cfg.Now().Add(segDur/2))
		if err != nil {
			if r.Context().Err() != nil {
				return // the player went away
			}
			wire.WriteError(w, http.StatusBadGateway, "%v", err)
			return
		}
		for i := 1; i <= gatewayReadahead; i++ {
			ahead := seg
			ahead.Segment += i
			if _, err := man.CheckSegment(ahead); err == nil {
				v.startSegment(e, ahead, v.cfg.Now().Add(time.Duration(i+1)*segDur))
			}
		}
		w.Header().Set("Content-Type", content.SegmentContentType)
		// ServeContent answers Range (206 with the slice, 416 beyond the
		// end), If-Range and HEAD over the rebuilt bytes; the zero modtime
		// keeps it from sending Last-Modified.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(ct))
	}
}

// cors applies the gateway's cross-origin policy and reports whether the
// request goes on. A request without Origin (ffmpeg, VLC, a navigation) is
// untouched. An allowed origin (Config.WebOrigins, the coordinator's by
// default, or the gateway's own) gets Access-Control-Allow-Origin naming it,
// and its preflight (OPTIONS) is answered here, with
// Access-Control-Allow-Private-Network for Chrome's private network access
// (the page may come from a public coordinator). Any other origin is
// refused with no CORS headers, before the gateway fetches anything: a
// hostile page must not even make it spend the account's points.
func (v *Viewer) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		if preflight {
			wire.WriteError(w, http.StatusForbidden, "CORS preflight without an Origin header")
			return false
		}
		return true
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !v.originAllowed(origin, r.Host) {
		wire.WriteError(w, http.StatusForbidden, "origin %q may not use this player gateway; start the player with --web-origin %s to allow it (the coordinator's origin is allowed already)", origin, origin)
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges")
	if !preflight {
		return true
	}
	if m := r.Header.Get("Access-Control-Request-Method"); m != http.MethodGet && m != http.MethodHead {
		wire.WriteError(w, http.StatusMethodNotAllowed, "CORS preflight for %s: the player gateway answers GET and HEAD only", m)
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD")
	h.Set("Access-Control-Allow-Headers", "Range")
	h.Set("Access-Control-Allow-Private-Network", "true")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return false
}

// originAllowed reports whether a page of origin may read the gateway: one
// of the configured web origins, or the gateway's own (its catalogue page).
func (v *Viewer) originAllowed(origin, host string) bool {
	if origin == "http://"+strings.ToLower(host) {
		return true
	}
	_, ok := v.webOrigins[origin]
	return ok
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Swarmcast player</title></head>
<body><h1>Swarmcast player</h1>
<p>Open a master playlist in any HLS player: <code>ffplay URL</code>, <code>vlc URL</code>, <code>mpv URL</code>.</p>
<ul>{{range .}}<li><a href="videos/{{.ID}}/master.m3u8">{{.Title}}</a> ({{.DurationMS}} ms, {{len .Renditions}} renditions)</li>
{{else}}<li>The catalogue is empty.</li>{{end}}</ul>
</body></html>
`))

func (v *Viewer) serveIndex(w http.ResponseWriter, r *http.Request) {
	videos, err := v.coord.Videos(r.Context())
	if err != nil {
		wire.WriteError(w, http.StatusBadGateway, "catalogue: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, videos)
}

// segmentCache holds recently rebuilt segments and joins concurrent requests
// for the same one, so readahead and the player never fetch a segment twice.
type segmentCache struct {
	mu      sync.Mutex
	limit   int
	entries map[content.SegmentRef]*cacheEntry
	order   []content.SegmentRef // completed entries, oldest first
}

type cacheEntry struct {
	done chan struct{}
	ct   []byte
	err  error
}

func newSegmentCache(limit int) *segmentCache {
	return &segmentCache{limit: limit, entries: map[content.SegmentRef]*cacheEntry{}}
}

// startSegment makes sure a fetch of the segment is cached or under way and
// returns its entry. The fetch runs in the background under the viewer's
// context (so a player hanging up does not abort it for others).
func (v *Viewer) startSegment(e *videoEntry, key content.SegmentRef, deadline time.Time) *cacheEntry {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if ent, ok := c.entries[key]; ok {
		return ent
	}
	ent := &cacheEntry{done: make(chan struct{})}
	if v.ctx.Err() != nil {
		ent.err = v.ctx.Err()
		close(ent.done)
		return ent
	}
	c.entries[key] = ent
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		res, err := v.fetchSegment(v.ctx, e, key, urgency{deadline: deadline, speed: 1})
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			ent.err = err
			delete(c.entries, key) // retried on the next request
		} else {
			ent.ct = res.ciphertext
			c.order = append(c.order, key)
			for len(c.order) > c.limit {
				delete(c.entries, c.order[0])
				c.order = c.order[1:]
			}
		}
		close(ent.done)
	}()
	return ent
}

// cachedSegment returns a segment from the cache or fetches it.
func (v *Viewer) cachedSegment(ctx context.Context, e *videoEntry, seg content.SegmentRef, deadline time.Time) ([]byte, error) {
	ent := v.startSegment(e, seg, deadline)
	select {
	case <-ent.done:
		return ent.ct, ent.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
