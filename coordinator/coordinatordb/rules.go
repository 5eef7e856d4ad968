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
	ReasonBadLimitSignature Reason = "bad_limit_signature"  // no configured coordinator key signed the limit
	ReasonBadOrderSignature Reason = "bad_order_signature"  // serial mismatch or not signed by the limit's viewer
	ReasonWrongEdge         Reason = "wrong_edge"           // the limit names another edge than the submitter
	ReasonAmountOverLimit   Reason = "amount_over_limit"    // order amount > limit max bytes or MaxOrderBytes (or negative)
	ReasonZeroAmount        Reason = "zero_amount"          // nothing was delivered
	ReasonLimitExpired      Reason = "limit_expired"        // settled later than expiry + SettlementGrace
	ReasonUnknownVideo      Reason = "unknown_video"        // the store has no terms for the video
	ReasonNotEntitled       Reason = "not_entitled"         // viewer key bound to no account, or (paid video) to one not entitled
	ReasonSelfDealing       Reason = "self_dealing"         // the viewer key belongs to the account that runs the edge
	ReasonSerialReused      Reason = "serial_reused"        // the serial was already settled (any batch, any edge)
	ReasonBeyondPlayback    Reason = "beyond_playback_rate" // past the viewer account's budget for the video, over all its keys
)

// Reasons lists every rejection reason, in check order.
var Reasons = []Reason{ReasonBadLimitSignature, ReasonBadOrderSignature, ReasonWrongEdge, ReasonAmountOverLimit,
	ReasonZeroAmount, ReasonLimitExpired, ReasonUnknownVideo, ReasonNotEntitled, ReasonSelfDealing, ReasonSerialReused, ReasonBeyondPlayback}

// MaxBatchPairs bounds one batch, so one settlement transaction stays short.
const MaxBatchPairs = 10_000

// Bounds on every amount that moves points, chosen so that no sum the
// store computes can overflow int64 (SQLite turns an overflowing integer
// into a float, PostgreSQL raises an error; either broke balances before):
//
//   - MaxSupply bounds the points in circulation (minus the mint's balance).
//     Every posting from the mint is refused once it would pass it, so every
//     balance, and every partial sum over one account's entries, stays in
//     [-MaxSupply, MaxSupply]. It is 2^53-1, the largest integer a float64
//     (a JavaScript client's JSON number) holds exactly.
//   - MaxGrantPoints bounds one admin grant.
//   - MaxOrderBytes bounds one order (and so one settled pair): a batch of
//     MaxBatchPairs pairs sums to at most 2^54 bytes.
//   - MaxPlaybackBudgetBytes bounds a video's playback budget, so a usage
//     row plus one order stays below 2^54.
//   - MaxPointsPerMB bounds Config.PointsPerMB, so PointsFor(2^54 bytes)
//     stays below 2^63.
const (
	MaxSupply              int64 = 1<<53 - 1
	MaxGrantPoints         int64 = 1_000_000_000
	MaxOrderBytes          int64 = 1 << 40
	MaxPlaybackBudgetBytes int64 = 1 << 53
	MaxPointsPerMB         int64 = 100_000
)

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
	case p.Order.Amount > p.Limit.MaxBytes || p.Order.Amount < 0 || p.Order.Amount > MaxOrderBytes:
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
// bytes, rounding down. It is exact for bytes ≤ 2^54 (a whole batch) and
// pointsPerMB ≤ MaxPointsPerMB.
func PointsFor(bytes, pointsPerMB int64) int64 {
	// Split so neither product overflows: bytes/1e6·pointsPerMB ≤ 2^54/1e6·1e5
	// and (bytes mod 1e6)·pointsPerMB < 1e11.
	return bytes/1_000_000*pointsPerMB + bytes%1_000_000*pointsPerMB/1_000_000
}
