package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/swarmcast/swarmcast/wire"
)

// Hot answers the requests of a server's hot route (shard GETs: ~12 KB
// each, tens of thousands a second) straight from fasthttp and reports
// true. It returns false, having written nothing and changed nothing, for
// every request it does not take; those go to the server's net/http handler.
type Hot func(*fasthttp.RequestCtx) bool

// hotWriteBuffer is the connection's write buffer where fasthttp cannot
// write vectored (ListenSplit, emulated links, ListenHot's rawSyscallConns
// on Linux): a shard message (~12 KB at
// the default parameters, up to ~64 KB for large segments) and its headers
// leave in one write(2) when they fit, as nginx's tcp_nopush does.
const hotWriteBuffer = 64 << 10

// hotVectoredWriteBuffer is ListenHot's write buffer on a plain TCP
// connection where it is not a rawSyscallConn (not Linux): a response larger than it (every shard) leaves in one
// writev(2) of the serialized header and the body where it is (the edge's
// and origin's cached bytes), so the ~12 KB body is never copied into a
// buffer first; smaller responses are copied and written at once. That copy
// was ~10 % of the edge's CPU under bench serve (docs/PERFORMANCE.md).
const hotVectoredWriteBuffer = 4 << 10

// ListenHot binds addr and serves HTTP/1.1 with fasthttp: hot first, then
// rest (a net/http handler: /healthz, /metrics and every other route)
// through fasthttpadaptor, under DefaultTimeouts. Why not net/http for
// everything: at ~12 KB per response the server's per-request cost
// decides, and net/http's (18–30 allocations, header and body in separate
// writes, a background read per request) kept edges at ~0.8× nginx
// (docs/PERFORMANCE.md). No h2c: Go's HTTP/2 is slower for small objects,
// and every shard client speaks HTTP/1.1.
func ListenHot(ctx context.Context, addr, advertise string, hot Hot, rest http.Handler, log *slog.Logger) (*Server, error) {
	return ListenHotTimeouts(ctx, addr, advertise, hot, rest, log, DefaultTimeouts)
}

// ListenHotTimeouts is ListenHot with explicit timeouts; a zero field takes
// its DefaultTimeouts value (never "no timeout").
func ListenHotTimeouts(ctx context.Context, addr, advertise string, hot Hot, rest http.Handler, log *slog.Logger, t Timeouts) (*Server, error) {
	return listenHot(ctx, addr, advertise, hot, rest, log, t, nil)
}

// ListenHotWrapped is ListenHot with every accepted connection passing
// through wrap (an emulated link: internal/impair's Listener).
func ListenHotWrapped(ctx context.Context, addr, advertise string, hot Hot, rest http.Handler, log *slog.Logger, wrap func(net.Listener) net.Listener) (*Server, error) {
	return listenHot(ctx, addr, advertise, hot, rest, log, DefaultTimeouts, wrap)
}

func listenHot(ctx context.Context, addr, advertise string, hot Hot, rest http.Handler, log *slog.Logger, t Timeouts, wrap func(net.Listener) net.Listener) (*Server, error) {
	t = t.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another process using the port? pick another address)", addr, err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	// Unwrapped connections: fasthttp writes vectored only to a
	// *net.TCPConn (a wrapped link keeps the wrapper and the large buffer).
	raw := wrap == nil
	tl := &trackingListener{Listener: ln, raw: raw, conns: map[net.Conn]struct{}{}}
	writeBuffer := hotWriteBuffer
	if raw && !rawSyscallConns {
		writeBuffer = hotVectoredWriteBuffer
	}
	restFast := fasthttpadaptor.NewFastHTTPHandler(rest)
	s := &Server{
		fast: &fasthttp.Server{
			Handler: func(c *fasthttp.RequestCtx) {
				if !hot(c) {
					restFast(c)
				}
			},
			// The request line and headers must arrive within ReadHeader
			// (ReadTimeout covers them); a request with a body then gets
			// Read for all of it, like net/http's two bounds.
			ReadTimeout: t.ReadHeader,
			HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
				if h.ContentLength() != 0 {
					if h.IsPost() && string(h.RequestURI()) == wire.PathLivePush {
						// A live push carries a segment's shards: larger
						// than any other body (the receiver bounds it again).
						return fasthttp.RequestConfig{ReadTimeout: t.Read, MaxRequestBodySize: wire.MaxLivePushBytes}
					}
					return fasthttp.RequestConfig{ReadTimeout: t.Read}
				}
				return fasthttp.RequestConfig{}
			},
			WriteTimeout:          t.Write,
			IdleTimeout:           t.Idle,
			WriteBufferSize:       writeBuffer,
			ConnState:             tl.connState,
			NoDefaultServerHeader: true,
			// Bodies are JSON orders at most (MaxSettlementPairJSON-sized);
			// each route still applies its own smaller limit.
			MaxRequestBodySize: 1 << 20,
			Logger:             slogPrinter{log},
		},
		tl:   tl,
		ln:   tl,
		done: make(chan struct{}),
		t:    t,
	}
	s.start(ctx, advertise, func() error { return s.fast.Serve(tl) }, net.ErrClosed)
	return s, nil
}

// PeerGone reports whether the client of a hot-route request has closed
// or reset its connection, without reading from it: net/http cancels a
// request's context for that, fasthttp does not, so a hot handler that
// waits (an edge pacing a shard under its upload cap) polls this to give
// its reservation back instead of spending it on a reader that left. A
// pipelined next request does not count as gone.
func PeerGone(c *fasthttp.RequestCtx) bool {
	if c.Conn() == nil {
		return false
	}
	return peerGone(c.Conn())
}

// closeHot is Close for a fasthttp server: stop accepting, give in-flight
// requests a moment, then cut every connection.
func (s *Server) closeHot(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Closed here too: a shutdown before Serve took the listener would
	// not close it, and Serve would accept forever.
	_ = s.tl.Listener.Close()
	err := s.fast.ShutdownWithContext(ctx)
	s.tl.closeAll()
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // cut, as net/http's Close after a failed Shutdown
	}
	if errors.Is(err, net.ErrClosed) {
		// fasthttp closes the listeners Serve registered, and the one above
		// is already closed when Serve had taken it: not a failure.
		return nil
	}
	return err
}

// trackingListener remembers its open connections, so Kill can cut them
// all at once (fasthttp's shutdown only waits for them).
type trackingListener struct {
	net.Listener
	// raw: Accept returns each connection as it is (fasthttp's writev path
	// takes only a *net.TCPConn), or on Linux as a rawSyscallConn (its
	// reads and writes keep the P; a response leaves in one write(2) from
	// the hotWriteBuffer), and the server's ConnState hook forgets it
	// when fasthttp closes it (or hands it to a hijacker, which ListenHot's
	// routes never do). Otherwise each is wrapped to forget itself on
	// Close: ListenSplit hijacks connections and closes them later.
	raw   bool
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.raw {
		c = wrapRawSyscall(c)
	} else {
		c = &trackedConn{Conn: c, l: l}
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

// connState is fasthttp's ConnState hook: a raw connection is forgotten
// once fasthttp is done with it.
func (l *trackingListener) connState(c net.Conn, s fasthttp.ConnState) {
	if l.raw && (s == fasthttp.StateClosed || s == fasthttp.StateHijacked) {
		l.forget(c)
	}
}

func (l *trackingListener) forget(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

// SyscallConn exposes the socket for PeerGone's peek.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not a socket")
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.forget(c) })
	return c.Conn.Close()
}

// slogPrinter is fasthttp's logger on the node's log, at debug level like
// net/http's ErrorLog (client errors are not the operator's problem).
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) {
	p.log.Debug(fmt.Sprintf(format, args...))
}
