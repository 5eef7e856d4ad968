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
//   - Every limit's signature is checked before anything of it is kept:
//     against the keys of the coordinators this edge registered with (each
//     names its key in wire.RegisterResponse) and any configured
//     (Config.CoordinatorKey(s)). Until one is known, every limit is
//     refused as unverifiable (the bytes are still served, unpaid): an
//     outsider's made-up limits never take memory or disk. The key is never
//     taken from a limit itself (that would trust what it should verify).
//   - A genuine limit can still come from a hostile viewer: one viewer key
//     holds at most maxPairsPerViewer unsettled serials here, and the book
//     at most maxUnsettledPairs, so no viewer can fill it for the others.
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
	orderUnverifiable orderResult = "unverifiable"   // no coordinator key known yet to check the limit with
	orderBadOrder     orderResult = "bad_order"      // serial mismatch or not signed by the limit's viewer
	orderOverLimit    orderResult = "over_limit"     // amount above the limit's MaxBytes, or not positive
	orderMalformed    orderResult = "malformed"      // a header that does not decode
	orderTooManyPairs orderResult = "too_many_pairs" // the book is full (maxUnsettledPairs), or the viewer's share of it (maxPairsPerViewer)
)

// valid reports whether the offer was well formed (stored or merely not larger).
func (r orderResult) valid() bool {
	return r == orderAccepted || r == orderNotLarger || r == orderNoOrder || r == orderSettled
}

// maxUnsettledPairs bounds the book, so a flood of genuine limits cannot
// exhaust memory; beyond it new serials are refused until a settlement. A
// pair is about 700 bytes in memory and in orders.json, so the book stays
// under ~20 MB. An edge serving 25,000 distinct (viewer, video) plays within
// one limit lifetime (15 min) is far beyond any home uplink.
const maxUnsettledPairs = 25_000

// maxPairsPerViewer bounds the unsettled serials of one viewer key. A
// coordinator issues a viewer one limit per (video, edge) and reuses it for
// 4/5 of its life, so an honest player holds about two per video it watched
// here in the last 15 minutes.
const maxPairsPerViewer = 256

// maxBatchPairs bounds one settlement batch.
const maxBatchPairs = 1000

// orderBook is the edge's order state, free of I/O: the largest order per
// serial, the serials settled, and the batch in flight. Not safe for
// concurrent use; the Edge guards it with ordersMu.
type orderBook struct {
	edge wire.NodeID
	// configured are the keys the operator gave; learnt[c] is the key
	// coordinator c named when this edge last registered with it (nil until
	// then). A limit is genuine if any of them verifies it; with none, no
	// limit is.
	configured []ed25519.PublicKey
	learnt     []ed25519.PublicKey

	pairs    map[wire.Serial]*wire.SettlementPair // unsettled
	byViewer map[wire.NodeID]int                  // unsettled pairs per viewer key; no zero entries
	settled  map[wire.Serial]int64                // serial → its limit's ExpiresUnixMs; pruned once expired
	pending  *wire.SettlementBatch                // sent but not answered: retried with the same id
	dirty    bool                                 // changed since the last persist
}

func newOrderBook(edge wire.NodeID, coordKeys ...ed25519.PublicKey) *orderBook {
	coordKeys = slices.DeleteFunc(coordKeys, func(k ed25519.PublicKey) bool { return k == nil })
	return &orderBook{edge: edge, configured: coordKeys, pairs: map[wire.Serial]*wire.SettlementPair{},
		byViewer: map[wire.NodeID]int{}, settled: map[wire.Serial]int64{}}
}

// learnKey records the key coordinator c (index into the edge's
// coordinator list) signs limits with, replacing what it named before.
func (b *orderBook) learnKey(c int, k ed25519.PublicKey) {
	if c >= len(b.learnt) {
		b.learnt = append(b.learnt, make([]ed25519.PublicKey, c+1-len(b.learnt))...)
	}
	b.learnt[c] = k
}

// hasKeys reports whether any coordinator key is known.
func (b *orderBook) hasKeys() bool {
	return len(b.configured) > 0 || slices.ContainsFunc(b.learnt, func(k ed25519.PublicKey) bool { return k != nil })
}

// checkLimit verifies l's coordinator signature against every known key:
// orderUnverifiable if none is known, orderBadLimit if none verifies it,
// "" if one does.
func (b *orderBook) checkLimit(l *wire.OrderLimit) orderResult {
	if !b.hasKeys() {
		return orderUnverifiable
	}
	for _, keys := range [][]ed25519.PublicKey{b.configured, b.learnt} {
		for _, k := range keys {
			if k != nil && wire.VerifyOrderLimit(k, l) == nil {
				return ""
			}
		}
	}
	return orderBadLimit
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
		if held != nil && !sameLimit(&held.Limit, l) {
			return orderBadLimit
		}
		if held == nil {
			if res := b.checkLimit(l); res != "" {
				return res
			}
		}
		return orderNoOrder
	}
	if held != nil && o.Amount <= held.Order.Amount {
		return orderNotLarger // cannot improve anything: no need to verify
	}
	if held != nil && !sameLimit(&held.Limit, l) {
		return orderBadLimit // one serial, one limit: the held one was verified
	}
	if held == nil {
		// Cheap refusals first: a full book or viewer share costs no
		// signature check.
		if len(b.pairs) >= maxUnsettledPairs || b.byViewer[l.Viewer] >= maxPairsPerViewer {
			return orderTooManyPairs
		}
		if res := b.checkLimit(l); res != "" {
			return res
		}
	}
	if wire.VerifyOrder(l, o) != nil {
		return orderBadOrder
	}
	if o.Amount <= 0 || o.Amount > l.MaxBytes {
		return orderOverLimit
	}
	if held == nil {
		held = &wire.SettlementPair{Limit: *l}
		b.addPair(held)
	}
	held.Order = *o
	b.dirty = true
	return orderAccepted
}

// addPair and removePair keep pairs and byViewer in step.
func (b *orderBook) addPair(p *wire.SettlementPair) {
	b.pairs[p.Limit.Serial] = p
	b.byViewer[p.Limit.Viewer]++
}

func (b *orderBook) removePair(serial wire.Serial) {
	p, ok := b.pairs[serial]
	if !ok {
		return
	}
	delete(b.pairs, serial)
	if b.byViewer[p.Limit.Viewer]--; b.byViewer[p.Limit.Viewer] <= 0 {
		delete(b.byViewer, p.Limit.Viewer)
	}
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
			b.removePair(serial)
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
// moved between identities), pairs no configured key verifies (when keys
// are configured; learnt keys come only with registration, later) and
// pairs beyond the book's bounds (a file from an older version) are
// dropped; the coordinator checks every limit again at settlement.
func (b *orderBook) restore(s orderSnapshot) {
	for i := range s.Pairs {
		p := s.Pairs[i]
		if p.Limit.Edge != b.edge || p.Order.Serial != p.Limit.Serial || b.pairs[p.Limit.Serial] != nil {
			continue
		}
		if len(b.pairs) >= maxUnsettledPairs || b.byViewer[p.Limit.Viewer] >= maxPairsPerViewer {
			continue
		}
		if len(b.configured) > 0 && b.checkLimit(&p.Limit) != "" {
			continue
		}
		b.addPair(&p)
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
