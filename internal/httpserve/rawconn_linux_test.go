//go:build linux

package httpserve

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPair returns a rawSyscallConn and the plain TCP connection at its
// other end, over loopback.
func rawPair(t *testing.T) (*rawSyscallConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r, ok := wrapRawSyscall(c).(*rawSyscallConn)
	if !ok {
		t.Fatalf("wrapRawSyscall(%T) did not wrap it", c)
	}
	t.Cleanup(func() { r.Close() })
	return r, peer
}

// A rawSyscallConn behaves as the net.Conn it wraps: bytes both ways,
// a timeout error when nothing arrived by the read deadline (fasthttp's
// 408 and idle cut rely on net.OpError's Timeout), writes larger than the
// socket buffers, io.EOF at the peer's FIN, the peer's reset as an error, and
// net.ErrClosed once closed.
func TestRawSyscallConnIsANetConn(t *testing.T) {
	r, peer := rawPair(t)
	// Nothing to read yet: the read finds EAGAIN, waits in the poller and
	// ends at its deadline.
	buf := make([]byte, 64)
	if err := r.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Read(buf)
	var ne *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v (%T), want a *net.OpError that is a timeout", err, err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	n, err := io.ReadAtLeast(r, buf, len("GET / HTTP/1.1\r\n\r\n"))
	if err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// Larger than the socket buffers: Write waits for the reader and
	// returns only when all of it was taken.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		got <- b
	}()
	if n, err := r.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write of %d bytes: %d, %v", len(big), n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(big))
	}

	peer.(*net.TCPConn).CloseWrite()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer's FIN: %d, %v, want 0, io.EOF", n, err)
	}

	_ = peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // a reset
	// Wait for the reset itself: poll with no events asked reports only
	// POLLERR / POLLHUP, which the RST sets (the FIN above left POLLIN).
	var perr error
	if err := r.rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd)}}
		var n int
		for range 100 { // the runtime's signals interrupt a poll: retry, bounded
			if n, perr = unix.Poll(fds, 10_000); perr != unix.EINTR { // ms
				break
			}
		}
		if perr == nil && (n == 0 || fds[0].Revents&(unix.POLLERR|unix.POLLHUP) == 0) {
			perr = errors.New("no POLLERR/POLLHUP within 10 s of the peer's reset")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatal(perr)
	}
	_, werr := r.Write(big[:4096])
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("writes to a reset peer: %v, want ECONNRESET or EPIPE", werr)
	}

	r.Close()
	if _, err := r.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := r.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}
