package origin

import (
	"container/list"
	"sync"

	"github.com/swarmcast/swarmcast/content"
)

// lru is a cache of per-segment values bounded by the total size of its values in bytes. A value
// larger than the whole bound is not kept. Safe for concurrent use.
type lru[V any] struct {
	mu       sync.Mutex
	capBytes int64
	used     int64
	order    *list.List                           // front = most recently used; values are *lruEntry[V]
	entries  map[content.SegmentRef]*list.Element // key -> element in order
}

type lruEntry[V any] struct {
	key   content.SegmentRef
	value V
	size  int64
}

func newLRU[V any](capBytes int64) *lru[V] {
	return &lru[V]{capBytes: capBytes, order: list.New(), entries: make(map[content.SegmentRef]*list.Element)}
}

func (c *lru[V]) get(k content.SegmentRef) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[V]).value, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) add(k content.SegmentRef, v V, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.capBytes {
		return
	}
	if el, ok := c.entries[k]; ok {
		c.used -= el.Value.(*lruEntry[V]).size
		c.order.Remove(el)
		delete(c.entries, k)
	}
	for c.used+size > c.capBytes {
		oldest := c.order.Back()
		e := oldest.Value.(*lruEntry[V])
		c.used -= e.size
		c.order.Remove(oldest)
		delete(c.entries, e.key)
	}
	c.entries[k] = c.order.PushFront(&lruEntry[V]{key: k, value: v, size: size})
	c.used += size
}

// usedBytes is the total size of the cached values.
func (c *lru[V]) usedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
