package live

import (
	"context"
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/wire"
)

// A child's proof of a parent's commission, checked by the relays' judge
// on its own (docs/LIVE.md, "Relays under BTR"): the proof is the parent's
// signed push statement (a btr.Output of the relaying task) whose digest
// is not that of the substream's correct shards. The judge re-executes
// relaying itself: it takes the chain's signed entry of that segment from
// its own store, fetches the substream's shards from the chain's origin
// (the trees' root, which holds every segment it published), verifies
// each against the entry and digests them (fanout.RelayReexecutor). The
// child's word is never taken: a proof against an honest push refutes
// itself (its digest is the correct one) and changes nothing.

// relayProofFetchTimeout bounds the judge's fetch of one substream's
// shards from the origin.
const relayProofFetchTimeout = 5 * time.Second

// relayProofReexecutor checks that p is a proof sender may post (against
// its own parent in that substream for that segment, on this chain) and,
// for a commission, returns a re-executor holding the substream's correct
// digest (nil for an equivocation: the two statements alone prove it).
// Anything else is a wire error with nothing changed.
func (s *Service) relayProofReexecutor(ctx context.Context, id content.VideoID, sender wire.NodeID, senderKey btr.NodeKey, p *btr.ProofOfMisbehaviour) (btr.Reexecutor, error) {
	if p.A == nil || p.A.Chain != id {
		return nil, wire.BadRequest("relay judge: the proof is not about chain %s", id)
	}
	sub, ok := btr.RelaySubstream(p.A.Task)
	if !ok {
		return nil, wire.BadRequest("relay judge: the proof's task %q is not a relaying task", p.A.Recipe)
	}
	s.relays.mu.Lock()
	c := s.relays.chains[id]
	var parent btr.NodeKey
	var isParent bool
	var substreams int
	var addr string
	if c != nil {
		parent, isParent = c.judge.ParentOf(senderKey, sub, p.A.Segment)
		substreams, addr = len(c.parent), c.originAddr
	}
	s.relays.mu.Unlock()
	if c == nil {
		return nil, wire.NotFound("relay judge: chain %s has no relay trees (not live, or not watched)", id)
	}
	if !isParent || parent != p.Culprit() {
		return nil, wire.Errorf(http.StatusForbidden, "relay judge: %s is not %s's parent in substream %d at segment %d: post proofs against your own parent's pushes", p.Culprit(), sender, sub, p.A.Segment)
	}
	if p.Kind != btr.Commission {
		return nil, nil
	}
	if addr == "" {
		return nil, wire.Errorf(http.StatusServiceUnavailable, "relay judge: chain %s's origin address is not known yet; post the proof again after the next tree build", id)
	}
	s.mu.Lock()
	ch := s.chains[id]
	var g *content.LiveGenesis
	if ch != nil {
		g = ch.genesis
	}
	s.mu.Unlock()
	if g == nil {
		return nil, wire.NotFound("relay judge: chain %s is not registered", id)
	}
	raw, err := s.Entries(ctx, id, p.A.Segment, 0)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 || sha256.Sum256(raw[0]) != p.A.Input {
		return nil, wire.BadRequest("relay judge: the proof's task names entry digest %x, which is not chain %s's entry %d", p.A.Input[:6], id, p.A.Segment)
	}
	e, err := content.DecodeLiveEntry(raw[0], g, id)
	if err != nil {
		return nil, err
	}
	indices := content.SubstreamIndices(sub, substreams, s.cfg.PushShards)
	fctx, cancel := context.WithTimeout(ctx, relayProofFetchTimeout)
	defer cancel()
	var shards []*content.ShardMessage
	for r, seg := range e.Segments {
		for _, i := range indices {
			ref := content.SegmentRef{Video: id, Rendition: r, Segment: int(e.Seq)}.Shard(i)
			res, err := wire.GetShard(fctx, s.relays.http(), wire.ShardRequest{Base: addr, Ref: ref, MaxBytes: int64(seg.Size) + 64<<10})
			if err != nil {
				return nil, wire.Errorf(http.StatusServiceUnavailable, "relay judge: cannot re-execute the relaying (shard %d of rendition %d of segment %d from the origin): %v; post the proof again", i, r, e.Seq, err)
			}
			sh, err := content.DecodeShardMessage(res.Body)
			if err != nil {
				return nil, wire.Errorf(http.StatusServiceUnavailable, "relay judge: the origin's shard %d of rendition %d: %v", i, r, err)
			}
			shards = append(shards, sh)
		}
	}
	re := fanout.NewRelayReexecutor()
	if err := re.Add(g, raw[0], sub, indices, shards); err != nil {
		return nil, wire.Errorf(http.StatusServiceUnavailable, "relay judge: the origin's shards do not verify: %v", err)
	}
	return re, nil
}

// http is the judge's client for the origin's shards (made once).
func (j *relayJudges) http() *http.Client {
	j.once.Do(func() { j.hc = wire.NewHTTPClient() })
	return j.hc
}
