package fanout

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// ParentMonitor drives a ParentWatch per chain for a relay or an edge (the
// child's side of relays under BTR, docs/LIVE.md): the owner reports every
// accepted push (Received) and calls Check on its clock; Check names each
// overdue push with the child's signed btr.Accusation of the substream's
// parent (the relaying task of the segment, whose entry it fetches from the
// coordinator). The origin is never accused (it is the chains' root and
// publisher). Safe for concurrent use; it starts no goroutine.
type ParentMonitor struct {
	key     ed25519.PrivateKey
	coord   Coordinator
	win     *Window
	timeout time.Duration

	mu      sync.Mutex
	watches map[content.VideoID]*ParentWatch
	last    map[content.VideoID]time.Time // the last push of the chain, for forgetting ended ones
	// parents are the parent each watched substream was last checked
	// against: a new parent (a rebuilt tree) restarts that substream's
	// watch at its first push, so it never answers for the old one's misses
	// (ParentWatch.Restart: judged on the chain's cadence, so a new parent
	// already late is named too).
	parents map[[2]any]wire.NodeID
	pending map[missKey]*pendingMiss
	polled  map[content.VideoID]time.Time // the last publication poll per chain
}

// NewParentMonitor accuses as key's node; coord serves the entries (the
// accusation names the entry's digest), win is the receiver's window (the
// chains' genesis gives their segment duration). timeout ≤ 0 is one segment
// duration of each chain: a real node's slack, so a parent delayed by a
// loaded machine (honest but slow) is never named, while a stall, or a
// parent later than a whole segment, is.
func NewParentMonitor(key ed25519.PrivateKey, coord Coordinator, win *Window, timeout time.Duration) *ParentMonitor {
	return &ParentMonitor{key: key, coord: coord, win: win, timeout: timeout,
		watches: map[content.VideoID]*ParentWatch{}, last: map[content.VideoID]time.Time{}, parents: map[[2]any]wire.NodeID{},
		pending: map[missKey]*pendingMiss{}, polled: map[content.VideoID]time.Time{}}
}

// Accused is one overdue push and the child's signed accusation of it.
type Accused struct {
	Chain      content.VideoID
	Miss       Miss
	Parent     wire.NodeID
	Accusation *btr.Accusation // nil when the entry could not be fetched to name the task
}

// Received records an accepted push: for each route of its chain whose
// parent sent it and whose indices it carries.
func (m *ParentMonitor) Received(routes []wire.LiveRoute, got Received, now time.Time) {
	c := m.win.Chain(got.Segment.Chain)
	if c == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.watches[got.Segment.Chain]
	if w == nil {
		seg := time.Duration(c.Genesis().TargetDuration) * time.Microsecond
		timeout := m.timeout
		if timeout <= 0 {
			timeout = seg
		}
		w = NewParentWatch(seg, timeout)
		m.watches[got.Segment.Chain] = w
	}
	m.last[got.Segment.Chain] = now
	for _, r := range routes {
		if r.Chain != got.Segment.Chain || ParentFor(r, got.Segment.Seq) != got.Sender {
			continue
		}
		if slices.ContainsFunc(got.Segment.Shards, func(sh *content.ShardMessage) bool { return slices.Contains(r.Indices, sh.Index) }) {
			w.Received(r.Substream, got.Segment.Seq, now)
			delete(m.pending, missKey{got.Segment.Chain, r.Substream, got.Segment.Seq}) // late, not lost
		}
	}
}

// Check names the pushes overdue at now on the routes held (a sealed
// chain's watch ends; a chain without pushes for a minute is forgotten) and
// signs an accusation of each one's parent. A push overdue on the cadence
// is accused only once its segment is on the coordinator (asked at most
// every pollInterval per chain; ctx bounds the calls) and the slack has
// passed since this node first saw it there: a late origin is not its
// parent's fault, and a correct parent delivers within the slack of the
// publication.
func (m *ParentMonitor) Check(ctx context.Context, routes []wire.LiveRoute, now time.Time) []Accused {
	parent := map[[2]any]wire.NodeID{}
	byKey := map[[2]any]wire.LiveRoute{}
	for _, r := range routes {
		parent[[2]any{r.Chain, r.Substream}] = r.Parent
		byKey[[2]any{r.Chain, r.Substream}] = r
	}
	m.mu.Lock()
	defer m.mu.Unlock() // re-taken after the coordinator calls below
	for k, p := range parent {
		if was, ok := m.parents[k]; ok && was != p {
			if w := m.watches[k[0].(content.VideoID)]; w != nil {
				w.Restart(k[1].(int))
			}
		}
		m.parents[k] = p
	}
	for k := range m.parents {
		if _, ok := parent[k]; !ok {
			delete(m.parents, k)
		}
	}
	for chain, w := range m.watches {
		c := m.win.Chain(chain)
		if c == nil || c.Sealed() || now.Sub(m.last[chain]) > time.Minute {
			delete(m.watches, chain)
			delete(m.last, chain)
			continue
		}
		origin := wire.NodeID(hex.EncodeToString(c.Genesis().Publisher))
		for _, miss := range w.Tick(now) {
			r, ok := byKey[[2]any{chain, miss.Substream}]
			p := ParentFor(r, miss.Seq) // the parent of that segment (the backup after a switch)
			if !ok || p == "" {
				w.Stop(miss.Substream) // no longer a child in that substream
				continue
			}
			if p == origin {
				continue // the root is never accused
			}
			if len(m.pending) < maxPendingMisses {
				m.pending[missKey{chain, miss.Substream, miss.Seq}] = &pendingMiss{a: Accused{Chain: chain, Miss: miss, Parent: p}}
			}
		}
	}
	polls := m.pollsDueLocked(now)
	// The coordinator is asked without the lock: pushes keep being
	// recorded meanwhile.
	m.mu.Unlock()
	answers := map[content.VideoID][][]byte{}
	for chain, seq := range polls {
		if raw, err := m.coord.LiveEntries(ctx, chain, seq, 0); err == nil {
			answers[chain] = raw
		}
	}
	m.mu.Lock()
	m.publishedLocked(answers, now)
	var out []Accused
	for k, pm := range m.pending {
		c := m.win.Chain(k.chain)
		switch {
		case c == nil || now.Sub(pm.a.Miss.Due) > time.Minute:
			delete(m.pending, k) // the chain ended, or never published it
		case !pm.published.IsZero() && now.After(pm.published.Add(m.timeoutOf(c))):
			if key, err := btr.ParseNodeKey(string(pm.a.Parent)); err == nil {
				acc := &btr.Accusation{Task: btr.RelayTask(k.chain, k.seq, k.sub, pm.entry), Accused: key, Kind: btr.Omission}
				acc.Sign(m.key)
				pm.a.Accusation = acc
			}
			out = append(out, pm.a)
			delete(m.pending, k)
		}
	}
	slices.SortFunc(out, func(a, b Accused) int {
		if c := content.CompareVideoIDs(a.Chain, b.Chain); c != 0 {
			return c
		}
		if a.Miss.Seq != b.Miss.Seq {
			return cmp.Compare(a.Miss.Seq, b.Miss.Seq)
		}
		return cmp.Compare(a.Miss.Substream, b.Miss.Substream)
	})
	return out
}

// missKey names one overdue push.
type missKey struct {
	chain content.VideoID
	sub   int
	seq   uint64
}

// pendingMiss is a push overdue on the cadence, accused only once its
// segment is published and the slack has passed since: a late origin (a
// loaded machine, a slow encoder) is not the parent's fault.
type pendingMiss struct {
	a         Accused
	entry     []byte    // the segment's signed entry, once published
	published time.Time // when this node first saw it on the coordinator
}

// maxPendingMisses bounds the overdue pushes waiting on publication.
const maxPendingMisses = 256

// pollInterval bounds how often the coordinator is asked whether the
// segments of pending misses are published (one call per chain).
const pollInterval = 500 * time.Millisecond

func (m *ParentMonitor) timeoutOf(c *content.LiveChain) time.Duration {
	if m.timeout > 0 {
		return m.timeout
	}
	return time.Duration(c.Genesis().TargetDuration) * time.Microsecond
}

// pollsDueLocked is, per chain whose pending misses wait on publication and
// was not polled within pollInterval, the lowest such segment.
func (m *ParentMonitor) pollsDueLocked(now time.Time) map[content.VideoID]uint64 {
	from := map[content.VideoID]uint64{}
	for k, pm := range m.pending {
		if pm.published.IsZero() && now.Sub(m.polled[k.chain]) >= pollInterval {
			if f, ok := from[k.chain]; !ok || k.seq < f {
				from[k.chain] = k.seq
			}
		}
	}
	for chain := range from {
		m.polled[chain] = now
	}
	return from
}

// publishedLocked marks the pending misses whose entries the coordinator
// answered as published now.
func (m *ParentMonitor) publishedLocked(answers map[content.VideoID][][]byte, now time.Time) {
	for chain, raw := range answers {
		c := m.win.Chain(chain)
		if c == nil {
			continue
		}
		for _, b := range raw {
			e, err := content.DecodeLiveEntry(b, c.Genesis(), chain)
			if err != nil {
				break
			}
			for k, pm := range m.pending {
				if k.chain == chain && k.seq == e.Seq && pm.published.IsZero() {
					pm.published, pm.entry = now, b
				}
			}
		}
	}
	for chain := range m.polled {
		if _, live := m.watches[chain]; !live {
			delete(m.polled, chain)
		}
	}
}
