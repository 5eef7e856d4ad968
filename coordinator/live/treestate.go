package live

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// MinRebuildInterval rate-limits rebuilds caused by watcher changes; a
// relay or edge that leaves, or a chain that starts or ends, rebuilds at
// the next heartbeat.
const MinRebuildInterval = time.Second

// MinEdgesPerChain is how many edges the coordinator keeps in a watched
// chain's trees when enough edges are alive (every substream then reaches
// at least that many edges).
const MinEdgesPerChain = 2

// A chain gets trees when it goes live, before anyone watches it: its
// first segments then land on relays and MinEdgesPerChain assigned edges,
// and the first players' lookups list those carriers instead of sending
// every player of a flash crowd at go-live to the origin for the stream's
// first segments (at 50 viewers that was 0.45–0.53 origin copies per
// segment, "no_carriers"). An unwatched chain costs relay upload for
// nobody, so it is bounded: only until its GoLiveSegments-th entry, and
// only the MaxGoLiveChains youngest unwatched chains at a time (the rest
// get trees once watched, as before). Watched chains' trees are built
// first (BuildTrees), so go-live trees never take a watched chain's relay
// upload.
const (
	GoLiveSegments  = 30
	MaxGoLiveChains = 8
)

// treeState is the soft state the trees are built from, and what was
// handed out. Guarded by Service.treeMu, which nests inside Service.mu
// (never the other way: rebuild releases one before it takes the other).
type treeState struct {
	nodes    map[wire.NodeID]TreeNode
	watching map[wire.NodeID][]content.VideoID // edge → chains its players watch
	// dirty asks for a rebuild; urgent skips the rate limit.
	dirty, urgent bool
	lastBuild     time.Time
	version       int64
	out           TreeOutput
	routes        map[wire.NodeID][]wire.LiveRoute // as last handed out
	pending       map[wire.NodeID]bool             // nodes whose set changed since their last heartbeat
	// chore is true while RunTrees runs: rebuilds are its job, and a
	// heartbeat only asks for one (wake). Without it (a bare Service) the
	// heartbeat that finds a rebuild due runs it.
	chore bool
	wake  chan struct{} // capacity 1: a rebuild may be due
	// excluded are the relays the relays' judge excluded (relayjudge.go):
	// until its switch segment is published a build hands the culprit's
	// children and backups the switch; from then on (Done) every build
	// leaves the culprit out. Exclusion is permanent.
	excluded map[wire.NodeID]relaySwitch
}

func newTreeState() *treeState {
	return &treeState{nodes: map[wire.NodeID]TreeNode{}, watching: map[wire.NodeID][]content.VideoID{},
		routes: map[wire.NodeID][]wire.LiveRoute{}, pending: map[wire.NodeID]bool{}, wake: make(chan struct{}, 1),
		excluded: map[wire.NodeID]relaySwitch{}}
}

// poke tells the chore a rebuild may be due. treeMu is held.
func (t *treeState) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// treesChanged asks for a rebuild now (a chain started or ended). Called
// with s.mu held.
func (s *Service) treesChanged() {
	s.treeMu.Lock()
	s.trees.dirty, s.trees.urgent = true, true
	s.trees.poke()
	s.treeMu.Unlock()
}

// treesDirty asks for a rebuild within the rate limit (a chain's go-live
// ended). s.mu may be held.
func (s *Service) treesDirty() {
	s.treeMu.Lock()
	s.trees.dirty = true
	s.trees.poke()
	s.treeMu.Unlock()
}

// treeChoreTick is how often RunTrees looks for a rate-limited rebuild
// (MinRebuildInterval after the last) without being woken.
const treeChoreTick = MinRebuildInterval / 4

// RunTrees rebuilds the trees whenever they are due (see Heartbeat) until
// ctx is done, on the Service's clock: heartbeats then never wait for a
// build (BenchmarkBuildTrees: 0.1–1 s of CBC per build), they ask for one
// and take the sets the last build made. The coordinator's Run owns it.
func (s *Service) RunTrees(ctx context.Context) {
	s.treeMu.Lock()
	s.trees.chore = true
	wake := s.trees.wake
	s.treeMu.Unlock()
	defer func() {
		s.treeMu.Lock()
		s.trees.chore = false
		s.treeMu.Unlock()
	}()
	tick := time.NewTicker(treeChoreTick)
	defer tick.Stop()
	for {
		s.rebuildIfDue(s.cfg.Now())
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// rebuildIfDue rebuilds if a change asked for it and the rate limit
// allows (a watcher change at most once per MinRebuildInterval; a node
// lost or a chain started or ended at once). It reports whether it did.
func (s *Service) rebuildIfDue(now time.Time) bool {
	s.treeMu.Lock()
	t := s.trees
	due := t.dirty && (t.urgent || now.Sub(t.lastBuild) >= MinRebuildInterval)
	if due {
		// This build takes every change so far; a change from now on asks
		// for the next.
		t.dirty, t.urgent = false, false
	}
	s.treeMu.Unlock()
	if due {
		s.rebuild(now)
	}
	return due
}

// NodeUp records a registered node (origin, relay or edge): its next
// heartbeat gets its whole set again.
func (s *Service) NodeUp(n TreeNode) {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	t := s.trees
	old, had := t.nodes[n.ID]
	t.nodes[n.ID] = n
	if len(t.routes[n.ID]) > 0 {
		t.pending[n.ID] = true
	}
	if n.Role == wire.RoleRelay && (!had || old.UploadCap != n.UploadCap || old.PricePerGB != n.PricePerGB) {
		t.dirty, t.urgent = true, true
		t.poke()
	}
}

// NodeDown forgets a node that left or missed its heartbeats; a relay or
// edge in a tree is replaced at the next heartbeat of anyone.
func (s *Service) NodeDown(id wire.NodeID) {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	t := s.trees
	if _, ok := t.nodes[id]; !ok {
		return
	}
	delete(t.nodes, id)
	if len(t.watching[id]) > 0 || len(t.routes[id]) > 0 {
		t.dirty, t.urgent = true, true
		t.poke()
	}
	delete(t.watching, id)
	delete(t.pending, id)
}

// Heartbeat takes a node's live report (the chains its players watch, the
// round trips it measured) and returns its live set when it changed, else
// nil. A change asks RunTrees for a rebuild; without the chore, the
// heartbeat rebuilds first when one is due.
func (s *Service) Heartbeat(id wire.NodeID, watching []content.VideoID, rtt map[wire.NodeID]float64, now time.Time) *wire.LiveSet {
	s.treeMu.Lock()
	t := s.trees
	n, ok := t.nodes[id]
	if !ok {
		s.treeMu.Unlock()
		return nil
	}
	if rtt != nil && !maps.Equal(n.RTTMS, rtt) {
		n.RTTMS = maps.Clone(rtt)
		t.nodes[id] = n
	}
	if n.Role == wire.RoleEdge {
		w := slices.Clone(watching)
		slices.SortFunc(w, content.CompareVideoIDs)
		w = slices.Compact(w)
		if !slices.Equal(w, t.watching[id]) {
			if len(w) == 0 {
				delete(t.watching, id)
			} else {
				t.watching[id] = w
			}
			t.dirty = true
			t.poke()
		}
	}
	chore := t.chore
	s.treeMu.Unlock()
	if !chore {
		s.rebuildIfDue(now)
	}
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	if !t.pending[id] {
		return nil
	}
	delete(t.pending, id)
	return &wire.LiveSet{Version: t.version, Routes: slices.Clone(t.routes[id])}
}

// rebuild rebuilds the trees now. It holds treeMu only to take the
// snapshot and to install the result, never while it builds, so heartbeats
// go on meanwhile; builds run one at a time (buildMu), each from the
// previous one's trees (TreeInput.Previous).
func (s *Service) rebuild(now time.Time) {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	// Chains with watchers, from the chain table (s.mu), then the snapshot
	// of nodes (treeMu): the two locks are never held together.
	s.treeMu.Lock()
	watchers := map[content.VideoID][]wire.NodeID{}
	for e, chains := range s.trees.watching {
		for _, c := range chains {
			watchers[c] = append(watchers[c], e)
		}
	}
	s.treeMu.Unlock()
	var chains []TreeChain
	heads := map[content.VideoID]int64{}
	var young []*chain // unwatched chains before their GoLiveSegments-th entry
	s.mu.Lock()
	for id, ch := range s.chains {
		if !ch.rec.Sealed {
			heads[id] = ch.headLocked()
			if _, watched := watchers[id]; !watched && heads[id] < GoLiveSegments-1 {
				young = append(young, ch)
			}
		}
	}
	// The youngest first; ties (same start) by chain id.
	slices.SortFunc(young, func(a, b *chain) int {
		if c := b.rec.Started.Compare(a.rec.Started); c != 0 {
			return c
		}
		return content.CompareVideoIDs(a.rec.Chain, b.rec.Chain)
	})
	for _, ch := range young[:min(len(young), MaxGoLiveChains)] {
		watchers[ch.rec.Chain] = nil // assignEdges gives it MinEdgesPerChain edges
	}
	for id, edges := range watchers {
		ch := s.chains[id]
		if ch == nil || ch.rec.Sealed {
			continue
		}
		var rate float64
		for _, r := range ch.genesis.Renditions {
			rate += float64(r.Bandwidth) / 8
		}
		slices.Sort(edges)
		chains = append(chains, TreeChain{Chain: id, Origin: ch.rec.Origin, RateBytes: rate,
			SegmentMS: float64(ch.genesis.TargetDuration) / 1000, K: ch.genesis.Params.K, Edges: edges,
			Unwatched: len(edges) == 0})
	}
	s.mu.Unlock()

	s.treeMu.Lock()
	t := s.trees
	in := TreeInput{Nodes: maps.Clone(t.nodes), Substreams: s.cfg.Substreams, PushShards: s.cfg.PushShards, Previous: t.out.Parent}
	for culprit, sw := range t.excluded {
		if head, live := heads[sw.Chain]; !sw.Done && (!live || head >= int64(sw.At)) {
			sw.Done = true // its switch segment is out: every node has switched
			t.excluded[culprit] = sw
		}
		if sw.Done {
			delete(in.Nodes, culprit)
		}
	}
	var allEdges []wire.NodeID
	for id, n := range t.nodes {
		if n.Role == wire.RoleEdge {
			allEdges = append(allEdges, id)
		}
	}
	slices.Sort(allEdges)
	for i := range chains {
		chains[i].Edges = assignEdges(chains[i].Chain, chains[i].Edges, allEdges, t.nodes)
	}
	in.Chains = chains
	s.treeMu.Unlock()
	out := BuildTrees(in)
	s.setRelayTrees(chains, out, heads)
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	applyRelaySwitches(out.Routes, t.excluded)
	// Nodes that left while it built are not handed routes; their loss
	// asked for the next build, which replaces them.
	for id := range out.Routes {
		if _, ok := t.nodes[id]; !ok {
			delete(out.Routes, id)
		}
	}
	t.version++
	t.out, t.lastBuild = out, now
	for id := range t.routes {
		if _, ok := out.Routes[id]; !ok {
			delete(t.routes, id)
			t.pending[id] = true
		}
	}
	for id, r := range out.Routes {
		if !reflect.DeepEqual(t.routes[id], r) {
			t.routes[id] = r
			t.pending[id] = true
		}
	}
	s.metrics.rebuilds.Add(float64(len(chains)))
}

// assignEdges adds alive edges to a watched chain that has fewer than
// MinEdgesPerChain, picking by a per-chain rendezvous order so different
// chains spread over different edges.
func assignEdges(chain content.VideoID, have, all []wire.NodeID, nodes map[wire.NodeID]TreeNode) []wire.NodeID {
	var live []wire.NodeID
	for _, e := range have {
		if _, ok := nodes[e]; ok {
			live = append(live, e)
		}
	}
	if len(live) >= MinEdgesPerChain {
		return live
	}
	cand := slices.DeleteFunc(slices.Clone(all), func(e wire.NodeID) bool { return slices.Contains(live, e) })
	slices.SortFunc(cand, func(a, b wire.NodeID) int { return rendezvous(chain, a) - rendezvous(chain, b) })
	for _, e := range cand {
		if len(live) >= MinEdgesPerChain {
			break
		}
		live = append(live, e)
	}
	slices.Sort(live)
	return live
}

// rendezvous is a chain-specific rank of an edge (highest random weight).
func rendezvous(chain content.VideoID, e wire.NodeID) int {
	h := uint32(2166136261)
	for _, b := range chain[:8] {
		h = (h ^ uint32(b)) * 16777619
	}
	for i := 0; i < len(e); i++ {
		h = (h ^ uint32(e[i])) * 16777619
	}
	return int(h >> 1)
}

// watchers is how many edges watch chain (s.mu may be held).
func (s *Service) watchers(chain content.VideoID) int {
	if chain == (content.VideoID{}) {
		return 0
	}
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	n := 0
	for _, chains := range s.trees.watching {
		if slices.Contains(chains, chain) {
			n++
		}
	}
	return n
}

func (s *Service) relayCount() int {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	n := 0
	for _, node := range s.trees.nodes {
		if node.Role == wire.RoleRelay {
			n++
		}
	}
	return n
}

func (s *Service) watcherCount() int {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	return len(s.trees.watching)
}

// Trees is chain → substream → node → parent as last built (tests, lookups).
func (s *Service) Trees() map[content.VideoID][]map[wire.NodeID]wire.NodeID {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	return s.trees.out.Parent
}

// RelayCounts is how many relays the tree builder has now (registered,
// heartbeating, not revoked) and how many the relays' judge has excluded
// (for good): what the trees could use, for reports.
func (s *Service) RelayCounts() (alive, excluded int) {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	for id, n := range s.trees.nodes {
		if _, x := s.trees.excluded[id]; n.Role == wire.RoleRelay && !x {
			alive++
		}
	}
	return alive, len(s.trees.excluded)
}

// Carriers maps every node in chain's trees as last built (relays and
// edges) to the shard indices its substreams carry, ascending; a lookup of
// the chain lists them. The chain's origin is not among them.
func (s *Service) Carriers(chain content.VideoID) map[wire.NodeID][]int {
	s.treeMu.Lock()
	trees := s.trees.out.Parent[chain]
	s.treeMu.Unlock()
	out := map[wire.NodeID][]int{}
	for j, parent := range trees {
		indices := content.SubstreamIndices(j, len(trees), s.cfg.PushShards)
		for v := range parent {
			out[v] = append(out[v], indices...)
		}
	}
	for v := range out {
		slices.Sort(out[v])
	}
	return out
}

// ChainOrigin is the origin publishing chain.
func (s *Service) ChainOrigin(chain content.VideoID) (wire.NodeID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chains[chain]
	if ch == nil {
		return "", false
	}
	return ch.rec.Origin, true
}
