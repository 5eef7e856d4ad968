package httpserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// ListenSplit binds addr and answers hot (one route: a coordinator's
// lookups, tens of thousands a second) with fasthttp, like ListenHot, but
// every other request moves its connection, that request included, to a
// net/http server running rest for the rest of the connection's life.
// So everything but the hot route keeps net/http's exact behaviour
// (request contexts cancelled when the client leaves, streaming responses
// under ResponseController deadlines, h2c, per-route body limits):
// fasthttpadaptor, which ListenHot uses for the rest, has none of those.
//
// Bodies are streamed (StreamRequestBody): fasthttp pre-reads at most
// 8 KiB of a request before the handler runs, so a moved request's body
// is read by net/http under rest's own limits, never buffered here. hot
// reads its request body from c.RequestBodyStream() and must not take a
// request whose Content-Length it does not know (ContentLength() < 0).
// Bytes of the body hot read before declining are handed back with
// Decline, so that the moved request is the request the client sent.
//
// The client sees one HTTP/1.1 server: a moved request is answered by
// net/http as if it had arrived there, headers in the same order (names
// in canonical case, as net/http makes them anyway; minus an Expect:
// 100-continue fasthttp already answered).
// h2c with prior knowledge ("PRI * HTTP/2.0") is not served; no Swarmcast
// client speaks it.
func ListenSplit(ctx context.Context, addr, advertise string, hot Hot, rest http.Handler, log *slog.Logger) (*Server, error) {
	t := DefaultTimeouts
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another process using the port? pick another address)", addr, err)
	}
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	moved := &movedListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s := &Server{
		srv: &http.Server{
			Handler:           rest,
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		tl:   tl,
		ln:   tl,
		done: make(chan struct{}),
		t:    t,
	}
	s.fast = &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			if !hot(c) {
				moveToNetHTTP(c, moved)
			}
		},
		ReadTimeout: t.ReadHeader,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() != 0 {
				return fasthttp.RequestConfig{ReadTimeout: t.Read}
			}
			return fasthttp.RequestConfig{}
		},
		WriteTimeout:                 t.Write,
		IdleTimeout:                  t.Idle,
		WriteBufferSize:              hotWriteBuffer,
		NoDefaultServerHeader:        true,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		KeepHijackedConns:            true,
		MaxRequestBodySize:           splitPreRead,
		Logger:                       slogPrinter{log},
	}
	s.start(ctx, advertise, func() error {
		netErr := make(chan error, 1)
		go func() { netErr <- s.srv.Serve(moved) }()
		err := s.fast.Serve(tl)
		moved.Close()
		if e := <-netErr; !errors.Is(e, http.ErrServerClosed) && !errors.Is(e, net.ErrClosed) && err == nil {
			err = e
		}
		return err
	}, net.ErrClosed)
	return s, nil
}

// splitPreRead is how much of a body fasthttp reads before the handler
// runs (it reads at most 8 KiB ahead however large this is); the rest
// stays on the connection for whoever handles the request.
const splitPreRead = 8 << 10

// Decline is what a ListenSplit hot handler calls when it read consumed,
// the first bytes of the request's body, before deciding not to take the
// request: they go back in front of the body's rest. It reports false,
// for `return httpserve.Decline(c, consumed)`.
func Decline(c *fasthttp.RequestCtx, consumed []byte) bool {
	c.SetUserValue(declinedKey{}, bytes.Clone(consumed))
	return false
}

type declinedKey struct{}

// moveToNetHTTP hands c's connection to the net/http server behind moved,
// replaying the request: its header block, the body bytes the hot
// handler read (Decline), then the body's rest and everything after it
// as it arrives. fasthttp writes nothing for this request and leaves the
// connection alone from now on.
func moveToNetHTTP(c *fasthttp.RequestCtx, moved *movedListener) {
	h := &c.Request.Header
	head := make([]byte, 0, 512)
	head = append(head, h.Method()...)
	head = append(head, ' ')
	head = append(head, h.RequestURI()...)
	head = append(head, ' ')
	head = append(head, h.Protocol()...)
	head = append(head, "\r\n"...)
	head = appendHeaderLinesExcept(head, h.RawHeaders(), "expect")
	if consumed, ok := c.UserValue(declinedKey{}).([]byte); ok {
		head = append(head, consumed...)
	}
	chunked := h.ContentLength() == -1
	var body io.Reader
	if h.ContentLength() != 0 && !h.IsGet() && !h.IsHead() {
		body = c.RequestBodyStream()
	}
	c.HijackSetNoResponse(true)
	c.Hijack(func(conn net.Conn) {
		rc := &replayConn{Conn: conn, head: head, body: body, chunked: chunked, bodyDone: make(chan struct{})}
		if body == nil {
			rc.finishBody()
		}
		if !moved.give(rc) {
			return
		}
		// The request's body stream belongs to c, which fasthttp recycles
		// when this returns: wait until net/http has read it (or the
		// connection is gone), bounded by the body's read timeout.
		t := time.NewTimer(DefaultTimeouts.Read)
		defer t.Stop()
		select {
		case <-rc.bodyDone:
		case <-rc.closed():
		case <-moved.done:
		case <-t.C:
			_ = rc.Close()
		}
		rc.dropBody()
	})
}

// appendHeaderLinesExcept appends a raw header block (each line ending in
// CRLF, then the empty line) without the lines whose name is except
// (lowercase), and ends it with the empty line.
func appendHeaderLinesExcept(b, raw []byte, except string) []byte {
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("\r\n"))
		if i < 0 {
			break // not a complete line: fasthttp never hands one over
		}
		line := raw[:i+2]
		raw = raw[i+2:]
		if i == 0 {
			break // the empty line
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		if len(name) == len(except) && bytes.EqualFold(name, []byte(except)) {
			continue
		}
		b = append(b, line...)
	}
	return append(b, "\r\n"...)
}

// replayConn is a moved connection: reads return the replayed request
// head, then its body (re-chunked when the client chunked it: fasthttp's
// stream hands it over decoded), then the connection's own bytes.
type replayConn struct {
	net.Conn
	head    []byte
	chunked bool

	mu       sync.Mutex
	body     io.Reader // nil once read to its end (or dropped)
	pending  []byte    // chunk framing not yet returned
	buf      []byte
	bodyDone chan struct{}
	doneOnce sync.Once

	closeOnce sync.Once
	closedCh  chan struct{}
	closedMu  sync.Mutex
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	c.mu.Lock()
	if c.body != nil || len(c.pending) > 0 {
		n, err := c.readBody(p)
		c.mu.Unlock()
		return n, err
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// readBody returns body bytes (framed as chunks when chunked); at the
// body's end it marks bodyDone. c.mu is held.
func (c *replayConn) readBody(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			if len(c.pending) == 0 && c.body == nil {
				c.finishBody()
			}
			return n, nil
		}
		if c.body == nil {
			c.finishBody()
			return 0, io.EOF // unreachable in practice: Read checks first
		}
		if !c.chunked {
			n, err := c.body.Read(p)
			if errors.Is(err, io.EOF) {
				c.body = nil
				c.finishBody()
				if n == 0 {
					return c.Conn.Read(p)
				}
				return n, nil
			}
			return n, err
		}
		if c.buf == nil {
			c.buf = make([]byte, 32<<10)
		}
		n, err := c.body.Read(c.buf)
		if n > 0 {
			c.pending = strconv.AppendInt(c.pending[:0], int64(n), 16)
			c.pending = append(c.pending, "\r\n"...)
			c.pending = append(c.pending, c.buf[:n]...)
			c.pending = append(c.pending, "\r\n"...)
		}
		if errors.Is(err, io.EOF) {
			c.body = nil
			c.pending = append(c.pending, "0\r\n\r\n"...)
		} else if err != nil {
			return 0, err
		}
	}
}

func (c *replayConn) finishBody() { c.doneOnce.Do(func() { close(c.bodyDone) }) }

// dropBody forgets the body stream (its request is being recycled): a
// read after this point sees the connection's own bytes.
func (c *replayConn) dropBody() {
	c.mu.Lock()
	c.body, c.pending = nil, nil
	c.mu.Unlock()
	c.finishBody()
}

func (c *replayConn) closed() chan struct{} {
	c.closedMu.Lock()
	defer c.closedMu.Unlock()
	if c.closedCh == nil {
		c.closedCh = make(chan struct{})
	}
	return c.closedCh
}

func (c *replayConn) Close() error {
	ch := c.closed()
	c.closeOnce.Do(func() { close(ch) })
	return c.Conn.Close()
}

// movedListener hands moved connections to the net/http server.
type movedListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *movedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give hands c over, or closes it if the server is stopping.
func (l *movedListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		_ = c.Close()
		return false
	}
}

func (l *movedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *movedListener) Addr() net.Addr { return l.addr }
