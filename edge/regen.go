package edge

import (
	"errors"
	"fmt"
	"sync"

	"github.com/swarmcast/swarmcast/content"
)

// An edge that holds at least k shards of a segment holds the whole segment:
// it can rebuild the ciphertext and compute any of the n_max shards, with
// its inclusion proof, exactly as the origin would. Serving those
// regenerated shards lets other edges fill their placement from it instead
// of from the origin, which is what keeps the origin's share near zero once
// one viewer has watched a segment.
//
// Regenerated shards are not stored or reported in the inventory (they
// cost no disk); prefetching edges find such holders in lookups by their
// shard count (see completeHolder).

// regenCacheSegments bounds the rebuilt segments kept in memory (each is
// n_max shards of one segment, ~4x the segment).
const regenCacheSegments = 16

// regenCache keeps the shards and Merkle leaves of recently rebuilt
// segments, least recently used evicted first.
type regenCache struct {
	mu      sync.Mutex
	entries map[content.SegmentRef]*regenEntry
	order   []content.SegmentRef // least recently used first
}

type regenEntry struct {
	shards [][]byte
	leaves []content.Hash
}

func (c *regenCache) get(k content.SegmentRef) *regenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.entries[k]
	if ent != nil {
		c.touchLocked(k)
	}
	return ent
}

func (c *regenCache) put(k content.SegmentRef, ent *regenEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[content.SegmentRef]*regenEntry)
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= regenCacheSegments {
		oldest := c.order[0]
		c.order = c.order[1:]
		delete(c.entries, oldest)
	}
	c.entries[k] = ent
	c.touchLocked(k)
}

func (c *regenCache) touchLocked(k content.SegmentRef) {
	for i, o := range c.order {
		if o == k {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.order = append(c.order, k)
}

// regenerate builds the ShardMessage for k from the shards of its segment
// this edge holds; errNotHeld if it holds fewer than k of them.
func (e *Edge) regenerate(k content.ShardRef) ([]byte, error) {
	m := e.manifest(k.Video)
	if m == nil || k.Shard >= m.Params.NMax {
		return nil, errNotHeld
	}
	sk := k.SegmentRef
	if ent := e.regen.get(sk); ent != nil {
		return e.regenMessage(m, k, ent), nil
	}
	var have []int
	e.mu.Lock()
	for i := 0; i < m.Params.NMax; i++ {
		if _, ok := e.inv.held[sk.Shard(i)]; ok {
			have = append(have, i)
		}
	}
	e.mu.Unlock()
	if len(have) < m.Params.K {
		return nil, errNotHeld
	}
	var shards []content.Shard
	for _, i := range have {
		b, err := e.readShard(sk.Shard(i))
		if err != nil {
			continue // evicted meanwhile
		}
		msg, err := content.DecodeShardMessage(b)
		if err != nil {
			continue
		}
		shards = append(shards, msg.Shard)
		if len(shards) == m.Params.K {
			break
		}
	}
	// Rebuild verifies every shard against the manifest, so a corrupted
	// cache file can never turn into a regenerated shard; the ones it names
	// bad are dropped and fetched again.
	ct, bad, err := content.Rebuild(m, k.Rendition, k.Segment, shards)
	for _, i := range bad {
		e.dropCorrupt(sk.Shard(i), errors.New("fails verification against the manifest"))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotHeld, err)
	}
	all, err := content.EncodeShards(m.Params, ct)
	if err != nil {
		return nil, err
	}
	ent := &regenEntry{shards: all, leaves: content.ShardLeaves(all)}
	e.regen.put(sk, ent)
	e.metrics.regenerated.Inc()
	return e.regenMessage(m, k, ent), nil
}

func (e *Edge) regenMessage(m *content.Manifest, k content.ShardRef, ent *regenEntry) []byte {
	msg := content.ShardMessage{Video: k.Video, Rendition: k.Rendition, Segment: k.Segment,
		Shard: content.Shard{Index: k.Shard, Data: ent.shards[k.Shard], Proof: content.InclusionProof(ent.leaves, k.Shard)}}
	return msg.Encode()
}
