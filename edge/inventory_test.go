package edge

import (
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

func directives(action string, f *fixture, r, s int, shards ...int) []wire.Directive {
	return []wire.Directive{{Action: action, ShardSet: wire.ShardSet{Video: f.id, Rendition: r, Segment: s, Shards: shards}}}
}

func TestDeltaRestoreKeepsLaterChanges(t *testing.T) {
	var v content.VideoID
	k := func(i int) content.ShardRef { return content.SegmentRef{Video: v, Rendition: 0, Segment: 0}.Shard(i) }
	inv := newInventory(100, 1)
	inv.add(k(1), &heldShard{size: 1})
	inv.add(k(2), &heldShard{size: 1})
	d := inv.takeDelta(0, false)
	if len(d.added) != 2 {
		t.Fatalf("delta %v", d.added)
	}
	// While the heartbeat is in flight: 2 goes, 3 comes.
	inv.remove(k(2))
	inv.add(k(3), &heldShard{size: 1})
	inv.restoreDelta(0, d) // the heartbeat failed
	d = inv.takeDelta(0, false)
	if _, ok := d.added[k(1)]; !ok || len(d.added) != 2 {
		t.Fatalf("added after restore %v, want 1 and 3", d.added)
	}
	if _, ok := d.removed[k(2)]; !ok || len(d.removed) != 1 {
		t.Fatalf("removed after restore %v, want 2", d.removed)
	}
	full := inv.takeDelta(0, true)
	if len(full.added) != 2 || full.removed != nil {
		t.Fatalf("full delta %v / %v", full.added, full.removed)
	}
	sets := shardSets(full.added)
	if len(sets) != 1 || len(sets[0].Shards) != 2 || sets[0].Shards[0] != 1 {
		t.Fatalf("shard sets %+v", sets)
	}
}
