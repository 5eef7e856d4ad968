//go:build linux

package httpserve

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawSyscallConns: on Linux, ListenHot serves every plain TCP connection
// through a rawSyscallConn.
const rawSyscallConns = true

// rawSyscallConn is a TCP connection whose reads and writes enter the
// kernel with syscall.RawSyscall, i.e. without telling the Go scheduler.
//
// Why: an edge or origin runs one P (cmd/swarmcast/procs.go). A plain
// net.Conn write enters the kernel with entersyscall; when the ~12 KB
// write of a shard lasts longer than a sysmon tick (20 µs: loopback and
// short links deliver to the receiver inside the call), sysmon retakes the
// only P and starts a second thread to run the network poller, and the
// first thread then has to get its P back: two thread wakeups and context
// switches per such response, and sysmon itself stays at its shortest tick
// (docs/PERFORMANCE.md, E16: two worker threads taking turns and ~950
// sysmon wakeups/s under bench serve). A raw syscall keeps the P for the
// call, which is what nginx's worker does.
//
// Safe because the socket is non-blocking (the net package's): a read or
// write never waits in the kernel, it returns EAGAIN, and the wait for
// readiness (and the deadlines fasthttp sets) happen in the poller through
// syscall.RawConn as for any net.Conn. The longest call is one copy of at
// most a write buffer (hotWriteBuffer) into the socket.
//
// Invariant: at most one Read and one Write at a time (fasthttp's serveConn
// reads and writes from the connection's goroutine only); a concurrent
// PeerGone peek and Close are fine (they use their own callbacks).
type rawSyscallConn struct {
	*net.TCPConn
	rc syscall.RawConn

	// The pending Read's buffer and result, for readFn (bound once: no
	// closure is allocated per call).
	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool

	// The pending Write's bytes still to send and result, for writeFn.
	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
}

// wrapRawSyscall returns c as a rawSyscallConn, or c itself when it is
// not a TCP connection whose socket can be reached.
func wrapRawSyscall(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawSyscallConn{TCPConn: tc, rc: rc}
	r.readFn, r.writeFn = r.readSome, r.writeAll
	return r
}

func (c *rawSyscallConn) readSome(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.rbuf))), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller
		default:
			c.rerrno = e
			return true
		}
	}
}

func (c *rawSyscallConn) writeAll(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.wbuf))), uintptr(len(c.wbuf)))
		switch e {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the socket buffer is full: wait in the poller
		default:
			c.werrno = e
			return true
		}
	}
	return true
}

// Read is net.Conn's Read: io.EOF when the peer closed its side.
func (c *rawSyscallConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerrno
	c.rbuf = nil
	switch {
	case err != nil: // closed, or the read deadline passed (a net.Error with Timeout)
		return 0, err
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write is net.Conn's Write: all of p, or an error.
func (c *rawSyscallConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werrno
	c.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

func (c *rawSyscallConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
