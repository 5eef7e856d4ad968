package accounting

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
	video        content.VideoID
}

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

// IssuedLimit is a signed order limit with its JSON rendering (rendered
// once: lookups copy bytes). Callers must not modify either.
type IssuedLimit struct {
	Limit   wire.OrderLimit
	JSON    []byte
	renewAt time.Time // reuse until then (ExpiresUnixMs minus a margin)
	// self marks a cached refusal: the edge is run by the viewer's own
	// account, which settlement never pays (self_dealing), so no limit is
	// issued for it.
	self bool
}

// limitCache holds issued order limits per (viewer, edge, video) and
// entitlement verdicts per (viewer, video), so a lookup signs nothing and
// queries nothing in the steady state: a play of one viewer over e edges
// costs e signatures per LimitTTL·4/5.
type limitCache struct {
	mu     sync.RWMutex
	limits map[limitKey]*IssuedLimit
	grants map[grantKey]grant
}

func newLimitCache() *limitCache {
	return &limitCache{limits: make(map[limitKey]*IssuedLimit), grants: make(map[grantKey]grant)}
}

// forgetDenials drops cached negative verdicts (after a bind or unlock).
func (lc *limitCache) forgetDenials() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, g := range lc.grants {
		if !g.ok {
			delete(lc.grants, k)
		}
	}
}

// forgetVideo drops every verdict about a video (its price changed).
func (lc *limitCache) forgetVideo(video content.VideoID) {
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
func (s *Service) entitlement(ctx context.Context, viewer wire.NodeID, video content.VideoID, now time.Time) (grant, error) {
	key := grantKey{viewer, video}
	s.limits.mu.RLock()
	g, ok := s.limits.grants[key]
	s.limits.mu.RUnlock()
	if ok && now.Before(g.until) {
		return g, nil
	}
	g = grant{until: now.Add(denialTTL)}
	acct, err := s.db.ViewerAccount(ctx, viewer)
	switch {
	case errors.Is(err, coordinatordb.ErrNotFound):
	case err != nil:
		return grant{}, err
	default:
		entitled, err := s.db.Entitled(ctx, acct.ID, video)
		if err != nil && !errors.Is(err, coordinatordb.ErrUnknownVideo) {
			return grant{}, err
		}
		if entitled {
			terms, err := s.db.Video(ctx, video)
			if err != nil {
				return grant{}, err
			}
			g = grant{ok: true, account: acct.ID, budget: terms.PlaybackBudgetBytes, until: now.Add(s.cfg.LimitTTL)}
		}
	}
	s.limits.mu.Lock()
	s.limits.grants[key] = g
	s.limits.mu.Unlock()
	return g, nil
}

// OrderLimits returns one limit per edge for viewer and video, reusing
// cached ones; nil when the viewer cannot be paid for (not a key, unbound
// key, not entitled). edges are the edges the lookup listed to this viewer
// (the caller's invariant: a limit exists only for an edge the coordinator
// itself chose as a source, never for one the viewer names); an edge run by
// the viewer's own account gets none, as settlement would refuse it.
func (s *Service) OrderLimits(ctx context.Context, viewer wire.NodeID, video content.VideoID, edges []wire.NodeID) ([]*IssuedLimit, error) {
	if len(edges) == 0 || wire.CheckNodeID(viewer) != nil {
		return nil, nil
	}
	now := s.cfg.Now()
	g, err := s.entitlement(ctx, viewer, video, now)
	if err != nil || !g.ok {
		return nil, err
	}
	maxBytes := s.cfg.LimitMaxBytes
	if g.budget > 0 {
		maxBytes = min(maxBytes, g.budget)
	}
	out := make([]*IssuedLimit, 0, len(edges))
	var missing []wire.NodeID
	s.limits.mu.RLock()
	for _, e := range edges {
		if l, ok := s.limits.limits[limitKey{viewer, e, video}]; ok && now.Before(l.renewAt) {
			if !l.self {
				out = append(out, l)
			}
		} else {
			missing = append(missing, e)
		}
	}
	s.limits.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	// Sign outside the lock; two lookups racing on one key both sign and
	// the later insert wins (both limits are genuine; the edge settles
	// whichever its viewer used).
	for _, e := range missing {
		owner, err := s.db.EdgeAccount(ctx, e)
		if err != nil && !errors.Is(err, coordinatordb.ErrNotFound) {
			return out, err
		}
		if err == nil && owner.ID == g.account {
			s.limits.mu.Lock()
			s.limits.limits[limitKey{viewer, e, video}] = &IssuedLimit{self: true, renewAt: now.Add(s.cfg.LimitTTL - s.cfg.LimitTTL/5)}
			s.limits.mu.Unlock()
			continue
		}
		l := wire.OrderLimit{Edge: e, Viewer: viewer, Video: video, MaxBytes: maxBytes, ExpiresUnixMs: now.Add(s.cfg.LimitTTL).UnixMilli()}
		rand.Read(l.Serial[:])
		wire.SignOrderLimit(s.cfg.Identity.Key, &l)
		b, _ := json.Marshal(&l)
		cl := &IssuedLimit{Limit: l, JSON: b, renewAt: now.Add(s.cfg.LimitTTL - s.cfg.LimitTTL/5)}
		s.limits.mu.Lock()
		s.limits.limits[limitKey{viewer, e, video}] = cl
		s.limits.mu.Unlock()
		out = append(out, cl)
		s.metrics.limitsIssued.Inc()
	}
	return out, nil
}
