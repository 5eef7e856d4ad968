//go:build unix

package httpserve

import (
	"errors"
	"net"
	"syscall"
)

// peerGone peeks at c's socket without blocking or consuming anything:
// a read of 0 bytes is the peer's FIN, an error other than "nothing to
// read yet" a reset. False when it cannot tell (not a socket).
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
		return true // never wait for readability
	})
	return gone
}
