package coordinator

import (
	"math"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

func TestLoadOverviewBucketsEventsByInstant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC) // bucket edges are round: the first opens at :00
	o := NewLoadOverview(10*time.Second, time.Minute, t0)
	if got := o.NextClose(); !got.Equal(t0.Truncate(10 * time.Second).Add(10 * time.Second)) {
		t.Fatalf("first bucket closes at %s, want :10", got)
	}
	o.RecordServed(wire.RoleOrigin, 1000, t0)
	o.RecordServed(wire.RoleEdge, 3000, t0.Add(time.Second))
	o.RecordServed(wire.RoleEdge, -5, t0) // ignored
	if pts, off := o.Points(nil); len(pts) != 0 || off != -1 {
		t.Fatalf("the open bucket is not a point yet: %v, offload %v", pts, off)
	}
	if closed := o.Advance(t0.Add(7 * time.Second)); closed != 1 {
		t.Fatalf("Advance to :10 closed %d buckets, want 1", closed)
	}
	o.RecordPlay(600, 400, 30_000, t0.Add(8*time.Second))
	o.RecordSettled(500, t0.Add(8*time.Second))
	o.RecordFallback(1000, t0.Add(9*time.Second))
	o.Advance(t0.Add(27 * time.Second)) // closes :10 and :20, the latter empty
	pts, off := o.Points(nil)
	if len(pts) != 3 {
		t.Fatalf("want 3 closed buckets, got %d: %+v", len(pts), pts)
	}
	if p := pts[0]; p.OriginBytes != 1000 || p.EdgeBytes != 3000 || p.Offload != 0.75 || !p.Start.Equal(t0.Truncate(10*time.Second)) {
		t.Fatalf("first bucket %+v: want origin 1000, edge 3000, offload 0.75 from :00", p)
	}
	if p := pts[1]; p.PlayEdgeBytes != 600 || p.PlayOriginBytes != 400 || p.PlayedMS != 30_000 || p.SettledBytes != 500 || p.FallbackBytes != 1000 || p.Offload != 0 {
		t.Fatalf("second bucket %+v", p)
	}
	if p := pts[2]; p.Offload != -1 || p.EdgeBytes != 0 {
		t.Fatalf("an empty bucket is a point with offload -1: %+v", p)
	}
	if want := 3000.0 / 5000; off != want {
		t.Fatalf("window offload %v, want %v", off, want)
	}
	m := o.Metering(0.02)
	if m.Plays != 1 || m.MinutesStreamed != 0.5 || m.SavedBytes != 3000 || m.ProvenSavedBytes != 500 || m.FallbackBytes != 1000 {
		t.Fatalf("metering %+v", m)
	}
	if want := 3000 / 1e9 * 0.02; math.Abs(m.MoneySaved-want) > 1e-18 {
		t.Fatalf("money saved %v, want %v", m.MoneySaved, want)
	}
}

func TestLoadOverviewMemoryIsBoundedAndSeriesContiguous(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := NewLoadOverview(10*time.Second, time.Minute, t0) // 6 points kept
	for i := range 100 {
		o.RecordServed(wire.RoleEdge, int64(i+1), t0.Add(time.Duration(i)*10*time.Second))
	}
	o.Advance(t0.Add(1000 * time.Second))
	pts, _ := o.Points(nil)
	if len(pts) != 6 || cap(o.ring) != 7 {
		t.Fatalf("want the last 6 points in a ring of 7, got %d points, ring %d", len(pts), cap(o.ring))
	}
	for i := 1; i < len(pts); i++ {
		if d := pts[i].Start.Sub(pts[i-1].Start); d != 10*time.Second {
			t.Fatalf("points %d and %d are %s apart, want one bucket", i-1, i, d)
		}
	}
	if last := pts[5]; !last.Start.Equal(t0.Add(990*time.Second)) || last.EdgeBytes != 100 {
		t.Fatalf("last point %+v: want bucket 990 s with the 100th event", last)
	}
	// A jump of a day empties the ring without looping a day's buckets.
	before := o.Closed()
	if closed := o.Advance(t0.Add(24 * time.Hour)); closed != 7 {
		t.Fatalf("a day's jump closed %d buckets, want the ring's 7", closed)
	}
	if got, want := o.Closed()-before, int64((24*time.Hour-1000*time.Second)/(10*time.Second)); got != want {
		t.Fatalf("Closed moved by %d over the day's jump, want %d (skipped buckets count)", got, want)
	}
	pts, off := o.Points(nil)
	if len(pts) != 6 || off != -1 || !pts[5].Start.Equal(t0.Add(24*time.Hour-10*time.Second)) {
		t.Fatalf("after a day: %+v, offload %v", pts, off)
	}
	// Totals survive the window: metering is since start.
	if m := o.Metering(1); m.EdgeBytes != 5050 {
		t.Fatalf("edge total %d, want 5050", m.EdgeBytes)
	}
}

func TestLoadOverviewLateEventCountsInOpenBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := NewLoadOverview(10*time.Second, time.Minute, t0)
	o.Advance(t0.Add(15 * time.Second))
	o.RecordServed(wire.RoleOrigin, 7, t0.Add(time.Second)) // stamped in the closed bucket
	o.Advance(t0.Add(20 * time.Second))
	pts, _ := o.Points(nil)
	if pts[0].OriginBytes != 0 || pts[1].OriginBytes != 7 {
		t.Fatalf("a closed bucket was rewritten: %+v", pts)
	}
}
