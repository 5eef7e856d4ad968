package viewer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Proof of delivery, viewer side. Lookups carry one coordinator-signed
// OrderLimit per edge; with every shard request to such an edge the viewer
// sends the limit and a signed cumulative Order for the bytes it has
// received and verified from that edge under the limit's serial so far (pay
// as you go, one shard in arrears), and at the end of a play it hands each
// edge its final order so the last shard is paid too. Invariant: no order
// ever signs more than min(verified bytes received, limit.MaxBytes). The
// bytes counted are whole shard response bodies (ShardMessage encodings),
// which is what an edge counts as served.

// ErrNotEntitled marks a coordinator's refusal (401/403): the viewer's key
// or token is not bound to an account entitled to the video. Retrying does
// not help; unlocking the video does.
var ErrNotEntitled = errors.New("not entitled")

// notEntitled wraps an auth refusal of the coordinator for video.
func notEntitled(video content.VideoID, err error) error {
	msg := err.Error()
	var ae *wire.APIError
	if errors.As(err, &ae) {
		msg = ae.Message
	}
	return fmt.Errorf("%w: unlock video %s first (unlocking spends the account's points; coordinator said: %s)", ErrNotEntitled, video, msg)
}

// edgeVideo names the limit a viewer uses with one edge for one video.
type edgeVideo struct {
	edge  wire.NodeID
	video content.VideoID
}

// serialState is what the viewer owes one edge under one limit.
type serialState struct {
	limit     wire.OrderLimit
	limitHdr  string // EncodeHeader(limit), computed once
	addr      string // the edge's base URL, for the final order
	received  int64  // verified response bytes received under this serial (may exceed MaxBytes)
	sent      int64  // largest amount signed and handed to the edge
	signed    int64  // amount of orderHdr
	orderHdr  string // EncodeHeader of the latest signed order, reused while the amount is unchanged
	finalized int64  // largest amount the edge acknowledged via PathOrders
}

// owed is what an order may sign now: never more than received, nor MaxBytes.
func (s *serialState) owed() int64 { return max(0, min(s.received, s.limit.MaxBytes)) }

func (s *serialState) expired(now time.Time) bool {
	return now.UnixMilli() >= s.limit.ExpiresUnixMs
}

// payer keeps the viewer's limits and orders. It is safe for concurrent use.
type payer struct {
	key ed25519.PrivateKey
	id  wire.NodeID

	mu      sync.Mutex
	current map[edgeVideo]*serialState
	serials map[wire.Serial]*serialState
}

func newPayer(key ed25519.PrivateKey, id wire.NodeID) *payer {
	return &payer{key: key, id: id, current: map[edgeVideo]*serialState{}, serials: map[wire.Serial]*serialState{}}
}

// addLimits takes the limits of a lookup for video. A limit for another
// viewer or video, or already expired, is ignored. For each edge the newest
// unexpired limit (latest expiry) becomes current.
func (p *payer) addLimits(video content.VideoID, limits []wire.OrderLimit, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range limits {
		if l.Viewer != p.id || l.Video != video || l.Edge == "" || l.MaxBytes <= 0 || now.UnixMilli() >= l.ExpiresUnixMs {
			continue
		}
		s, ok := p.serials[l.Serial]
		if !ok {
			s = &serialState{limit: l, limitHdr: wire.EncodeHeader(l)}
			p.serials[l.Serial] = s
		}
		ev := edgeVideo{l.Edge, video}
		cur := p.current[ev]
		if cur == nil || cur.expired(now) || cur.received >= cur.limit.MaxBytes || s.limit.ExpiresUnixMs > cur.limit.ExpiresUnixMs {
			p.current[ev] = s
		}
	}
	p.pruneLocked(now)
}

// pruneLocked forgets expired limits that owe nothing more.
func (p *payer) pruneLocked(now time.Time) {
	for serial, s := range p.serials {
		if s.expired(now) && s.owed() <= s.finalized {
			delete(p.serials, serial)
			for ev, cur := range p.current {
				if cur == s {
					delete(p.current, ev)
				}
			}
		}
	}
}

// orderGranularity is how many more bytes a new signed order must cover
// than the previous one sent with shard requests.
const orderGranularity = 256 << 10

// forRequest returns the headers for a shard request to edge for video and
// the serial to credit when the shard verifies; ok is false when the viewer
// holds no usable limit for that edge (the request goes unpaid).
func (p *payer) forRequest(edge wire.NodeID, video content.VideoID, addr string, now time.Time) (limitHdr, orderHdr string, serial wire.Serial, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.current[edgeVideo{edge, video}]
	if s == nil || s.expired(now) {
		return "", "", serial, false
	}
	s.addr = addr
	if amount := s.owed(); amount > 0 {
		// Sign again only every orderGranularity bytes: the edge verifies
		// an ed25519 signature per new order, which per small shard would
		// cost it more CPU than serving. The unsigned tail is covered by
		// the final order at the end of the play.
		if s.orderHdr == "" || amount-s.signed >= orderGranularity || amount == s.limit.MaxBytes && amount != s.signed {
			o := wire.Order{Serial: s.limit.Serial, Amount: amount}
			wire.SignOrder(p.key, &o)
			s.signed, s.orderHdr = amount, wire.EncodeHeader(o)
		}
		s.sent = max(s.sent, s.signed)
		orderHdr = s.orderHdr
	}
	return s.limitHdr, orderHdr, s.limit.Serial, true
}

// credit adds n verified bytes received under serial.
func (p *payer) credit(serial wire.Serial, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.serials[serial]; s != nil {
		s.received += n
	}
}

// finalOrder is a final order to hand to one edge.
type finalOrder struct {
	addr string
	pair wire.SettlementPair
}

// finals signs, for every unexpired serial whose owed amount the edge has
// not acknowledged, the final order.
func (p *payer) finals(now time.Time) []finalOrder {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []finalOrder
	for _, s := range p.serials {
		amount := s.owed()
		if amount <= s.finalized || s.addr == "" || s.expired(now) {
			continue
		}
		o := wire.Order{Serial: s.limit.Serial, Amount: amount}
		wire.SignOrder(p.key, &o)
		s.sent = max(s.sent, amount)
		out = append(out, finalOrder{addr: s.addr, pair: wire.SettlementPair{Limit: s.limit, Order: o}})
	}
	return out
}

// finalized records that the edge acknowledged amount under serial.
func (p *payer) finalizedAt(serial wire.Serial, amount int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.serials[serial]; s != nil {
		s.finalized = max(s.finalized, amount)
	}
}

// finalOrderTimeout bounds handing the final orders over at the end of a play.
const finalOrderTimeout = 5 * time.Second

// sendFinalOrders posts each edge its final order, so the last shard of a
// play is paid. Failures are logged: an edge that missed it still holds the
// previous order, one shard short.
func (v *Viewer) sendFinalOrders(ctx context.Context) {
	finals := v.pay.finals(v.cfg.Now())
	if len(finals) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalOrderTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range finals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := wire.SendFinalOrder(ctx, v.hc, f.addr, f.pair)
			if err != nil {
				v.met.finalOrders.WithLabelValues("error").Inc()
				v.log.Warn("could not hand an edge its final order", "edge", f.pair.Limit.Edge, "bytes", f.pair.Order.Amount, "err", err)
				return
			}
			v.met.finalOrders.WithLabelValues("ok").Inc()
			v.pay.finalizedAt(f.pair.Order.Serial, f.pair.Order.Amount)
		}()
	}
	wg.Wait()
}
