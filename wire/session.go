package wire

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Session timing when the coordinator gives none or is unreachable.
const (
	// DefaultHeartbeatInterval is used until a registration names one.
	DefaultHeartbeatInterval = 2 * time.Second
	// DefaultLeaveTimeout bounds telling a coordinator the node is leaving.
	DefaultLeaveTimeout = 2 * time.Second
)

// DefaultBackoff is the retry schedule of a node session: 250 ms, doubling
// to at most 5 s.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}

// Backoff is an exponential retry schedule: Min after the first failure,
// doubling with each further one, never above Max.
type Backoff struct {
	Min, Max time.Duration
}

// next is the wait after the one of d.
func (b Backoff) next(d time.Duration) time.Duration { return min(2*d, b.Max) }

// HeartbeatResult is the fate of one heartbeat: the body sent and either
// the coordinator's answer or the error that kept it from answering.
type HeartbeatResult struct {
	Request  HeartbeatRequest
	Response HeartbeatResponse // zero when Err is set
	Err      error             // transport or API error: nothing was acknowledged
}

// Acknowledged reports whether the coordinator took the heartbeat: it
// answered and still knows the node. Only then has it seen Request's
// inventory changes and served bytes.
func (r HeartbeatResult) Acknowledged() bool { return r.Err == nil && !r.Response.Unknown }

// NodeSession keeps one node (edge, origin, relay) registered with one
// coordinator: register, heartbeat every interval the coordinator names,
// back off on failure, register again when the coordinator answers Unknown
// (it restarted or dropped the node), and tell it when leaving. A node with
// several coordinators runs one session per coordinator (RunNodeSessions),
// each at its own pace, so an unreachable coordinator delays no other.
//
// The session knows no role: what a heartbeat carries and what a
// coordinator's answer means are the callbacks'. A callback error restarts
// the session: it backs off and registers again, and the next heartbeat is
// full again.
//
// Run starts no goroutine; the callbacks are called from Run's goroutine,
// one at a time. Waits use package time's timers, so a test runs a session
// in fake time inside a testing/synctest bubble (with an in-process
// http.RoundTripper as the coordinator).
type NodeSession struct {
	// Client reaches the coordinator; its Base names it in logs. It must
	// sign as the node (AsNode with a signer for Register.NodeID's key):
	// the coordinator refuses unsigned node requests, and Run refuses to
	// start without a signer.
	Client *CoordinatorClient
	// Register is the body of every registration.
	Register RegisterRequest
	// Backoff is the retry schedule after failures; zero is DefaultBackoff.
	// It resets after each acknowledged heartbeat.
	Backoff Backoff
	// LeaveTimeout > 0 makes Run tell the coordinator the node is leaving
	// (PathLeave) when ctx ends, if it ever registered, waiting at most
	// this long. Zero leaves silently: the coordinator drops the node after
	// it misses heartbeats.
	LeaveTimeout time.Duration
	Log          *slog.Logger // nil: discard

	// OnRegistered, if set, runs after every successful registration with
	// the coordinator's answer, before the first heartbeat (an origin
	// publishes its catalogue, an edge learns the coordinator's key).
	OnRegistered func(ctx context.Context, resp RegisterResponse) error
	// NextHeartbeat returns the body of the next heartbeat; nil sends just
	// the node id. full is true from each registration until a heartbeat
	// is acknowledged: the body must then carry the whole inventory with
	// Full set, so a coordinator that just (re)learnt the node replaces
	// what it knew. NodeID is filled in from Register if empty.
	NextHeartbeat func(full bool) HeartbeatRequest
	// OnHeartbeat, if set, receives the fate of every heartbeat NextHeartbeat
	// built (but not of one cut short because ctx ended): the place to
	// restore unacknowledged inventory deltas, count served bytes as
	// reported, and follow directives.
	OnHeartbeat func(ctx context.Context, res HeartbeatResult) error
}

// Run keeps the session until ctx ends, then leaves (see LeaveTimeout) and
// returns nil.
func (s *NodeSession) Run(ctx context.Context) error {
	if s.Client.Node() == nil || s.Client.Node().ID() != s.Register.NodeID {
		return fmt.Errorf("node session with %s: the client must sign as node %s (CoordinatorClient.AsNode with that node's key)", s.Client.Base, s.Register.NodeID)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("coordinator", s.Client.Base)
	backoff := s.Backoff
	if backoff.Min <= 0 {
		backoff = DefaultBackoff
	}
	var (
		registered, everRegistered bool
		full                       bool // no heartbeat acknowledged since the last registration
		interval                   = DefaultHeartbeatInterval
		retry                      = backoff.Min
	)
	defer func() {
		if everRegistered && s.LeaveTimeout > 0 {
			s.leave(ctx, log)
		}
	}()
	for {
		if !registered {
			resp, err := s.Client.Register(ctx, s.Register)
			failure := "cannot register with the coordinator; retrying"
			if err == nil {
				everRegistered = true
				if d := resp.HeartbeatInterval(); d > 0 {
					interval = d
				}
				if s.OnRegistered != nil {
					err = s.OnRegistered(ctx, resp)
					failure = "registered, but the node could not set up its session; registering again"
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn(failure, "err", err, "in", retry)
				if !sleep(ctx, retry) {
					return nil
				}
				retry = backoff.next(retry)
				continue
			}
			registered, full = true, true
			log.Info("registered with coordinator", "advertise", s.Register.Addr, "heartbeat", interval)
		}
		var req HeartbeatRequest
		if s.NextHeartbeat != nil {
			req = s.NextHeartbeat(full)
		}
		if req.NodeID == "" {
			req.NodeID = s.Register.NodeID
		}
		resp, err := s.Client.Heartbeat(ctx, req)
		if err != nil && ctx.Err() != nil {
			return nil // shutting down: the failure is ours, not the coordinator's
		}
		res := HeartbeatResult{Request: req, Response: resp, Err: err}
		var hookErr error
		if s.OnHeartbeat != nil {
			hookErr = s.OnHeartbeat(ctx, res)
		}
		wait := interval
		switch {
		case hookErr != nil:
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("coordinator session failed; registering again", "err", hookErr, "in", retry)
			registered = false
			wait, retry = retry, backoff.next(retry)
		case err != nil:
			log.Warn("heartbeat failed; retrying", "err", err, "in", retry)
			wait, retry = retry, backoff.next(retry)
		case resp.Unknown:
			log.Info("coordinator forgot this node; registering again")
			registered, wait = false, 0
		default:
			full, retry = false, backoff.Min
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// leave tells the coordinator the node is leaving, within LeaveTimeout
// even though ctx has ended.
func (s *NodeSession) leave(ctx context.Context, log *slog.Logger) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.LeaveTimeout)
	defer cancel()
	if err := s.Client.Leave(lctx, s.Register.NodeID); err != nil {
		log.Warn("could not tell the coordinator this node is leaving", "err", err)
		return
	}
	log.Info("left the network")
}

// RunNodeSessions runs every session in its own goroutine until ctx ends
// and returns once all have returned.
func RunNodeSessions(ctx context.Context, sessions []*NodeSession) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil && s.Log != nil {
				s.Log.Error("node session did not start", "err", err)
			}
		})
	}
	wg.Wait()
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
