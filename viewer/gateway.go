package viewer

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
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

// routeKind says which gateway resource a path names.
type routeKind int

const (
	routeIndex routeKind = iota
	routeMaster
	routeKey
	routeMedia
	routeSegment
)

// gatewayRoute is a parsed gateway path.
type gatewayRoute struct {
	kind routeKind
	// seg is the segment a media-segment route names; other routes fill
	// only what they name (the video; the rendition of a playlist).
	seg content.SegmentRef
}

// parseGatewayPath parses /, /videos/{id}/master.m3u8, /videos/{id}/key,
// /videos/{id}/{rendition}/index.m3u8 and /videos/{id}/{rendition}/{segment}.ts.
// Bounds against the manifest are checked later.
func parseGatewayPath(p string) (gatewayRoute, error) {
	var rt gatewayRoute
	if p == "/" {
		return gatewayRoute{kind: routeIndex}, nil
	}
	rest, ok := strings.CutPrefix(p, "/videos/")
	if !ok {
		return rt, fmt.Errorf("no such page %q: open / for the catalogue or /videos/{id}/master.m3u8", p)
	}
	parts := strings.Split(rest, "/")
	var err error
	if rt.seg.Video, err = content.ParseVideoID(parts[0]); err != nil {
		return rt, err
	}
	number := func(s, what string, limit int) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= limit || strconv.Itoa(n) != s {
			return 0, fmt.Errorf("%s %q: want an integer in 0..%d", what, s, limit-1)
		}
		return n, nil
	}
	switch {
	case len(parts) == 2 && parts[1] == "master.m3u8":
		rt.kind = routeMaster
	case len(parts) == 2 && parts[1] == "key":
		rt.kind = routeKey
	case len(parts) == 3:
		if rt.seg.Rendition, err = number(parts[1], "rendition", 256); err != nil {
			return rt, err
		}
		if parts[2] == "index.m3u8" {
			rt.kind = routeMedia
			return rt, nil
		}
		seg, ok := strings.CutSuffix(parts[2], ".ts")
		if !ok {
			return rt, fmt.Errorf("%q: want index.m3u8 or {segment}.ts", parts[2])
		}
		if rt.seg.Segment, err = number(seg, "segment", 1<<20); err != nil {
			return rt, err
		}
		rt.kind = routeSegment
	default:
		return rt, fmt.Errorf("no such resource %q: want master.m3u8, key, {rendition}/index.m3u8 or {rendition}/{segment}.ts", p)
	}
	return rt, nil
}

// Gateway is the local HLS gateway: any HLS player opens
// /videos/{id}/master.m3u8 and gets ciphertext rebuilt from the swarm, the
// key and playlists with per-segment IVs. Background readahead is owned by
// the viewer and stopped by Close. Servers serve Handler, which adds
// /healthz and /metrics.
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
	return mux
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
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		wire.WriteError(w, http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
		return
	}
	rt, err := parseGatewayPath(r.URL.Path)
	if err != nil {
		wire.WriteError(w, http.StatusNotFound, "%v", err)
		return
	}
	if rt.kind == routeIndex {
		v.serveIndex(w, r)
		return
	}
	e, err := v.video(r.Context(), rt.seg.Video)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, errUnknownVideo) {
			status = http.StatusNotFound
		}
		wire.WriteError(w, status, "%v", err)
		return
	}
	man := e.man
	base := "/videos/" + rt.seg.Video.String()
	uris := content.PlaylistURIs{
		Media:   func(r int) string { return fmt.Sprintf("%s/%d/index.m3u8", base, r) },
		Segment: func(r, s int) string { return fmt.Sprintf("%s/%d/%d.ts", base, r, s) },
		Key:     base + "/key",
	}
	if rt.kind != routeMaster && rt.kind != routeKey && rt.seg.Rendition >= len(man.Renditions) {
		wire.WriteError(w, http.StatusNotFound, "rendition %d does not exist: video %s has %d", rt.seg.Rendition, rt.seg.Video, len(man.Renditions))
		return
	}
	switch rt.kind {
	case routeMaster:
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write([]byte(content.MasterPlaylist(man, uris)))
	case routeKey:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(e.key[:])
	case routeMedia:
		pl, err := content.MediaPlaylist(man, rt.seg.Rendition, e.key, uris)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write([]byte(pl))
	case routeSegment:
		seg, err := man.CheckSegment(rt.seg)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return
		}
		segDur := time.Duration(seg.Duration) * time.Microsecond
		// A player waiting on a segment readahead did not bring is urgent:
		// half a segment of slack makes the origin race the edges at once.
		ct, err := v.cachedSegment(r.Context(), e, rt.seg, v.cfg.Now().Add(segDur/2))
		if err != nil {
			if r.Context().Err() != nil {
				return // the player went away
			}
			wire.WriteError(w, http.StatusBadGateway, "%v", err)
			return
		}
		for i := 1; i <= gatewayReadahead; i++ {
			ahead := rt.seg
			ahead.Segment += i
			if _, err := man.CheckSegment(ahead); err == nil {
				v.startSegment(e, ahead, v.cfg.Now().Add(time.Duration(i+1)*segDur))
			}
		}
		w.Header().Set("Content-Type", "video/mp2t")
		w.Header().Set("Content-Length", strconv.Itoa(len(ct)))
		_, _ = w.Write(ct)
	}
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Swarmcast player</title></head>
<body><h1>Swarmcast player</h1>
<p>Open a master playlist in any HLS player: <code>ffplay URL</code>, <code>vlc URL</code>, <code>mpv URL</code>.</p>
<ul>{{range .}}<li><a href="/videos/{{.ID}}/master.m3u8">{{.Title}}</a> ({{.DurationMS}} ms, {{len .Renditions}} renditions)</li>
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
