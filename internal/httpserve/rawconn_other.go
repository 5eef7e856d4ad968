//go:build !linux

package httpserve

import "net"

// rawSyscallConns: elsewhere, ListenHot hands fasthttp each plain TCP
// connection as it is (one writev per shard).
const rawSyscallConns = false

func wrapRawSyscall(c net.Conn) net.Conn { return c }
