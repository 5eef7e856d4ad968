package coordinatordb

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Reason is why a settlement pair was rejected; "" means accepted.
type Reason string

// Rejection reasons, each counted per batch (see RejectionCounts).
const (
	Accepted                Reason = ""
	ReasonBadLimitSignature Reason = "bad_limit_signature" // no configured coordinator key signed the limit
	ReasonBadOrderSignature Reason = "bad_order_signature" // serial mismatch or not signed by the limit's viewer
	ReasonWrongEdge         Reason = "wrong_edge"          // the limit names another edge than the submitter
	ReasonAmountOverLimit   Reason = "amount_over_limit"   // order amount > limit max bytes (or negative)
	ReasonZeroAmount        Reason = "zero_amount"         // nothing was delivered
	ReasonLimitExpired      Reason = "limit_expired"       // settled later than expiry + SettlementGrace
	ReasonUnknownVideo      Reason = "unknown_video"       // the store has no terms for the video
	ReasonNotEntitled       Reason = "not_entitled"        // paid video, viewer key not bound to an entitled account
	ReasonSerialReused      Reason = "serial_reused"       // the serial was already settled (any batch, any edge)
	ReasonBeyondPlayback    Reason = "beyond_playback_rate"
)

// Reasons lists every rejection reason, in check order.
var Reasons = []Reason{ReasonBadLimitSignature, ReasonBadOrderSignature, ReasonWrongEdge, ReasonAmountOverLimit,
	ReasonZeroAmount, ReasonLimitExpired, ReasonUnknownVideo, ReasonNotEntitled, ReasonSerialReused, ReasonBeyondPlayback}

// MaxBatchPairs bounds one batch, so one settlement transaction stays short.
const MaxBatchPairs = 10_000

// CheckPair applies the stateless settlement rules to one pair submitted by
// edge at now: signatures, edge, amount, expiry. It is pure; the stateful
// rules (serial reuse, entitlement, playback budget) run in Settle.
func CheckPair(p *wire.SettlementPair, edge wire.NodeID, coordinatorKeys []ed25519.PublicKey, now time.Time, grace time.Duration) Reason {
	signed := false
	for _, k := range coordinatorKeys {
		if wire.VerifyOrderLimit(k, &p.Limit) == nil {
			signed = true
			break
		}
	}
	switch {
	case !signed:
		return ReasonBadLimitSignature
	case wire.VerifyOrder(&p.Limit, &p.Order) != nil:
		return ReasonBadOrderSignature
	case p.Limit.Edge != edge:
		return ReasonWrongEdge
	case p.Order.Amount > p.Limit.MaxBytes || p.Order.Amount < 0:
		return ReasonAmountOverLimit
	case p.Order.Amount == 0:
		return ReasonZeroAmount
	case now.UnixMilli() > p.Limit.ExpiresUnixMs+grace.Milliseconds():
		return ReasonLimitExpired
	}
	return Accepted
}

// ValidateBatch checks a batch's framing before any signature work.
func ValidateBatch(b *wire.SettlementBatch) error {
	if len(b.ID) == 0 || len(b.ID) > 128 {
		return fmt.Errorf("settlement batch id: want 1 to 128 characters, got %d", len(b.ID))
	}
	for i, c := range []byte(b.ID) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("settlement batch id: character %q at position %d; use only letters, digits, '-', '_' and '.'", c, i+1)
		}
	}
	if len(b.Edge) != 2*ed25519.PublicKeySize {
		return fmt.Errorf("settlement batch edge %q: want a %d-hex-digit node id", b.Edge, 2*ed25519.PublicKeySize)
	}
	if len(b.Pairs) > MaxBatchPairs {
		return fmt.Errorf("settlement batch has %d pairs; at most %d per batch", len(b.Pairs), MaxBatchPairs)
	}
	return nil
}

// PointsFor converts settled bytes to points at pointsPerMB per 1,000,000
// bytes, rounding down.
func PointsFor(bytes, pointsPerMB int64) int64 {
	// bytes ≤ 2^63/pointsPerMB in practice; split to avoid overflow anyway.
	return bytes/1_000_000*pointsPerMB + bytes%1_000_000*pointsPerMB/1_000_000
}
