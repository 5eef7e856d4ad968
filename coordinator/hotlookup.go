package coordinator

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// ServeHotLookup is the lookup route on fasthttp (httpserve.ListenSplit
// with Handler as the rest): a POST of a plain-shaped lookup body
// (wire.ParseLookupRequest) is answered here with exactly what
// handleLookup answers (the same lookup, ranking, demand, limits, binary
// or JSON by Accept, prefetch purpose, metrics), in one write(2) and
// without net/http's per-request cost. Everything else, refusals
// included, it declines having changed nothing, and net/http answers it:
// other routes, other content types, unknown or chunked lengths, bodies
// of other shapes or of wire.LookupFastPathMaxBody bytes or more, and
// lookups the state refuses (unknown video, bad window: the lookup
// checks them before it counts or records anything).
func (c *Coordinator) ServeHotLookup(fc *fasthttp.RequestCtx) bool {
	if !fc.IsPost() || string(fc.Request.URI().PathOriginal()) != wire.PathLookup {
		return false
	}
	h := &fc.Request.Header
	if string(h.ContentType()) != "application/json" {
		return false
	}
	n := h.ContentLength()
	if n <= 0 || n >= wire.LookupFastPathMaxBody {
		return false
	}
	bp := hotBodyPool.Get().(*[]byte)
	defer hotBodyPool.Put(bp)
	body := (*bp)[:n]
	if got, err := io.ReadFull(fc.RequestBodyStream(), body); err != nil {
		return httpserve.Decline(fc, body[:got])
	}
	var req wire.LookupRequest
	if !wire.ParseLookupRequest(body, &req) {
		return httpserve.Decline(fc, body)
	}
	start := time.Now()
	sc := c.scratch.Get().(*lookupScratch)
	sc.prefetch = string(h.Peek(wire.HeaderLookupPurpose)) == wire.LookupPurposePrefetch
	sc.binary = bytes.Contains(h.Peek("Accept"), []byte(wire.ContentTypeLookupBinary))
	if err := c.renderLookup(fc, &req, sc); err != nil {
		c.scratch.Put(sc)
		return httpserve.Decline(fc, body)
	}
	if sc.binary {
		fc.Response.Header.SetContentType(wire.ContentTypeLookupBinary)
	} else {
		fc.Response.Header.SetContentType("application/json")
	}
	// The answer is written from sc.buf without a copy; fasthttp closes
	// user values that are io.Closers when it resets the request, after
	// the response was written (or the connection failed), and sc goes
	// back to the pool then.
	fc.Response.SetBodyRaw(sc.buf)
	fc.SetUserValue(hotScratchKey{}, sc)
	c.metrics.lookupLatency.Observe(time.Since(start).Seconds())
	return true
}

// hotScratchKey is the user value key of a hot lookup's scratch.
type hotScratchKey struct{}

// hotBodyPool holds ServeHotLookup's body buffers.
var hotBodyPool = sync.Pool{New: func() any { b := make([]byte, wire.LookupFastPathMaxBody); return &b }}
