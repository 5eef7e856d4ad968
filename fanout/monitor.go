package fanout

import (
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
	// watch at its first push, so it never answers for the old one's misses.
	parents map[[2]any]wire.NodeID
}

// NewParentMonitor accuses as key's node; coord serves the entries (the
// accusation names the entry's digest), win is the receiver's window (the
// chains' genesis gives their segment duration). timeout ≤ 0 is one segment
// duration of each chain: a real node's slack, so a parent delayed by a
// loaded machine (honest but slow) is never named, while a stall, or a
// parent later than a whole segment, is.
func NewParentMonitor(key ed25519.PrivateKey, coord Coordinator, win *Window, timeout time.Duration) *ParentMonitor {
	return &ParentMonitor{key: key, coord: coord, win: win, timeout: timeout,
		watches: map[content.VideoID]*ParentWatch{}, last: map[content.VideoID]time.Time{}, parents: map[[2]any]wire.NodeID{}}
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
		}
	}
}

// Check names the pushes overdue at now on the routes held (a sealed
// chain's watch ends; a chain without pushes for a minute is forgotten) and
// signs an accusation of each one's parent. It calls the coordinator for
// the entries; ctx bounds that.
func (m *ParentMonitor) Check(ctx context.Context, routes []wire.LiveRoute, now time.Time) []Accused {
	parent := map[[2]any]wire.NodeID{}
	byKey := map[[2]any]wire.LiveRoute{}
	for _, r := range routes {
		parent[[2]any{r.Chain, r.Substream}] = r.Parent
		byKey[[2]any{r.Chain, r.Substream}] = r
	}
	var due []Accused
	m.mu.Lock()
	for k, p := range parent {
		if was, ok := m.parents[k]; ok && was != p {
			if w := m.watches[k[0].(content.VideoID)]; w != nil {
				w.Stop(k[1].(int))
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
		if c := m.win.Chain(chain); c == nil || c.Sealed() || now.Sub(m.last[chain]) > time.Minute {
			delete(m.watches, chain)
			delete(m.last, chain)
			continue
		}
		for _, miss := range w.Tick(now) {
			r, ok := byKey[[2]any{chain, miss.Substream}]
			p := ParentFor(r, miss.Seq) // the parent of that segment (the backup after a switch)
			if !ok || p == "" {
				w.Stop(miss.Substream) // no longer a child in that substream
				continue
			}
			due = append(due, Accused{Chain: chain, Miss: miss, Parent: p})
		}
	}
	m.mu.Unlock()
	var out []Accused
	for _, a := range due {
		c := m.win.Chain(a.Chain)
		if c == nil {
			continue
		}
		g := c.Genesis()
		if hex.EncodeToString(g.Publisher) == string(a.Parent) {
			continue // the origin: the root is never accused
		}
		if key, err := btr.ParseNodeKey(string(a.Parent)); err == nil {
			if raw, err := m.coord.LiveEntries(ctx, a.Chain, a.Miss.Seq, 0); err == nil && len(raw) > 0 {
				if e, err := content.DecodeLiveEntry(raw[0], g, a.Chain); err == nil && e.Seq == a.Miss.Seq {
					acc := &btr.Accusation{Task: btr.RelayTask(a.Chain, a.Miss.Seq, a.Miss.Substream, raw[0]), Accused: key, Kind: btr.Omission}
					acc.Sign(m.key)
					a.Accusation = acc
				}
			}
		}
		out = append(out, a)
	}
	return out
}
