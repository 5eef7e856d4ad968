package accounting

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
// finds both with one hash of the pair and then one binary search per
// edge, under one read lock.
type viewerVideo struct {
	grant  grant // stale when !now.Before(grant.until)
	limits edgeLimits
}

// edgeLimits are one (viewer, video)'s cached limits by edge key, as two
// arrays sorted by key instead of a map: a lookup's ~50 searches share
// the keys (~200 of them for a viewer that met every edge of a video: a
// few cache lines, hot after the first search) and then read only the
// entries they copy, where a map's probe would miss the cache on every
// key. Inserts (one per signature, which costs far more) move the tail.
type edgeLimits struct {
	keys []uint32      // ascending
	vals []cachedLimit // vals[i] is keys[i]'s
}

// get returns key's entry.
func (el *edgeLimits) get(key uint32) (*cachedLimit, bool) {
	i, ok := slices.BinarySearch(el.keys, key)
	if !ok {
		return nil, false
	}
	return &el.vals[i], true
}

// put sets key's entry.
func (el *edgeLimits) put(key uint32, l cachedLimit) {
	i, ok := slices.BinarySearch(el.keys, key)
	if ok {
		el.vals[i] = l
		return
	}
	el.keys = slices.Insert(el.keys, i, key)
	el.vals = slices.Insert(el.vals, i, l)
}

// dropRenewable drops the entries a lookup at nowNS would renew.
func (el *edgeLimits) dropRenewable(nowNS int64) {
	n := 0
	for i := range el.keys {
		if nowNS < el.vals[i].renewAtNS {
			el.keys[n], el.vals[n] = el.keys[i], el.vals[i]
			n++
		}
	}
	clear(el.vals[n:]) // drop the pointers to limits
	el.keys, el.vals = el.keys[:n], el.vals[:n]
}

// cachedLimit is a limit cache entry: what a lookup checks (who it is
// for, until when it is reused) and what a binary answer copies (the
// limit's fixed bytes) sit in the entry itself, so a binary lookup reads
// no IssuedLimit at all (each is a pointer away, a cache miss at 10^5
// cached limits).
type cachedLimit struct {
	renewAtNS int64       // limit.renewAt.UnixNano()
	edge      wire.NodeID // limit.edge: the same string, so comparing with the caller's id is a pointer comparison
	// limit is nil for a cached self-dealing refusal (IssuedLimit.self).
	limit  *IssuedLimit
	binary [wire.LookupLimitSize]byte // limit.Binary
}

// newCachedLimit is l's cache entry.
func newCachedLimit(l *IssuedLimit) cachedLimit {
	c := cachedLimit{renewAtNS: l.renewAt.UnixNano(), edge: l.edge}
	if !l.self {
		c.limit, c.binary = l, l.binary
	}
	return c
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

// pruneStepLimits bounds the cached limits one hold of the write lock
// visits while pruning: every lookup's limits wait for that lock, and a
// sweep over every entry in one hold (once per heartbeat interval) would
// stall all of them for as long as the cache is large.
const pruneStepLimits = 4096

// prune drops expired limits and verdicts, and pairs left with neither,
// releasing the write lock every pruneStepLimits limits visited. The
// iteration goes on across the releases: the language allows a map to
// change while it is ranged over, and every change here is made under
// lc.mu, so a pair added meanwhile may be skipped (it is fresh) and one
// deleted meanwhile is not visited.
func (lc *limitCache) prune(now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	visited := 0
	for k, e := range lc.entries {
		if visited >= pruneStepLimits {
			lc.mu.Unlock()
			visited = 0
			lc.mu.Lock()
			if e = lc.entries[k]; e == nil {
				continue
			}
		}
		visited += 1 + len(e.limits.keys)
		e.limits.dropRenewable(now.UnixNano())
		if !now.Before(e.grant.until) && len(e.limits.keys) == 0 {
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
		e = &viewerVideo{}
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
			out[i] = selfDealing
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
			e = &viewerVideo{grant: g}
			s.limits.entries[key] = e
		}
		e.limits.put(keys.key(edges, i), newCachedLimit(cl))
		s.limits.mu.Unlock()
		if !cl.self {
			out[i] = cl
		}
	}
	dropSelf(out)
	return out, nil
}

// fill puts e's reusable limits for edges into out (selfDealing for a
// cached self-dealing refusal) and counts the edges left without either.
// The caller holds lc.mu (read).
func (lc *limitCache) fill(e *viewerVideo, edges []wire.NodeID, keys EdgeKeys, out []*IssuedLimit, now time.Time) (missing int) {
	if e == nil {
		return len(edges)
	}
	nowNS := now.UnixNano()
	for i, edge := range edges {
		// The id check is one pointer comparison when the caller passes the
		// id the limit was issued with (the coordinator's node ids).
		if l, ok := e.limits.get(keys.key(edges, i)); ok && nowNS < l.renewAtNS && l.edge == edge {
			out[i] = l.limit
			if out[i] == nil {
				out[i] = selfDealing
			}
		} else {
			missing++
		}
	}
	return missing
}

// appendBinary appends the limits section of a binary lookup answer
// (wire.ContentTypeLookupBinary: a count, then each limit as its edge's
// node index at[i] and its fixed bytes) from e's reusable limits for
// edges, straight from the map. It reports false, b unchanged, when an
// edge has neither a reusable limit nor a cached refusal. The caller
// holds lc.mu (read).
func (lc *limitCache) appendBinary(b []byte, e *viewerVideo, edges []wire.NodeID, keys EdgeKeys, at []uint32, now time.Time) ([]byte, bool) {
	start := len(b)
	// The count comes first and is known at the end: reserve the bytes
	// its largest value (len(edges)) takes, and move the limits back if
	// it takes fewer.
	reserve := uvarintLen(uint64(len(edges)))
	b = append(b, make([]byte, reserve)...)
	nowNS := now.UnixNano()
	n := 0
	for i, edge := range edges {
		l, ok := e.limits.get(keys.key(edges, i))
		if !ok || nowNS >= l.renewAtNS || l.edge != edge {
			return b[:start], false
		}
		if l.limit == nil { // self-dealing: no limit
			continue
		}
		b = binary.AppendUvarint(b, uint64(at[i]))
		b = append(b, l.binary[:]...)
		n++
	}
	if w := uvarintLen(uint64(n)); w < reserve {
		copy(b[start+w:], b[start+reserve:])
		b = b[:len(b)-(reserve-w)]
	}
	binary.PutUvarint(b[start:], uint64(n))
	return b, true
}

// uvarintLen is how many bytes binary.AppendUvarint takes for x.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// AppendBinaryOrderLimits appends to b the limits section of a binary
// lookup answer (wire.ContentTypeLookupBinary) for viewer, video and
// edges, as OrderLimits would issue them: at[i] is edges[i]'s index in
// the answer's node table. In the steady state (every edge with a
// reusable limit or a cached refusal, the verdict fresh) it copies the
// limits' bytes from the cache under one read lock without touching the
// limits themselves; otherwise it takes OrderLimits's path (store
// queries, signatures) and renders what that returns. out is scratch
// (reused; returned cleared). On a store error, b holds the limits found
// before it.
func (s *Service) AppendBinaryOrderLimits(ctx context.Context, b []byte, viewer wire.NodeID, video content.VideoID, edges []wire.NodeID, keys EdgeKeys, at []uint32, out []*IssuedLimit) ([]byte, []*IssuedLimit, error) {
	if len(edges) > 0 && wire.CheckNodeID(viewer) == nil {
		now := s.cfg.Now()
		ok := false
		s.limits.mu.RLock()
		if e := s.limits.entries[grantKey{viewer, video}]; e != nil && e.grant.ok && now.Before(e.grant.until) {
			b, ok = s.limits.appendBinary(b, e, edges, keys, at, now)
		}
		s.limits.mu.RUnlock()
		if ok {
			return b, out, nil
		}
	}
	out, err := s.OrderLimits(ctx, viewer, video, edges, keys, out)
	b = AppendBinaryLimits(b, out, at)
	clear(out)
	return b, out, err
}

// AppendBinaryLimits appends to b the limits section of a binary lookup
// answer (wire.ContentTypeLookupBinary): the count of non-nil limits, then
// each as its node's index in the answer's node table (at[i] for
// limits[i]) and its encoded bytes. limits[i] nil: no limit for that node.
func AppendBinaryLimits(b []byte, limits []*IssuedLimit, at []uint32) []byte {
	n := 0
	for _, l := range limits {
		if l != nil {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i, l := range limits {
		if l != nil {
			b = binary.AppendUvarint(b, uint64(at[i]))
			b = append(b, l.Binary...)
		}
	}
	return b
}

// selfDealing stands in out, until dropSelf, for an edge run by the
// viewer's own account (no limit, and none to sign): a pointer
// comparison, so that dropping refusals reads no limit.
var selfDealing = &IssuedLimit{self: true}

// dropSelf replaces self-dealing refusals in out with nil.
func dropSelf(out []*IssuedLimit) {
	for i, l := range out {
		if l == selfDealing {
			out[i] = nil
		}
	}
}
