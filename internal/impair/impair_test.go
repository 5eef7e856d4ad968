package impair

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLinkLatencyBandwidthOrder(t *testing.T) {
	l := NewLink(Profile{Latency: 50 * time.Millisecond, Bandwidth: 1_000_000}, nil)
	// 100 kB at 1 MB/s: 100 ms to leave, 50 ms to cross.
	if got := l.Send(t0, 100_000); got != t0.Add(150*time.Millisecond) {
		t.Fatalf("first write arrives at +%v, want +150ms", got.Sub(t0))
	}
	// Sent at once after it, the next 10 kB queue behind the first.
	if got := l.Send(t0, 10_000); got != t0.Add(160*time.Millisecond) {
		t.Fatalf("queued write arrives at +%v, want +160ms", got.Sub(t0))
	}
	// After the link idles, only latency and serialisation count.
	if got := l.Send(t0.Add(time.Second), 0); got != t0.Add(time.Second+50*time.Millisecond) {
		t.Fatalf("idle link: arrival at +%v, want +1.05s", got.Sub(t0))
	}
}

func TestLinkJitterKeepsOrder(t *testing.T) {
	l := NewLink(Profile{Latency: 10 * time.Millisecond, Jitter: 40 * time.Millisecond}, rand.New(rand.NewPCG(3, 4)))
	var last time.Time
	spread := map[time.Duration]bool{}
	for i := range 200 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		at := l.Send(now, 100)
		if at.Before(last) {
			t.Fatalf("write %d arrives before the one before it", i)
		}
		if d := at.Sub(now); d < 10*time.Millisecond {
			t.Fatalf("write %d arrives %v after it was sent, below the latency", i, d)
		}
		spread[at.Sub(now).Round(10*time.Millisecond)] = true
		last = at
	}
	if len(spread) < 3 {
		t.Fatalf("jitter of 40ms gave only %d distinct delays (10ms buckets)", len(spread))
	}
}

func TestLinkLossDelaysByRetransmissions(t *testing.T) {
	rto := 100 * time.Millisecond
	allowed := map[time.Duration]bool{}
	for r, d := 0, time.Duration(0); r <= maxRetransmits; r++ {
		allowed[d] = true
		d += rto << r
	}
	l := NewLink(Profile{Latency: 5 * time.Millisecond, Loss: 0.3, RTO: rto}, rand.New(rand.NewPCG(5, 6)))
	late := 0
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Hour) // far apart: no FIFO carry-over
		extra := l.Send(now, 1000).Sub(now) - 5*time.Millisecond
		if !allowed[extra] {
			t.Fatalf("one-packet write %d is %v late, not a sum of doubling RTOs", i, extra)
		}
		if extra > 0 {
			late++
		}
	}
	if late < 250 || late > 350 {
		t.Fatalf("%d of 1000 packets were retransmitted at 30%% loss", late)
	}
	// Loss 1 still delivers, after the backoff's bound.
	all := NewLink(Profile{Loss: 1, RTO: rto}, nil)
	if got, want := all.Send(t0, 1).Sub(t0), rto*(1<<maxRetransmits-1); got != want {
		t.Fatalf("certain loss: %v late, want %v", got, want)
	}
}

// echo serves c in the bubble: it writes back whatever it reads.
func echo(c net.Conn) {
	defer c.Close()
	_, _ = io.Copy(c, c)
}

// A wrapped connection's round trip costs the two latencies, in fake time.
func TestConnRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		go echo(b)
		c := Wrap(a, Profile{Latency: 30 * time.Millisecond}, Profile{Latency: 20 * time.Millisecond}, 1)
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Write blocked for %v; it should queue", d)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("round trip took %v, want 50ms", d)
		}
	})
}

// A bandwidth cap on the way in paces a large response.
func TestConnBandwidthCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		payload := bytes.Repeat([]byte("x"), 200_000)
		go func() {
			defer b.Close()
			_, _ = b.Write(payload)
		}()
		c := Wrap(a, Profile{}, Profile{Latency: 10 * time.Millisecond, Bandwidth: 1_000_000}, 1)
		defer c.Close()
		start := time.Now()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		// 200 kB at 1 MB/s plus 10 ms; the EOF arrives with the last byte.
		if d := time.Since(start); d != 210*time.Millisecond {
			t.Fatalf("200 kB at 1 MB/s took %v, want 210ms", d)
		}
	})
}

func TestConnReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		go echo(b)
		c := Wrap(a, Profile{Latency: 100 * time.Millisecond}, Profile{}, 1)
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(40 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read before arrival past the deadline: %v, want ErrDeadlineExceeded", err)
		}
		if d := time.Since(start); d != 40*time.Millisecond {
			t.Fatalf("deadline hit after %v, want 40ms", d)
		}
		_ = c.SetReadDeadline(time.Time{})
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatalf("read after clearing the deadline: %v", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("byte arrived after %v, want 100ms", d)
		}
	})
}

// Close stops both goroutines even with bytes in flight, and later calls
// fail cleanly (synctest.Test fails if any goroutine is left).
func TestConnCloseStopsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		go echo(b)
		c := Wrap(a, Profile{Latency: time.Second}, Profile{Latency: time.Second}, 1)
		if _, err := c.Write([]byte("in flight")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after close succeeded")
		}
	})
}

// An http.Client over a Dialer pays the handshake and one round trip per
// request on a fresh connection, and only the round trip on a reused one.
func TestDialerHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })}
		ln := newPipeListener()
		go func() { _ = srv.Serve(ln) }()
		d := &Dialer{Up: Profile{Latency: 25 * time.Millisecond}, Down: Profile{Latency: 25 * time.Millisecond}, Dial: ln.dial}
		tr := &http.Transport{DialContext: d.DialContext}
		hc := &http.Client{Transport: tr}
		get := func() time.Duration {
			start := time.Now()
			resp, err := hc.Get("http://pipe/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok" {
				t.Fatalf("body %q", body)
			}
			return time.Since(start)
		}
		if d := get(); d != 100*time.Millisecond {
			t.Fatalf("first request took %v, want 100ms (handshake + request)", d)
		}
		if d := get(); d != 50*time.Millisecond {
			t.Fatalf("second request took %v, want 50ms (one round trip on the kept connection)", d)
		}
		tr.CloseIdleConnections()
		_ = srv.Shutdown(context.Background())
	})
}

// pipeListener hands net.Pipe ends to a server (real sockets do not work
// in fake time).
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
