package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// denialTTL is how long "this viewer key may not be paid for this video"
// is cached. Binding a key or unlocking a video forgets every denial at
// once on the coordinator that handled it; another coordinator sharing the
// database only learns of it when its cached denial expires, so the TTL is
// kept short: a viewer that binds or unlocks through coordinator A and plays
// through B goes unpaid-for at most this long (one store query per viewer
// and video per TTL).
const denialTTL = time.Second

type limitKey struct {
	viewer, edge wire.NodeID
	video        string
}

type grantKey struct {
	viewer wire.NodeID
	video  string
}

// grant caches whether a viewer key is bound to an account entitled to a
// video, and the video's playback budget.
type grant struct {
	ok     bool
	budget int64
	until  time.Time
}

type cachedLimit struct {
	limit   wire.OrderLimit
	json    []byte    // rendered once; lookups copy bytes
	renewAt time.Time // reuse until then (ExpiresUnixMs minus a margin)
}

// limitCache holds issued order limits per (viewer, edge, video) and
// entitlement verdicts per (viewer, video), so a lookup signs nothing and
// queries nothing in the steady state: a play of one viewer over e edges
// costs e signatures per LimitTTL·4/5.
type limitCache struct {
	mu     sync.RWMutex
	limits map[limitKey]*cachedLimit
	grants map[grantKey]grant
}

func newLimitCache() *limitCache {
	return &limitCache{limits: make(map[limitKey]*cachedLimit), grants: make(map[grantKey]grant)}
}

// forgetDenials drops cached negative verdicts (after a bind or unlock).
func (lc *limitCache) forgetDenials() {
	if lc == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, g := range lc.grants {
		if !g.ok {
			delete(lc.grants, k)
		}
	}
}

// forgetVideo drops every verdict about a video (its price changed).
func (lc *limitCache) forgetVideo(video string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k := range lc.grants {
		if k.video == video {
			delete(lc.grants, k)
		}
	}
}

// prune drops expired limits and verdicts.
func (lc *limitCache) prune(now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, l := range lc.limits {
		if !now.Before(l.renewAt) {
			delete(lc.limits, k)
		}
	}
	for k, g := range lc.grants {
		if !now.Before(g.until) {
			delete(lc.grants, k)
		}
	}
}

// entitlement answers from the cache or the store.
func (c *Coordinator) entitlement(ctx context.Context, viewer wire.NodeID, video string, now time.Time) (grant, error) {
	key := grantKey{viewer, video}
	c.limits.mu.RLock()
	g, ok := c.limits.grants[key]
	c.limits.mu.RUnlock()
	if ok && now.Before(g.until) {
		return g, nil
	}
	g = grant{until: now.Add(denialTTL)}
	id, err := content.ParseVideoID(video)
	if err != nil {
		return grant{}, err
	}
	acct, err := c.cat.ViewerAccount(ctx, viewer)
	switch {
	case errors.Is(err, coordinatordb.ErrNotFound):
	case err != nil:
		return grant{}, err
	default:
		entitled, err := c.store.Entitled(ctx, acct.ID, id)
		if err != nil && !errors.Is(err, coordinatordb.ErrUnknownVideo) {
			return grant{}, err
		}
		if entitled {
			terms, err := c.store.Video(ctx, id)
			if err != nil {
				return grant{}, err
			}
			g = grant{ok: true, budget: terms.PlaybackBudgetBytes, until: now.Add(c.cfg.LimitTTL)}
		}
	}
	c.limits.mu.Lock()
	c.limits.grants[key] = g
	c.limits.mu.Unlock()
	return g, nil
}

// orderLimits returns one limit per edge for viewer and video, reusing
// cached ones; nil when the viewer cannot be paid for (unbound key, not
// entitled). Each limit is returned with its JSON rendering.
func (c *Coordinator) orderLimits(ctx context.Context, viewer wire.NodeID, video string, edges []wire.NodeID) ([]*cachedLimit, error) {
	if c.store == nil || len(edges) == 0 || !checkViewerKey(viewer) {
		return nil, nil
	}
	now := c.cfg.Now()
	g, err := c.entitlement(ctx, viewer, video, now)
	if err != nil || !g.ok {
		return nil, err
	}
	maxBytes := c.cfg.LimitMaxBytes
	if g.budget > 0 {
		maxBytes = min(maxBytes, g.budget)
	}
	out := make([]*cachedLimit, 0, len(edges))
	var missing []wire.NodeID
	c.limits.mu.RLock()
	for _, e := range edges {
		if l, ok := c.limits.limits[limitKey{viewer, e, video}]; ok && now.Before(l.renewAt) {
			out = append(out, l)
		} else {
			missing = append(missing, e)
		}
	}
	c.limits.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	// Sign outside the lock; two lookups racing on one key both sign and
	// the later insert wins (both limits are genuine; the edge settles
	// whichever its viewer used).
	for _, e := range missing {
		l := wire.OrderLimit{Edge: e, Viewer: viewer, Video: video, MaxBytes: maxBytes, ExpiresUnixMs: now.Add(c.cfg.LimitTTL).UnixMilli()}
		rand.Read(l.Serial[:])
		wire.SignOrderLimit(c.cfg.Identity.Key, &l)
		b, _ := json.Marshal(&l)
		cl := &cachedLimit{limit: l, json: b, renewAt: now.Add(c.cfg.LimitTTL - c.cfg.LimitTTL/5)}
		c.limits.mu.Lock()
		c.limits.limits[limitKey{viewer, e, video}] = cl
		c.limits.mu.Unlock()
		out = append(out, cl)
		c.metrics.limitsIssued.Inc()
	}
	return out, nil
}

// appendLimits splices `,"limits":[...]` into a rendered lookup response
// (which ends in "}\n").
func appendLimits(buf []byte, limits []*cachedLimit) []byte {
	if len(limits) == 0 || len(buf) < 2 {
		return buf
	}
	buf = buf[:len(buf)-2]
	buf = append(buf, `,"limits":[`...)
	for i, l := range limits {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, l.json...)
	}
	return append(buf, "]}\n"...)
}

// collectEdges lists the distinct edges of a ranked result into dst,
// using seen (cleared first) to deduplicate.
func (r *lookupResult) collectEdges(dst []wire.NodeID, seen map[wire.NodeID]struct{}) []wire.NodeID {
	dst = dst[:0]
	clear(seen)
	for _, src := range r.sources {
		n := src.h.n
		if n.role != wire.RoleEdge {
			continue
		}
		if _, ok := seen[n.id]; !ok {
			seen[n.id] = struct{}{}
			dst = append(dst, n.id)
		}
	}
	return dst
}
