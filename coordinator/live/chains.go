package live

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Publish rejection reasons (the rejections metric's label).
const (
	rejectUnknownKey = "unknown_key"  // ingest authorize with a key no channel has
	rejectGenesis    = "bad_genesis"  // malformed, forged, other publisher or channel, key mismatch
	rejectForged     = "forged"       // an entry that does not decode or verify
	rejectOrder      = "out_of_order" // an entry that does not follow the head
	rejectFork       = "fork"         // a second, different entry at a held position
	rejectEnded      = "ended"        // an entry after the chain was sealed
	rejectOrigin     = "wrong_origin" // an origin acting for a chain or channel not its own
)

var rejectReasons = []string{rejectUnknownKey, rejectGenesis, rejectForged, rejectOrder, rejectFork, rejectEnded, rejectOrigin}

// liveBudget is a chain's playback budget (accounting's per-account bound
// on paid bytes): 1.5 × the top rendition's bytes over the longest chain,
// capped like any video's.
func liveBudget(g *content.LiveGenesis) int64 {
	var top float64
	for _, r := range g.Renditions {
		top = max(top, float64(r.Bandwidth)/8)
	}
	b := top * float64(g.TargetDuration) / 1e6 * content.MaxLiveSegments * 1.5
	if b > float64(coordinatordb.MaxPlaybackBudgetBytes) {
		return coordinatordb.MaxPlaybackBudgetBytes
	}
	return int64(b) + 4<<20
}

// StartChain registers a chain an origin starts for a channel whose key it
// authorized: the genesis must verify, be signed by that origin's key and
// name that channel, and the key must match its key id. Starting a chain
// seals the channel's previous one. Starting the same chain again is a
// no-op.
func (s *Service) StartChain(ctx context.Context, origin wire.NodeID, req wire.LiveStartRequest) (content.VideoID, error) {
	g, err := content.DecodeLiveGenesis(req.Genesis)
	if err != nil {
		s.metrics.rejections.WithLabelValues(rejectGenesis).Inc()
		return content.VideoID{}, wire.BadRequest("start chain: %v", err)
	}
	id := g.ID()
	if hex.EncodeToString(g.Publisher) != string(origin) {
		s.metrics.rejections.WithLabelValues(rejectGenesis).Inc()
		return id, wire.Errorf(http.StatusForbidden, "start chain: the genesis is signed by %x, not by origin %s that sends it; sign it with the origin's node key", []byte(g.Publisher), origin)
	}
	if len(req.Key) != len(content.ContentKey{}) || content.ContentKey(req.Key).ID() != g.KeyID {
		s.metrics.rejections.WithLabelValues(rejectGenesis).Inc()
		return id, wire.BadRequest("start chain: key is %d bytes or does not match the genesis key id; send the chain's 16-byte AES-128 key", len(req.Key))
	}
	chID := wire.ChannelID(g.Channel)
	s.mu.Lock()
	c := s.channels[chID]
	switch {
	case c == nil:
		s.mu.Unlock()
		s.metrics.rejections.WithLabelValues(rejectGenesis).Inc()
		return id, unknownChannel(chID)
	case c.authorizedBy != origin:
		s.mu.Unlock()
		s.metrics.rejections.WithLabelValues(rejectOrigin).Inc()
		return id, wire.Errorf(http.StatusForbidden, "start chain: origin %s did not authorize channel %s's stream key (POST %s first)", origin, chID, wire.PathLiveIngestAuth)
	}
	if old := s.chains[id]; old != nil {
		s.mu.Unlock()
		if old.rec.Channel != chID {
			return id, wire.Errorf(http.StatusConflict, "start chain %s: already registered for channel %s", id, old.rec.Channel)
		}
		return id, nil
	}
	prev := s.chains[c.rec.Chain]
	s.mu.Unlock()

	now := s.cfg.Now()
	if prev != nil && !prev.rec.Sealed {
		if err := s.db.SealLiveChain(ctx, prev.rec.Chain); err != nil {
			return id, err
		}
	}
	// The terms first: a chain is never listed without the key route's rule.
	if err := s.db.PutVideo(ctx, coordinatordb.VideoTerms{Video: id, Price: 0, PlaybackBudgetBytes: liveBudget(g)}, now); err != nil {
		return id, err
	}
	rec := coordinatordb.LiveChainRecord{Chain: id, Channel: chID, Origin: origin, Genesis: req.Genesis, Key: bytes.Clone(req.Key), Started: now}
	if err := s.db.PutLiveChain(ctx, rec, now); err != nil {
		return id, err
	}
	if err := s.db.SetLiveChannelState(ctx, chID, wire.ChannelPublishing, "", id, now); err != nil {
		return id, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev != nil {
		s.sealLocked(prev)
	}
	s.chains[id] = &chain{rec: rec, genesis: g, lc: content.NewLiveChain(g), wake: make(chan struct{})}
	c.rec.Chain, c.rec.State, c.rec.Error = id, wire.ChannelPublishing, ""
	s.countStatesLocked()
	s.treesChanged()
	s.log.Info("live chain started", "chain", id, "channel", chID, "origin", origin, "renditions", len(g.Renditions))
	return id, nil
}

// AppendEntry verifies a signed entry and appends it: decoded against the
// genesis, signed by the publisher, next after the head and naming it. A
// forged, reordered or forked entry is refused with nothing stored (a
// fork's proof is kept); an entry after the end is 410 Gone. Re-sending the
// held entry is a no-op.
func (s *Service) AppendEntry(ctx context.Context, origin wire.NodeID, id content.VideoID, raw []byte) error {
	s.mu.Lock()
	ch := s.chains[id]
	s.mu.Unlock()
	if ch == nil {
		return wire.NotFound("live chain %s is not registered; start it first (POST %s)", id, wire.PathLiveChains)
	}
	if ch.rec.Origin != origin {
		s.metrics.rejections.WithLabelValues(rejectOrigin).Inc()
		return wire.Errorf(http.StatusForbidden, "live chain %s is published by origin %s, not %s", id, ch.rec.Origin, origin)
	}
	e, err := content.DecodeLiveEntry(raw, ch.genesis, id)
	if err != nil {
		s.metrics.rejections.WithLabelValues(rejectForged).Inc()
		return wire.BadRequest("append entry: %v", err)
	}
	ch.appendMu.Lock()
	defer ch.appendMu.Unlock()
	s.mu.Lock()
	next := ch.base + uint64(len(ch.raw))
	sealed := ch.rec.Sealed
	var held []byte
	if e.Seq >= ch.base && e.Seq < next {
		held = ch.raw[e.Seq-ch.base]
	}
	s.mu.Unlock()
	if e.Seq < ch.base {
		// Older than the memory window: the stored entry is the held one.
		stored, err := s.db.LiveEntries(ctx, id, e.Seq, 1)
		if err != nil {
			return err
		}
		if len(stored) == 1 {
			held = stored[0]
		}
	}
	switch {
	case held != nil && bytes.Equal(held, raw):
		return nil
	case held != nil:
		prior, err := content.DecodeLiveEntry(held, ch.genesis, id)
		if err != nil {
			return fmt.Errorf("append entry %d: the held entry: %w", e.Seq, err)
		}
		proof := content.ForkProof{A: prior, B: e}
		if err := proof.Check(ch.genesis); err != nil {
			s.metrics.rejections.WithLabelValues(rejectForged).Inc()
			return wire.BadRequest("append entry %d: %v", e.Seq, err)
		}
		s.metrics.rejections.WithLabelValues(rejectFork).Inc()
		s.metrics.forks.Inc()
		if err := s.db.PutLiveFork(ctx, id, e.Seq, held, raw, s.cfg.Now()); err != nil {
			s.log.Warn("live: keep fork proof", "chain", id, "seq", e.Seq, "err", err)
		}
		s.log.Warn("live: fork proof", "chain", id, "seq", e.Seq, "origin", origin)
		return wire.Errorf(http.StatusConflict, "append entry %d: %v; the first entry stands and the proof is kept", e.Seq, content.ErrLiveFork)
	case sealed:
		s.metrics.rejections.WithLabelValues(rejectEnded).Inc()
		return wire.Errorf(http.StatusGone, "append entry %d: the channel's broadcast was ended; seal the chain", e.Seq)
	case e.Seq != next:
		s.metrics.rejections.WithLabelValues(rejectOrder).Inc()
		return wire.Errorf(http.StatusConflict, "append entry %d: %v: the next entry is %d", e.Seq, content.ErrLiveOutOfOrder, next)
	}
	want := content.Hash(id)
	if next > 0 {
		want = ch.lc.Head().Hash()
	}
	if e.Prev != want {
		s.metrics.rejections.WithLabelValues(rejectOrder).Inc()
		return wire.Errorf(http.StatusConflict, "append entry %d: %v: it names a predecessor other than entry %d held here", e.Seq, content.ErrLiveOutOfOrder, int64(next)-1)
	}
	if err := s.db.AppendLiveEntry(ctx, id, e.Seq, raw); err != nil {
		return err
	}
	if err := ch.lc.Append(e); err != nil {
		// Unreachable: the checks above are Append's, under appendMu.
		return err
	}
	s.mu.Lock()
	ch.raw = append(ch.raw, raw)
	if len(ch.raw) >= 2*s.cfg.MemoryEntries {
		// Keep the newest MemoryEntries (amortised: one copy per window).
		drop := len(ch.raw) - s.cfg.MemoryEntries
		ch.raw = slices.Clone(ch.raw[drop:])
		ch.base += uint64(drop)
		ch.lc.Trim(ch.base)
	}
	close(ch.wake)
	ch.wake = make(chan struct{})
	s.mu.Unlock()
	s.metrics.entries.Inc()
	s.relayOpen(id, e.Seq)
	if e.Seq == GoLiveSegments-1 {
		// Past go-live: an unwatched chain's trees go at the next build.
		s.treesDirty()
	}
	return nil
}

// errTooManyWaiters is a long-poll past Config.MaxWaiters.
var errTooManyWaiters = wire.Errorf(http.StatusServiceUnavailable, "too many entry long-polls waiting; retry in a second")

// Entries returns the signed entries of chain from seq on (at most
// wire.MaxLiveEntriesPerAnswer); when none is held yet it waits up to wait
// (≤ MaxWaitMS) for the next append, the seal or ctx's end.
func (s *Service) Entries(ctx context.Context, id content.VideoID, from uint64, wait time.Duration) ([][]byte, error) {
	s.mu.Lock()
	ch := s.chains[id]
	if ch == nil {
		s.mu.Unlock()
		return nil, wire.NotFound("live chain %s is not registered", id)
	}
	if from < ch.base {
		// Older than the memory window, so held: from the store.
		s.mu.Unlock()
		return s.db.LiveEntries(ctx, id, from, wire.MaxLiveEntriesPerAnswer)
	}
	out, wake, sealed := ch.entriesLocked(from), ch.wake, ch.rec.Sealed
	s.mu.Unlock()
	if len(out) > 0 || wait <= 0 || sealed {
		return out, nil
	}
	select {
	case s.waiters <- struct{}{}:
		defer func() { <-s.waiters }()
	default:
		return nil, errTooManyWaiters
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
			return nil, nil
		case <-wake:
		}
		s.mu.Lock()
		out, wake, sealed = ch.entriesLocked(from), ch.wake, ch.rec.Sealed
		s.mu.Unlock()
		if len(out) > 0 || sealed {
			return out, nil
		}
	}
}

// entriesLocked is the in-memory entries from seq (≥ base) on, bounded
// (s.mu held).
func (ch *chain) entriesLocked(from uint64) [][]byte {
	if from < ch.base || from-ch.base >= uint64(len(ch.raw)) {
		return nil
	}
	out := ch.raw[from-ch.base:]
	if len(out) > wire.MaxLiveEntriesPerAnswer {
		out = out[:wire.MaxLiveEntriesPerAnswer]
	}
	return out
}

// Genesis is a chain's signed genesis.
func (s *Service) Genesis(id content.VideoID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chains[id]
	if ch == nil {
		return nil, wire.NotFound("live chain %s is not registered", id)
	}
	return ch.rec.Genesis, nil
}

// key is a chain's content key.
func (s *Service) key(id content.VideoID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chains[id]
	if ch == nil {
		return nil, wire.NotFound("live chain %s is not registered", id)
	}
	return ch.rec.Key, nil
}

// IsChain reports whether id is a registered chain, and its head (-1
// before the first entry): lookups for a chain id ask the live subsystem.
func (s *Service) IsChain(id content.VideoID) (head int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chains[id]
	if ch == nil {
		return 0, false
	}
	return ch.headLocked(), true
}

// headLocked is the newest entry's Seq, -1 before the first (s.mu held).
func (ch *chain) headLocked() int64 { return int64(ch.base) + int64(len(ch.raw)) - 1 }

// Manifest is a chain's manifest view (for lookups' segment checks), or
// false.
func (s *Service) Manifest(id content.VideoID) (*content.Manifest, bool) {
	s.mu.Lock()
	ch := s.chains[id]
	s.mu.Unlock()
	if ch == nil {
		return nil, false
	}
	return ch.lc.Manifest(), true
}
