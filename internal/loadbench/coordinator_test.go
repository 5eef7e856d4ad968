package loadbench

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// TestSyntheticHeartbeatsAreHeartbeatRequests: the hand-rendered bodies of
// the coordinator bench decode strictly as the wire.HeartbeatRequest they
// stand for, the full one with every held shard and a delta with what it
// evicted and added, so the bench loads the coordinator with real
// heartbeats.
func TestSyntheticHeartbeatsAreHeartbeatRequests(t *testing.T) {
	videos := []content.VideoID{{1}, {2}, {3}}
	hexIDs := []string{videos[0].String(), videos[1].String(), videos[2].String()}
	e := &syntheticEdge{id: wire.NodeID("ab12"), rng: rand.New(rand.NewPCG(1, 2))}
	r := rand.New(rand.NewPCG(3, 4))
	e.fill(500, 400, 40, func() uint64 { return r.Uint64N(3) })
	decode := func(b []byte) wire.HeartbeatRequest {
		t.Helper()
		var hb wire.HeartbeatRequest
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&hb); err != nil {
			t.Fatalf("%v in %.200s", err, b)
		}
		return hb
	}
	want := func(i int) wire.ShardSet {
		k := e.held[i]
		return wire.ShardSet{Video: videos[k>>segmentBits], Segment: int(k & (1<<segmentBits - 1)), Shards: []int{int(e.shard[i])}}
	}
	full := decode(e.full(hexIDs))
	if full.NodeID != e.id || !full.Full || len(full.Added) != 500 || full.UsedBytes != 500<<17 {
		t.Fatalf("full heartbeat: node %q full %v, %d sets, used %d", full.NodeID, full.Full, len(full.Added), full.UsedBytes)
	}
	for i, set := range full.Added {
		if !reflectEqual(set, want(i)) {
			t.Fatalf("set %d is %+v, want %+v", i, set, want(i))
		}
	}
	before := map[uint32]bool{}
	for _, k := range e.held {
		before[k] = true
	}
	delta := decode(e.delta(hexIDs, 2, 400, 40))
	if delta.Full || len(delta.Removed) != 2 || len(delta.Added) != 2 {
		t.Fatalf("delta: full %v, %d removed, %d added; want 2 and 2", delta.Full, len(delta.Removed), len(delta.Added))
	}
	for _, set := range delta.Removed {
		if !before[uint32(videoIndex(videos, set.Video))<<segmentBits|uint32(set.Segment)] {
			t.Fatalf("delta removes %+v, which the edge did not hold", set)
		}
	}
	if last := want(len(e.held) - 1); !reflectEqual(delta.Added[1], last) {
		t.Fatalf("delta adds %+v last, want the newest held %+v", delta.Added[1], last)
	}
}

func videoIndex(videos []content.VideoID, v content.VideoID) int {
	for i := range videos {
		if videos[i] == v {
			return i
		}
	}
	return -1
}

func reflectEqual(a, b wire.ShardSet) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
