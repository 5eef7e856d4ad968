package edge

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/wire"
)

// Live serving (docs/LIVE.md): an edge is a leaf of a chain's substream
// trees. Its assigned parent pushes each segment's shards of the edge's
// substreams; the fanout.Receiver verifies the entry and every shard
// before it keeps them in a memory window, and the shard route (the hot
// path included) serves them like stored shards: verified before each
// receipt is signed, order limits taken, the upload cap applied. The
// window's chain view is the manifest the edge's lookup finds for a chain
// id, so receipts and orders for live shards are the VoD ones.
type edgeLive struct {
	recv *fanout.Receiver
	// watch names parents whose pushes are overdue (relays under BTR).
	watch *fanout.ParentMonitor

	mu       sync.Mutex
	watching []content.VideoID // chains the edge's players watch now (SetLiveWatching)
	// seen is when the built-in player last served a segment of each chain
	// (NoteLiveWatched); a chain counts as watched for liveWatchedTTL.
	seen map[content.VideoID]time.Time
	// receipts are the receipts signed over window shards, each for the
	// exact bytes it was signed over (the window's immutable encoding), so
	// a hot live shard is signed once, as a hot stored one is.
	receipts map[content.ShardRef]liveReceipt
	accused  []fanout.Accused // newest overdue pushes named, oldest first
	// onPush is told every accepted push (OnLivePush); nil: nobody.
	onPush func(chain content.VideoID, seq uint64)
}

// OnLivePush sets f to be told of every push the edge accepted (verified
// and kept in its window), after it is kept: the edge's built-in player
// (viewer.Viewer.LivePushLanded) starts that segment's fetch then instead
// of waiting a fixed grace for the push. f must not block.
func (e *Edge) OnLivePush(f func(chain content.VideoID, seq uint64)) {
	e.live.mu.Lock()
	e.live.onPush = f
	e.live.mu.Unlock()
}

type liveReceipt struct {
	body    *byte // &Encoded[0] of the window shard signed over
	size    int
	receipt string
}

// maxLiveReceipts bounds the receipt cache; beyond it the receipts of
// shards the window no longer holds are forgotten (and, if all are
// still held, every one: they are signed again on demand).
const maxLiveReceipts = 1 << 14

func newEdgeLive(e *Edge) (*edgeLive, error) {
	recv, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: e.cc, Log: e.log, Now: e.cfg.Now})
	if err != nil {
		return nil, err
	}
	return &edgeLive{recv: recv, watch: fanout.NewParentMonitor(e.cfg.Identity.Key, e.cc, recv.Window(), e.cfg.LiveParentTimeout),
		receipts: map[content.ShardRef]liveReceipt{}, seen: map[content.VideoID]time.Time{}}, nil
}

// liveCadenceInterval is how often the edge looks for overdue pushes (G,
// the watch's tick, in the bound R).
const liveCadenceInterval = 100 * time.Millisecond

// liveWatchLoop names overdue parent pushes until ctx ends: each is
// counted, logged and kept with the edge's signed accusation of the
// parent (LiveAccusations) for the relays' judge.
func (e *Edge) liveWatchLoop(ctx context.Context) {
	t := time.NewTicker(liveCadenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.checkLiveParents(ctx)
	}
}

func (e *Edge) checkLiveParents(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, a := range e.live.watch.Check(ctx, e.live.recv.Routes(), e.cfg.Now()) {
		e.metrics.liveParentMisses.Inc()
		e.log.Warn("live parent overdue: its push did not arrive by the segment cadence plus the slack; accusing it", "chain", a.Chain, "substream", a.Miss.Substream, "seq", a.Miss.Seq, "parent", a.Parent, "signed", a.Accusation != nil)
		if a.Accusation != nil {
			// To the relays' judge (the coordinator), which upholds it only
			// if the accused is this edge's parent there.
			if err := e.cc.PostRelayStatement(ctx, a.Chain, a.Accusation.Encode()); err != nil {
				e.log.Warn("live parent overdue: the relays' judge refused or missed the accusation", "chain", a.Chain, "parent", a.Parent, "seq", a.Miss.Seq, "err", err)
			}
		}
		e.live.mu.Lock()
		e.live.accused = append(e.live.accused, a)
		if len(e.live.accused) > maxLiveAccusations {
			e.live.accused = slices.Delete(e.live.accused, 0, len(e.live.accused)-maxLiveAccusations)
		}
		e.live.mu.Unlock()
	}
	// Commission proofs (a parent's own signed push over shards that failed
	// verification) go to the relays' judge, which re-executes the relaying
	// itself and excludes at once.
	for _, p := range e.live.recv.NewProofs() {
		if err := e.cc.PostRelayStatement(ctx, p.A.Chain, p.Encode()); err != nil {
			e.log.Warn("relays' judge: the commission proof against a live parent was refused or missed", "chain", p.A.Chain, "parent", p.Culprit(), "seq", p.A.Segment, "err", err)
			continue
		}
		e.log.Warn("relays' judge: posted the proof of a live parent's commission", "chain", p.A.Chain, "parent", p.Culprit(), "seq", p.A.Segment)
	}
}

// maxLiveAccusations bounds LiveAccusations.
const maxLiveAccusations = 64

// LiveProofs are the commission proofs the edge holds against live
// parents whose pushes failed verification (their own signed statements).
func (e *Edge) LiveProofs() []*btr.ProofOfMisbehaviour { return e.live.recv.Proofs() }

// LiveAccusations are the newest overdue pushes the edge named, oldest first.
func (e *Edge) LiveAccusations() []fanout.Accused {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	return slices.Clone(e.live.accused)
}

// LiveWindow is the edge's window of verified live shards.
func (e *Edge) LiveWindow() *fanout.Window { return e.live.recv.Window() }

// LiveRoutes are the edge's current live routes.
func (e *Edge) LiveRoutes() []wire.LiveRoute { return e.live.recv.Routes() }

// LiveForks are the fork proofs the edge caught in pushes.
func (e *Edge) LiveForks() []content.ForkProof { return e.live.recv.Forks() }

// SetLiveWatching sets the chains this edge's players watch, reported in
// every heartbeat (HeartbeatRequest.LiveWatching) so the coordinator puts
// the edge in their trees. The built-in player calls it as it starts and
// stops live channels.
func (e *Edge) SetLiveWatching(chains []content.VideoID) {
	e.live.mu.Lock()
	e.live.watching = slices.Clone(chains)
	e.live.mu.Unlock()
}

// liveWatchedTTL is how long a chain the built-in player served a segment
// of still counts as watched: a few heartbeats past a paused player, so
// the edge does not leave and rejoin the trees on every hiccup.
const liveWatchedTTL = 30 * time.Second

// NoteLiveWatched records that the edge's built-in player served a segment
// of chain now (wire it to viewer.Config.OnLiveServable): the chain is
// reported as watched for liveWatchedTTL.
func (e *Edge) NoteLiveWatched(chain content.VideoID) {
	now := e.cfg.Now()
	e.live.mu.Lock()
	e.live.seen[chain] = now
	e.live.mu.Unlock()
}

// liveWatching is every chain set by SetLiveWatching or noted within
// liveWatchedTTL, sorted; it forgets the expired ones.
func (e *Edge) liveWatching() []content.VideoID {
	now := e.cfg.Now()
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	out := slices.Clone(e.live.watching)
	for c, at := range e.live.seen {
		if now.Sub(at) > liveWatchedTTL {
			delete(e.live.seen, c)
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, content.CompareVideoIDs)
	return slices.Compact(out)
}

// applyLive takes the primary coordinator's newer live set.
func (e *Edge) applyLive(set *wire.LiveSet) {
	if e.live.recv.SetLive(set) {
		e.log.Info("live routes", "version", set.Version, "routes", len(set.Routes))
	}
}

// servePush takes a push from the edge's assigned parent (edges are
// leaves: nothing is forwarded).
func (e *Edge) servePush(w http.ResponseWriter, r *http.Request) {
	got, err := e.live.recv.HandlePush(w, r)
	switch {
	case err == nil:
		e.metrics.livePushes.WithLabelValues("ok").Inc()
		e.live.watch.Received(e.live.recv.Routes(), got, e.cfg.Now())
		e.live.mu.Lock()
		onPush := e.live.onPush
		e.live.mu.Unlock()
		if onPush != nil {
			onPush(got.Segment.Chain, got.Segment.Seq)
		}
	case errors.Is(err, fanout.ErrRejected):
		e.metrics.livePushes.WithLabelValues("rejected").Inc()
		e.metrics.verifyFailures.WithLabelValues("push").Inc()
	default:
		e.metrics.livePushes.WithLabelValues("refused").Inc()
		e.log.Debug("refused a live push", "err", err)
	}
}

// liveShard is a live shard's message bytes from the window and the
// receipt cached for them ("" if none yet).
func (e *Edge) liveShard(k content.ShardRef) ([]byte, string, bool) {
	st, ok := e.live.recv.Window().Shard(k)
	if !ok {
		return nil, "", false
	}
	e.live.mu.Lock()
	rc, cached := e.live.receipts[k]
	e.live.mu.Unlock()
	if cached && rc.size == len(st.Encoded) && rc.body == &st.Encoded[0] {
		return st.Encoded, rc.receipt, true
	}
	return st.Encoded, "", true
}

// cacheLiveReceipt keeps receipt for the window shard k whose bytes are body.
func (e *Edge) cacheLiveReceipt(k content.ShardRef, body []byte, receipt string) {
	st, ok := e.live.recv.Window().Shard(k)
	if !ok || len(body) == 0 || len(st.Encoded) != len(body) || &st.Encoded[0] != &body[0] {
		return
	}
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	if len(e.live.receipts) >= maxLiveReceipts {
		for rk := range e.live.receipts {
			if _, held := e.live.recv.Window().Shard(rk); !held {
				delete(e.live.receipts, rk)
			}
		}
		if len(e.live.receipts) >= maxLiveReceipts {
			clear(e.live.receipts)
		}
	}
	e.live.receipts[k] = liveReceipt{body: &body[0], size: len(body), receipt: receipt}
}

// liveManifest is the manifest view of a chain the edge holds shards of.
func (e *Edge) liveManifest(id content.VideoID) *content.Manifest {
	return e.live.recv.Window().Manifest(id)
}
