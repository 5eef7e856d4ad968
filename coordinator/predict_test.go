package coordinator

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// predictingTracker predicts 4 segments ahead of every playhead of a
// 20-segment rendition, for 10 s.
func predictingTracker() *DemandTracker {
	d := NewDemandTracker(time.Minute, epoch)
	d.SetPrediction(func(content.VideoID, int) PredictionDepth {
		return PredictionDepth{Ahead: 4, Segments: 20, TTL: 10 * time.Second}
	})
	return d
}

// lookUp records a viewer's lookup of [from, to) of rendition 0 as the
// coordinator does for a viewer that is not an edge.
func lookUp(d *DemandTracker, v content.VideoID, from, to int, region string, viewer wire.NodeID) {
	d.RecordBy(v, 0, from, to, region, viewer)
	d.RecordPlayhead(v, 0, to-1, region)
}

// demandBySegment indexes Demand() by segment number (one video).
func demandBySegment(d *DemandTracker) map[int]SegmentDemand {
	out := map[int]SegmentDemand{}
	for _, sd := range d.Demand() {
		out[sd.Key.Segment] = sd
	}
	return out
}

func TestPredictionAheadOfThePlayhead(t *testing.T) {
	d := predictingTracker()
	v := videoNamed("v")
	lookUp(d, v, 0, 8, "eu", "viewer-a") // a lookup of the window [0, 8)
	d.Fold(epoch.Add(time.Second))
	got := demandBySegment(d)
	if len(got) != 12 {
		t.Fatalf("demand on %d segments, want 8 measured + 4 predicted: %+v", len(got), got)
	}
	head := got[7]
	if head.Predicted {
		t.Fatal("a looked-up segment is marked predicted")
	}
	prev := head.Rate
	for s := 8; s < 12; s++ {
		p := got[s]
		if !p.Predicted || p.Rate <= 0 || p.ByRegion["eu"] != p.Rate || p.Viewers != 1 {
			t.Fatalf("segment %d: %+v, want a predicted rate in region eu from one viewer", s, p)
		}
		// It falls with the distance, and never reaches the measured rate.
		if p.Rate >= prev {
			t.Fatalf("segment %d: predicted %v, not below segment %d's %v", s, p.Rate, s-1, prev)
		}
		prev = p.Rate
	}
	// The first prediction is the horizon's rate times the prior
	// continuation probability (1/2: nothing measured yet).
	if want := head.Rate / 2; got[8].Rate < want*0.999 || got[8].Rate > want*1.001 {
		t.Fatalf("segment 8 predicted %v, want %v (half the horizon's %v)", got[8].Rate, want, head.Rate)
	}
}

func TestPredictionStopsAtTheEndAndBetweenPlayheads(t *testing.T) {
	d := predictingTracker()
	v := videoNamed("v")
	lookUp(d, v, 0, 4, "eu", "viewer-a")
	lookUp(d, v, 6, 10, "eu", "viewer-b") // overlaps a's prediction
	lookUp(d, v, 14, 18, "us", "viewer-c")
	d.Fold(epoch.Add(time.Second))
	got := demandBySegment(d)
	for s := range 20 {
		sd, ok := got[s]
		switch {
		case s < 4 || s >= 6 && s < 10 || s >= 14 && s < 18:
			if !ok || sd.Predicted {
				t.Fatalf("looked-up segment %d: %+v, want measured", s, sd)
			}
		case s < 6 || s >= 10 && s < 14 || s >= 18:
			if !ok || !sd.Predicted {
				t.Fatalf("segment %d ahead of a playhead: %+v, want predicted", s, sd)
			}
		}
	}
	// c's prediction stops at the rendition's last segment (19).
	if len(got) != 20 {
		t.Fatalf("demand on %d segments, want 20 (nothing past the end)", len(got))
	}
	if got[19].ByRegion["us"] == 0 || got[19].ByRegion["eu"] != 0 {
		t.Fatalf("segment 19: %+v, want c's region only", got[19])
	}
}

func TestPredictionOfAnAbandonedTitleExpires(t *testing.T) {
	d := predictingTracker()
	v := videoNamed("v")
	now := epoch
	// A viewer plays segments 0..11 looking up every 4 s; its predictions
	// are asked for, so the continuation probability rises.
	for from := 0; from < 12; from += 2 {
		now = now.Add(4 * time.Second)
		lookUp(d, v, from, from+8, "eu", "viewer-a")
		d.Fold(now)
	}
	if p := d.ContinuationProbability(); p <= 0.75 {
		t.Fatalf("a viewer that asked for every prediction: continuation %v, want > 0.75", p)
	}
	playing := demandBySegment(d)
	if !playing[18].Predicted {
		t.Fatalf("segment 18 while the viewer plays segment 10: %+v, want predicted", playing[18])
	}
	// Then it stops (the title abandoned): within the TTL the prediction
	// stays, after it it is gone and counted as a miss.
	before := d.ContinuationProbability()
	d.Fold(now.Add(9 * time.Second))
	if !demandBySegment(d)[18].Predicted {
		t.Fatal("prediction dropped before its TTL")
	}
	d.Fold(now.Add(10 * time.Second))
	for s, sd := range demandBySegment(d) {
		if sd.Predicted {
			t.Fatalf("segment %d still predicted %v after the viewer stopped for the TTL", s, sd.Rate)
		}
	}
	if after := d.ContinuationProbability(); after >= before {
		t.Fatalf("continuation %v after unasked predictions expired, want below %v", after, before)
	}
	// Lower continuation, lower predictions: a new playhead's first
	// prediction is the horizon's rate times it.
	lookUp(d, videoNamed("w"), 0, 2, "eu", "viewer-b")
	d.Fold(now.Add(11 * time.Second))
	got := map[int]SegmentDemand{}
	for _, sd := range d.Demand() {
		if sd.Key.Video == videoNamed("w") {
			got[sd.Key.Segment] = sd
		}
	}
	if ratio := got[2].Rate / got[1].Rate; ratio > d.ContinuationProbability()*1.001 {
		t.Fatalf("prediction/horizon = %v, want ≤ the continuation %v", ratio, d.ContinuationProbability())
	}
}

func TestPredictionNeverOutranksMeasuredDemand(t *testing.T) {
	d := predictingTracker()
	v := videoNamed("v")
	// Segment 9 has old measured demand, decayed; a new playhead at 0..7
	// reaches it: it stays measured, at its own rate.
	lookUp(d, v, 9, 10, "eu", "viewer-old")
	d.Fold(epoch.Add(time.Second))
	d.Fold(epoch.Add(2 * time.Minute))
	lookUp(d, v, 0, 8, "eu", "viewer-a")
	d.Fold(epoch.Add(2*time.Minute + time.Second))
	got := demandBySegment(d)
	// Segment 9 keeps its own measured rate (one lookup, two half-lives
	// ago: ln2/60/4), nothing predicted added.
	if want := math.Ln2 / 60 / 4; got[9].Predicted || math.Abs(got[9].Rate-want) > want*0.01 {
		t.Fatalf("segment 9 (measured, decayed) = %+v, want measured at %v", got[9], want)
	}
	if !got[8].Predicted {
		t.Fatalf("segment 8 = %+v, want predicted", got[8])
	}
	// At equal rates the placer serves the measured segment first: with
	// room for one segment, measured 9 gets it and predicted 8 nothing.
	var st PlacementState
	st.Edges = edgesN(8, 10_000, 1e9) // room for one shard each
	predicted, measured := seg("v", 8, 0.01), seg("v", 9, 0.01)
	predicted.Predicted = true
	st.Segments = []PlacementSegment{predicted, measured}
	plan := viewOf(NewPlacer(1).Plan(epoch, st))
	if n := plan.distinct(measured.Key); n != 8 {
		t.Fatalf("measured segment 9: %d holders, want 8", n)
	}
	if n := plan.distinct(predicted.Key); n != 0 {
		t.Fatalf("predicted segment 8 took %d holders from a measured one at the same rate", n)
	}
	// Once a lookup asks for a predicted segment, its demand is measured.
	lookUp(d, v, 8, 9, "eu", "viewer-a")
	d.Fold(epoch.Add(2*time.Minute + 2*time.Second))
	if demandBySegment(d)[8].Predicted {
		t.Fatal("a looked-up segment stays predicted")
	}
}

func TestPredictionDepthFor(t *testing.T) {
	for _, c := range []struct {
		lead, seg time.Duration
		ahead     int
		ttl       time.Duration
	}{
		{17 * time.Second, 2 * time.Second, 9, 17 * time.Second},
		{17 * time.Second, 4 * time.Second, 5, 17 * time.Second},
		{17 * time.Second, 60 * time.Second, 1, 120 * time.Second},
		{0, 2 * time.Second, 0, 0},
		{17 * time.Second, 0, 0, 0},
	} {
		got := PredictionDepthFor(c.lead, c.seg, 30)
		if got.Ahead != c.ahead || got.TTL != c.ttl || got.Segments != 30 {
			t.Errorf("PredictionDepthFor(%v, %v) = %+v, want ahead %d, TTL %v", c.lead, c.seg, got, c.ahead, c.ttl)
		}
	}
	if got := DefaultPredictLead(2 * time.Second); got != 17*time.Second {
		t.Errorf("DefaultPredictLead(2s) = %v, want 17s", got)
	}
}

// A viewer's lookup of segments 0..3 makes placement direct caches to the
// segments past it (predicted demand), up to the prediction's depth — unless
// the viewer's player is an alive edge, whose own fetches feed placement.
func TestPlacementAheadOfAViewer(t *testing.T) {
	directed := func(viewerIsEdge bool) (segments []int, depth PredictionDepth) {
		h := newHarness(t)
		v := h.video(0)
		var edges []wire.NodeID
		for range 12 {
			edges = append(edges, h.edge("eu"))
		}
		viewer := newTestNode().ID
		if viewerIsEdge {
			viewer = edges[0]
		}
		h.lookup(wire.LookupRequest{Video: v, From: 0, Count: 4, Region: "eu", ViewerID: viewer})
		h.clock.Advance(time.Second)
		h.c.Place()
		seen := map[int]bool{}
		for _, e := range edges {
			for k := range directiveShards(h.heartbeat(wire.HeartbeatRequest{NodeID: e}).Directives, wire.ActionFetch) {
				seen[k.Segment] = true
			}
		}
		for s := range seen {
			segments = append(segments, s)
		}
		slices.Sort(segments)
		return segments, h.c.predictionDepth(v, 0)
	}
	got, depth := directed(false)
	if depth.Ahead < 1 || depth.Segments < 4+depth.Ahead {
		t.Fatalf("prediction depth %+v: the sample video is too short for this test", depth)
	}
	want := make([]int, 4+depth.Ahead)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		t.Fatalf("directed segments after a lookup of 0..3 by a viewer that is not an edge: %v, want %v (%d ahead)", got, want, depth.Ahead)
	}
	if got, _ := directed(true); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("directed segments after a lookup of 0..3 by a player that is an edge: %v, want [0 1 2 3]", got)
	}
}

func TestDemandCountsAViewersOverlappingLookupsOnce(t *testing.T) {
	v := videoNamed("v")
	rates := func(d *DemandTracker) map[int]float64 {
		out := map[int]float64{}
		for _, sd := range d.Demand() {
			if sd.Key.Video == v {
				out[sd.Key.Segment] = sd.Rate
			}
		}
		return out
	}
	d := NewDemandTracker(time.Minute, epoch)
	// A viewer looks up an 8-segment window every 3 segments it plays:
	// [0,8), [3,11), [6,14). It fetches each of segments 0-13 once.
	d.RecordBy(v, 0, 0, 8, "eu", "viewer-a")
	d.RecordBy(v, 0, 3, 11, "eu", "viewer-a")
	d.RecordBy(v, 0, 6, 14, "eu", "viewer-a")
	// Its answer aged: the same window again.
	d.RecordBy(v, 0, 6, 14, "eu", "viewer-a")
	d.Fold(epoch.Add(time.Second))
	got := rates(d)
	once := math.Ln2 / 60 // one request, folded
	if len(got) != 14 {
		t.Fatalf("demand on %d segments, want 14: %v", len(got), got)
	}
	for s, r := range got {
		if math.Abs(r-once) > 1e-12 {
			t.Fatalf("segment %d: rate %v, want one request's %v (all: %v)", s, r, once, got)
		}
	}
	// Another viewer is another request; a seek back and another title
	// count in full; so does an anonymous lookup.
	d.RecordBy(v, 0, 0, 2, "eu", "viewer-b")
	d.RecordBy(v, 0, 0, 2, "eu", "viewer-a")
	d.RecordBy(videoNamed("w"), 0, 0, 2, "eu", "viewer-a")
	d.Record(v, 0, 0, 2, "eu")
	d.Fold(epoch.Add(2 * time.Second))
	decay := math.Exp(-math.Ln2 / 60)
	got = rates(d)
	if want := once*decay + 3*once; math.Abs(got[0]-want) > 1e-12 {
		t.Fatalf("segment 0 after three more requests: %v, want %v", got[0], want)
	}
	// After a half-life of silence the viewer's window is forgotten: its
	// next lookup of the same window counts again.
	d.Fold(epoch.Add(2*time.Minute + 30*time.Second))
	if len(d.windows) != 0 {
		t.Fatalf("%d viewer windows kept after minutes of silence", len(d.windows))
	}
}
