package fanout

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Segment is one packaged live segment as the trees' root (the origin) or a
// relay hands it to a Sender: the signed entry and shards of every
// rendition (any set of indices; each child gets those of its substreams).
type Segment struct {
	Chain content.VideoID
	Seq   uint64
	Entry []byte // signed content.LiveEntry encoding
	// Shards are this segment's shards, every rendition; each must have
	// Video == Chain and Segment == Seq.
	Shards []*content.ShardMessage
}

// Sender defaults.
const (
	// DefaultQueueSegments is how many segments wait for one child before
	// the oldest is dropped: a live stream never waits for a slow child,
	// and a child 3 segments behind is better served by the newest.
	DefaultQueueSegments = 3
	// DefaultParallelPushes bounds the pushes in flight over all children.
	DefaultParallelPushes = 16
	// DefaultPushTimeout bounds one push (connect, send, answer).
	DefaultPushTimeout = 5 * time.Second
)

// SenderHooks observe a Sender (metrics, logs); any may be nil. They are
// called from the sender's goroutines, concurrently.
type SenderHooks struct {
	// Pushed: child accepted a push of bytes (the body); delay is from Send
	// to the child's answer (the forwarding delay this node adds).
	Pushed func(child wire.NodeID, bytes int, delay time.Duration)
	// Failed: a push to child failed (transport error or refusal); the
	// segment is not retried (the next one follows).
	Failed func(child wire.NodeID, err error)
	// Dropped: a segment waiting for child was dropped unsent because its
	// queue was full (the child is slower than the stream).
	Dropped func(child wire.NodeID, chain content.VideoID, seq uint64)
}

// SenderConfig configures NewSender.
type SenderConfig struct {
	// Signer signs every push as this node (children accept pushes only
	// from the parent the coordinator assigned them). Required.
	Signer *wire.NodeSigner
	// HTTP sends the pushes; nil is wire.NewHTTPClient() (keep-alive, many
	// idle connections per child).
	HTTP *http.Client
	// QueueSegments per child; ≤ 0 is DefaultQueueSegments.
	QueueSegments int
	// ParallelPushes over all children; ≤ 0 is DefaultParallelPushes.
	ParallelPushes int
	// PushTimeout per push; ≤ 0 is DefaultPushTimeout.
	PushTimeout time.Duration
	// StatementKey, when set, signs every push's statements (a btr.Output
	// per substream, wire.HeaderPushStatements): what a relay's children
	// prove a bad push with. It is the node's key (Signer's); nil (the
	// origin, the trees' trusted root) sends none.
	StatementKey ed25519.PrivateKey
	Hooks        SenderHooks
	Log          *slog.Logger // nil: discard
}

// Sender pushes live segments down the trees this node is a parent in:
// one bounded queue and one goroutine per child, so a slow or dead child
// delays nobody else; when a child's queue is full the oldest waiting
// segment is dropped (and counted). The Sender owns its goroutines; Close
// stops them.
//
// The origin, as every tree's root, uses it like this:
//
//	s, _ := fanout.NewSender(fanout.SenderConfig{Signer: signer})
//	defer s.Close()
//	// on every heartbeat answer with a new LiveSet:
//	s.SetRoutes(resp.Live.Routes)
//	// for every packaged segment (after the coordinator took the entry):
//	s.Send(fanout.Segment{Chain: chain, Seq: e.Seq, Entry: e.Encode(), Shards: shards})
//
// where shards are the ShardMessages of indices 0..PushShards-1 of every
// rendition. Each child gets the shards of the substreams it is a child in.
type Sender struct {
	cfg SenderConfig
	log *slog.Logger
	sem chan struct{} // one token per push in flight

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	routes   map[content.VideoID][]wire.LiveRoute
	children map[wire.NodeID]*child
	closed   bool
	// signed are the push statements this node signed (StatementKey), by
	// task, oldest first in signedOrder (at most maxSignedKept): what it
	// answers an accusation of a push with (SignedPush).
	signed      map[signedKey]*btr.Output
	signedOrder []signedKey
}

// signedKey names one signed push: substream sub of segment seq of chain.
type signedKey struct {
	chain content.VideoID
	seq   uint64
	sub   int
}

// maxSignedKept bounds the signed pushes a Sender keeps (64 segments of 16
// substreams): older accusations are past their answer window anyway.
const maxSignedKept = 1024

// child is one child's queue and worker.
type child struct {
	id   wire.NodeID
	addr string // base URL, updated by SetRoutes
	wake chan struct{}
	stop chan struct{}

	mu    sync.Mutex
	queue []queued
}

type queued struct {
	push Push
	// statements is the wire.HeaderPushStatements value ("" for none).
	statements string
	at         time.Time // when Send queued it
	// notBefore is when the push may leave (SendAfter); zero: at once.
	notBefore time.Time
}

// NewSender makes a sender; call SetRoutes, then Send.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Signer == nil {
		return nil, fmt.Errorf("fanout sender: a wire.NodeSigner is required (children accept only signed pushes)")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = wire.NewHTTPClient()
	}
	if cfg.QueueSegments <= 0 {
		cfg.QueueSegments = DefaultQueueSegments
	}
	if cfg.ParallelPushes <= 0 {
		cfg.ParallelPushes = DefaultParallelPushes
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		cfg: cfg, log: log, sem: make(chan struct{}, cfg.ParallelPushes),
		ctx: ctx, cancel: cancel,
		routes: map[content.VideoID][]wire.LiveRoute{}, children: map[wire.NodeID]*child{},
		signed: map[signedKey]*btr.Output{},
	}, nil
}

// SetRoutes replaces the routes this node pushes along (those with
// Children; others are ignored). Children no longer listed are stopped and
// their queues discarded.
func (s *Sender) SetRoutes(routes []wire.LiveRoute) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.routes = map[content.VideoID][]wire.LiveRoute{}
	want := map[wire.NodeID]string{}
	for _, r := range routes {
		if len(r.Children) == 0 && !slices.ContainsFunc(r.Standby, func(sb wire.LiveStandby) bool { return sb.From != 0 }) {
			continue
		}
		s.routes[r.Chain] = append(s.routes[r.Chain], r)
		for _, c := range r.Children {
			want[c.NodeID] = c.Addr
		}
		for _, sb := range r.Standby {
			if sb.From != 0 {
				want[sb.Child.NodeID] = sb.Child.Addr
			}
		}
	}
	for id, c := range s.children {
		if _, ok := want[id]; !ok {
			close(c.stop)
			delete(s.children, id)
		}
	}
	for id, addr := range want {
		if c, ok := s.children[id]; ok {
			c.mu.Lock()
			c.addr = addr
			c.mu.Unlock()
			continue
		}
		c := &child{id: id, addr: addr, wake: make(chan struct{}, 1), stop: make(chan struct{})}
		s.children[id] = c
		s.wg.Go(func() { s.run(c) })
	}
}

// Children lists the children the sender pushes to now.
func (s *Sender) Children() []wire.NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]wire.NodeID, 0, len(s.children))
	for id := range s.children {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Send queues seg for every child of seg.Chain's routes, each with the
// shards of its substreams, and returns at once. It returns the number of
// children the segment was queued for.
func (s *Sender) Send(seg Segment) int { return s.SendAfter(seg, 0) }

// SendAfter is Send with every push held back hold before it leaves (the
// child's worker waits, so a held push delays that child's later pushes by
// no more than its own hold). It exists to inject a slow parent in fault
// runs (relay.Fault); the live path sends at once.
func (s *Sender) SendAfter(seg Segment, hold time.Duration) int {
	now := time.Now()
	var notBefore time.Time
	if hold > 0 {
		notBefore = now.Add(hold)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	// One push per child, even when it is a child in several substreams.
	perChild := map[wire.NodeID][]*content.ShardMessage{}
	stmts := map[wire.NodeID][]string{}
	var order []wire.NodeID
	for _, r := range s.routes[seg.Chain] {
		var shards []*content.ShardMessage
		for _, sh := range seg.Shards {
			if slices.Contains(r.Indices, sh.Index) {
				shards = append(shards, sh)
			}
		}
		if len(shards) == 0 {
			continue
		}
		var stmt string
		if s.cfg.StatementKey != nil {
			// One signature per substream, the same for every child of it.
			o := btr.SignPush(s.cfg.StatementKey, btr.RelayTask(seg.Chain, seg.Seq, r.Substream, seg.Entry), shards)
			stmt = base64.RawURLEncoding.EncodeToString(o.Encode())
			s.keepSigned(signedKey{seg.Chain, seg.Seq, r.Substream}, o)
		}
		for _, c := range childrenFor(r, seg.Seq) {
			if _, seen := perChild[c.NodeID]; !seen {
				order = append(order, c.NodeID)
			}
			perChild[c.NodeID] = append(perChild[c.NodeID], shards...)
			if stmt != "" && len(stmts[c.NodeID]) < wire.MaxPushStatements {
				stmts[c.NodeID] = append(stmts[c.NodeID], stmt)
			}
		}
	}
	for _, id := range order {
		c := s.children[id]
		if c == nil {
			continue
		}
		p := Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: perChild[id]}
		if dropped, ok := c.enqueue(queued{push: p, statements: strings.Join(stmts[id], ","), at: now, notBefore: notBefore}, s.cfg.QueueSegments); ok && s.cfg.Hooks.Dropped != nil {
			s.cfg.Hooks.Dropped(id, dropped.push.Chain, dropped.push.Seq)
		}
	}
	return len(order)
}

// keepSigned keeps a signed push statement (s.mu held), forgetting the
// oldest past maxSignedKept.
func (s *Sender) keepSigned(k signedKey, o *btr.Output) {
	if _, ok := s.signed[k]; !ok {
		s.signedOrder = append(s.signedOrder, k)
	}
	s.signed[k] = o
	for len(s.signedOrder) > maxSignedKept {
		delete(s.signed, s.signedOrder[0])
		s.signedOrder = slices.Delete(s.signedOrder, 0, 1)
	}
}

// SignedPush is the push statement this node signed for substream sub of
// segment seq of chain (it queued that push for the substream's
// children), if it still keeps it: a relay's rebuttal of an accusation
// that the push never came. A node that never sent the push has none.
func (s *Sender) SignedPush(chain content.VideoID, seq uint64, sub int) (*btr.Output, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.signed[signedKey{chain, seq, sub}]
	return o, ok
}

// childrenFor are the route's children for segment seq: its children and,
// from each standby child's From on (its parent excluded), that child.
func childrenFor(r wire.LiveRoute, seq uint64) []wire.Source {
	out := r.Children
	for _, sb := range r.Standby {
		if sb.From != 0 && seq >= sb.From && !slices.ContainsFunc(out, func(c wire.Source) bool { return c.NodeID == sb.Child.NodeID }) {
			out = append(slices.Clip(out), sb.Child)
		}
	}
	return out
}

// enqueue adds q, dropping the oldest if the queue holds limit already.
func (c *child) enqueue(q queued, limit int) (dropped queued, didDrop bool) {
	c.mu.Lock()
	if len(c.queue) >= limit {
		dropped, didDrop = c.queue[0], true
		c.queue = slices.Delete(c.queue, 0, 1)
	}
	c.queue = append(c.queue, q)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return dropped, didDrop
}

func (c *child) pop() (queued, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return queued{}, "", false
	}
	q := c.queue[0]
	c.queue = slices.Delete(c.queue, 0, 1)
	return q, c.addr, true
}

// run is one child's worker: it sends the child's queue in order, one push
// at a time, holding a parallelism token per push.
func (s *Sender) run(c *child) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-c.stop:
			return
		case <-c.wake:
		}
		for {
			q, addr, ok := c.pop()
			if !ok {
				break
			}
			if wait := time.Until(q.notBefore); !q.notBefore.IsZero() && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
					return
				case <-c.stop:
					t.Stop()
					return
				}
			}
			select {
			case s.sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			case <-c.stop:
				return
			}
			n, err := s.push(addr, &q)
			<-s.sem
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				s.log.Debug("live push failed", "child", c.id, "addr", addr, "chain", q.push.Chain, "seq", q.push.Seq, "err", err)
				if s.cfg.Hooks.Failed != nil {
					s.cfg.Hooks.Failed(c.id, err)
				}
				continue
			}
			if s.cfg.Hooks.Pushed != nil {
				s.cfg.Hooks.Pushed(c.id, n, time.Since(q.at))
			}
		}
	}
}

// push sends one push to the child at base and returns the body size.
func (s *Sender) push(base string, q *queued) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PushTimeout)
	defer cancel()
	body := q.push.Encode()
	if err := PushWithStatements(ctx, s.cfg.HTTP, s.cfg.Signer, base, body, q.statements); err != nil {
		return 0, err
	}
	return len(body), nil
}

// PushTo POSTs one encoded push to the node at base (a URL such as
// "http://127.0.0.1:7001"), signed by signer, and reads the answer. A
// refusal is a *wire.APIError-like error carrying the child's message.
func PushTo(ctx context.Context, hc *http.Client, signer *wire.NodeSigner, base string, body []byte) error {
	return PushWithStatements(ctx, hc, signer, base, body, "")
}

// PushWithStatements is PushTo with the wire.HeaderPushStatements value
// statements ("" sends none).
func PushWithStatements(ctx context.Context, hc *http.Client, signer *wire.NodeSigner, base string, body []byte, statements string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.PathLivePush, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("live push to %s: %w", base, err)
	}
	req.Header.Set("Content-Type", wire.ContentTypeLivePush)
	if statements != "" {
		req.Header.Set(wire.HeaderPushStatements, statements)
	}
	signer.SignRequest(req, body)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("live push to %s: %w", base, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return &PushError{Status: resp.StatusCode, Message: string(bytes.TrimSpace(msg))}
	}
	return nil
}

// PushError is a child's refusal of a push.
type PushError struct {
	Status  int
	Message string
}

func (e *PushError) Error() string {
	return fmt.Sprintf("live push refused: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Close stops every child's worker (pushes in flight are cancelled) and
// waits for them. The sender sends nothing after Close.
func (s *Sender) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
