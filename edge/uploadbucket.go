package edge

import (
	"sync/atomic"
	"time"
)

// uploadBucket is the upload cap's token bucket, lock-free: every shard
// response takes its bytes from it, tens of thousands of times a second on
// both cores, so it is one compare-and-swap instead of rate.Limiter's mutex
// and allocated reservation (docs/PERFORMANCE.md, "the edge's per-request
// costs").
//
// It is the generic cell rate algorithm: the only state is tat, the instant
// (ns since origin) at which the bucket would be full again if nothing more
// were taken. At instant t the bucket holds burst − (max(tat, t) − t)·rate
// tokens, so taking n moves tat to max(tat, t) + n/rate, and the taker waits
// until tat − burst/rate (0 if that has passed). Invariant: over any window
// of length w starting when the bucket is full, the bytes whose wait ended
// within it are at most burst + rate·w, as with rate.Limiter.
//
// Sans-IO: callers hand it the instant; it never reads the clock.
type uploadBucket struct {
	origin     time.Time // instants are kept as ns since origin
	nsPerMByte int64     // cost of 10^6 bytes in ns, rounded up (precision at 100 Gbit/s)
	burstNs    int64     // the cost of a full bucket
	tat        atomic.Int64
}

// newUploadBucket is a full bucket of burst bytes refilled at bytesPerSecond
// (> 0); origin is any instant before the first take.
func newUploadBucket(bytesPerSecond int64, burst int, origin time.Time) *uploadBucket {
	b := &uploadBucket{origin: origin}
	b.nsPerMByte = (1e15 + bytesPerSecond - 1) / bytesPerSecond
	b.burstNs = b.cost(burst)
	b.tat.Store(-b.burstNs) // full at origin
	return b
}

// cost is how long the bucket takes to refill n bytes, rounded up.
func (b *uploadBucket) cost(n int) int64 {
	return (int64(n)*b.nsPerMByte + 1e6 - 1) / 1e6
}

// take removes n bytes' tokens at instant now and says how long the caller
// must wait before sending them (≤ 0: send now). It always succeeds: a
// caller that does not wait for its tokens must give them back.
func (b *uploadBucket) take(now time.Time, n int) time.Duration {
	t := int64(now.Sub(b.origin))
	c := b.cost(n)
	for {
		old := b.tat.Load()
		next := max(old, t) + c
		if b.tat.CompareAndSwap(old, next) {
			return time.Duration(next - b.burstNs - t)
		}
	}
}

// giveBack returns the tokens of n bytes taken but not sent (the client
// left while it waited). Tokens already refilled meanwhile are not
// returned twice: take counts from max(tat, now), so a bucket never holds
// more than burst.
func (b *uploadBucket) giveBack(n int) {
	b.tat.Add(-b.cost(n))
}
