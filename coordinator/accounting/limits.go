package accounting

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"hash/maphash"
	"slices"
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

type grantKey struct {
	viewer wire.NodeID
	video  content.VideoID
}

// grant caches whether a viewer key is bound to an account entitled to a
// video, that account, and the video's playback budget.
type grant struct {
	ok      bool
	account int64
	budget  int64
	until   time.Time
}

// IssuedLimit is a signed order limit with its JSON rendering and its
// binary one (wire.AppendLookupLimit), both rendered once: lookups copy
// bytes. Callers must not modify any of them.
type IssuedLimit struct {
	// renewAt is when a lookup stops reusing the limit and signs a fresh
	// one (ExpiresUnixMs minus a fifth of LimitTTL).
	renewAt time.Time
	// self marks a cached refusal: the edge is run by the viewer's own
	// account, which settlement never pays (self_dealing), so no limit is
	// issued for it.
	self bool
	// edge is who the limit (or refusal) is for: the cache is keyed by the
	// caller's number for an edge, which another edge may take later.
	edge wire.NodeID
	// binary backs Binary, inline so that a lookup reading renewAt and
	// copying Binary touches one allocation, not two.
	binary [wire.LookupLimitSize]byte
	Binary []byte
	Limit  wire.OrderLimit
	JSON   []byte
}

// viewerVideo is the cache of one (viewer key, video): the entitlement
// verdict and the limits issued per edge, by edge key (EdgeKeys). A lookup
// finds both with one hash of the pair and then one small-integer hash
// per edge, under one read lock.
type viewerVideo struct {
	grant  grant // stale when !now.Before(grant.until)
	limits map[uint32]cachedLimit
}

// cachedLimit is a limit cache entry: what a lookup checks (who it is
// for, until when it is reused) sits in the map itself, so a lookup reads
// no limit it does not use (a limit is a pointer away, a cache miss at
// 10^5 cached limits).
type cachedLimit struct {
	renewAtNS int64       // limit.renewAt.UnixNano()
	edge      wire.NodeID // limit.edge: the same string, so comparing with the caller's id is a pointer comparison
	limit     *IssuedLimit
}

// EdgeKeys are a lookup's numbers for its edges (aligned with them), which
// key the limit cache instead of the 64-character ids: the coordinator's
// node slots, dense and stable while an edge stays registered. A number
// may name another edge later (a slot reused); a cached limit is only
// taken for the edge it was issued to, so that costs a signature, never a
// wrong limit. nil keys the cache by a hash of each id.
type EdgeKeys []uint32

// edgeKeySeed seeds the id hash of callers without EdgeKeys.
var edgeKeySeed = maphash.MakeSeed()

// key is edges[i]'s cache key.
func (k EdgeKeys) key(edges []wire.NodeID, i int) uint32 {
	if k != nil {
		return k[i]
	}
	return uint32(maphash.String(edgeKeySeed, string(edges[i])))
}

// limitCache holds issued order limits and entitlement verdicts per
// (viewer, video), so a lookup signs nothing and queries nothing in the
// steady state: a play of one viewer over e edges costs e signatures per
// LimitTTL·4/5.
type limitCache struct {
	mu      sync.RWMutex
	entries map[grantKey]*viewerVideo
}

func newLimitCache() *limitCache {
	return &limitCache{entries: make(map[grantKey]*viewerVideo)}
}

// forgetDenials drops cached negative verdicts (after a bind or unlock).
// Issued limits stay: they are valid whatever the verdict says next.
func (lc *limitCache) forgetDenials() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, e := range lc.entries {
		if !e.grant.ok {
			e.grant = grant{}
		}
	}
}

// forgetVideo drops every verdict about a video (its price changed).
func (lc *limitCache) forgetVideo(video content.VideoID) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, e := range lc.entries {
		if k.video == video {
			e.grant = grant{}
		}
	}
}

// prune drops expired limits and verdicts, and pairs left with neither.
func (lc *limitCache) prune(now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, e := range lc.entries {
		for edge, l := range e.limits {
			if now.UnixNano() >= l.renewAtNS {
				delete(e.limits, edge)
			}
		}
		if !now.Before(e.grant.until) && len(e.limits) == 0 {
			delete(lc.entries, k)
		}
	}
}

// entitlement asks the store whether viewer may be paid for video, and
// caches the verdict.
func (s *Service) entitlement(ctx context.Context, key grantKey, now time.Time) (grant, error) {
	g := grant{until: now.Add(denialTTL)}
	acct, err := s.db.ViewerAccount(ctx, key.viewer)
	switch {
	case errors.Is(err, coordinatordb.ErrNotFound):
	case err != nil:
		return grant{}, err
	default:
		entitled, err := s.db.Entitled(ctx, acct.ID, key.video)
		if err != nil && !errors.Is(err, coordinatordb.ErrUnknownVideo) {
			return grant{}, err
		}
		if entitled {
			terms, err := s.db.Video(ctx, key.video)
			if err != nil {
				return grant{}, err
			}
			g = grant{ok: true, account: acct.ID, budget: terms.PlaybackBudgetBytes, until: now.Add(s.cfg.LimitTTL)}
		}
	}
	s.limits.mu.Lock()
	e := s.limits.entries[key]
	if e == nil {
		e = &viewerVideo{limits: make(map[uint32]cachedLimit)}
		s.limits.entries[key] = e
	}
	e.grant = g
	s.limits.mu.Unlock()
	return g, nil
}

// OrderLimits returns one limit per edge for viewer and video in out
// (reused; out[i] is edges[i]'s, nil for an edge that gets none), reusing
// cached ones; all nil when the viewer cannot be paid for (not a key,
// unbound key, not entitled). edges are the distinct edges the lookup
// listed to this viewer (the caller's invariant: a limit exists only for
// an edge the coordinator itself chose as a source, never for one the
// viewer names); an edge run by the viewer's own account gets none, as
// settlement would refuse it. On a store error, out holds what was found
// before it. keys are the caller's numbers for the edges (EdgeKeys; nil:
// none).
func (s *Service) OrderLimits(ctx context.Context, viewer wire.NodeID, video content.VideoID, edges []wire.NodeID, keys EdgeKeys, out []*IssuedLimit) ([]*IssuedLimit, error) {
	out = slices.Grow(out[:0], len(edges))[:len(edges)]
	clear(out)
	if len(edges) == 0 || wire.CheckNodeID(viewer) != nil {
		return out, nil
	}
	now := s.cfg.Now()
	key := grantKey{viewer, video}
	missing := 0
	s.limits.mu.RLock()
	e := s.limits.entries[key]
	fresh := e != nil && now.Before(e.grant.until)
	var g grant
	if fresh {
		g = e.grant
		missing = s.limits.fill(e, edges, keys, out, now)
	}
	s.limits.mu.RUnlock()
	if !fresh {
		var err error
		if g, err = s.entitlement(ctx, key, now); err != nil {
			return out, err
		}
		if g.ok {
			s.limits.mu.RLock()
			missing = s.limits.fill(s.limits.entries[key], edges, keys, out, now)
			s.limits.mu.RUnlock()
		}
	}
	if !g.ok {
		clear(out)
		return out, nil
	}
	if missing == 0 {
		dropSelf(out)
		return out, nil
	}
	maxBytes := s.cfg.LimitMaxBytes
	if g.budget > 0 {
		maxBytes = min(maxBytes, g.budget)
	}
	// Sign outside the lock; two lookups racing on one key both sign and
	// the later insert wins (both limits are genuine; the edge settles
	// whichever its viewer used).
	renewAt := now.Add(s.cfg.LimitTTL - s.cfg.LimitTTL/5)
	for i, edge := range edges {
		if out[i] != nil {
			continue
		}
		owner, err := s.db.EdgeAccount(ctx, edge)
		if err != nil && !errors.Is(err, coordinatordb.ErrNotFound) {
			dropSelf(out)
			return out, err
		}
		var cl *IssuedLimit
		if err == nil && owner.ID == g.account {
			cl = &IssuedLimit{self: true, edge: edge, renewAt: renewAt}
		} else {
			l := wire.OrderLimit{Edge: edge, Viewer: viewer, Video: video, MaxBytes: maxBytes, ExpiresUnixMs: now.Add(s.cfg.LimitTTL).UnixMilli()}
			rand.Read(l.Serial[:])
			wire.SignOrderLimit(s.cfg.Identity.Key, &l)
			b, _ := json.Marshal(&l)
			cl = &IssuedLimit{Limit: l, JSON: b, edge: edge, renewAt: renewAt}
			cl.Binary = wire.AppendLookupLimit(cl.binary[:0], &l)
			s.metrics.limitsIssued.Inc()
		}
		s.limits.mu.Lock()
		e := s.limits.entries[key]
		if e == nil { // pruned since the verdict was cached
			e = &viewerVideo{grant: g, limits: make(map[uint32]cachedLimit)}
			s.limits.entries[key] = e
		}
		e.limits[keys.key(edges, i)] = cachedLimit{renewAtNS: renewAt.UnixNano(), edge: cl.edge, limit: cl}
		s.limits.mu.Unlock()
		out[i] = cl
	}
	dropSelf(out)
	return out, nil
}

// fill puts e's reusable limits for edges into out and counts the edges
// left without one. The caller holds lc.mu (read).
func (lc *limitCache) fill(e *viewerVideo, edges []wire.NodeID, keys EdgeKeys, out []*IssuedLimit, now time.Time) (missing int) {
	if e == nil {
		return len(edges)
	}
	nowNS := now.UnixNano()
	for i, edge := range edges {
		// The id check is one pointer comparison when the caller passes the
		// id the limit was issued with (the coordinator's node ids).
		if l, ok := e.limits[keys.key(edges, i)]; ok && nowNS < l.renewAtNS && l.edge == edge {
			out[i] = l.limit
		} else {
			missing++
		}
	}
	return missing
}

// dropSelf replaces cached self-dealing refusals in out with nil.
func dropSelf(out []*IssuedLimit) {
	for i, l := range out {
		if l != nil && l.self {
			out[i] = nil
		}
	}
}
