//go:build !unix

package httpserve

import "net"

// peerGone cannot tell on this platform: a departed client is noticed by
// the next write instead.
func peerGone(net.Conn) bool { return false }
