package btr

import (
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

// Standby is a chain's precomputed replica plan: the f+1 active replicas
// and the spares that replace them, in order. Assign is a pure function of
// the excluded set, so every correct node holding the same exclusions
// computes the same replicas for a segment without asking anyone.
type Standby struct {
	Active []NodeKey
	Spares []NodeKey
}

// F is the number of Byzantine replicas the plan tolerates: f+1 replicas
// agree on every output, so at least one of them is correct.
func (s Standby) F() int { return len(s.Active) - 1 }

// Assign returns the replicas for a segment, given the nodes excluded at or
// before it: each excluded active replica, in slot order, is replaced by the
// first spare, in plan order, that is neither excluded nor already
// assigned. With the spares exhausted the result is shorter: the chain runs
// on fewer replicas, which stays safe because Core counts only proven
// exclusions off the f+1 agreeing signatures it needs, so a segment short of
// them is decided by the judge's re-execution (an omission or timing
// exclusion may have named an honest-but-slow node, so the replicas left
// could all be faulty); the shortfall is for the operator to see.
func (s Standby) Assign(excluded func(NodeKey) bool) []NodeKey {
	out := make([]NodeKey, 0, len(s.Active))
	used := make(map[NodeKey]bool, len(s.Active))
	for _, a := range s.Active {
		if !excluded(a) {
			used[a] = true
		}
	}
	next := 0
	for _, a := range s.Active {
		if !excluded(a) {
			out = append(out, a)
			continue
		}
		for next < len(s.Spares) && (excluded(s.Spares[next]) || used[s.Spares[next]]) {
			next++
		}
		if next < len(s.Spares) {
			used[s.Spares[next]] = true
			out = append(out, s.Spares[next])
			next++
		}
	}
	return out
}

// ParentPlan is a chain's precomputed overlay fallback: each relay's or
// edge's parent in the tree, and the backup parent computed for it in
// advance (COCOS can compute backup trees; here they are input).
type ParentPlan struct {
	Parent map[NodeKey]NodeKey // child → parent; the root has none
	Backup map[NodeKey]NodeKey // child → backup parent
}

// ParentOf returns the parent a child uses once the given nodes are
// excluded: its parent; if excluded, its backup; if that is excluded too,
// the nearest ancestor of its parent that is not (the root is never
// excluded: it is the origin). ok is false for the root, which has no
// parent. Like Assign, it is a pure function of the plan and the excluded
// set.
func (p ParentPlan) ParentOf(child NodeKey, excluded func(NodeKey) bool) (parent NodeKey, ok bool) {
	primary, ok := p.Parent[child]
	if !ok {
		return NodeKey{}, false
	}
	if !excluded(primary) {
		return primary, true
	}
	if b, ok := p.Backup[child]; ok && !excluded(b) && b != child {
		return b, true
	}
	// Walk up from the primary; the bound stops a malformed (cyclic) plan.
	up := primary
	for range len(p.Parent) + 1 {
		next, ok := p.Parent[up]
		if !ok {
			return up, true // the root
		}
		if !excluded(next) && next != child {
			return next, true
		}
		up = next
	}
	return up, true
}

// View is what any node of a chain (replica, relay, edge, player) derives
// from the chain's plan and the exclusions in its log: which replicas run
// each segment and which parent each child uses. It holds no clock and asks
// no one: two correct nodes that applied the same exclusions agree on every
// segment's configuration.
type View struct {
	chain    content.VideoID
	judge    NodeKey
	standby  Standby
	parents  ParentPlan
	params   Params
	switchAt map[NodeKey]uint64
}

// NewView starts a view with no exclusions.
func NewView(chain content.VideoID, judge NodeKey, standby Standby, parents ParentPlan, params Params) (*View, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	return &View{chain: chain, judge: judge, standby: standby, parents: parents, params: params, switchAt: map[NodeKey]uint64{}}, nil
}

// Apply checks an exclusion read from the channel log (Exclusion.Check with
// re, which may be nil: see there) and records its switch segment. A
// refused exclusion changes nothing; applying one twice is a no-op (the
// first switch segment stands: exclusion is permanent).
func (v *View) Apply(x *Exclusion, re Reexecutor) error {
	if x.Chain != v.chain {
		return fmt.Errorf("exclusion of %s: for chain %s, this view is of %s", x.Culprit, x.Chain, v.chain)
	}
	if err := x.Check(v.judge, re); err != nil {
		return err
	}
	if _, ok := v.switchAt[x.Culprit]; !ok {
		v.switchAt[x.Culprit] = x.SwitchAt(v.params)
	}
	return nil
}

func (v *View) excludedAt(seg uint64) func(NodeKey) bool {
	return func(k NodeKey) bool {
		s, ok := v.switchAt[k]
		return ok && s <= seg
	}
}

// Replicas is the replica set of segment seg.
func (v *View) Replicas(seg uint64) []NodeKey { return v.standby.Assign(v.excludedAt(seg)) }

// ParentOf is the parent child takes segment seg from.
func (v *View) ParentOf(child NodeKey, seg uint64) (NodeKey, bool) {
	return v.parents.ParentOf(child, v.excludedAt(seg))
}
