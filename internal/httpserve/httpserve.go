// Package httpserve runs a role's HTTP server: bind one address, advertise another, serve /healthz and /metrics, shut down with the context.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/swarmcast/swarmcast/wire"
)

// NewRegistry is a per-node Prometheus registry (never the global one, so
// many nodes can live in one test process) with Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewMux returns a mux that already serves /healthz and /metrics.
func NewMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET "+wire.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// Server is a listening HTTP server. Close (or cancelling the context passed
// to Start) stops it; Wait returns when it has stopped.
type Server struct {
	srv       *http.Server     // nil for a ListenHot server; moved connections' for ListenSplit
	fast      *fasthttp.Server // nil for a Listen server
	tl        *trackingListener
	t         Timeouts // fast's, as Timeouts reports them
	ln        net.Listener
	done      chan struct{}
	err       error
	Advertise string // base URL other nodes use, e.g. http://127.0.0.1:7001
}

// Timeouts bound how long one client may hold a connection. Every server
// has all four, so a client sending one byte every few seconds (a slow
// header, a slow body, a response it never reads) is cut off instead of
// holding a connection and its goroutine forever.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included.
	Read time.Duration
	// Write bounds the handler plus writing its response, counted from the
	// end of the request headers. A handler that streams on purpose (an
	// edge pacing shards under its upload cap) extends it per chunk with
	// ExtendWriteDeadline instead of the server raising it for everyone.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// DefaultTimeouts fit every role's routes on the networks Swarmcast runs
// on: the largest request body (a publish, up to 32 MiB from an origin on
// the operator's network) takes seconds, a whole ciphertext segment or a
// shard goes out in well under a second unthrottled, and a gateway segment
// waits at most a few playback deadlines for the swarm before the player
// has given up on it anyway.
//   - ReadHeader 5 s: headers are a few hundred bytes.
//   - Read 60 s: 32 MiB needs only ~0.5 MB/s to arrive in time; a 1-byte-per-5-s
//     body is cut off at 60 s, never held indefinitely.
//   - Write 60 s: a response that has not finished in a minute is not
//     worth the connection; streaming handlers extend it per chunk.
//   - Idle 2 min: long enough for players' keep-alive between segments.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: time.Minute, Write: time.Minute, Idle: 2 * time.Minute}

// WriteProgressTimeout is how long a streaming handler may take to write
// one chunk before its client is cut off (ExtendWriteDeadline): a client
// that stops reading is dropped within it, while a shard paced out under
// an upload cap in many chunks never hits the server's total Write bound.
const WriteProgressTimeout = 30 * time.Second

// ExtendWriteDeadline moves w's write deadline WriteProgressTimeout past
// now; a handler that paces its response calls it before each chunk. It
// is a no-op for writers that cannot set deadlines (httptest recorders).
func ExtendWriteDeadline(w http.ResponseWriter, now time.Time) {
	_ = http.NewResponseController(w).SetWriteDeadline(now.Add(WriteProgressTimeout))
}

// Listen binds addr ("127.0.0.1:0", "[::1]:7001", ":7001") and starts
// serving h with HTTP/1.1 and cleartext HTTP/2 (h2c) under DefaultTimeouts.
// advertise is the base URL to announce; empty means derive it from the
// bound address.
func Listen(ctx context.Context, addr, advertise string, h http.Handler, log *slog.Logger) (*Server, error) {
	return ListenTimeouts(ctx, addr, advertise, h, log, DefaultTimeouts)
}

// ListenTimeouts is Listen with explicit timeouts; a zero field takes its
// DefaultTimeouts value (never "no timeout").
func ListenTimeouts(ctx context.Context, addr, advertise string, h http.Handler, log *slog.Logger, t Timeouts) (*Server, error) {
	return listen(ctx, addr, advertise, h, log, t, nil)
}

// ListenWrapped is Listen with every accepted connection passing through
// wrap (an emulated link: internal/impair's Listener).
func ListenWrapped(ctx context.Context, addr, advertise string, h http.Handler, log *slog.Logger, wrap func(net.Listener) net.Listener) (*Server, error) {
	return listen(ctx, addr, advertise, h, log, DefaultTimeouts, wrap)
}

func listen(ctx context.Context, addr, advertise string, h http.Handler, log *slog.Logger, t Timeouts, wrap func(net.Listener) net.Listener) (*Server, error) {
	t = t.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another process using the port? pick another address)", addr, err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			Protocols:         &protocols,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	s.start(ctx, advertise, func() error { return s.srv.Serve(ln) }, http.ErrServerClosed)
	return s, nil
}

// start sets the advertised URL (advertise, or the bound address) and
// runs serve until it returns; a return other than closed (the server's
// own "closed" error) is kept for Wait. The server is closed when ctx ends.
// Both goroutines end when serve does.
func (s *Server) start(ctx context.Context, advertise string, serve func() error, closed error) {
	s.Advertise = strings.TrimRight(advertise, "/")
	if s.Advertise == "" {
		s.Advertise = "http://" + s.ln.Addr().String()
	}
	go func() {
		defer close(s.done)
		if err := serve(); err != nil && !errors.Is(err, closed) {
			s.err = err
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	if t.ReadHeader <= 0 {
		t.ReadHeader = d.ReadHeader
	}
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	return t
}

// Timeouts is what the server runs with.
func (s *Server) Timeouts() Timeouts {
	if s.fast != nil {
		return s.t
	}
	return Timeouts{ReadHeader: s.srv.ReadHeaderTimeout, Read: s.srv.ReadTimeout, Write: s.srv.WriteTimeout, Idle: s.srv.IdleTimeout}
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, gives in-flight requests a moment, then cuts them.
func (s *Server) Close() error {
	if s.fast != nil {
		return s.closeFast(2 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Kill drops every connection at once, like a crashed process would.
func (s *Server) Kill() error {
	if s.fast != nil {
		return s.closeFast(0)
	}
	return s.srv.Close()
}

// closeFast closes a ListenHot or ListenSplit server within grace: for
// ListenSplit, the net/http server of moved connections shuts down
// alongside fasthttp.
func (s *Server) closeFast(grace time.Duration) error {
	if s.srv == nil {
		return s.closeHot(grace)
	}
	netDone := make(chan struct{})
	go func() {
		defer close(netDone)
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if s.srv.Shutdown(ctx) != nil {
			_ = s.srv.Close()
		}
	}()
	err := s.closeHot(grace)
	<-netDone
	return err
}

// Wait blocks until the server has stopped and returns its serve error.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}
