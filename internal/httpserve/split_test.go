package httpserve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// splitServer serves /hot from fasthttp (and reads up to 3 body bytes
// first, then declines when the body starts with "no"), everything else
// (and /hot once a connection moved) from net/http, which names itself
// and echoes what it got.
func splitServer(t *testing.T, rest http.Handler) *Server {
	t.Helper()
	hot := func(c *fasthttp.RequestCtx) bool {
		if string(c.Path()) != "/hot" {
			return false
		}
		if c.Request.Header.ContentLength() > 0 {
			b := make([]byte, 3)
			n, _ := io.ReadFull(c.RequestBodyStream(), b)
			if strings.HasPrefix(string(b[:n]), "no") {
				return Decline(c, b[:n])
			}
		}
		c.SetBodyString("fasthttp")
		return true
	}
	if rest == nil {
		rest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "net/http %s %s %q x=%q from=%v", r.Method, r.URL.RequestURI(), b, r.Header.Values("X-Twice"), r.RemoteAddr != "")
		})
	}
	srv, err := ListenSplit(t.Context(), "127.0.0.1:0", "", hot, rest, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, req string) string {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSplitServerMovesConnectionsToNetHTTP: the hot route is fasthttp's
// until the connection sends anything else; that request and every later
// one on the connection reach net/http exactly as sent (bodies read or
// partly read by the hot handler, chunked bodies, repeated headers,
// Expect: 100-continue).
func TestSplitServerMovesConnectionsToNetHTTP(t *testing.T) {
	srv := splitServer(t, nil)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	steps := []struct{ req, want string }{
		{"POST /hot HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "fasthttp"},
		{"GET /hot HTTP/1.1\r\nHost: x\r\n\r\n", "fasthttp"},
		{"POST /hot HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nnot me", `net/http POST /hot "not me" x=[] from=true`},
		{"GET /hot HTTP/1.1\r\nHost: x\r\n\r\n", `net/http GET /hot "" x=[] from=true`},
		{"POST /a?b=c HTTP/1.1\r\nHost: x\r\nX-Twice: 1\r\nx-twice: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", `net/http POST /a?b=c "abcde" x=["1" "2"] from=true`},
	}
	for _, s := range steps {
		if got := roundTrip(t, c, br, s.req); got != s.want {
			t.Fatalf("%q: got %q, want %q", s.req, got, s.want)
		}
	}

	// A fresh connection whose first request is not hot, with a body
	// larger than fasthttp's pre-read and Expect: 100-continue.
	c2, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(time.Minute))
	br2 := bufio.NewReader(c2)
	big := strings.Repeat("z", 100<<10)
	io.WriteString(c2, fmt.Sprintf("PUT /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(big)))
	resp, err := http.ReadResponse(br2, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", resp, err)
	}
	if got, want := roundTrip(t, c2, br2, big), fmt.Sprintf("net/http PUT /big %q x=[] from=true", big); got != want {
		t.Fatalf("big body: got %d bytes %.60q…, want %d bytes", len(got), got, len(want))
	}
	if got := roundTrip(t, c2, br2, "GET /hot HTTP/1.1\r\nHost: x\r\n\r\n"); got != `net/http GET /hot "" x=[] from=true` {
		t.Fatalf("after the move: %q", got)
	}
}

// TestSplitServerKeepsNetHTTPContexts: a moved request's context ends
// when its client leaves (what an SSE stream relies on; fasthttp's would
// not), and Kill cuts moved connections.
func TestSplitServerKeepsNetHTTPContexts(t *testing.T) {
	ended := make(chan struct{})
	rest := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("streaming\n"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(ended)
	})
	srv := splitServer(t, rest)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "streaming\n" {
		t.Fatalf("stream: %q %v", line, err)
	}
	c.Close()
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the handler's context did not end when its client left")
	}

	// Kill cuts a moved, idle keep-alive connection.
	c2, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	srv2 := srv
	br2 := bufio.NewReader(c2)
	io.WriteString(c2, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(br2, nil); err != nil {
		t.Fatal(err)
	}
	_ = srv2.Kill()
	waitClosed(t, c2)
}

// TestSplitServerPipelined: a hot request and a moved one sent in one
// write (pipelined) are answered in order: fasthttp's answer is flushed
// before the connection moves, and the moved request's bytes, already in
// fasthttp's read buffer, reach net/http.
func TestSplitServerPipelined(t *testing.T) {
	srv := splitServer(t, nil)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /hot HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"+
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"+
		"GET /hot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, want := range []string{"fasthttp", `net/http POST /x "abc" x=[] from=true`, `net/http GET /hot "" x=[] from=true`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("want %q: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	waitClosed(t, c) // Connection: close is net/http's to honour
}
