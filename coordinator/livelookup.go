package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/swarmcast/swarmcast/wire"
)

// liveLookup answers a lookup whose video is a live chain: for each
// segment from From up to the chain's head, the edges (then relays) in the
// chain's trees with the indices their substreams carry, ranked as VoD
// holders are (region, load, seeded tie-break), and the chain's origin;
// with the viewer's order limits for the edges (live upload earns points
// as VoD does). ok is false when the video is not a chain.
func (c *Coordinator) liveLookup(ctx context.Context, req *wire.LookupRequest) (resp wire.LookupResponse, ok bool, err error) {
	head, ok := c.live.IsChain(req.Video)
	if !ok {
		return resp, false, nil
	}
	m, _ := c.live.Manifest(req.Video)
	switch {
	case req.Rendition < 0 || req.Rendition >= len(m.Renditions):
		return resp, true, wire.BadRequest("rendition %d does not exist (the chain has %d)", req.Rendition, len(m.Renditions))
	case req.Count < 1 || req.Count > wire.MaxLookupCount:
		return resp, true, wire.BadRequest("count %d: want 1..%d", req.Count, wire.MaxLookupCount)
	case req.From < 0 || int64(req.From) > head:
		return resp, true, wire.NotFound("segment %d of live chain %s is not published yet (head %d); follow the entries (%s)", req.From, req.Video, head, wire.PathLiveEntries)
	case len(req.Region) > maxRegionLen || len(req.Exclude) > maxExclude:
		return resp, true, wire.BadRequest("region or exclude too long (limits %d bytes, %d nodes)", maxRegionLen, maxExclude)
	}
	carriers := c.live.Carriers(req.Video)
	originID, _ := c.live.ChainOrigin(req.Video)
	now := c.cfg.Now()
	tiebreak := splitmix64(c.lookupSeed + c.lookupSeq.Add(1))
	type ranked struct {
		src   wire.Source
		relay bool
		score uint64
	}
	var list []ranked
	var edges []wire.NodeID
	c.mu.RLock()
	for id, shards := range carriers {
		n := c.st.nodes[id]
		if n == nil || !c.st.alive(n, now) || slices.Contains(req.Exclude, id) {
			continue
		}
		list = append(list, ranked{wire.Source{NodeID: id, Addr: n.addr, Shards: shards}, n.role == wire.RoleRelay, rankScore(n, req.Region, tiebreak)})
	}
	if o := c.st.nodes[originID]; o != nil && c.st.alive(o, now) {
		resp.Origins = []wire.Source{{NodeID: o.id, Addr: o.addr}}
	}
	c.mu.RUnlock()
	slices.SortFunc(list, func(a, b ranked) int {
		if a.relay != b.relay {
			if a.relay {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.score, b.score)
	})
	sources := make([]wire.Source, len(list))
	for i, r := range list {
		sources[i] = r.src
		if !r.relay {
			edges = append(edges, r.src.NodeID)
		}
	}
	end := min(int64(req.From+req.Count), head+1)
	for seg := int64(req.From); seg < end; seg++ {
		resp.Segments = append(resp.Segments, wire.SegmentSources{Segment: int(seg), Sources: sources})
	}
	if resp.Origins == nil {
		resp.Origins = []wire.Source{}
	}
	if req.ViewerID != "" && end > int64(req.From) {
		c.live.Fetched(ctx, req.Video, req.ViewerID, int64(req.From), end)
	}
	if req.ViewerID != "" && len(edges) > 0 {
		limits, err := c.acct.OrderLimits(ctx, req.ViewerID, req.Video, edges, nil, nil)
		if err != nil {
			c.log.Warn("live lookup: order limits", "viewer", req.ViewerID, "err", err)
		}
		for _, l := range limits {
			if l != nil {
				resp.Limits = append(resp.Limits, l.Limit)
			}
		}
	}
	c.lookups.Add(1)
	c.metrics.lookups.Inc()
	return resp, true, nil
}

// renderLiveLookup renders a live lookup's answer into sc.buf.
func renderLiveLookup(resp *wire.LookupResponse, sc *lookupScratch) error {
	var b []byte
	var err error
	if sc.binary {
		b, err = wire.EncodeLookupBinary(resp)
	} else {
		b, err = json.Marshal(resp)
	}
	sc.buf = append(sc.buf[:0], b...)
	return err
}
