package edge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// DefaultSettleInterval is how often due orders are settled.
const DefaultSettleInterval = 30 * time.Second

const (
	// persistInterval bounds how long a changed order book stays unsaved.
	persistInterval = time.Second
	// settleTimeout bounds one settlement POST (also at shutdown).
	settleTimeout = 5 * time.Second
	// maxOrderBody bounds a POST wire.PathOrders body.
	maxOrderBody = 16 << 10
	// ordersFile holds the unsettled orders in the cache directory.
	ordersFile = "orders.json"
)

// takeOrder checks the order headers of a shard request, if any, and keeps
// the order. It reports whether the request carried a valid limit (the
// bytes served count as paid for, if only in arrears).
// limitHdr and orderHdr are the request's HeaderOrderLimit and HeaderOrder
// values ("" if absent).
func (e *Edge) takeOrder(limitHdr, orderHdr string) bool {
	if limitHdr == "" {
		return false
	}
	var l wire.OrderLimit
	if err := wire.DecodeHeader(limitHdr, &l); err != nil {
		e.metrics.orders.WithLabelValues(string(orderMalformed)).Inc()
		return false
	}
	var o *wire.Order
	if orderHdr != "" {
		o = new(wire.Order)
		if err := wire.DecodeHeader(orderHdr, o); err != nil {
			e.metrics.orders.WithLabelValues(string(orderMalformed)).Inc()
			return false
		}
	}
	return e.offerOrder(&l, o).valid()
}

func (e *Edge) offerOrder(l *wire.OrderLimit, o *wire.Order) orderResult {
	e.ordersMu.Lock()
	res := e.orders.offer(l, o, e.cfg.Now())
	e.ordersMu.Unlock()
	e.metrics.orders.WithLabelValues(string(res)).Inc()
	if res == orderAccepted {
		e.persistSoon()
	}
	return res
}

// learnCoordinatorKey takes the limit-signing key coordinator c named in
// its registration answer. It never fails the session: a coordinator that
// names no key (an older version) or a malformed one leaves its limits
// unverifiable here, which costs this edge payment, not service.
func (e *Edge) learnCoordinatorKey(c int, resp wire.RegisterResponse) {
	k, err := hex.DecodeString(resp.CoordinatorKey)
	if err == nil && len(k) != ed25519.PublicKeySize {
		err = fmt.Errorf("%d bytes, want %d", len(k), ed25519.PublicKeySize)
	}
	if resp.CoordinatorKey == "" {
		err = errors.New("none given")
	}
	if err != nil {
		e.log.Warn("the coordinator named no usable order-limit key; limits it signs are refused until it does (upgrade it, or start the edge with its --coordinator-key)",
			"coordinator", e.coordinators[c].Base, "err", err)
		k = nil
	}
	e.ordersMu.Lock()
	e.orders.learnKey(c, k)
	e.ordersMu.Unlock()
}

// persistSoon wakes the orders loop to save the book.
func (e *Edge) persistSoon() {
	select {
	case e.ordersChanged <- struct{}{}:
	default:
	}
}

// servePostOrder takes a viewer's final order (wire.PathOrders).
func (e *Edge) servePostOrder(w http.ResponseWriter, r *http.Request) {
	if !wire.CheckJSONContentType(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOrderBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wire.WriteError(w, http.StatusRequestEntityTooLarge, "order body over %d bytes", maxOrderBody)
			return
		}
		wire.WriteError(w, http.StatusBadRequest, "reading the order body: %v", err)
		return
	}
	var p wire.SettlementPair
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		e.metrics.orders.WithLabelValues(string(orderMalformed)).Inc()
		wire.WriteError(w, http.StatusBadRequest, "malformed order: %v", err)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		e.metrics.orders.WithLabelValues(string(orderMalformed)).Inc()
		wire.WriteError(w, http.StatusBadRequest, "malformed order: trailing data after the object")
		return
	}
	res := e.offerOrder(&p.Limit, &p.Order)
	switch res {
	case orderAccepted, orderNotLarger, orderSettled:
		wire.WriteJSON(w, map[string]string{"result": string(res)})
	case orderTooManyPairs:
		wire.WriteError(w, http.StatusServiceUnavailable, "this edge holds too many unsettled orders; try later")
	case orderWrongEdge:
		wire.WriteError(w, http.StatusBadRequest, "the order limit is for edge %s, this is %s", p.Limit.Edge, e.ID())
	default:
		wire.WriteError(w, http.StatusBadRequest, "order refused: %s", res)
	}
}

// loadOrders restores the persisted book, if any.
func (e *Edge) loadOrders() error {
	b, err := os.ReadFile(e.path(ordersFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read unsettled orders: %w", err)
	}
	var s orderSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		// A torn file cannot happen (atomic rename); a corrupted one is
		// kept aside for an operator rather than silently lost.
		_ = os.Rename(e.path(ordersFile), e.path(ordersFile+".corrupt"))
		e.log.Error("unsettled orders file is corrupt; moved aside", "err", err)
		return nil
	}
	e.orders.restore(s)
	return nil
}

// saveOrders writes the book atomically (temp file, fsync, rename) if it
// changed since the last save.
func (e *Edge) saveOrders() error {
	e.ordersMu.Lock()
	if !e.orders.dirty {
		e.ordersMu.Unlock()
		return nil
	}
	b, err := json.Marshal(e.orders.snapshot())
	e.orders.dirty = false
	e.ordersMu.Unlock()
	if err == nil {
		err = e.writeFileAtomic(ordersFile, b)
	}
	if err != nil {
		e.ordersMu.Lock()
		e.orders.dirty = true
		e.ordersMu.Unlock()
		return fmt.Errorf("save unsettled orders: %w", err)
	}
	return nil
}

func (e *Edge) writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(e.path("tmp"), "orders-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), e.path(name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// settle submits due pairs (every pair when all is set) in batches until
// nothing is due or a submission fails; a failed batch stays in flight and
// is retried, with the same id, next time.
func (e *Edge) settle(ctx context.Context, all bool) error {
	for {
		e.ordersMu.Lock()
		batch := e.orders.nextBatch(e.cfg.Now(), all, e.settleRng)
		var b wire.SettlementBatch
		if batch != nil {
			b = *batch
		}
		e.ordersMu.Unlock()
		if batch == nil {
			return nil
		}
		if err := e.saveOrders(); err != nil { // the batch id survives a crash mid-POST
			e.log.Warn("cannot persist the settlement batch", "err", err)
		}
		sctx, cancel := context.WithTimeout(ctx, settleTimeout)
		res, err := e.cc.Settle(sctx, b)
		cancel()
		var apiErr *wire.APIError
		switch {
		case err == nil:
			e.metrics.settleBatches.WithLabelValues("ok").Inc()
			e.metrics.settlePairs.WithLabelValues("accepted").Add(float64(res.Accepted))
			for reason, n := range res.Rejected {
				e.metrics.settlePairs.WithLabelValues(reason).Add(float64(n))
			}
			e.log.Info("settled orders", "batch", b.ID, "pairs", len(b.Pairs), "accepted", res.Accepted,
				"rejected", res.Rejected, "bytes", res.SettledBytes, "points", res.CreditedPoint, "replayed", res.Replayed)
		case errors.As(err, &apiErr) && apiErr.Status/100 == 4 && apiErr.Status != http.StatusUnauthorized &&
			apiErr.Status != http.StatusForbidden && apiErr.Status != http.StatusTooManyRequests && apiErr.Status != http.StatusRequestTimeout:
			// The coordinator refused the batch as a whole: resending it
			// cannot help.
			e.metrics.settleBatches.WithLabelValues("refused").Inc()
			e.metrics.settlePairs.WithLabelValues("batch_refused").Add(float64(len(b.Pairs)))
			e.log.Warn("the coordinator refused a settlement batch; its orders are dropped", "batch", b.ID, "pairs", len(b.Pairs), "err", err)
		default:
			e.metrics.settleBatches.WithLabelValues("error").Inc()
			if wire.IsAuthError(err) {
				e.log.Warn("the coordinator refused this edge's API token; settlement retries (the edge needs the API token from binding it to an account)", "err", err)
			} else {
				e.log.Warn("settlement failed; retrying the same batch later", "batch", b.ID, "err", err)
			}
			return err
		}
		e.ordersMu.Lock()
		e.orders.answered(b.ID)
		e.ordersMu.Unlock()
		if err := e.saveOrders(); err != nil {
			e.log.Warn("cannot persist the order book", "err", err)
		}
	}
}

// ordersLoop persists the order book after changes and settles due orders
// every SettleInterval; when ctx ends it settles everything left and saves.
func (e *Edge) ordersLoop(ctx context.Context) {
	settleTick := time.NewTicker(e.cfg.SettleInterval)
	defer settleTick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
			_ = e.settle(sctx, true)
			cancel()
			if err := e.saveOrders(); err != nil {
				e.log.Error("unsettled orders not saved at shutdown", "err", err)
			}
			return
		case <-settleTick.C:
			_ = e.settle(ctx, false)
		case <-e.ordersChanged:
			if err := e.saveOrders(); err != nil {
				e.log.Warn("cannot persist the order book", "err", err)
			}
			// Coalesce a burst of orders into one write: wait before the
			// next one (the loop's ctx case handles a stop meanwhile).
			select {
			case <-ctx.Done():
			case <-time.After(persistInterval):
			}
		}
	}
}

// unsettled reports the serials holding an unsettled order and their bytes.
func (e *Edge) unsettled() (int, int64) {
	e.ordersMu.Lock()
	defer e.ordersMu.Unlock()
	return e.orders.unsettled()
}
