package plan

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestParseTrace(t *testing.T) {
	rows, err := ParseTrace(strings.NewReader("video,requests,size_mb\n# comment\na,10,250\n\nb, 0, 99.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0] != (TraceVideo{"a", 10, 250}) || rows[1] != (TraceVideo{"b", 0, 99.5}) {
		t.Fatalf("rows = %+v", rows)
	}
	cat, err := TraceCatalogue(rows, 100)
	if err != nil {
		t.Fatal(err)
	}
	if cat.Blocks() != 4 || cat.Videos != 2 {
		t.Fatalf("%d blocks of %d videos, want 4 of 2", cat.Blocks(), cat.Videos)
	}
	sum := 0.0
	for _, p := range cat.Popularity {
		if !(p > 0) {
			t.Fatalf("block popularity %v", p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("popularity sums to %v", sum)
	}
}

func TestParseTraceErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "no video rows",
		"video,requests,size_mb": "no video rows",
		"a,1":                    "line 1: want 3 columns",
		"a,x,3":                  "line 1: requests \"x\"",
		"a,1,-3":                 "line 1: size_mb \"-3\"",
		"a,1,0":                  "size_mb",
		"a,-1,3":                 "requests",
		"a,1,3\na,2,3":           "line 2: video \"a\" already listed on line 1",
		",1,3":                   "empty video id",
		"a,NaN,3":                "requests",
		"a,\"1,3":                "malformed CSV",
	} {
		_, err := ParseTrace(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", in, err, want)
		}
	}
	if _, err := TraceCatalogue([]TraceVideo{{"a", 0, 10}}, 100); err == nil || !strings.Contains(err.Error(), "no requests") {
		t.Errorf("all-zero trace: %v", err)
	}
	if _, err := TraceCatalogue([]TraceVideo{{"a", 1, 1e8}}, 1); err == nil || !strings.Contains(err.Error(), "larger blocks") {
		t.Errorf("huge trace: %v", err)
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add([]byte("video,requests,size_mb\nv1,10,250\nv2,3,1200.5\n"))
	f.Add([]byte("a,1,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseTrace(strings.NewReader(string(data)))
		if err != nil {
			if len(rows) != 0 {
				t.Fatal("rows returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		blocks := 0.0
		for _, r := range rows {
			if r.ID == "" || seen[r.ID] || !(r.Requests >= 0) || math.IsInf(r.Requests, 0) || !(r.SizeMB > 0) || math.IsInf(r.SizeMB, 0) {
				t.Fatalf("accepted bad row %+v", r)
			}
			seen[r.ID] = true
			blocks += math.Ceil(r.SizeMB / 100)
		}
		if blocks > 1e5 {
			return
		}
		cat, err := TraceCatalogue(rows, 100)
		if err != nil {
			return // e.g. no requests at all
		}
		sum := 0.0
		for _, p := range cat.Popularity {
			if !(p > 0) {
				t.Fatalf("block popularity %v", p)
			}
			sum += p
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("popularity sums to %v", sum)
		}
	})
}

// TestSampleTrace runs the example trace shipped in testdata end to end.
func TestSampleTrace(t *testing.T) {
	f, err := os.Open("testdata/trace-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := TraceCatalogue(rows, 100)
	if err != nil {
		t.Fatal(err)
	}
	av, err := NewAvardo(cat.Popularity, 60, 200)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := Capacities(cat.Popularity, av.Allocation(), av.MinServers(), 60, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lv {
		if l.Gap >= 0.01 {
			t.Errorf("n=%d gap %.4f on the sample trace", l.Servers, l.Gap)
		}
	}
}
