// Package impair emulates a slow network link in process, for benchmarks
// and emulations on one machine whose kernel has no netem: one-way latency
// (so a round trip costs twice it), jitter, loss modelled as the delay of a
// retransmission, and a bandwidth cap.
//
// The model is sans-IO: a Link is fed a time and a byte count and answers
// when those bytes arrive, from a seeded *rand.Rand, so it can drive a
// simulator as well as real sockets. Conn applies two Links (one per
// direction) to a real net.Conn; Dialer does so for every connection an
// http.Transport dials (Transport.DialContext = Dialer.DialContext) and
// charges the TCP handshake's round trip; Listener does so for a server's
// accepted connections. Impairing only the client side of a connection
// is enough: its writes are delayed on the way out and the bytes it reads
// on the way in.
//
// Approximations, on purpose: the link is a FIFO pipe (TCP delivers in
// order, so jitter never reorders and a late packet holds back what follows
// it); loss delays a packet by one retransmission timeout per loss, doubling
// like TCP's backoff, without modelling congestion-window collapse; and the
// bandwidth cap serialises bytes at the sender with no queue limit.
package impair
