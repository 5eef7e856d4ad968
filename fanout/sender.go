package fanout

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
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
	// DefaultCatchUpSegments is how many of the newest segments a child
	// newly placed under this node gets at once (SenderConfig.CatchUp).
	DefaultCatchUpSegments = 3
	// catchUpRetries and catchUpRetryPause bound how long a catch-up push
	// is tried again while the child refuses it as not its parent's (403):
	// the parent and the child learn of the new route at their own
	// heartbeats, which may be a heartbeat interval apart.
	catchUpRetries    = 6
	catchUpRetryPause = 250 * time.Millisecond
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
	// CatchUp is how many of the newest segments Send was handed a child
	// newly placed in one of a chain's substreams under this node gets
	// at once, oldest first, with that substream's shards: a joining
	// player's first window (HOLD-BACK behind the live edge) is then held
	// by the carriers the lookup lists, not by the origin alone (the
	// join-time copies, docs/PERFORMANCE.md "Live at 50 viewers: issue
	// 11's targets together"). 0 is DefaultCatchUpSegments, < 0 none; at
	// most QueueSegments.
	CatchUp int
	Hooks   SenderHooks
	Log     *slog.Logger // nil: discard
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
	// recent are the newest segments Send was handed, per chain, by Seq
	// ascending (at most cfg.CatchUp): a new child's catch-up.
	recent   map[content.VideoID][]Segment
	recentAt map[content.VideoID]time.Time // when Send last kept one
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
	// catchUp marks a push of a segment sent before the child was placed
	// (SetRoutes): it does not count against the queue bound, and a
	// refusal as not the child's parent is tried again (catchUpRetries).
	catchUp bool
	push    Push
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
	switch {
	case cfg.CatchUp == 0:
		cfg.CatchUp = DefaultCatchUpSegments
	case cfg.CatchUp < 0:
		cfg.CatchUp = 0
	}
	cfg.CatchUp = min(cfg.CatchUp, cfg.QueueSegments)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		cfg: cfg, log: log, sem: make(chan struct{}, cfg.ParallelPushes),
		ctx: ctx, cancel: cancel,
		routes: map[content.VideoID][]wire.LiveRoute{}, children: map[wire.NodeID]*child{},
		signed: map[signedKey]*btr.Output{}, recent: map[content.VideoID][]Segment{}, recentAt: map[content.VideoID]time.Time{},
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
	before := s.routes
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
	s.catchUpLocked(before)
	now := time.Now()
	for chain, at := range s.recentAt {
		if _, ok := s.routes[chain]; !ok && now.Sub(at) > recentTTL {
			delete(s.recent, chain)
			delete(s.recentAt, chain)
		}
	}
}

// recentTTL is how long a chain nothing was sent of keeps its recent
// segments while it has no routes (a chain's first segments are sent
// before its trees exist: they are the trees' first catch-up).
const recentTTL = 30 * time.Second

// catchUpLocked queues, for every child placed in a substream it was not
// a child of in before (the routes until now), the recent segments with
// that substream's shards, oldest first, ahead of anything Send queues
// next. A child that holds them already (moved from another parent)
// accepts them again as duplicates; one whose chain view begins later
// refuses the older ones as stale: both cost bytes inside the trees only,
// except when this node is the origin and the child a new top relay. s.mu
// is held.
func (s *Sender) catchUpLocked(before map[content.VideoID][]wire.LiveRoute) {
	if s.cfg.CatchUp == 0 {
		return
	}
	for chain, routes := range s.routes {
		recent := s.recent[chain]
		if len(recent) == 0 {
			continue
		}
		// child → the routes it is newly a child in.
		placed := map[wire.NodeID][]wire.LiveRoute{}
		var order []wire.NodeID
		for _, r := range routes {
			for _, c := range r.Children {
				if childOf(before[chain], r.Substream, c.NodeID) {
					continue
				}
				if _, seen := placed[c.NodeID]; !seen {
					order = append(order, c.NodeID)
				}
				placed[c.NodeID] = append(placed[c.NodeID], r)
			}
		}
		for _, id := range order {
			c := s.children[id]
			if c == nil {
				continue
			}
			for _, seg := range recent {
				p, stmts := s.pushFor(seg, placed[id])
				if len(p.Shards) == 0 {
					continue
				}
				c.enqueue(queued{catchUp: true, push: p, statements: stmts, at: time.Now()}, s.cfg.QueueSegments)
			}
		}
	}
}

// childOf reports whether node is a child of substream sub in routes.
func childOf(routes []wire.LiveRoute, sub int, node wire.NodeID) bool {
	for _, r := range routes {
		if r.Substream == sub && slices.ContainsFunc(r.Children, func(c wire.Source) bool { return c.NodeID == node }) {
			return true
		}
	}
	return false
}

// pushFor is seg's push for a child of routes (one chain's): the shards of
// their substreams and, with a StatementKey, one signed statement per
// substream (kept for SignedPush; the one already signed for a substream
// and segment is reused). s.mu is held.
func (s *Sender) pushFor(seg Segment, routes []wire.LiveRoute) (Push, string) {
	p := Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry}
	var stmts []string
	for _, r := range routes {
		shards := routeShards(r, seg)
		if len(shards) == 0 {
			continue
		}
		p.Shards = append(p.Shards, shards...)
		if s.cfg.StatementKey != nil && len(stmts) < wire.MaxPushStatements {
			k := signedKey{seg.Chain, seg.Seq, r.Substream}
			o, ok := s.signed[k]
			if !ok {
				o = btr.SignPush(s.cfg.StatementKey, btr.RelayTask(seg.Chain, seg.Seq, r.Substream, seg.Entry), shards)
				s.keepSigned(k, o)
			}
			stmts = append(stmts, base64.RawURLEncoding.EncodeToString(o.Encode()))
		}
	}
	return p, strings.Join(stmts, ",")
}

// keepRecentLocked keeps seg among its chain's newest cfg.CatchUp
// segments (by Seq; a segment already kept is replaced). s.mu is held.
func (s *Sender) keepRecentLocked(seg Segment) {
	if s.cfg.CatchUp == 0 {
		return
	}
	rs := s.recent[seg.Chain]
	i, found := slices.BinarySearchFunc(rs, seg.Seq, func(a Segment, seq uint64) int { return cmp.Compare(a.Seq, seq) })
	if found {
		rs[i] = seg
	} else {
		rs = slices.Insert(rs, i, seg)
	}
	if len(rs) > s.cfg.CatchUp {
		rs = slices.Delete(rs, 0, len(rs)-s.cfg.CatchUp)
	}
	s.recent[seg.Chain] = rs
	s.recentAt[seg.Chain] = time.Now()
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
	s.keepRecentLocked(seg)
	// One push per child, even when it is a child in several substreams.
	perChild := map[wire.NodeID][]*content.ShardMessage{}
	stmts := map[wire.NodeID][]string{}
	var order []wire.NodeID
	for _, r := range s.routes[seg.Chain] {
		shards := routeShards(r, seg)
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

// enqueue adds q, dropping the oldest waiting segment if the queue holds
// limit already (catch-up pushes are neither counted nor dropped).
func (c *child) enqueue(q queued, limit int) (dropped queued, didDrop bool) {
	c.mu.Lock()
	if !q.catchUp {
		if live := slices.IndexFunc(c.queue, func(w queued) bool { return !w.catchUp }); live >= 0 &&
			len(c.queue)-countCatchUp(c.queue) >= limit {
			dropped, didDrop = c.queue[live], true
			c.queue = slices.Delete(c.queue, live, live+1)
		}
	}
	c.queue = append(c.queue, q)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return dropped, didDrop
}

// dropCatchUp discards the catch-up pushes still waiting.
func (c *child) dropCatchUp() {
	c.mu.Lock()
	c.queue = slices.DeleteFunc(c.queue, func(q queued) bool { return q.catchUp })
	c.mu.Unlock()
}

// countCatchUp is how many of queue are catch-up pushes.
func countCatchUp(queue []queued) int {
	n := 0
	for _, q := range queue {
		if q.catchUp {
			n++
		}
	}
	return n
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
			if !q.notBefore.IsZero() && !s.pause(c, time.Until(q.notBefore)) {
				return
			}
			if !s.acquire(c) {
				return
			}
			n, err := s.push(addr, &q)
			<-s.sem
			for try := 0; err != nil && q.catchUp && try < catchUpRetries && notYourParent(err); try++ {
				// The child has not heard of its new route yet.
				if !s.pause(c, catchUpRetryPause) || !s.acquire(c) {
					return
				}
				n, err = s.push(c.currentAddr(), &q)
				<-s.sem
			}
			if err != nil && q.catchUp && notYourParent(err) {
				// Still not its parent: the route changed again, or the
				// child never heard of it; the rest of its catch-up would
				// meet the same answer, and live pushes wait behind it.
				c.dropCatchUp()
			}
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

// pause waits d (nothing when d <= 0) and reports false if the sender or
// the child stopped meanwhile: the worker must return.
func (s *Sender) pause(c *child, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	case <-c.stop:
		return false
	}
}

// acquire takes a parallelism token (release it with <-s.sem) and reports
// false, holding none, if the sender or the child stopped first.
func (s *Sender) acquire(c *child) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	case <-s.ctx.Done():
		return false
	case <-c.stop:
		return false
	}
}

// notYourParent reports whether err is a child's refusal of a push from a
// node it does not (yet) have as its parent.
func notYourParent(err error) bool {
	var pe *PushError
	return errors.As(err, &pe) && pe.Status == http.StatusForbidden
}

// currentAddr is the child's base URL now.
func (c *child) currentAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
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

// routeShards is seg's shards that route r's substream carries (nil when
// none), in seg's order.
func routeShards(r wire.LiveRoute, seg Segment) []*content.ShardMessage {
	var shards []*content.ShardMessage
	for _, sh := range seg.Shards {
		if slices.Contains(r.Indices, sh.Index) {
			shards = append(shards, sh)
		}
	}
	return shards
}
