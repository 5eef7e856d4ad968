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
	srv       *http.Server
	ln        net.Listener
	done      chan struct{}
	err       error
	Advertise string // base URL other nodes use, e.g. http://127.0.0.1:7001
}

// Listen binds addr ("127.0.0.1:0", "[::1]:7001", ":7001") and starts
// serving h with HTTP/1.1 and cleartext HTTP/2 (h2c). advertise is the base
// URL to announce; empty means derive it from the bound address.
func Listen(ctx context.Context, addr, advertise string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another process using the port? pick another address)", addr, err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			Protocols:         &protocols,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	s.Advertise = strings.TrimRight(advertise, "/")
	if s.Advertise == "" {
		s.Advertise = "http://" + ln.Addr().String()
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, gives in-flight requests a moment, then cuts them.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Kill drops every connection at once, like a crashed process would.
func (s *Server) Kill() error { return s.srv.Close() }

// Wait blocks until the server has stopped and returns its serve error.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}
