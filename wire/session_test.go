package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// scriptedCoordinator is a coordinator in process, as an http.RoundTripper:
// no sockets, so a session runs against it inside a synctest bubble. Each
// call is answered by the next entry of the script for its path; an empty
// script answers 200 with an empty body (a zero response).
type scriptedCoordinator struct {
	start time.Time

	mu    sync.Mutex
	calls []sessionCall
	// script[path] are the answers for the next calls to path: an error
	// (transport failure), an int (that HTTP status) or a value (200 JSON).
	script map[string][]any
}

type sessionCall struct {
	at   time.Duration // since start, fake time
	path string
	full bool // heartbeats: the Full flag
}

func (c sessionCall) String() string {
	if c.path == PathHeartbeat {
		return fmt.Sprintf("%v %s full=%v", c.at, c.path, c.full)
	}
	return fmt.Sprintf("%v %s", c.at, c.path)
}

func (f *scriptedCoordinator) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := sessionCall{at: time.Since(f.start), path: req.URL.Path}
	reqBody, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	// Every call the session makes is a signed node request, fresh on
	// the (fake) clock.
	auth, err := ParseNodeRequestAuth(req.Header)
	if err == nil {
		err = auth.CheckFresh(time.Now())
	}
	if err == nil {
		err = auth.Verify(req.Method, req.URL.Path, reqBody)
	}
	if err != nil {
		return nil, fmt.Errorf("scripted coordinator: %s: %v", call.path, err)
	}
	if call.path == PathHeartbeat {
		var hb HeartbeatRequest
		if err := json.Unmarshal(reqBody, &hb); err != nil {
			return nil, err
		}
		call.full = hb.Full
	}
	f.calls = append(f.calls, call)
	var answer any = struct{}{}
	if s := f.script[call.path]; len(s) > 0 {
		answer, f.script[call.path] = s[0], s[1:]
	}
	status, body := http.StatusOK, ""
	switch a := answer.(type) {
	case error:
		return nil, a
	case int:
		status, body = a, `{"error":"scripted failure"}`
	default:
		b, _ := json.Marshal(a)
		body = string(b)
	}
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}, nil
}

func (f *scriptedCoordinator) callLog() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines := make([]string, len(f.calls))
	for i, c := range f.calls {
		lines[i] = c.String()
	}
	return strings.Join(lines, "\n")
}

// The session backs off exponentially while registration fails, heartbeats
// at the coordinator's interval with the whole inventory first, retries a
// failed heartbeat after the (reset) minimum back-off, registers again at
// once on Unknown and sends the whole inventory again, and leaves when
// stopped: all in fake time.
func TestNodeSessionBackoffAndReregister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := &scriptedCoordinator{start: time.Now(), script: map[string][]any{
			PathRegister: {503, 503, RegisterResponse{HeartbeatIntervalMS: 1000}, RegisterResponse{HeartbeatIntervalMS: 1000}},
			PathHeartbeat: {
				HeartbeatResponse{},                                              // 1: acknowledged
				errors.New("connection reset"),                                   // 2: transport failure
				HeartbeatResponse{Unknown: true},                                 // 3: the coordinator restarted
				HeartbeatResponse{Directives: []Directive{{Action: ActionDrop}}}, // 4
			},
		}}
		var mu sync.Mutex
		var results []string
		n1 := testSigner(1)
		s := &NodeSession{
			Client:       NewCoordinatorClient("http://coordinator", &http.Client{Transport: fc}).AsNode(n1),
			Register:     RegisterRequest{NodeID: n1.ID(), Role: RoleEdge, Addr: "http://n1"},
			LeaveTimeout: time.Second,
			NextHeartbeat: func(full bool) HeartbeatRequest {
				return HeartbeatRequest{Full: full}
			},
			OnHeartbeat: func(_ context.Context, res HeartbeatResult) error {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case res.Err != nil:
					results = append(results, "error")
				case res.Response.Unknown:
					results = append(results, "unknown")
				default:
					results = append(results, fmt.Sprintf("ok %d directives", len(res.Response.Directives)))
				}
				if res.Request.NodeID != n1.ID() {
					t.Errorf("heartbeat for node %q, want %s", res.Request.NodeID, n1.ID())
				}
				return nil
			},
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()

		time.Sleep(3500 * time.Millisecond) // fake time: the bubble's clock moves 3.5 s at once
		synctest.Wait()                     // every call due by now has been made
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		want := strings.Join([]string{
			"0s " + PathRegister,                     // 503: back off 250 ms
			"250ms " + PathRegister,                  // 503: back off 500 ms
			"750ms " + PathRegister,                  // ok, interval 1 s
			"750ms " + PathHeartbeat + " full=true",  // acknowledged: back-off resets to 250 ms
			"1.75s " + PathHeartbeat + " full=false", // fails: retry in 250 ms
			"2s " + PathHeartbeat + " full=false",    // Unknown: register again at once
			"2s " + PathRegister,
			"2s " + PathHeartbeat + " full=true",  // the whole inventory again
			"3s " + PathHeartbeat + " full=false", // scripts exhausted: plain acknowledgements
			"3.5s " + PathLeave,
		}, "\n")
		if got := fc.callLog(); got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if got, want := strings.Join(results, ", "), "ok 0 directives, error, unknown, ok 1 directives, ok 0 directives"; got != want {
			t.Fatalf("OnHeartbeat saw %s, want %s", got, want)
		}
	})
}

// A callback's error restarts the session: back off, register again, run
// OnRegistered again, and send the whole inventory again. A node that never
// registered does not leave.
func TestNodeSessionCallbackErrorReregisters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := &scriptedCoordinator{start: time.Now(), script: map[string][]any{
			PathRegister: {RegisterResponse{HeartbeatIntervalMS: 1000}, RegisterResponse{HeartbeatIntervalMS: 1000}},
		}}
		published := 0
		o1 := testSigner(2)
		s := &NodeSession{
			Client:       NewCoordinatorClient("http://coordinator", &http.Client{Transport: fc}).AsNode(o1),
			Register:     RegisterRequest{NodeID: o1.ID(), Role: RoleOrigin},
			OnRegistered: func(context.Context, RegisterResponse) error { published++; return nil },
			NextHeartbeat: func(full bool) HeartbeatRequest {
				return HeartbeatRequest{Full: full}
			},
			OnHeartbeat: func(_ context.Context, res HeartbeatResult) error {
				if published == 1 {
					return errors.New("publish failed")
				}
				return nil
			},
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(1100 * time.Millisecond) // fake time, as above
		synctest.Wait()
		cancel()
		<-done
		want := strings.Join([]string{
			"0s " + PathRegister,
			"0s " + PathHeartbeat + " full=true", // the callback fails: register again in 250 ms
			"250ms " + PathRegister,
			"250ms " + PathHeartbeat + " full=true", // next one at 1.25 s
		}, "\n")
		if got := fc.callLog(); got != want || published != 2 {
			t.Fatalf("calls:\n%s\nwant (and no leave, LeaveTimeout is 0):\n%s\npublished %d times, want 2", got, want, published)
		}
	})
}

// testSigner is a deterministic node key.
func testSigner(seed byte) *NodeSigner {
	return NewNodeSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)), nil)
}

// A session whose client does not sign as its node refuses to start
// rather than send requests every coordinator refuses.
func TestNodeSessionNeedsSigner(t *testing.T) {
	fc := &scriptedCoordinator{start: time.Now()}
	n := testSigner(3)
	for name, s := range map[string]*NodeSession{
		"unsigned":   {Client: NewCoordinatorClient("http://c", &http.Client{Transport: fc}), Register: RegisterRequest{NodeID: n.ID()}},
		"other node": {Client: NewCoordinatorClient("http://c", &http.Client{Transport: fc}).AsNode(testSigner(4)), Register: RegisterRequest{NodeID: n.ID()}},
	} {
		if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "AsNode") {
			t.Errorf("%s: Run = %v, want an error naming AsNode", name, err)
		}
	}
	if log := fc.callLog(); log != "" {
		t.Fatalf("calls made: %s", log)
	}
}
