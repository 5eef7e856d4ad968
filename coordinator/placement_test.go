package coordinator

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func edgesN(n int, disk, upload int64, regions ...string) []PlacementEdge {
	out := make([]PlacementEdge, n)
	for i := range out {
		out[i] = PlacementEdge{ID: wire.NodeID(fmt.Sprintf("edge-%03d", i)), DiskCapBytes: disk, UploadCapBytes: upload}
		if len(regions) > 0 {
			out[i].Region = regions[i%len(regions)]
		}
	}
	return out
}

// videoNamed is a video id spelling name in its first bytes (zero after):
// ids order as their names do, so tests read like names.
func videoNamed(name string) content.VideoID {
	var id content.VideoID
	copy(id[:], name)
	return id
}

func seg(video string, s int, rate float64) PlacementSegment {
	return PlacementSegment{Key: content.SegmentRef{Video: videoNamed(video), Segment: s}, Rate: rate, ShardBytes: 10_000, K: 8, NMax: 32}
}

// planView indexes a plan: per segment, which edge has which shards.
type planView map[content.SegmentRef]map[wire.NodeID]ShardMask

func viewOf(plan []Assignment) planView {
	v := planView{}
	for _, a := range plan {
		if v[a.Segment] == nil {
			v[a.Segment] = map[wire.NodeID]ShardMask{}
		}
		v[a.Segment][a.Edge] = v[a.Segment][a.Edge].Union(a.Shards)
	}
	return v
}

func (v planView) distinct(key content.SegmentRef) int {
	var all ShardMask
	for _, m := range v[key] {
		all = all.Union(m)
	}
	return all.Count()
}

// requireCaps checks every edge's disk and expected upload (with the
// Placer's model at the final holder count) against its caps, and that no
// edge has two shards of a segment while some edge with room has none.
func requireCaps(t *testing.T, st PlacementState, plan []Assignment) {
	t.Helper()
	segs := map[content.SegmentRef]PlacementSegment{}
	for _, s := range st.Segments {
		segs[s.Key] = s
	}
	view := viewOf(plan)
	disk := map[wire.NodeID]int64{}
	upload := map[wire.NodeID]float64{}
	for key, holders := range view {
		s := segs[key]
		c := float64(len(holders))
		for id, m := range holders {
			disk[id] += int64(m.Count()) * s.ShardBytes
			upload[id] += float64(m.Count()) * s.Rate * float64(s.ShardBytes) * min(1, float64(s.K)/c)
		}
	}
	for _, e := range st.Edges {
		if disk[e.ID] > e.DiskCapBytes {
			t.Errorf("edge %s: %d bytes assigned, disk cap %d", e.ID, disk[e.ID], e.DiskCapBytes)
		}
		if upload[e.ID] > float64(e.UploadCapBytes)*(1+1e-9) {
			t.Errorf("edge %s: %.0f B/s expected upload, cap %d", e.ID, upload[e.ID], e.UploadCapBytes)
		}
	}
}

func TestPlacerHotSegmentsGetMoreShards(t *testing.T) {
	st := PlacementState{
		Edges:    edgesN(40, 1e9, 1e9),
		Segments: []PlacementSegment{seg("v", 0, 10), seg("v", 1, 2.5), seg("v", 2, 0.01)},
	}
	plan := NewPlacer(1).Plan(epoch, st)
	view := viewOf(plan)
	hot, warm, cold := view.distinct(st.Segments[0].Key), view.distinct(st.Segments[1].Key), view.distinct(st.Segments[2].Key)
	if hot != 32 || !(hot > warm && warm > cold) || cold < 8 {
		t.Fatalf("distinct shards hot/warm/cold = %d/%d/%d, want 32 > warm > cold >= k=8", hot, warm, cold)
	}
	for key, holders := range view {
		for id, m := range holders {
			if m.Count() > 1 {
				t.Fatalf("segment %v: edge %s got %d shards while 40 edges had room", key, id, m.Count())
			}
		}
	}
	requireCaps(t, st, plan)
}

func TestPlacerRespectsCaps(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for trial := range 50 {
		st := PlacementState{Edges: edgesN(1+rng.Intn(30), int64(rng.Intn(200_000)), int64(rng.Intn(400_000)), "eu", "us")}
		for s := range 1 + rng.Intn(40) {
			sg := seg(fmt.Sprint("v", s%3), s, rng.Float64()*5)
			sg.ShardBytes = int64(1 + rng.Intn(30_000))
			sg.ByRegion = map[string]float64{"eu": sg.Rate / 2, "us": sg.Rate / 2}
			st.Segments = append(st.Segments, sg)
		}
		plan := NewPlacer(int64(trial)).Plan(epoch, st)
		requireCaps(t, st, plan)
	}
}

func TestPlacerUploadCapLimitsHolders(t *testing.T) {
	// Each request of this segment moves k shards of 10 kB at 1 request/s:
	// 80 kB/s spread over its holders. Edges with 5 kB/s of upload can only
	// hold a shard once 16 holders share it, which never happens at the
	// first admission, so nothing is placed; with 20 kB/s, 4+ holders fit.
	tight := PlacementState{Edges: edgesN(40, 1e9, 5_000), Segments: []PlacementSegment{seg("v", 0, 1)}}
	if plan := NewPlacer(1).Plan(epoch, tight); len(plan) != 0 {
		t.Fatalf("edges with too little upload got %v", plan)
	}
	roomy := PlacementState{Edges: edgesN(40, 1e9, 20_000), Segments: []PlacementSegment{seg("v", 0, 1)}}
	plan := NewPlacer(1).Plan(epoch, roomy)
	requireCaps(t, roomy, plan)
	if len(plan) == 0 {
		t.Fatal("nothing placed")
	}
}

func TestPlacerDiskCap(t *testing.T) {
	// Room for exactly 3 shards per edge, 4 edges, 3 segments of equal
	// demand wanting 32 distinct shards each: 12 shards fit.
	st := PlacementState{Edges: edgesN(4, 30_000, 1e12), Segments: []PlacementSegment{seg("v", 0, 1), seg("v", 1, 1), seg("v", 2, 1)}}
	plan := NewPlacer(1).Plan(epoch, st)
	requireCaps(t, st, plan)
	total := 0
	for _, a := range plan {
		total += a.Shards.Count()
	}
	if total != 12 {
		t.Fatalf("placed %d shards, want the 12 that fit", total)
	}
}

func TestPlacerDeterministic(t *testing.T) {
	st := PlacementState{Edges: edgesN(25, 1e6, 1e6, "eu", "us", "ap")}
	for s := range 30 {
		sg := seg("v", s, float64(s%7)+0.5)
		sg.ByRegion = map[string]float64{"eu": 1, "us": float64(s % 3)}
		st.Segments = append(st.Segments, sg)
	}
	a, b := NewPlacer(42), NewPlacer(42)
	for round := range 3 {
		pa, pb := a.Plan(epoch, st), b.Plan(epoch, st)
		if !reflect.DeepEqual(pa, pb) {
			t.Fatalf("round %d: plans differ for one seed", round)
		}
	}
	// Shuffling the input order changes nothing either.
	shuffled := st
	shuffled.Edges = slices.Clone(st.Edges)
	shuffled.Segments = slices.Clone(st.Segments)
	rand.New(rand.NewSource(3)).Shuffle(len(shuffled.Edges), func(i, j int) { shuffled.Edges[i], shuffled.Edges[j] = shuffled.Edges[j], shuffled.Edges[i] })
	rand.New(rand.NewSource(4)).Shuffle(len(shuffled.Segments), func(i, j int) {
		shuffled.Segments[i], shuffled.Segments[j] = shuffled.Segments[j], shuffled.Segments[i]
	})
	if !reflect.DeepEqual(NewPlacer(42).Plan(epoch, st), NewPlacer(42).Plan(epoch, shuffled)) {
		t.Fatal("plan depends on input order")
	}
}

func TestPlacerCountsHeldShardsAsSupply(t *testing.T) {
	key := content.SegmentRef{Video: videoNamed("v")}
	edges := edgesN(10, 1e9, 1e9)
	// Edge 3 watched the segment and holds shards 20..27.
	edges[3].Held = map[content.SegmentRef]ShardMask{key: maskOf(20, 21, 22, 23, 24, 25, 26, 27)}
	st := PlacementState{Edges: edges, Segments: []PlacementSegment{seg("v", 0, 0.001), seg("v", 1, 1)}}
	plan := NewPlacer(1).Plan(epoch, st)
	view := viewOf(plan)
	// The cold segment wants k+1 = 9 sources. Edge 3 keeps its 8 held
	// shards (they cost nothing) but counts as one source, since a viewer
	// takes one shard per edge: 8 more edges get one new shard each.
	if got := view[key]["edge-003"]; got != maskOf(20, 21, 22, 23, 24, 25, 26, 27) {
		t.Fatalf("edge-003 keeps %v, want its 8 held shards", got.Indices())
	}
	if len(view[key]) != 9 {
		t.Fatalf("segment has %d holders, want 9", len(view[key]))
	}
	if view.distinct(key) != 16 {
		t.Fatalf("segment has %d distinct shards, want 8 held + 8 new", view.distinct(key))
	}
}

func TestPlacerChurnReassigns(t *testing.T) {
	st := PlacementState{Edges: edgesN(40, 1e9, 1e9)}
	for s := range 5 {
		st.Segments = append(st.Segments, seg("v", s, 1))
	}
	p := NewPlacer(9)
	first := p.Plan(epoch, st)
	prev := map[wire.NodeID]map[content.SegmentRef]ShardMask{}
	for _, a := range first {
		if prev[a.Edge] == nil {
			prev[a.Edge] = map[content.SegmentRef]ShardMask{}
		}
		prev[a.Edge][a.Segment] = a.Shards
	}
	// edge-000 disappears; the rest report their previous assignment.
	var survivors []PlacementEdge
	for _, e := range st.Edges[1:] {
		e.Assigned = prev[e.ID]
		survivors = append(survivors, e)
	}
	gone := prev["edge-000"]
	if len(gone) == 0 {
		t.Fatal("edge-000 had nothing assigned; the scenario tests nothing")
	}
	after := PlacementState{Edges: survivors, Segments: st.Segments}
	second := p.Plan(epoch, after)
	view := viewOf(second)
	for key, lost := range gone {
		for _, sh := range lost.Indices() {
			found := false
			for _, m := range view[key] {
				found = found || m.Has(sh)
			}
			if !found || view.distinct(key) != 32 {
				t.Errorf("segment %v: shard %d of the departed edge was not reassigned (%d distinct)", key, sh, view.distinct(key))
			}
		}
	}
	// Survivors keep what they had (and may take more): churn does not reshuffle the swarm.
	for _, e := range survivors {
		for key, m := range e.Assigned {
			if now := view[key][e.ID]; now.Union(m) != now {
				t.Errorf("edge %s segment %v: had %v, now %v", e.ID, key, m.Indices(), now.Indices())
			}
		}
	}
	requireCaps(t, after, second)
}

func TestPlacerRegionPreference(t *testing.T) {
	st := PlacementState{Edges: edgesN(40, 1e9, 1e9, "eu", "us")}
	hot := seg("v", 0, 1)
	cold := seg("v", 1, 0.01) // wants k+1 shards, fewer than the 20 edges per region
	cold.ByRegion = map[string]float64{"us": 0.01}
	st.Segments = []PlacementSegment{hot, cold}
	plan := NewPlacer(1).Plan(epoch, st)
	for _, a := range plan {
		if a.Segment != cold.Key {
			continue
		}
		if i := slices.IndexFunc(st.Edges, func(e PlacementEdge) bool { return e.ID == a.Edge }); st.Edges[i].Region != "us" {
			t.Fatalf("shard placed on %s in %s, want us edges for us demand", a.Edge, st.Edges[i].Region)
		}
	}
}

func TestPlacerNoEdgesNoDemand(t *testing.T) {
	if plan := NewPlacer(1).Plan(epoch, PlacementState{Segments: []PlacementSegment{seg("v", 0, 1)}}); len(plan) != 0 {
		t.Fatalf("plan without edges = %v", plan)
	}
	if plan := NewPlacer(1).Plan(epoch, PlacementState{Edges: edgesN(3, 1e9, 1e9)}); len(plan) != 0 {
		t.Fatalf("plan without demand = %v", plan)
	}
	if TargetShards(1, 10, 8, 32) != 11 || TargetShards(10, 10, 8, 32) != 32 || TargetShards(0, 10, 8, 32) != 0 {
		t.Fatal("TargetShards")
	}
}

func TestDemandTrackerDecay(t *testing.T) {
	d := NewDemandTracker(time.Minute, epoch)
	now := epoch
	// A steady 2 requests/s converges to a rate of ~2.
	for range 600 {
		now = now.Add(time.Second)
		d.Record(videoNamed("v"), 0, 0, 1, "eu")
		d.Record(videoNamed("v"), 0, 0, 1, "us")
		d.Fold(now)
	}
	got := d.Demand()
	if len(got) != 1 || got[0].Rate < 1.9 || got[0].Rate > 2.1 || got[0].ByRegion["eu"] < 0.9 {
		t.Fatalf("steady demand = %+v, want ~2/s split by region", got)
	}
	// One half-life of silence halves it; many forget it.
	d.Fold(now.Add(time.Minute))
	if r := d.Demand()[0].Rate; r < 0.95 || r > 1.05 {
		t.Fatalf("after one half-life rate = %v, want ~1", r)
	}
	d.Fold(now.Add(30 * time.Minute))
	if len(d.Demand()) != 0 {
		t.Fatal("demand not forgotten")
	}
}

func TestDemandTrackerCountsDistinctViewers(t *testing.T) {
	d := NewDemandTracker(time.Minute, epoch)
	v := videoNamed("v")
	viewers := func() []int {
		var out []int
		for _, sd := range d.Demand() {
			out = append(out, sd.Viewers)
		}
		return out
	}
	// One viewer asking again and again is one viewer, in every region.
	for range 5 {
		d.RecordBy(v, 0, 0, 2, "eu", "viewer-a")
	}
	d.RecordBy(v, 0, 1, 2, "us", "viewer-a")
	d.Fold(epoch.Add(time.Second))
	if got := viewers(); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("one viewer's repeated lookups: viewers %v, want [1 1]", got)
	}
	// A second viewer on segment 1 only.
	d.RecordBy(v, 0, 1, 2, "eu", "viewer-b")
	d.Fold(epoch.Add(2 * time.Second))
	if got := viewers(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("after a second viewer on segment 1: viewers %v, want [1 2]", got)
	}
	// An unknown viewer counts as another one.
	d.Record(v, 0, 0, 1, "eu")
	d.Fold(epoch.Add(3 * time.Second))
	if got := viewers(); !slices.Equal(got, []int{2, 2}) {
		t.Fatalf("after an anonymous lookup of segment 0: viewers %v, want [2 2]", got)
	}
	// Once the demand is forgotten, so are its viewers.
	d.Fold(epoch.Add(time.Hour))
	if len(d.Demand()) != 0 || len(d.seen) != 0 {
		t.Fatalf("after an hour of silence: demand %v, %d viewer records", d.Demand(), len(d.seen))
	}
	d.RecordBy(v, 0, 0, 1, "eu", "viewer-b")
	d.Fold(epoch.Add(time.Hour + time.Second))
	if got := viewers(); !slices.Equal(got, []int{1}) {
		t.Fatalf("a new viewer after the demand was forgotten: viewers %v, want [1]", got)
	}
}

func TestPlacerMinViewers(t *testing.T) {
	one, two, unknown := seg("v", 0, 1), seg("v", 1, 1), seg("v", 2, 1)
	one.Viewers, two.Viewers = 1, 2
	st := PlacementState{Edges: edgesN(12, 1e9, 1e9), Segments: []PlacementSegment{one, two, unknown}}
	p := NewPlacer(1)
	p.MinViewers = 2
	plan := viewOf(p.Plan(epoch, st))
	if n := plan.distinct(one.Key); n != 0 {
		t.Fatalf("a segment one viewer asked for went to %d edges with MinViewers 2", n)
	}
	for _, s := range []PlacementSegment{two, unknown} {
		if n := plan.distinct(s.Key); n < s.K {
			t.Fatalf("segment %v (viewers %d) has %d holders, want ≥ k = %d", s.Key, s.Viewers, n, s.K)
		}
	}
	// MinViewers 0 or 1: any demand is replicated, as before.
	for _, min := range []int{0, 1} {
		p := NewPlacer(1)
		p.MinViewers = min
		if n := viewOf(p.Plan(epoch, st)).distinct(one.Key); n < one.K {
			t.Fatalf("MinViewers %d: the one-viewer segment has %d holders, want ≥ %d", min, n, one.K)
		}
	}
}

func TestPlacerColdSegmentsAreNotCopiedToEveryEdge(t *testing.T) {
	// Every segment is cold (one request a minute or so): the hottest of
	// them is no reason for n_max holders, each a shard the origin sends.
	st := PlacementState{
		Edges:    edgesN(40, 1e9, 1e9),
		Segments: []PlacementSegment{seg("v", 0, 0.04), seg("v", 1, 0.02), seg("v", 2, 0.01)},
	}
	view := viewOf(NewPlacer(1).Plan(epoch, st))
	for _, s := range st.Segments {
		// k, plus ceil(24 · rate / 1 per second) = 1 spare at these rates.
		if n := view.distinct(s.Key); n != s.K+1 {
			t.Fatalf("segment at %.2f/s has %d distinct shards, want k+1 = %d", s.Rate, n, s.K+1)
		}
	}
	// Scaled by the hottest alone (the old rule), the hottest cold segment
	// took all 32.
	p := NewPlacer(1)
	p.SaturationRate = 0
	if n := viewOf(p.Plan(epoch, st)).distinct(st.Segments[0].Key); n != 32 {
		t.Fatalf("SaturationRate 0: the hottest segment has %d distinct shards, want n_max = 32", n)
	}
	// At the saturation rate and above, a segment gets n_max as before.
	hot := PlacementState{Edges: edgesN(40, 1e9, 1e9), Segments: []PlacementSegment{seg("v", 0, 1), seg("v", 1, 0.5)}}
	view = viewOf(NewPlacer(1).Plan(epoch, hot))
	if a, b := view.distinct(hot.Segments[0].Key), view.distinct(hot.Segments[1].Key); a != 32 || b != 8+12 {
		t.Fatalf("segments at 1/s and 0.5/s have %d and %d distinct shards, want 32 and 20", a, b)
	}
}
