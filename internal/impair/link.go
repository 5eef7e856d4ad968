package impair

import (
	"math/rand/v2"
	"time"
)

// Defaults for the Profile fields left zero.
const (
	// DefaultRTO is Linux's minimum TCP retransmission timeout.
	DefaultRTO = 200 * time.Millisecond
	// DefaultMSS is the TCP payload of a 1500-byte Ethernet frame with
	// timestamps: loss is drawn per packet of this many bytes.
	DefaultMSS = 1448
	// maxRetransmits bounds the backoff of one packet (so Loss = 1 still
	// delivers, after 2^maxRetransmits-1 RTOs, instead of never).
	maxRetransmits = 6
)

// Profile is one direction of an emulated link. The zero Profile is a
// perfect link.
type Profile struct {
	// Latency is the one-way propagation delay; a round trip over two
	// Profiles of Latency L costs 2L.
	Latency time.Duration
	// Jitter adds a delay drawn uniformly from [0, Jitter) to each write;
	// delivery stays in order, so jitter only ever delays.
	Jitter time.Duration
	// Loss is the probability that a packet of MSS bytes is lost on each
	// transmission, 0 ≤ Loss ≤ 1. A lost packet arrives RTO later, then
	// 2·RTO later again, …, at most maxRetransmits times.
	Loss float64
	// RTO is the first retransmission timeout (default DefaultRTO).
	RTO time.Duration
	// Bandwidth caps the link in bytes per second (0: no cap): n bytes
	// take n/Bandwidth seconds to leave, after the bytes before them.
	Bandwidth int64
	// MSS is the packet size loss is drawn for (default DefaultMSS).
	MSS int
}

// RTT is the round trip of a link whose two directions are p and back.
func RTT(p, back Profile) time.Duration { return p.Latency + back.Latency }

// Link is the sans-IO model of one direction of a link: Send says when
// bytes sent at a given instant arrive. It is not safe for concurrent use
// (Conn serialises its calls).
type Link struct {
	p           Profile
	rng         *rand.Rand
	busyUntil   time.Time // when the sender finishes serialising what it was given
	lastArrival time.Time // arrival of the latest bytes: nothing arrives before it (FIFO)
}

// NewLink models one direction of p, drawing jitter and loss from rng
// (which may be nil when p has neither).
func NewLink(p Profile, rng *rand.Rand) *Link {
	if p.RTO <= 0 {
		p.RTO = DefaultRTO
	}
	if p.MSS <= 0 {
		p.MSS = DefaultMSS
	}
	p.Loss = min(max(p.Loss, 0), 1)
	if rng == nil && (p.Jitter > 0 || p.Loss > 0) {
		rng = rand.New(rand.NewPCG(0, 0))
	}
	return &Link{p: p, rng: rng}
}

// Send is n bytes handed to the link at now; it returns the instant their
// last byte arrives at the other end, never before an earlier Send's.
func (l *Link) Send(now time.Time, n int) time.Time {
	start := now
	if l.busyUntil.After(start) {
		start = l.busyUntil
	}
	sent := start
	if l.p.Bandwidth > 0 && n > 0 {
		sent = start.Add(time.Duration(float64(n) / float64(l.p.Bandwidth) * float64(time.Second)))
	}
	l.busyUntil = sent
	arrival := sent.Add(l.p.Latency)
	if l.p.Jitter > 0 {
		arrival = arrival.Add(time.Duration(l.rng.Int64N(int64(l.p.Jitter))))
	}
	if l.p.Loss > 0 {
		arrival = arrival.Add(l.lossDelay(max(1, (n+l.p.MSS-1)/l.p.MSS)))
	}
	if arrival.Before(l.lastArrival) {
		arrival = l.lastArrival
	}
	l.lastArrival = arrival
	return arrival
}

// lossDelay is the extra delay of the slowest of packets packets: a
// packet lost r times arrives (2^r - 1)·RTO late. Packets of one write
// are retransmitted side by side (as with SACK), so the write is as late
// as its unluckiest packet.
func (l *Link) lossDelay(packets int) time.Duration {
	var worst time.Duration
	for range packets {
		var d time.Duration
		rto := l.p.RTO
		for r := 0; r < maxRetransmits && l.rng.Float64() < l.p.Loss; r++ {
			d += rto
			rto *= 2
		}
		worst = max(worst, d)
	}
	return worst
}
