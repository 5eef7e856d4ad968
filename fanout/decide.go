package fanout

import (
	"errors"
	"fmt"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// The receiver's decisions, sans-IO: who may push what, and whether a
// push's shards are the ones its entry commits to. Receiver.Receive feeds
// them; they read no clock and do no I/O.

// Refusals of a push, as Receive wraps them (StatusOf maps them to HTTP).
var (
	// ErrNotParent: the sender is not this node's assigned parent of a
	// substream the push carries (or the node has no such route).
	ErrNotParent = errors.New("not the assigned parent")
	// ErrRejected: the entry or a shard does not verify (forged, altered,
	// or of another chain).
	ErrRejected = errors.New("does not verify")
	// ErrFork: the publisher signed a different entry for a held segment;
	// the ForkProof is kept (Receiver.Forks).
	ErrFork = errors.New("fork")
	// ErrStale: the segment is older than the window this node keeps, or
	// does not follow the held chain.
	ErrStale = errors.New("stale or out of order")
	// ErrUnavailable: the chain's genesis could not be fetched from the
	// coordinator (retry later).
	ErrUnavailable = errors.New("chain unavailable")
)

// CheckSender accepts a push only if every shard it carries belongs to a
// substream of the push's chain whose route here names sender as the
// parent of the push's segment: Parent, or, from the route's SwitchAt on
// (Parent excluded), BackupParent.
func CheckSender(routes []wire.LiveRoute, sender wire.NodeID, p *Push) error {
	for _, sh := range p.Shards {
		ok := false
		for _, r := range routes {
			if r.Chain == p.Chain && slices.Contains(r.Indices, sh.Index) {
				if parent := ParentFor(r, p.Seq); parent != sender {
					return fmt.Errorf("%w: node %s pushed shard index %d of chain %s segment %d, whose substream %d parent here is %q; pushes are accepted only from the parent the coordinator assigned", ErrNotParent, sender, sh.Index, p.Chain, p.Seq, r.Substream, parent)
				}
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%w: node %s pushed shard index %d of chain %s, which no route of this node carries (the coordinator's latest live set has none)", ErrNotParent, sender, sh.Index, p.Chain)
		}
	}
	return nil
}

// ParentFor is the route's parent for segment seq: BackupParent from
// SwitchAt on when the route names a switch, else Parent.
func ParentFor(r wire.LiveRoute, seq uint64) wire.NodeID {
	if r.SwitchAt != 0 && r.BackupParent != "" && seq >= r.SwitchAt {
		return r.BackupParent
	}
	return r.Parent
}

// VerifyPushShards checks every shard of a push against the segment roots
// of its (already verified) entry, before anything is kept: the index is
// in range, the size is the segment's shard size, and the Merkle proof
// leads to the entry's root. It names every bad shard.
func VerifyPushShards(g *content.LiveGenesis, e *content.LiveEntry, shards []*content.ShardMessage) error {
	var bad []string
	for _, sh := range shards {
		if err := verifyShard(g.Params, e, sh); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %d of %d shards of segment %d: %v", ErrRejected, len(bad), len(shards), e.Seq, bad)
	}
	return nil
}

func verifyShard(p content.Params, e *content.LiveEntry, sh *content.ShardMessage) error {
	if sh.Video != e.Chain || uint64(sh.Segment) != e.Seq {
		return fmt.Errorf("shard names %s segment %d, not the entry's", sh.Video, sh.Segment)
	}
	if sh.Rendition < 0 || sh.Rendition >= len(e.Segments) {
		return fmt.Errorf("rendition %d does not exist (the ladder has %d)", sh.Rendition, len(e.Segments))
	}
	if sh.Index < 0 || sh.Index >= p.NMax {
		return fmt.Errorf("rendition %d shard index %d outside 0..%d", sh.Rendition, sh.Index, p.NMax-1)
	}
	seg := e.Segments[sh.Rendition]
	if want := p.ShardSize(int(seg.Size)); len(sh.Data) != want {
		return fmt.Errorf("rendition %d shard %d: %d bytes, want %d", sh.Rendition, sh.Index, len(sh.Data), want)
	}
	if err := content.VerifyInclusion(seg.Root, p.NMax, sh.Index, content.LeafHash(sh.Data), sh.Proof); err != nil {
		return fmt.Errorf("rendition %d shard %d: %v", sh.Rendition, sh.Index, err)
	}
	return nil
}
