package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// indexVideo is a synthetic catalogue entry: renditions × segments.
func indexVideo(i, renditions, segments int) (coordinatordb.CatalogueVideo, *content.Manifest) {
	m := &content.Manifest{Params: content.Params{K: 4, NMax: 40}, TargetDuration: 2_000_000, Title: fmt.Sprintf("v%d", i)}
	for r := range renditions {
		rend := content.Rendition{Name: fmt.Sprintf("r%d", r), Bandwidth: 1_000_000, Width: 640, Height: 360}
		for range segments {
			rend.Segments = append(rend.Segments, content.Segment{Duration: 2_000_000, Size: 250_000})
		}
		m.Renditions = append(m.Renditions, rend)
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i))
	return coordinatordb.CatalogueVideo{ID: content.VideoID(sha256.Sum256(seed[:]))}, m
}

// TestHolderIndexFollowsAModel drives the packed holder index with random
// registrations, full and delta heartbeats, removals and late publishes,
// and after every step compares it with a plain map of what each node
// reported (the index the coordinator had before it was packed), both
// ways: every node's inventory and every segment's holder list, with the
// back-references between them and the shard counts.
func TestHolderIndexFollowsAModel(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	now := time.Unix(1_700_000_000, 0)
	s := newState(2 * time.Second)
	type video struct {
		rec coordinatordb.CatalogueVideo
		m   *content.Manifest
	}
	var videos []video
	for i := range 6 {
		rec, m := indexVideo(i, 1+i%3, 5+i)
		videos = append(videos, video{rec, m})
	}
	published := 0
	publish := func() {
		s.addVideo(videos[published].rec, videos[published].m)
		published++
	}
	publish()
	publish()
	publish()
	model := map[wire.NodeID]map[content.SegmentRef]ShardMask{}
	randSet := func() wire.ShardSet {
		v := videos[rng.Intn(len(videos))]
		r := rng.Intn(len(v.m.Renditions))
		seg := rng.Intn(len(v.m.Renditions[r].Segments))
		var shards []int
		for range 1 + rng.Intn(1+rng.Intn(8)) { // mostly 1–3 shards, sometimes spilled
			shards = append(shards, rng.Intn(v.m.Params.NMax))
		}
		return wire.ShardSet{Video: v.rec.ID, Rendition: r, Segment: seg, Shards: shards}
	}
	apply := func(inv map[content.SegmentRef]ShardMask, set wire.ShardSet, add bool) {
		key := content.SegmentRef{Video: set.Video, Rendition: set.Rendition, Segment: set.Segment}
		m := inv[key].Minus(maskOf(set.Shards...))
		if add {
			m = inv[key].Union(maskOf(set.Shards...))
		}
		if m.Empty() {
			delete(inv, key)
		} else {
			inv[key] = m
		}
	}
	var ids []wire.NodeID
	for step := range 3000 {
		switch op := rng.Intn(100); {
		case op < 8 || len(ids) == 0: // a node registers (or re-registers)
			var id wire.NodeID
			if len(ids) > 0 && rng.Intn(3) == 0 {
				id = ids[rng.Intn(len(ids))]
			} else {
				id = newTestNode().ID
				ids = append(ids, id)
			}
			s.register(wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}, now, rng.Uint64())
			model[id] = map[content.SegmentRef]ShardMask{}
		case op < 12: // a node leaves
			id := ids[rng.Intn(len(ids))]
			if n := s.nodes[id]; n != nil {
				s.remove(n)
				delete(model, id)
			}
		case op < 13 && published < len(videos):
			publish()
		default: // a heartbeat, full now and then
			id := ids[rng.Intn(len(ids))]
			n := s.nodes[id]
			if n == nil {
				continue
			}
			req := wire.HeartbeatRequest{NodeID: id, Full: rng.Intn(10) == 0}
			for range rng.Intn(30) {
				req.Added = append(req.Added, randSet())
			}
			for range rng.Intn(10) {
				req.Removed = append(req.Removed, randSet())
			}
			if s.checkShardSets("added", req.Added) != nil || s.checkShardSets("removed", req.Removed) != nil {
				t.Fatalf("step %d: generated sets refused", step)
			}
			inv := model[id]
			if req.Full {
				clear(inv)
			} else {
				for _, set := range req.Removed {
					apply(inv, set, false)
				}
			}
			for _, set := range req.Added {
				apply(inv, set, true)
			}
			s.heartbeat(n, &req, now)
		}
		checkIndex(t, step, s, model)
	}
}

// checkIndex compares s's holder index with model, both ways.
func checkIndex(t *testing.T, step int, s *state, model map[wire.NodeID]map[content.SegmentRef]ShardMask) {
	t.Helper()
	if len(s.nodes) != len(model) {
		t.Fatalf("step %d: %d nodes, model %d", step, len(s.nodes), len(model))
	}
	for id, inv := range model {
		n := s.nodes[id]
		if s.bySlot[n.slot] != n {
			t.Fatalf("step %d: node %s is not at its slot %d", step, id[:8], n.slot)
		}
		count := 0
		for key, m := range inv {
			count += m.Count()
			if got := s.holding(n, key); got != m {
				t.Fatalf("step %d: node %s holds %v of %v, model %v", step, id[:8], got.Indices(), key, m.Indices())
			}
		}
		if n.shards != count {
			t.Fatalf("step %d: node %s counts %d shards, model %d", step, id[:8], n.shards, count)
		}
		if !slices.IsSortedFunc(n.held, func(a, b heldSegment) int { return int(a.seg) - int(b.seg) }) {
			t.Fatalf("step %d: node %s inventory is not sorted by segment slot", step, id[:8])
		}
		listed := 0
		s.eachHeld(n, func(key content.SegmentRef, seg *segmentEntry, h holder) {
			listed++
			if h.node != uint32(n.slot) || s.shardsOf(h.shards) != inv[key] || h.shards == 0 {
				t.Fatalf("step %d: node %s's entry for %v points at holder %+v", step, id[:8], key, h)
			}
		})
		for key := range n.unknown {
			if s.videos[key.Video] != nil {
				t.Fatalf("step %d: node %s keeps %v of a catalogued video outside the index", step, id[:8], key)
			}
		}
		if listed+len(n.unknown) != len(inv) {
			t.Fatalf("step %d: node %s lists %d+%d segments, model %d", step, id[:8], listed, len(n.unknown), len(inv))
		}
	}
	for _, v := range s.byBase {
		for r, segs := range v.segs {
			for i := range segs {
				key := content.SegmentRef{Video: v.id, Rendition: r, Segment: i}
				for _, h := range segs[i].holders {
					n := s.bySlot[h.node]
					if n == nil || model[n.id][key] != s.shardsOf(h.shards) {
						t.Fatalf("step %d: segment %v lists a holder the model does not have", step, key)
					}
				}
			}
		}
	}
}

// TestShardCodeRoundTrips packs every shard set of up to three shards, and
// larger ones, and unpacks the same set (and renders the same binary
// answer bytes as the set would).
func TestShardCodeRoundTrips(t *testing.T) {
	s := newState(time.Second)
	rng := rand.New(rand.NewSource(1))
	for range 2000 {
		var m ShardMask
		for range 1 + rng.Intn(6) {
			m.Set(rng.Intn(content.MaxTotalShards))
		}
		c := s.encodeShards(m)
		if got := s.shardsOf(c); got != m || s.shardCount(c) != m.Count() {
			t.Fatalf("%v packed as %#x unpacks as %v", m.Indices(), c, got.Indices())
		}
		if got, want := s.appendShardsBinary([]byte{1}, c), appendMaskBinary([]byte{1}, m); !bytes.Equal(got, want) {
			t.Fatalf("%v packed as %#x renders as %x in a binary answer, want %x", m.Indices(), c, got, want)
		}
		if (c&shardCodeTable != 0) != (m.Count() > shardCodeInlineMax) {
			t.Fatalf("%v: %d shards packed as %#x", m.Indices(), m.Count(), c)
		}
		s.releaseShards(c)
	}
	if len(s.masks) > 1 {
		t.Fatalf("released spill entries are not reused: %d entries", len(s.masks))
	}
}
