package fanout

import (
	"context"
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

// Coordinator is what a receiver asks the coordinator:
// *wire.CoordinatorClient satisfies it.
type Coordinator interface {
	// LiveGenesis returns a chain's signed genesis bytes.
	LiveGenesis(ctx context.Context, chain content.VideoID) ([]byte, error)
	// LiveEntries returns signed entries of chain from seq on.
	LiveEntries(ctx context.Context, chain content.VideoID, from uint64, waitMS int) ([][]byte, error)
}

// ReceiverConfig configures NewReceiver.
type ReceiverConfig struct {
	Coordinator Coordinator // required: genesis (once per chain) and entries to fill gaps
	// Window keeps the verified shards; nil is NewWindow(0, 0).
	Window *Window
	Log    *slog.Logger
	// Now is the clock push signatures are checked against (nil: time.Now).
	Now func() time.Time
}

// Receiver takes pushes for a relay or an edge: it accepts one only from
// the assigned parent of each substream it carries, verifies the entry
// (signature, chaining) and every shard against it before keeping
// anything, and keeps the shards in its Window. The owner forwards what
// Receive returns. Safe for concurrent use.
type Receiver struct {
	coord Coordinator
	win   *Window
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	version int64
	routes  []wire.LiveRoute
	forks   []content.ForkProof
	proofs  []*btr.ProofOfMisbehaviour
	// proofsTaken is how many of proofs NewProofs handed out already.
	proofsTaken int

	// chainMu serialises the verification and append of each chain's
	// entries (and the one genesis fetch), so pushes of two substreams for
	// one segment do not race their appends.
	chainMu sync.Mutex
	locks   map[content.VideoID]*sync.Mutex
}

// coordinatorTimeout bounds the coordinator calls one push may make (the
// genesis once per chain, entries to fill a gap).
const coordinatorTimeout = 5 * time.Second

// maxForks bounds the fork proofs kept (one is enough to act on).
const maxForks = 16

// NewReceiver makes a receiver with no routes (it refuses every push until
// SetLive gives it some).
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Coordinator == nil {
		return nil, errors.New("fanout receiver: a coordinator client is required (it serves the chains' genesis)")
	}
	if cfg.Window == nil {
		cfg.Window = NewWindow(0, 0)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Receiver{coord: cfg.Coordinator, win: cfg.Window, log: cfg.Log, now: cfg.Now, version: -1, locks: map[content.VideoID]*sync.Mutex{}}, nil
}

// Window is the receiver's window of verified shards.
func (r *Receiver) Window() *Window { return r.win }

// SetLive applies a heartbeat answer's live set if it is newer than the
// one held; it reports whether it did. nil changes nothing.
func (r *Receiver) SetLive(set *wire.LiveSet) bool {
	if set == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set.Version <= r.version {
		return false
	}
	r.version, r.routes = set.Version, slices.Clone(set.Routes)
	return true
}

// Reregistered makes the next live set apply whatever its Version: call it
// when the node (re)registers, since a restarted coordinator numbers its
// sets from the start again. The routes held stay until that set arrives.
func (r *Receiver) Reregistered() {
	r.mu.Lock()
	r.version = -1
	r.mu.Unlock()
}

// Routes are the routes held now.
func (r *Receiver) Routes() []wire.LiveRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.routes)
}

// Forks are the fork proofs this receiver caught (each checks against its
// chain's genesis).
func (r *Receiver) Forks() []content.ForkProof {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.forks)
}

// Proofs are the commission proofs this receiver built against parents
// whose pushed shards failed verification (each their own signed push
// statement; ProofOfMisbehaviour.Check with a RelayReexecutor decides it).
func (r *Receiver) Proofs() []*btr.ProofOfMisbehaviour {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.proofs)
}

// NewProofs returns the proofs built since the last call (oldest first):
// what the owner posts to the relays' judge, each once.
func (r *Receiver) NewProofs() []*btr.ProofOfMisbehaviour {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.proofs[min(r.proofsTaken, len(r.proofs)):])
	r.proofsTaken = len(r.proofs)
	return out
}

// maxProofs bounds the commission proofs kept (one is enough to act on;
// past it the oldest is dropped, so a later culprit is still proven).
const maxProofs = 16

// ProveCommission keeps a commission proof for each substream of a refused push
// whose shards do not verify (or are not the substream's), when the
// sender's signed statement for that substream names exactly those shards.
// It returns how many it kept.
// HandlePush calls it on every refusal of a push's shards; header is the
// push's wire.HeaderPushStatements.
func (r *Receiver) ProveCommission(sender wire.NodeID, p *Push, header string) int {
	if header == "" {
		return 0
	}
	chain := r.win.Chain(p.Chain)
	if chain == nil {
		return 0
	}
	g := chain.Genesis()
	e, err := content.DecodeLiveEntry(p.Entry, g, p.Chain)
	if err != nil || e.Seq != p.Seq {
		return 0 // a bad entry, not a bad relaying of a good one
	}
	key, err := btr.ParseNodeKey(string(sender))
	if err != nil {
		return 0
	}
	stmts := map[int]*btr.Output{}
	for i, part := range strings.Split(header, ",") {
		if i >= wire.MaxPushStatements {
			break
		}
		raw, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			continue
		}
		o, err := btr.DecodeOutput(raw)
		if err != nil || o.Replica != key || o.Task != btr.RelayTask(p.Chain, p.Seq, 0, p.Entry).WithRecipe(o.Recipe) {
			continue
		}
		if j, ok := btr.RelaySubstream(o.Task); ok {
			stmts[j] = o
		}
	}
	kept := 0
	for _, route := range r.Routes() {
		if route.Chain != p.Chain || route.Parent != sender {
			continue
		}
		var mine []*content.ShardMessage
		for _, sh := range p.Shards {
			if slices.Contains(route.Indices, sh.Index) {
				mine = append(mine, sh)
			}
		}
		o := stmts[route.Substream]
		if o == nil || CheckRelayPush(g, e, mine, route.Indices) == nil || btr.PushDigest(mine) != o.Digest {
			continue
		}
		r.mu.Lock()
		if len(r.proofs) >= maxProofs {
			r.proofs = slices.Delete(r.proofs, 0, 1)
			r.proofsTaken = max(r.proofsTaken-1, 0)
		}
		r.proofs = append(r.proofs, &btr.ProofOfMisbehaviour{Kind: btr.Commission, A: o})
		kept++
		r.mu.Unlock()
	}
	if kept > 0 {
		r.log.Warn("live push refused: the parent's own signed push statement proves the commission; keeping the proof", "parent", sender, "chain", p.Chain, "seq", p.Seq)
	}
	return kept
}

// Received is an accepted push: its entry and its verified shards, as a
// Segment the owner hands its Sender to forward.
type Received struct {
	Sender  wire.NodeID
	Entry   *content.LiveEntry
	Segment Segment
}

// Receive checks and keeps one push from sender (whose signature the
// caller verified: HandlePush does). On any error nothing of the push is
// kept (a fork's proof excepted); errors wrap ErrNotParent, ErrRejected,
// ErrFork, ErrStale or ErrUnavailable.
func (r *Receiver) Receive(ctx context.Context, sender wire.NodeID, p *Push) (Received, error) {
	if err := CheckSender(r.Routes(), sender, p); err != nil {
		return Received{}, err
	}
	lock := r.chainLock(p.Chain)
	lock.Lock()
	defer lock.Unlock()
	chain, err := r.chain(ctx, p.Chain)
	if err != nil {
		return Received{}, err
	}
	g := chain.Genesis()
	e, err := content.DecodeLiveEntry(p.Entry, g, p.Chain)
	if err != nil {
		return Received{}, fmt.Errorf("%w: entry: %v", ErrRejected, err)
	}
	if e.Seq != p.Seq {
		return Received{}, fmt.Errorf("%w: the push names segment %d, its entry is %d", ErrRejected, p.Seq, e.Seq)
	}
	if head := chain.Head(); head != nil && e.Seq+uint64(r.win.Segments()) <= head.Seq {
		return Received{}, fmt.Errorf("%w: segment %d is %d behind the head %d; this node keeps %d", ErrStale, e.Seq, head.Seq-e.Seq, head.Seq, r.win.Segments())
	}
	if err := VerifyPushShards(g, e, p.Shards); err != nil {
		return Received{}, err
	}
	if _, err = r.append(ctx, chain, e); err != nil {
		return Received{}, err
	}
	stored := make([]StoredShard, len(p.Shards))
	for i, sh := range p.Shards {
		// The push's bytes are the request body: the window keeps one
		// fresh encoding per shard, and the message it serves from aliases
		// it (one copy of the data, not two).
		enc := sh.Encode()
		own, err := content.DecodeShardMessage(enc)
		if err != nil {
			return Received{}, fmt.Errorf("%w: shard %d re-encoding: %v", ErrRejected, i, err) // cannot happen: it decoded once
		}
		stored[i] = StoredShard{Msg: own, Encoded: enc}
	}
	r.win.put(p.Chain, e.Seq, stored)
	seg := Segment{Chain: p.Chain, Seq: e.Seq, Entry: p.Entry, Shards: make([]*content.ShardMessage, len(stored))}
	for i, s := range stored {
		seg.Shards[i] = s.Msg
	}
	seg.Entry = slices.Clone(p.Entry)
	return Received{Sender: sender, Entry: e, Segment: seg}, nil
}

func (r *Receiver) chainLock(id content.VideoID) *sync.Mutex {
	r.chainMu.Lock()
	defer r.chainMu.Unlock()
	l := r.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		r.locks[id] = l
	}
	return l
}

// chain returns the window's view of id, fetching and verifying its
// genesis from the coordinator the first time. Called under id's lock.
func (r *Receiver) chain(ctx context.Context, id content.VideoID) (*content.LiveChain, error) {
	if c := r.win.Chain(id); c != nil {
		return c, nil
	}
	b, err := r.coord.LiveGenesis(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: genesis of chain %s from the coordinator: %v", ErrUnavailable, id, err)
	}
	g, err := content.DecodeLiveGenesis(b)
	if err != nil {
		return nil, fmt.Errorf("%w: the coordinator's genesis of chain %s: %v", ErrUnavailable, id, err)
	}
	if g.ID() != id {
		return nil, fmt.Errorf("%w: the coordinator's genesis hashes to %s, not chain %s", ErrUnavailable, g.ID(), id)
	}
	c := content.NewLiveChain(g)
	r.win.setChain(c)
	return c, nil
}

// append adds e to chain. A gap (e ahead of head+1, a dropped push) is
// filled from the coordinator's entries when it is within the window;
// otherwise, or if that fails, the view restarts at e (it is trusted on
// its signature, as any node joining mid-broadcast does). It returns the
// view e is in.
func (r *Receiver) append(ctx context.Context, chain *content.LiveChain, e *content.LiveEntry) (*content.LiveChain, error) {
	err := chain.Append(e)
	if err == nil {
		return chain, nil
	}
	var fork *content.LiveForkError
	if errors.As(err, &fork) {
		r.mu.Lock()
		if len(r.forks) < maxForks {
			r.forks = append(r.forks, fork.Proof)
		}
		r.mu.Unlock()
		r.log.Warn("live fork: the publisher signed two different entries for one segment; keeping the proof", "chain", e.Chain, "seq", e.Seq)
		return nil, fmt.Errorf("%w: %v", ErrFork, err)
	}
	head := chain.Head()
	if !errors.Is(err, content.ErrLiveOutOfOrder) || head == nil || e.Seq <= head.Seq+1 {
		return nil, fmt.Errorf("%w: %v", ErrStale, err)
	}
	// e is ahead of the head: fetch the missing entries.
	if gap := e.Seq - head.Seq - 1; gap < uint64(r.win.Segments()) {
		if r.fillGap(ctx, chain, head.Seq+1, e.Seq) == nil {
			if err := chain.Append(e); err == nil {
				return chain, nil
			} else if errors.As(err, &fork) {
				return r.append(ctx, chain, e)
			}
		}
	}
	r.log.Info("live chain view restarts after a gap", "chain", e.Chain, "head", head.Seq, "seq", e.Seq)
	fresh := content.NewLiveChain(chain.Genesis())
	if err := fresh.Append(e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	r.win.setChain(fresh)
	return fresh, nil
}

// fillGap appends the coordinator's entries from..to-1.
func (r *Receiver) fillGap(ctx context.Context, chain *content.LiveChain, from, to uint64) error {
	raw, err := r.coord.LiveEntries(ctx, chain.ID(), from, 0)
	if err != nil {
		return err
	}
	for _, b := range raw {
		e, err := content.DecodeLiveEntry(b, chain.Genesis(), chain.ID())
		if err != nil {
			return err
		}
		if e.Seq >= to {
			return nil
		}
		if err := chain.Append(e); err != nil {
			return err
		}
	}
	if h := chain.Head(); h == nil || h.Seq+1 != to {
		return fmt.Errorf("the coordinator holds entries only up to %v", h)
	}
	return nil
}

// StatusOf is the HTTP status a refusal answers with.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotParent):
		return http.StatusForbidden
	case errors.Is(err, ErrBadPush):
		return http.StatusBadRequest
	case errors.Is(err, ErrRejected):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrFork), errors.Is(err, ErrStale):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ErrUnsigned wraps a push whose node signature is missing, stale or bad.
var ErrUnsigned = errors.New("push not signed by its sender")

// ReadPush authenticates and decodes one POST wire.PathLivePush request:
// the node signature headers are checked before the body is read, the body
// is read up to MaxPushBytes, and its signature and freshness are verified
// (wire.NodeRequestMaxSkew against now). It returns the sender and push.
func ReadPush(req *http.Request, now time.Time) (wire.NodeID, *Push, error) {
	auth, err := wire.ParseNodeRequestAuth(req.Header)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	if err := auth.CheckFresh(now); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	if req.ContentLength > MaxPushBytes {
		return "", nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrBadPush, req.ContentLength, MaxPushBytes)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxPushBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("%w: reading the body: %v", ErrBadPush, err)
	}
	if len(body) > MaxPushBytes {
		return "", nil, fmt.Errorf("%w: more than the %d byte limit", ErrBadPush, MaxPushBytes)
	}
	if err := auth.Verify(req.Method, req.URL.Path, body); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	p, err := DecodePush(body)
	if err != nil {
		return "", nil, err
	}
	return auth.Node, p, nil
}

// HandlePush serves POST wire.PathLivePush: ReadPush, then Receive. It
// answers 204 on success and returns the accepted push (ok); on refusal
// it answers with StatusOf's status and a message saying why.
func (r *Receiver) HandlePush(w http.ResponseWriter, req *http.Request) (Received, error) {
	if req.Method != http.MethodPost {
		wire.WriteError(w, http.StatusMethodNotAllowed, "POST a live push (%s) to %s", wire.ContentTypeLivePush, wire.PathLivePush)
		return Received{}, fmt.Errorf("%w: method %s", ErrBadPush, req.Method)
	}
	sender, p, err := ReadPush(req, r.now())
	if err != nil {
		status := StatusOf(err)
		if errors.Is(err, ErrUnsigned) {
			status = http.StatusUnauthorized
		}
		wire.WriteError(w, status, "%v", err)
		return Received{}, err
	}
	// Not req.Context(): under fasthttp (an edge's hot listener) it is the
	// recycled RequestCtx, which an HTTP client's cleanup may touch after
	// this handler returned. The coordinator calls get their own bound.
	ctx, cancel := context.WithTimeout(context.Background(), coordinatorTimeout)
	defer cancel()
	got, err := r.Receive(ctx, sender, p)
	if err != nil {
		if errors.Is(err, ErrRejected) {
			r.ProveCommission(sender, p, req.Header.Get(wire.HeaderPushStatements))
		}
		wire.WriteError(w, StatusOf(err), "%v", err)
		return Received{}, err
	}
	w.WriteHeader(http.StatusNoContent)
	return got, nil
}
