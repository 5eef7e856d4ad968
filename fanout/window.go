package fanout

import (
	"slices"
	"sync"

	"github.com/swarmcast/swarmcast/content"
)

// Window defaults.
const (
	// DefaultWindowSegments is how many recent segments per chain a node
	// keeps: 30 one-second segments, beyond any player's live hold-back.
	DefaultWindowSegments = 30
	// DefaultWindowChains bounds the chains a node keeps at once; the one
	// pushed to least recently goes first.
	DefaultWindowChains = 32
)

// Window keeps the verified shards of the last W segments of each chain in
// memory, with the chain view they verified against, so relays and edges
// serve them on the shard route. Safe for concurrent use. Memory is bounded
// by chains × W × (renditions × pushed indices) shards.
type Window struct {
	segments, chains int

	mu   sync.RWMutex
	held map[content.VideoID]*windowChain
	tick uint64
}

type windowChain struct {
	chain *content.LiveChain
	segs  map[uint64]map[shardKey]StoredShard
	used  uint64 // Window.tick of the last Put
}

type shardKey struct{ rendition, index int }

// StoredShard is a verified shard as the window serves it.
type StoredShard struct {
	Msg     *content.ShardMessage
	Encoded []byte // Msg.Encode(): the shard route's body
}

// NewWindow keeps segments per chain (≤ 0: DefaultWindowSegments) of at
// most chains chains (≤ 0: DefaultWindowChains).
func NewWindow(segments, chains int) *Window {
	if segments <= 0 {
		segments = DefaultWindowSegments
	}
	if chains <= 0 {
		chains = DefaultWindowChains
	}
	return &Window{segments: segments, chains: chains, held: map[content.VideoID]*windowChain{}}
}

// Segments is W, the segments kept per chain.
func (w *Window) Segments() int { return w.segments }

// Chain is the view of chain id the window's shards verified against.
func (w *Window) Chain(id content.VideoID) *content.LiveChain {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if c := w.held[id]; c != nil {
		return c.chain
	}
	return nil
}

// Manifest is the manifest view of a held chain (nil if none): what an
// edge's manifest lookup answers for a chain id.
func (w *Window) Manifest(id content.VideoID) *content.Manifest {
	if c := w.Chain(id); c != nil {
		return c.Manifest()
	}
	return nil
}

// setChain makes c the view of its chain, dropping any earlier view's
// shards (they verified against another view).
func (w *Window) setChain(c *content.LiveChain) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick++
	w.held[c.ID()] = &windowChain{chain: c, segs: map[uint64]map[shardKey]StoredShard{}, used: w.tick}
	w.evictChainsLocked(c.ID())
}

// put keeps verified shards of segment seq of chain id (whose view holds
// seq's entry) and forgets segments W or more behind the chain's head.
func (w *Window) put(id content.VideoID, seq uint64, shards []StoredShard) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.held[id]
	if c == nil {
		return
	}
	w.tick++
	c.used = w.tick
	seg := c.segs[seq]
	if seg == nil {
		seg = map[shardKey]StoredShard{}
		c.segs[seq] = seg
	}
	for _, s := range shards {
		seg[shardKey{s.Msg.Rendition, s.Msg.Index}] = s
	}
	if head := c.chain.Head(); head != nil && head.Seq+1 > uint64(w.segments) {
		floor := head.Seq + 1 - uint64(w.segments)
		for s := range c.segs {
			if s < floor {
				delete(c.segs, s)
			}
		}
		c.chain.Trim(floor)
	}
}

// evictChainsLocked drops the least recently pushed chains beyond the
// bound, never keep.
func (w *Window) evictChainsLocked(keep content.VideoID) {
	for len(w.held) > w.chains {
		var oldest content.VideoID
		var at uint64 = 1<<64 - 1
		for id, c := range w.held {
			if id != keep && c.used < at {
				oldest, at = id, c.used
			}
		}
		delete(w.held, oldest)
	}
}

// Shard returns a held shard's encoded message.
func (w *Window) Shard(ref content.ShardRef) (StoredShard, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	c := w.held[ref.Video]
	if c == nil || ref.Segment < 0 {
		return StoredShard{}, false
	}
	s, ok := c.segs[uint64(ref.Segment)][shardKey{ref.Rendition, ref.Shard}]
	return s, ok
}

// Indices lists the shard indices held of one segment's rendition, sorted.
func (w *Window) Indices(chain content.VideoID, rendition int, seq uint64) []int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	c := w.held[chain]
	if c == nil {
		return nil
	}
	var out []int
	for k := range c.segs[seq] {
		if k.rendition == rendition {
			out = append(out, k.index)
		}
	}
	slices.Sort(out)
	return out
}

// HeldSegments lists the segments held of chain, oldest first.
func (w *Window) HeldSegments(chain content.VideoID) []uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	c := w.held[chain]
	if c == nil {
		return nil
	}
	out := make([]uint64, 0, len(c.segs))
	for s := range c.segs {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Chains lists the chain ids held.
func (w *Window) Chains() []content.VideoID {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]content.VideoID, 0, len(w.held))
	for id := range w.held {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b content.VideoID) int { return slices.Compare(a[:], b[:]) })
	return out
}
