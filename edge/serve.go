package edge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

func (e *Edge) fail(w http.ResponseWriter, status int, format string, args ...any) {
	e.metrics.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	wire.WriteError(w, status, format, args...)
}

func (e *Edge) serveShard(w http.ResponseWriter, r *http.Request) {
	e.serving.enter()
	defer e.serving.leave()
	ref, err := wire.ParseShardRef(r)
	if err != nil {
		e.fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	k := ref
	paid := e.takeOrder(r.Header.Get(wire.HeaderOrderLimit), r.Header.Get(wire.HeaderOrder)) // served regardless: see orders.go
	body, receipt, err := e.readShardReceipt(k)
	stored := err == nil
	if errors.Is(err, errNotHeld) {
		body, err = e.regenerate(k)
	}
	if err != nil {
		e.fail(w, http.StatusNotFound, "shard %d of video %s rendition %d segment %d is not held by this edge: %v", ref.Shard, ref.Video, ref.Rendition, ref.Segment, err)
		return
	}
	var msg *content.ShardMessage
	if receipt == "" {
		// A receipt is this edge's signature under the bytes: a viewer
		// holding one over a bad shard disqualifies the edge at once. So
		// the bytes are checked against the manifest before every
		// signature (a cached receipt was checked when it was signed, over
		// the same bytes in memory), and a shard the disk spoilt is dropped
		// and fetched again instead of being vouched for.
		if msg, err = e.verifyToSign(k, body); err != nil {
			if stored {
				e.dropCorrupt(k, err)
			}
			e.fail(w, http.StatusNotFound, "shard %d of video %s rendition %d segment %d is not held by this edge: its copy failed verification and is being fetched again", ref.Shard, ref.Video, ref.Rendition, ref.Segment)
			return
		}
	}
	if e.cfg.Fault != Honest {
		// The receipt covers the bytes actually sent: that is what makes
		// a lie provable.
		body, receipt, stored = e.corrupt(k, body), "", false
		msg = nil
	}
	if receipt == "" {
		receipt = e.signReceipt(k, body, msg)
		if stored {
			e.cacheReceipt(k, body, receipt)
		}
	}
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeShard)
	h.Set(wire.HeaderNode, string(e.cfg.Identity.ID))
	if receipt != "" {
		h.Set(wire.HeaderReceipt, receipt)
	}
	if e.cfg.Fault == SlowDrip {
		e.metrics.requestsOK.Inc()
		e.slowDrip(w, r.Context(), body)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	e.metrics.requestsOK.Inc()
	n, _ := e.writeThrottled(r.Context(), w, body)
	e.served(n)
	if !paid {
		e.metrics.unpaidBytes.Add(float64(n))
	}
	if n == int64(len(body)) {
		e.metrics.shardsServed.Inc()
	}
}

// verifyToSign checks that body is shard k and verifies against the video's
// manifest, so the edge may sign a receipt over it.
func (e *Edge) verifyToSign(k content.ShardRef, body []byte) (*content.ShardMessage, error) {
	m := e.manifest(k.Video)
	if m == nil {
		return nil, fmt.Errorf("no verified manifest of video %s", k.Video)
	}
	return verifyMessage(m, k, body)
}

// dropCorrupt removes a stored shard that failed verification when it was
// about to be served: the next heartbeat reports it gone, and an assigned
// one is queued to be fetched again.
func (e *Edge) dropCorrupt(k content.ShardRef, why error) {
	e.metrics.verifyFailures.WithLabelValues("serve").Inc()
	e.mu.Lock()
	h, ok := e.inv.held[k]
	assigned := ok && h.assigned
	if ok {
		e.removeLocked(k, "corrupt")
	}
	e.mu.Unlock()
	if !ok {
		return // dropped meanwhile
	}
	e.log.Warn("dropping a cached shard that no longer verifies (disk corruption?); fetching it again", "shard", k, "err", why)
	if assigned && !e.work.push(job{kind: jobFetch, seg: k.SegmentRef, shards: []int{k.Shard}}) {
		e.metrics.queueFull.Inc()
	}
}

// signReceipt signs a receipt over the whole message body, data and proof
// (wire.SignShardReceipt), and returns it encoded for wire.HeaderReceipt;
// msg is body decoded, if the caller has it. "" if body is not a shard
// message (it always is).
func (e *Edge) signReceipt(k content.ShardRef, body []byte, msg *content.ShardMessage) string {
	if msg == nil {
		if _, err := content.DecodeShardMessage(body); err != nil {
			return ""
		}
	}
	rc := wire.SignShardReceipt(e.cfg.Identity.Key, k, body)
	e.metrics.receiptsSigned.Inc()
	return wire.EncodeReceiptHeader(&rc)
}

// cacheReceipt keeps a shard's receipt with its bytes in the memory cache,
// if body is exactly the cached copy (signing costs more than serving).
func (e *Edge) cacheReceipt(k content.ShardRef, body []byte, receipt string) {
	e.mu.Lock()
	h, ok := e.inv.held[k]
	if ok && len(h.hot) > 0 && len(body) == len(h.hot) && &h.hot[0] == &body[0] {
		h.receipt = receipt
	}
	e.mu.Unlock()
	if !ok {
		e.cacheLiveReceipt(k, body, receipt) // a live shard's (live.go)
	}
}

func (e *Edge) served(n int64) {
	e.bytesServed.Add(n)
	e.metrics.bytesServed.Add(float64(n))
}

// errNotHeld says the edge does not hold a shard.
var errNotHeld = errors.New("not in this edge's inventory")

// readShard returns the stored bytes of a held shard and marks it used.
// The bytes are shared with the memory cache: callers must not modify them.
func (e *Edge) readShard(k content.ShardRef) ([]byte, error) {
	b, _, err := e.readShardReceipt(k)
	return b, err
}

// readShardReceipt is readShard that also returns the cached receipt for
// the bytes ("" if none is cached yet).
func (e *Edge) readShardReceipt(k content.ShardRef) ([]byte, string, error) {
	for attempt := 0; ; attempt++ {
		e.mu.Lock()
		h, ok := e.inv.held[k]
		var name string
		if ok {
			e.inv.touchHeld(h)
			if h.hot != nil {
				e.hotOrder.MoveToFront(h.hotEl)
				b, rc := h.hot, h.receipt
				e.mu.Unlock()
				return b, rc, nil
			}
			name = e.path(shardFile(k, h.assigned))
		}
		e.mu.Unlock()
		if !ok {
			if b, rc, live := e.liveShard(k); live {
				return b, rc, nil
			}
			return nil, "", errNotHeld
		}
		b, err := os.ReadFile(name)
		// A directive may rename the file between the lookup and the
		// read; look it up once more.
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			continue
		}
		if err != nil {
			e.log.Warn("cannot read a cached shard", "err", err)
			return nil, "", errNotHeld
		}
		e.mu.Lock()
		if e.inv.held[k] == h && h.hot == nil { // not evicted or replaced meanwhile
			e.makeHotLocked(k, h, b)
		}
		e.mu.Unlock()
		return b, "", nil
	}
}

// makeHotLocked puts a shard's bytes in the memory cache, evicting the
// least recently served.
func (e *Edge) makeHotLocked(k content.ShardRef, h *heldShard, b []byte) {
	size := int64(len(b))
	if size > e.hotCap {
		return
	}
	for e.hotBytes+size > e.hotCap {
		oldest := e.hotOrder.Back()
		e.dropHotLocked(e.inv.held[oldest.Value.(content.ShardRef)])
	}
	h.hot, h.hotEl = b, e.hotOrder.PushFront(k)
	e.hotBytes += size
}

func (e *Edge) dropHotLocked(h *heldShard) {
	if h == nil || h.hot == nil {
		return
	}
	e.hotOrder.Remove(h.hotEl)
	e.hotBytes -= int64(len(h.hot))
	h.hot, h.hotEl, h.receipt = nil, nil, ""
}

// writeThrottled writes body within the upload cap: one limiter
// reservation per burst-sized chunk, shared by every request, so the sum of
// all responses stays within UploadCapBytes per second. It stops when the
// request context ends and returns the bytes written.
func (e *Edge) writeThrottled(ctx context.Context, w http.ResponseWriter, body []byte) (int64, error) {
	if e.upload == nil {
		n, err := w.Write(body)
		return int64(n), err
	}
	var written int64
	for len(body) > 0 {
		chunk := body[:min(len(body), e.burst)]
		if err := e.waitUpload(ctx, len(chunk)); err != nil {
			return written, err
		}
		// Pacing may keep a shard going past the server's total write
		// bound; each chunk gets its own (a reader that stops is cut off).
		httpserve.ExtendWriteDeadline(w, time.Now())
		n, err := w.Write(chunk)
		written += int64(n)
		if err != nil {
			return written, err
		}
		body = body[len(chunk):]
	}
	return written, nil
}

// waitUpload takes n tokens from the upload bucket, sleeping as needed.
func (e *Edge) waitUpload(ctx context.Context, n int) error {
	return e.sleepUpload(ctx.Done(), n, e.reserveUpload(n))
}

// reserveUpload takes n ≤ burst tokens from the upload bucket now and
// says how long to wait before sending them; a caller that does not wait
// it out gives them back (e.upload.giveBack).
func (e *Edge) reserveUpload(n int) time.Duration {
	return e.upload.take(time.Now(), n)
}

// sleepUpload waits out the delay of a reservation of n bytes, or gives
// the tokens back when done closes first.
func (e *Edge) sleepUpload(done <-chan struct{}, n int, delay time.Duration) error {
	if delay <= 0 {
		return nil
	}
	e.metrics.throttleWaits.Inc()
	e.metrics.throttleSeconds.Add(delay.Seconds())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-done:
		e.upload.giveBack(n)
		return context.Canceled
	}
}

// slowDripBytes is what a SlowDrip edge sends before stalling.
const slowDripBytes = 16

func (e *Edge) slowDrip(w http.ResponseWriter, ctx context.Context, body []byte) {
	n, _ := w.Write(body[:min(len(body), slowDripBytes)])
	e.served(int64(n))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	<-ctx.Done()
}

// corrupt applies the edge's fault to a copy of a stored message.
func (e *Edge) corrupt(k content.ShardRef, stored []byte) []byte {
	msg, err := content.DecodeShardMessage(append([]byte(nil), stored...))
	if err != nil || len(msg.Data) == 0 {
		return stored
	}
	switch e.cfg.Fault {
	case FlipBits:
		msg.Data[len(msg.Data)/2] ^= 0x10
	case Truncate:
		msg.Data = msg.Data[:len(msg.Data)/2]
	case WrongIndex:
		other := e.otherShard(k)
		if other != nil && string(other.Data) != string(msg.Data) {
			msg.Data, msg.Proof = other.Data, other.Proof
		} else {
			// No distinct shard of this segment held: forge one.
			msg.Data = append(msg.Data[1:], msg.Data[0]^0x01)
		}
	}
	return msg.Encode()
}

// otherShard returns another held shard of the same segment, if any.
func (e *Edge) otherShard(k content.ShardRef) *content.ShardMessage {
	e.mu.Lock()
	var name string
	for i := range content.MaxTotalShards {
		o := k.SegmentRef.Shard(i)
		if h, ok := e.inv.held[o]; ok && i != k.Shard {
			name = e.path(shardFile(o, h.assigned))
			break
		}
	}
	e.mu.Unlock()
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	msg, err := content.DecodeShardMessage(b)
	if err != nil {
		return nil
	}
	return msg
}
