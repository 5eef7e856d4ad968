package edge

import (
	"context"
	"errors"
	"io"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// ServeHot is the edge's shard route on fasthttp (httpserve.ListenHot with
// Handler as the rest): an honest edge's GET of a shard it holds, with
// everything serveShard does for one: the bytes are verified before the
// first receipt is signed over them, the receipt is cached with them, the
// order headers are taken, the upload cap paces the body, and the same
// metrics count it. Responses are the same bytes and headers, so a viewer
// or an audit cannot tell which path answered.
//
// It returns false, having done nothing but mark the shard used, for every
// other request: other routes and methods, paths not in ParseShardPath's
// plain form, a shard not held (serveShard regenerates it or answers 404),
// a copy that fails verification (serveShard drops it and says so), and
// every faulty edge (the test faults live in serveShard only).
func (e *Edge) ServeHot(c *fasthttp.RequestCtx) bool {
	if e.cfg.Fault != Honest || !c.IsGet() {
		return false
	}
	k, ok := wire.ParseShardPath(c.Path())
	if !ok {
		return false
	}
	e.serving.enter()
	defer e.serving.leave()
	body, receipt, err := e.readShardReceipt(k)
	if err != nil {
		return false
	}
	if receipt == "" {
		msg, err := e.verifyToSign(k, body)
		if err != nil {
			return false
		}
		receipt = e.signReceipt(k, body, msg)
		e.cacheReceipt(k, body, receipt)
	}
	if receipt == "" {
		return false // not a shard message: cannot happen for a verified one
	}
	paid := e.takeOrder(peekString(&c.Request.Header, wire.HeaderOrderLimit), peekString(&c.Request.Header, wire.HeaderOrder))
	h := &c.Response.Header
	h.SetContentType(wire.ContentTypeShard)
	// The names are canonical already: SetCanonical skips the per-response
	// normalisation Set does (a third of this handler's own CPU).
	h.SetCanonical(hotHeaderNode, e.hotNodeID)
	h.SetCanonical(hotHeaderReceipt, unsafe.Slice(unsafe.StringData(receipt), len(receipt))) // read only: fasthttp copies it
	e.metrics.requestsOK.Inc()
	if e.upload == nil {
		e.sentShard(len(body), paid, true)
		c.Response.SetBodyRaw(body) // the cached bytes are never modified
		return true
	}
	if len(body) <= e.burst {
		delay := e.reserveUpload(len(body))
		if delay <= 0 {
			e.sentShard(len(body), paid, true)
			c.Response.SetBodyRaw(body)
			return true
		}
		c.Response.SetBodyStream(&pacedShard{e: e, c: c, body: body, paid: paid, reserved: true, delay: delay, pending: len(body)}, len(body))
		return true
	}
	c.Response.SetBodyStream(&pacedShard{e: e, c: c, body: body, paid: paid}, len(body))
	return true
}

// Canonical header names for SetCanonical.
var (
	hotHeaderNode    = []byte(wire.HeaderNode)
	hotHeaderReceipt = []byte(wire.HeaderReceipt)
)

func peekString(h *fasthttp.RequestHeader, key string) string {
	v := h.Peek(key)
	if len(v) == 0 {
		return ""
	}
	return string(v)
}

// pacedShard is a shard body sent under the upload cap: fasthttp reads it
// while writing the response, one bucket-sized chunk per reservation
// (shared by every request, as writeThrottled does), and each chunk
// extends the write deadline as httpserve.ExtendWriteDeadline does. A
// chunk waits for its tokens before it is handed over; the bytes leave
// as the connection's write buffer fills or the shard ends, so the last
// byte arrives when the last chunk is granted, as with serveShard.
type pacedShard struct {
	e    *Edge
	c    *fasthttp.RequestCtx
	body []byte
	paid bool
	off  int // bytes handed to fasthttp

	granted int // bytes whose tokens were waited for, not yet handed over
	// A reservation of pending bytes taken but not yet waited for, due
	// after delay.
	reserved bool
	delay    time.Duration
	pending  int
}

func (p *pacedShard) Read(b []byte) (int, error) {
	if p.off == len(p.body) {
		return 0, io.EOF
	}
	if p.granted == 0 {
		if !p.reserved {
			p.pending = min(len(p.body)-p.off, p.e.burst)
			p.delay, p.reserved = p.e.reserveUpload(p.pending), true
		}
		if err := p.e.sleepUploadWatching(p.c, p.pending, p.delay); err != nil {
			return 0, err
		}
		p.granted, p.reserved = p.pending, false
		_ = p.c.SetWriteDeadline(time.Now().Add(httpserve.WriteProgressTimeout))
	}
	n := copy(b, p.body[p.off:p.off+p.granted])
	p.off += n
	p.granted -= n
	p.e.sentShard(n, p.paid, p.off == len(p.body))
	return n, nil
}

// sentShard counts n more body bytes of a shard handed to the connection,
// and the shard once all of it was (whole).
func (e *Edge) sentShard(n int, paid, whole bool) {
	e.served(int64(n))
	if !paid {
		e.metrics.unpaidBytes.Add(float64(n))
	}
	if whole {
		e.metrics.shardsServed.Inc()
	}
}

// peerCheckInterval is how often a paced shard's wait looks whether its
// client is still there (one non-blocking peek each).
const peerCheckInterval = 20 * time.Millisecond

// errPeerGone ends a paced response whose client left during the wait.
var errPeerGone = errors.New("the client closed its connection")

// sleepUploadWatching is sleepUpload for the hot path: fasthttp's Done
// closes only at shutdown, so the wait also ends, giving its tokens back,
// when the client closes its connection (a viewer that had k shards
// cancels the rest), as net/http's request context does for serveShard.
func (e *Edge) sleepUploadWatching(c *fasthttp.RequestCtx, n int, delay time.Duration) error {
	if delay <= 0 {
		return nil
	}
	e.metrics.throttleWaits.Inc()
	e.metrics.throttleSeconds.Add(delay.Seconds())
	end := time.Now().Add(delay)
	t := time.NewTimer(min(delay, peerCheckInterval))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.Done():
			e.upload.giveBack(n)
			return context.Canceled
		}
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		if httpserve.PeerGone(c) {
			e.upload.giveBack(n)
			return errPeerGone
		}
		t.Reset(min(left, peerCheckInterval))
	}
}
