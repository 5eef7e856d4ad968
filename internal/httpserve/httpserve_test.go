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
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestEveryServerHasTimeouts: Listen never runs a server without all four.
func TestEveryServerHasTimeouts(t *testing.T) {
	srv, err := Listen(t.Context(), "127.0.0.1:0", "", http.NotFoundHandler(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := srv.Timeouts()
	if got != DefaultTimeouts || got.ReadHeader <= 0 || got.Read <= 0 || got.Write <= 0 || got.Idle <= 0 {
		t.Fatalf("timeouts %+v, want %+v, all positive", got, DefaultTimeouts)
	}
	partial, err := ListenTimeouts(t.Context(), "127.0.0.1:0", "", http.NotFoundHandler(), quiet(), Timeouts{Write: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	if p := partial.Timeouts(); p.Write != time.Hour || p.Read != DefaultTimeouts.Read || p.ReadHeader != DefaultTimeouts.ReadHeader || p.Idle != DefaultTimeouts.Idle {
		t.Fatalf("zero fields were not defaulted: %+v", p)
	}
}

// waitClosed reads from c until the server closes it. The deadline only
// keeps a broken server from hanging the test; the assertion is that the
// server hangs up, not when.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server still holds the connection of a client that stopped sending")
	}
}

// TestSlowClientsAreCutOff is the slow-loris attack: before, a body sent
// one byte every few seconds held a connection (and its goroutine) for as
// long as the client liked. Now a stalled header or body is cut off by the
// server's read bounds, and the server keeps answering others.
func TestSlowClientsAreCutOff(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	})
	srv, err := ListenTimeouts(t.Context(), "127.0.0.1:0", "", h, quiet(), Timeouts{ReadHeader: 50 * time.Millisecond, Read: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for name, prefix := range map[string]string{
		"slow header": "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
		"slow body":   "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, prefix); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c)
		})
	}
	resp, err := http.Post("http://"+srv.Addr()+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("an ordinary client after the attack: %d", resp.StatusCode)
	}
}

// TestExtendWriteDeadline: a handler that paces its response is bound per
// chunk, not by the server's total write bound. With a write bound that
// has already passed when the handler runs, only the extended write gets
// through.
func TestExtendWriteDeadline(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("extend") {
			ExtendWriteDeadline(w, time.Now())
		}
		w.Write([]byte("shard bytes"))
	})
	srv, err := ListenTimeouts(context.Background(), "127.0.0.1:0", "", h, quiet(), Timeouts{Write: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(q string) (string, error) {
		resp, err := http.Get("http://" + srv.Addr() + "/" + q)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(""); err == nil && body == "shard bytes" {
		t.Fatal("a response past the server's write bound got through: the bound is not applied")
	}
	if body, err := get("?extend"); err != nil || body != "shard bytes" {
		t.Fatalf("extended response: %q %v", body, err)
	}
}

// hotAndRest is a ListenHot server whose hot route answers /hot and whose
// net/http handler answers the rest (reading any body).
func hotAndRest(t *testing.T, timeouts Timeouts) *Server {
	t.Helper()
	hot := func(c *fasthttp.RequestCtx) bool {
		if string(c.Path()) != "/hot" {
			return false
		}
		c.SetContentType("text/plain")
		c.SetBodyString("hot")
		return true
	}
	rest := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Write([]byte("rest " + r.URL.Path))
	})
	srv, err := ListenHotTimeouts(t.Context(), "127.0.0.1:0", "", hot, rest, quiet(), timeouts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A ListenHot server routes the hot path's requests to it and every other
// one to the net/http handler, under the same four bounds, and cuts slow
// clients off as Listen's does.
func TestHotServerRoutesAndCutsSlowClients(t *testing.T) {
	srv := hotAndRest(t, Timeouts{ReadHeader: 50 * time.Millisecond, Read: 100 * time.Millisecond})
	if got := srv.Timeouts(); got.ReadHeader != 50*time.Millisecond || got.Read != 100*time.Millisecond || got.Write != DefaultTimeouts.Write || got.Idle != DefaultTimeouts.Idle {
		t.Fatalf("timeouts %+v", got)
	}
	if d := hotAndRest(t, Timeouts{}).Timeouts(); d != DefaultTimeouts {
		t.Fatalf("default timeouts %+v, want %+v", d, DefaultTimeouts)
	}
	base := "http://" + srv.Addr()
	if got := getBody(t, base+"/hot"); got != "hot" {
		t.Fatalf("/hot answered %q", got)
	}
	if got := getBody(t, base+"/other"); got != "rest /other" {
		t.Fatalf("/other answered %q", got)
	}
	for name, prefix := range map[string]string{
		"slow header": "GET /hot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
		"slow body":   "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, prefix); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c)
		})
	}
	if got := getBody(t, base+"/hot"); got != "hot" {
		t.Fatalf("an ordinary client after the attack: %q", got)
	}
}

// Kill drops kept-alive connections at once, and Close right after
// ListenHot (before its Serve has started) still stops it.
func TestHotServerKillAndEarlyClose(t *testing.T) {
	srv := hotAndRest(t, Timeouts{})
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /hot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "hot") {
		t.Fatalf("first response %q %v", buf[:n], err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	if err := srv.Wait(); err != nil {
		t.Fatalf("Wait after Kill: %v", err)
	}
	for range 20 {
		early, err := ListenHot(context.Background(), "127.0.0.1:0", "", func(*fasthttp.RequestCtx) bool { return false }, http.NotFoundHandler(), quiet())
		if err != nil {
			t.Fatal(err)
		}
		_ = early.Close()
		if err := early.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// PeerGone is false while the client waits for its answer and true once it
// has closed the connection, so a hot handler that waits can stop.
func TestPeerGone(t *testing.T) {
	connected, gone := make(chan bool, 1), make(chan bool, 1)
	hot := func(c *fasthttp.RequestCtx) bool {
		connected <- PeerGone(c)
		// Bounded: 10 s of polling at most, then report what was seen.
		for range 1000 {
			if PeerGone(c) {
				gone <- true
				return true
			}
			time.Sleep(10 * time.Millisecond) // the handler's poll, as an edge's paced wait does
		}
		gone <- false
		return true
	}
	srv, err := ListenHot(t.Context(), "127.0.0.1:0", "", hot, http.NotFoundHandler(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if <-connected {
		t.Fatal("PeerGone while the client is connected and waiting")
	}
	c.Close()
	if !<-gone {
		t.Fatal("PeerGone never saw the client close its connection")
	}
}

// A hot response reaches the client whole whatever its size: one that fits
// the write buffer (a shard), one larger (a second write from where it
// lies) and one larger than the socket buffers (writes that find the socket
// full and wait in the poller). On Linux fasthttp gets each connection as a
// rawSyscallConn (reads and writes that keep the P), elsewhere as the plain
// *net.TCPConn its one-writev path takes. The server still knows every open
// connection (Kill cuts them) and forgets each one fasthttp closed.
func TestHotServerWritesShardsWholeAndTracksConnections(t *testing.T) {
	sizes := []int{12 << 10, 3*hotWriteBuffer + 17, 8 << 20}
	bodies := make([][]byte, len(sizes))
	for i, n := range sizes {
		bodies[i] = make([]byte, n)
		for j := range bodies[i] {
			bodies[i][j] = byte(j*7 + i)
		}
	}
	connType := make(chan string, 16)
	next := 0
	hot := func(c *fasthttp.RequestCtx) bool {
		connType <- fmt.Sprintf("%T", c.Conn())
		c.Response.SetBodyRaw(bodies[next%len(bodies)])
		next++
		return true
	}
	srv, err := ListenHot(t.Context(), "127.0.0.1:0", "", hot, http.NotFoundHandler(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	want := "*net.TCPConn"
	if rawSyscallConns {
		want = "*httpserve.rawSyscallConn"
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 2 * len(bodies) {
		body := bodies[i%len(bodies)]
		resp, err := hc.Get(srv.Advertise + "/shard")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) || resp.ContentLength != int64(len(body)) {
			t.Fatalf("got %d bytes (Content-Length %d, err %v), want the %d bytes handed to fasthttp", len(got), resp.ContentLength, err, len(body))
		}
		if got := <-connType; got != want {
			t.Fatalf("the hot handler's connection is a %s, want a %s", got, want)
		}
	}
	open := func() int {
		srv.tl.mu.Lock()
		defer srv.tl.mu.Unlock()
		return len(srv.tl.conns)
	}
	if n := open(); n != 1 {
		t.Fatalf("%d connections tracked while one keep-alive connection is open, want 1", n)
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for open() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d closed connections still tracked after 10 s: the tracking map leaks", open())
		}
		time.Sleep(time.Millisecond) // bounded condition wait
	}
}
