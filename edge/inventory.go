package edge

import (
	"cmp"
	"container/list"
	"maps"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// heldShard is what the inventory knows of one stored shard.
type heldShard struct {
	size     int64
	lastUsed uint64 // inventory tick of the last store or serve; higher is more recent
	assigned bool   // a fetch directive placed it (stored as .shard)
	dropped  bool   // a drop directive unassigned it: evicted before anything else
	// watchedUntil is when a shard kept from local watching expires; zero
	// if it was never watched. Only unassigned shards expire.
	watchedUntil time.Time
	// hot holds the file's bytes while the shard is in the edge's memory
	// cache (read-only); hotEl is its place in that cache's LRU order.
	hot   []byte
	hotEl *list.Element
	// receipt is the signed wire.HeaderReceipt value for hot, cached with it.
	receipt string
}

// inventory is the edge's decision core, free of I/O: which shards are
// held, which to evict to make room, which have expired, and which changes
// each coordinator has not acknowledged yet. The Edge holds its lock and
// performs the file operations it decides.
//
// Invariant: used == sum of held sizes <= capBytes.
type inventory struct {
	capBytes int64
	used     int64
	tick     uint64
	held     map[content.ShardRef]*heldShard
	// pending[c] is what coordinator c (index into the edge's coordinator
	// list) has not acknowledged: every coordinator hears every change,
	// each at its own pace, so one unreachable coordinator neither loses
	// nor delays another's deltas.
	pending []changes
}

// changes is one coordinator's unacknowledged inventory changes.
type changes struct {
	added   map[content.ShardRef]struct{} // held since the last acknowledged heartbeat
	removed map[content.ShardRef]struct{} // gone since the last acknowledged heartbeat
}

func newChanges() changes {
	return changes{added: make(map[content.ShardRef]struct{}), removed: make(map[content.ShardRef]struct{})}
}

// newInventory tracks deltas for coordinators coordinators (at least one).
func newInventory(capBytes int64, coordinators int) *inventory {
	inv := &inventory{
		capBytes: capBytes,
		held:     make(map[content.ShardRef]*heldShard),
		pending:  make([]changes, max(coordinators, 1)),
	}
	for c := range inv.pending {
		inv.pending[c] = newChanges()
	}
	return inv
}

// victims chooses the shards to evict so that size more bytes fit: dropped
// shards first, then the least recently used. ok is false if size cannot
// fit even in an empty store.
func (inv *inventory) victims(size int64, except content.ShardRef) (out []content.ShardRef, ok bool) {
	if size > inv.capBytes {
		return nil, false
	}
	need := inv.used + size - inv.capBytes
	if need <= 0 {
		return nil, true
	}
	type cand struct {
		k content.ShardRef
		h *heldShard
	}
	cands := make([]cand, 0, len(inv.held))
	for k, h := range inv.held {
		if k != except {
			cands = append(cands, cand{k, h})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.h.dropped != b.h.dropped {
			if a.h.dropped {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.h.lastUsed, b.h.lastUsed)
	})
	for _, c := range cands {
		if need <= 0 {
			break
		}
		out = append(out, c.k)
		need -= c.h.size
	}
	return out, need <= 0
}

// add records a newly stored shard; the caller has evicted the victims.
func (inv *inventory) add(k content.ShardRef, h *heldShard) {
	if old, ok := inv.held[k]; ok {
		inv.used -= old.size
	}
	inv.tick++
	h.lastUsed = inv.tick
	inv.held[k] = h
	inv.used += h.size
	for _, p := range inv.pending {
		delete(p.removed, k)
		p.added[k] = struct{}{}
	}
}

// remove forgets a shard.
func (inv *inventory) remove(k content.ShardRef) {
	h, ok := inv.held[k]
	if !ok {
		return
	}
	inv.used -= h.size
	delete(inv.held, k)
	for _, p := range inv.pending {
		delete(p.added, k)
		p.removed[k] = struct{}{}
	}
}

// touch marks a shard as just used.
func (inv *inventory) touch(k content.ShardRef) {
	if h, ok := inv.held[k]; ok {
		inv.touchHeld(h)
	}
}

// touchHeld is touch for a shard the caller has looked up already.
func (inv *inventory) touchHeld(h *heldShard) {
	inv.tick++
	h.lastUsed = inv.tick
}

// expired lists unassigned watched shards whose time is up.
func (inv *inventory) expired(now time.Time) []content.ShardRef {
	var out []content.ShardRef
	for k, h := range inv.held {
		if !h.assigned && !h.watchedUntil.IsZero() && !now.Before(h.watchedUntil) {
			out = append(out, k)
		}
	}
	return out
}

// delta is an inventory report taken for one heartbeat.
type delta struct {
	full           bool
	added, removed map[content.ShardRef]struct{}
}

// takeDelta hands out the changes to report to coordinator c and forgets
// them; if the heartbeat fails, restoreDelta puts them back. With full
// set, every held shard is reported as added.
func (inv *inventory) takeDelta(c int, full bool) delta {
	p := inv.pending[c]
	d := delta{full: full, added: p.added, removed: p.removed}
	if full {
		d.added = make(map[content.ShardRef]struct{}, len(inv.held))
		for k := range inv.held {
			d.added[k] = struct{}{}
		}
		d.removed = nil
	}
	inv.pending[c] = newChanges()
	return d
}

// restoreDelta merges a delta coordinator c did not acknowledge back;
// changes made since it was taken win.
func (inv *inventory) restoreDelta(c int, d delta) {
	if d.full {
		return // the caller registers again and takes a new full delta
	}
	p := inv.pending[c]
	for k := range d.added {
		if _, gone := p.removed[k]; !gone {
			if _, ok := inv.held[k]; ok {
				p.added[k] = struct{}{}
			}
		}
	}
	for k := range d.removed {
		if _, back := p.added[k]; !back {
			if _, ok := inv.held[k]; !ok {
				p.removed[k] = struct{}{}
			}
		}
	}
}

// shardSets groups keys by segment in a stable order.
func shardSets(keys map[content.ShardRef]struct{}) []wire.ShardSet {
	bySeg := make(map[content.SegmentRef][]int)
	for k := range keys {
		bySeg[k.SegmentRef] = append(bySeg[k.SegmentRef], k.Shard)
	}
	segs := slices.SortedFunc(maps.Keys(bySeg), content.CompareSegmentRefs)
	out := make([]wire.ShardSet, 0, len(segs))
	for _, s := range segs {
		idx := bySeg[s]
		slices.Sort(idx)
		out = append(out, wire.NewShardSet(s, idx))
	}
	return out
}
