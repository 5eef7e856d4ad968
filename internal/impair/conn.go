package impair

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on the bytes a Conn holds in flight in each direction, standing
// in for the kernel's socket buffers: a writer blocks beyond them, and a
// reader that stops reading stops the underlying connection too.
const (
	maxQueuedWrite = 4 << 20
	readChunk      = 32 << 10
	readQueue      = 64 // chunks of at most readChunk bytes
)

// chunk is bytes in transit and the instant they arrive.
type chunk struct {
	at   time.Time
	data []byte
	err  error // the underlying read's error after data (read side only)
}

// Conn is a net.Conn whose writes reach the peer over the out link and
// whose reads see the peer's bytes over the in link. It owns two
// goroutines, stopped by Close: one writes queued bytes to the underlying
// connection when they are due, one reads from it and stamps arrivals.
type Conn struct {
	net.Conn // the underlying connection: LocalAddr, RemoteAddr

	mu       sync.Mutex
	out, in  *Link
	writeQ   []chunk
	queued   int           // bytes in writeQ
	wake     chan struct{} // signals the writer goroutine (capacity 1)
	drained  *sync.Cond    // signalled when writeQ shrinks
	writeErr error         // the underlying write's first error
	rdl, wdl time.Time     // read and write deadlines
	dlChange chan struct{} // closed and replaced when a deadline changes

	readMu  sync.Mutex // serialises Reads: they share pending
	readQ   chan chunk
	pending chunk // the head chunk, partly consumed by Read
	readErr error // sticky: the underlying read's error once its bytes are consumed

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
	closed    atomic.Bool
}

// Wrap impairs c: bytes written to the result reach c's peer as out
// says, bytes c's peer sends are read as in says. seed seeds the links'
// jitter and loss.
func Wrap(c net.Conn, out, in Profile, seed uint64) *Conn {
	w := &Conn{
		Conn:     c,
		out:      NewLink(out, rand.New(rand.NewPCG(seed, 1))),
		in:       NewLink(in, rand.New(rand.NewPCG(seed, 2))),
		wake:     make(chan struct{}, 1),
		dlChange: make(chan struct{}),
		readQ:    make(chan chunk, readQueue),
		done:     make(chan struct{}),
	}
	w.drained = sync.NewCond(&w.mu)
	w.wg.Add(2)
	go w.writeLoop()
	go w.readLoop()
	return w
}

// Write queues b to arrive at the peer when the out link says, blocking
// only while maxQueuedWrite bytes are already in flight.
func (w *Conn) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.queued > 0 && w.queued+len(b) > maxQueuedWrite {
		if err := w.writeBlockedErr(); err != nil {
			return 0, err
		}
		w.waitDrainedLocked()
	}
	if err := w.writeBlockedErr(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	w.writeQ = append(w.writeQ, chunk{at: w.out.Send(time.Now(), len(b)), data: append([]byte(nil), b...)})
	w.queued += len(b)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// writeBlockedErr is why a Write cannot proceed (mu held), or nil.
func (w *Conn) writeBlockedErr() error {
	switch {
	case w.closed.Load():
		return net.ErrClosed
	case w.writeErr != nil:
		return w.writeErr
	case !w.wdl.IsZero() && !time.Now().Before(w.wdl):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// waitDrainedLocked waits (mu held) until the queue shrinks, the conn
// closes or the write deadline passes.
func (w *Conn) waitDrainedLocked() {
	if w.wdl.IsZero() {
		w.drained.Wait()
		return
	}
	// sync.Cond has no timeout: a timer broadcasts at the deadline.
	t := time.AfterFunc(time.Until(w.wdl), func() {
		w.mu.Lock()
		w.drained.Broadcast()
		w.mu.Unlock()
	})
	w.drained.Wait()
	t.Stop()
}

// writeLoop writes each queued chunk to the underlying connection once due.
func (w *Conn) writeLoop() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.writeQ) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-w.done:
				return
			}
		}
		head := w.writeQ[0]
		w.mu.Unlock()
		if !sleepUntil(head.at, w.done) {
			return
		}
		_, err := w.Conn.Write(head.data)
		w.mu.Lock()
		w.writeQ = w.writeQ[1:]
		w.queued -= len(head.data)
		if err != nil && w.writeErr == nil {
			w.writeErr = err
		}
		w.drained.Broadcast()
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// readLoop reads the underlying connection, stamping each read with its
// arrival over the in link.
func (w *Conn) readLoop() {
	defer w.wg.Done()
	defer close(w.readQ)
	for {
		buf := make([]byte, readChunk)
		n, err := w.Conn.Read(buf)
		w.mu.Lock()
		at := w.in.Send(time.Now(), n)
		w.mu.Unlock()
		select {
		case w.readQ <- chunk{at: at, data: buf[:n], err: err}:
		case <-w.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns bytes that have arrived over the in link, waiting for them
// until the read deadline.
func (w *Conn) Read(b []byte) (int, error) {
	w.readMu.Lock()
	defer w.readMu.Unlock()
	for {
		if len(w.pending.data) == 0 && w.pending.err == nil {
			if w.readErr != nil {
				return 0, w.readErr
			}
			c, err := w.nextChunk()
			if err != nil {
				return 0, err
			}
			w.pending = c
		}
		if err := w.waitArrival(w.pending.at); err != nil {
			return 0, err
		}
		if len(w.pending.data) == 0 {
			w.readErr, w.pending.err = w.pending.err, nil
			continue
		}
		n := copy(b, w.pending.data)
		w.pending.data = w.pending.data[n:]
		return n, nil
	}
}

// nextChunk takes the next chunk from the read goroutine.
func (w *Conn) nextChunk() (chunk, error) {
	for {
		dl, changed := w.readDeadline()
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return chunk{}, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		c, ok, err := w.receive(timeout, changed)
		if t != nil {
			t.Stop()
		}
		if err != nil || ok {
			return c, err
		}
	}
}

// receive waits for the next chunk; ok is false when the deadline changed.
func (w *Conn) receive(timeout <-chan time.Time, changed <-chan struct{}) (c chunk, ok bool, err error) {
	select {
	case c, open := <-w.readQ:
		if !open {
			return chunk{}, true, io.EOF
		}
		return c, true, nil
	case <-w.done:
		return chunk{}, true, net.ErrClosed
	case <-timeout:
		return chunk{}, true, os.ErrDeadlineExceeded
	case <-changed:
		return chunk{}, false, nil
	}
}

// waitArrival waits until at, the close, or the read deadline.
func (w *Conn) waitArrival(at time.Time) error {
	for {
		dl, changed := w.readDeadline()
		wait := time.Until(at)
		if wait <= 0 {
			return nil
		}
		if !dl.IsZero() && dl.Before(at) {
			if time.Until(dl) <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = time.Until(dl)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-w.done:
			t.Stop()
			return net.ErrClosed
		case <-changed:
			t.Stop()
		}
	}
}

func (w *Conn) readDeadline() (time.Time, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rdl, w.dlChange
}

// SetDeadline sets both deadlines. They bound this Conn's waits; the
// underlying connection keeps none (its goroutines read and write it).
func (w *Conn) SetDeadline(t time.Time) error {
	w.setDeadlines(&t, &t)
	return nil
}

// SetReadDeadline bounds Read's wait for arrivals.
func (w *Conn) SetReadDeadline(t time.Time) error {
	w.setDeadlines(&t, nil)
	return nil
}

// SetWriteDeadline bounds Write's wait for queue space.
func (w *Conn) SetWriteDeadline(t time.Time) error {
	w.setDeadlines(nil, &t)
	return nil
}

func (w *Conn) setDeadlines(read, write *time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if read != nil {
		w.rdl = *read
	}
	if write != nil {
		w.wdl = *write
		w.drained.Broadcast()
	}
	close(w.dlChange)
	w.dlChange = make(chan struct{})
}

// Close closes the underlying connection (bytes still in flight are
// dropped, as a reset would) and stops the Conn's goroutines.
func (w *Conn) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.done)
		w.closeErr = w.Conn.Close()
		w.mu.Lock()
		w.drained.Broadcast()
		w.mu.Unlock()
		w.wg.Wait()
	})
	return w.closeErr
}

// sleepUntil waits until t or until done closes; it reports whether t came.
func sleepUntil(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

// Dialer dials impaired connections: Up is the link from the dialer to the
// server, Down the way back. Every connection costs one round trip before
// DialContext returns (the TCP handshake's SYN and SYN-ACK).
type Dialer struct {
	Up, Down Profile
	// Dial makes the underlying connection (default a net.Dialer's).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Seed seeds connection i's links with Seed+i.
	Seed uint64

	next atomic.Uint64
}

// DialContext is for http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(RTT(d.Up, d.Down))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		_ = c.Close()
		return nil, ctx.Err()
	}
	return Wrap(c, d.Up, d.Down, d.Seed+d.next.Add(1)-1), nil
}

// Listener impairs every accepted connection: Out is the link from the
// server to the client, In the way in.
type Listener struct {
	net.Listener
	Out, In Profile
	Seed    uint64

	next atomic.Uint64
}

// Accept wraps the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c, l.Out, l.In, l.Seed+l.next.Add(1)-1), nil
}
