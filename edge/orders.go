package edge

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/rand"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Proof of delivery, edge side (after Storj's orders). Viewers send a
// coordinator-signed OrderLimit and their latest cumulative Order with
// shard requests (and the final order via wire.PathOrders); the edge keeps
// the largest valid order per serial and settles (limit, order) pairs with
// the coordinator.
//
// Policies, and why:
//   - Serve regardless. A request without a limit or with an invalid one is
//     still served (and its bytes counted as unpaid): refusing would punish
//     viewers for the coordinator's or network's hiccups, while a viewer that
//     never pays only gets less from edges in the long run, because edges are
//     paid for the bytes they serve to paying viewers and the coordinator
//     ranks edges by what they deliver.
//   - Without Config.CoordinatorKey the edge cannot check a limit's
//     signature: it checks everything else (edge, expiry, the viewer's
//     signature on the order) and leaves the coordinator's signature to
//     settlement, where a forged limit is rejected. The key is never taken
//     from a limit itself (that would trust what it should verify).
//   - The coordinator settles each serial once, so a serial is settled once
//     and only when its order can no longer grow: its limit has expired
//     (within the coordinator's settlement grace), its order has reached
//     the limit's MaxBytes, or the edge is shutting down. Not on the
//     viewer's final order: a coordinator reuses a limit across plays, so a
//     later play may still grow it.
//   - A batch is retried with the same id until the coordinator answers
//     (idempotent on the coordinator), and its pairs are then removed
//     whether accepted or rejected. Serials in a batch are remembered as
//     settled until their limit expires, so a late order cannot make them
//     settle twice.
//   - Everything unsettled (and the batch in flight) is persisted in the
//     cache directory, atomically, within persistInterval of a change and on
//     shutdown: a crash loses at most that much order growth.

// orderResult is what the edge did with an offered limit and order.
type orderResult string

const (
	orderAccepted     orderResult = "accepted"       // stored as the largest order for its serial
	orderNotLarger    orderResult = "not_larger"     // valid-looking, but no larger than the one held
	orderNoOrder      orderResult = "no_order"       // a limit without an order (the viewer's first request)
	orderSettled      orderResult = "settled"        // the serial is already settled or being settled
	orderWrongEdge    orderResult = "wrong_edge"     // the limit names another edge
	orderExpired      orderResult = "expired"        // the limit has expired
	orderBadLimit     orderResult = "bad_limit"      // bad coordinator signature, or conflicts with the held limit
	orderBadOrder     orderResult = "bad_order"      // serial mismatch or not signed by the limit's viewer
	orderOverLimit    orderResult = "over_limit"     // amount above the limit's MaxBytes, or not positive
	orderMalformed    orderResult = "malformed"      // a header that does not decode
	orderTooManyPairs orderResult = "too_many_pairs" // the book is full (maxUnsettledPairs)
)

// valid reports whether the offer was well formed (stored or merely not larger).
func (r orderResult) valid() bool {
	return r == orderAccepted || r == orderNotLarger || r == orderNoOrder || r == orderSettled
}

// maxUnsettledPairs bounds the book, so a flood of (valid) limits cannot
// exhaust memory; beyond it new serials are refused until a settlement.
const maxUnsettledPairs = 100_000

// maxBatchPairs bounds one settlement batch.
const maxBatchPairs = 1000

// orderBook is the edge's order state, free of I/O: the largest order per
// serial, the serials settled, and the batch in flight. Not safe for
// concurrent use; the Edge guards it with ordersMu.
type orderBook struct {
	edge      wire.NodeID
	coordKeys []ed25519.PublicKey // none: limits are stored unverified

	pairs   map[wire.Serial]*wire.SettlementPair // unsettled
	settled map[wire.Serial]int64                // serial → its limit's ExpiresUnixMs; pruned once expired
	pending *wire.SettlementBatch                // sent but not answered: retried with the same id
	dirty   bool                                 // changed since the last persist
}

func newOrderBook(edge wire.NodeID, coordKeys ...ed25519.PublicKey) *orderBook {
	coordKeys = slices.DeleteFunc(coordKeys, func(k ed25519.PublicKey) bool { return k == nil })
	return &orderBook{edge: edge, coordKeys: coordKeys, pairs: map[wire.Serial]*wire.SettlementPair{}, settled: map[wire.Serial]int64{}}
}

// limitUnverifiable reports whether the book has coordinator keys and none
// of them verifies l's signature.
func (b *orderBook) limitUnverifiable(l *wire.OrderLimit) bool {
	if len(b.coordKeys) == 0 {
		return false
	}
	for _, k := range b.coordKeys {
		if wire.VerifyOrderLimit(k, l) == nil {
			return false
		}
	}
	return true
}

// offer checks a limit and an optional order at now and keeps the order if
// it is the largest valid one for its serial.
func (b *orderBook) offer(l *wire.OrderLimit, o *wire.Order, now time.Time) orderResult {
	if l.Edge != b.edge {
		return orderWrongEdge
	}
	if now.UnixMilli() >= l.ExpiresUnixMs {
		return orderExpired
	}
	if _, ok := b.settled[l.Serial]; ok {
		return orderSettled
	}
	held := b.pairs[l.Serial]
	if o == nil {
		// Nothing to keep, but the request counts as paid only under a
		// genuine limit.
		if held != nil && !sameLimit(&held.Limit, l) || held == nil && b.limitUnverifiable(l) {
			return orderBadLimit
		}
		return orderNoOrder
	}
	if held != nil && o.Amount <= held.Order.Amount {
		return orderNotLarger // cannot improve anything: no need to verify
	}
	if held != nil && !sameLimit(&held.Limit, l) {
		return orderBadLimit // one serial, one limit: the held one was verified
	}
	if held == nil && b.limitUnverifiable(l) {
		return orderBadLimit
	}
	if wire.VerifyOrder(l, o) != nil {
		return orderBadOrder
	}
	if o.Amount <= 0 || o.Amount > l.MaxBytes {
		return orderOverLimit
	}
	if held == nil {
		if len(b.pairs) >= maxUnsettledPairs {
			return orderTooManyPairs
		}
		held = &wire.SettlementPair{Limit: *l}
		b.pairs[l.Serial] = held
	}
	held.Order = *o
	b.dirty = true
	return orderAccepted
}

func sameLimit(a, b *wire.OrderLimit) bool {
	return a.Serial == b.Serial && a.Edge == b.Edge && a.Viewer == b.Viewer && a.Video == b.Video &&
		a.MaxBytes == b.MaxBytes && a.ExpiresUnixMs == b.ExpiresUnixMs && string(a.Signature) == string(b.Signature)
}

// nextBatch returns the batch to submit at now: the one in flight if any
// (same id), else up to maxBatchPairs pairs that are due — every pair when
// all is set (shutdown), else those whose limit has expired or whose order
// has reached MaxBytes. nil when nothing is due. Pairs moved into a batch
// leave the book and their serials count as settled.
func (b *orderBook) nextBatch(now time.Time, all bool, rng *rand.Rand) *wire.SettlementBatch {
	b.pruneSettled(now)
	if b.pending != nil {
		return b.pending
	}
	var due []wire.SettlementPair
	for serial, p := range b.pairs {
		if len(due) == maxBatchPairs {
			break
		}
		if all || now.UnixMilli() >= p.Limit.ExpiresUnixMs || p.Order.Amount >= p.Limit.MaxBytes {
			due = append(due, *p)
			delete(b.pairs, serial)
			b.settled[serial] = p.Limit.ExpiresUnixMs
		}
	}
	if len(due) == 0 {
		return nil
	}
	var id [16]byte
	rng.Read(id[:])
	b.pending = &wire.SettlementBatch{ID: hex.EncodeToString(id[:]), Edge: b.edge, Pairs: due}
	b.dirty = true
	return b.pending
}

// answered drops the batch in flight: the coordinator answered it
// (accepted or rejected, pair by pair, or refused it as a whole).
func (b *orderBook) answered(id string) {
	if b.pending != nil && b.pending.ID == id {
		b.pending = nil
		b.dirty = true
	}
}

// pruneSettled forgets settled serials whose limit has expired: offer
// refuses an expired limit before it looks at settled.
func (b *orderBook) pruneSettled(now time.Time) {
	inFlight := map[wire.Serial]bool{}
	if b.pending != nil {
		for _, p := range b.pending.Pairs {
			inFlight[p.Limit.Serial] = true
		}
	}
	for s, exp := range b.settled {
		if now.UnixMilli() >= exp && !inFlight[s] {
			delete(b.settled, s)
			b.dirty = true
		}
	}
}

// unsettled reports the pairs held and the bytes their orders cover.
func (b *orderBook) unsettled() (pairs int, bytes int64) {
	for _, p := range b.pairs {
		bytes += p.Order.Amount
	}
	return len(b.pairs), bytes
}

// orderSnapshot is the persisted form of an orderBook.
type orderSnapshot struct {
	Pairs   []wire.SettlementPair `json:"pairs"`
	Settled map[string]int64      `json:"settled,omitempty"` // serial hex → expiry
	Pending *wire.SettlementBatch `json:"pending,omitempty"`
}

func (b *orderBook) snapshot() orderSnapshot {
	s := orderSnapshot{Settled: map[string]int64{}, Pending: b.pending}
	for _, p := range b.pairs {
		s.Pairs = append(s.Pairs, *p)
	}
	for serial, exp := range b.settled {
		s.Settled[serial.String()] = exp
	}
	return s
}

// restore loads a snapshot. Pairs for another edge (a cache directory
// moved between identities) are dropped.
func (b *orderBook) restore(s orderSnapshot) {
	for i := range s.Pairs {
		p := s.Pairs[i]
		if p.Limit.Edge == b.edge && p.Order.Serial == p.Limit.Serial {
			b.pairs[p.Limit.Serial] = &p
		}
	}
	for hx, exp := range s.Settled {
		if serial, err := wire.ParseSerial(hx); err == nil {
			b.settled[serial] = exp
		}
	}
	if s.Pending != nil && s.Pending.Edge == b.edge && s.Pending.ID != "" {
		b.pending = s.Pending
	}
}
