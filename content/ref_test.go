package content

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestVideoIDText(t *testing.T) {
	var id VideoID
	for i := range id {
		id[i] = byte(i * 7)
	}
	b, err := json.Marshal(map[string]VideoID{"video": id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"video":"` + id.String() + `"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back map[string]VideoID
	if err := json.Unmarshal(b, &back); err != nil || back["video"] != id {
		t.Fatalf("round trip = %v, %v; want %v", back["video"], err, id)
	}
	upper := strings.ToUpper(id.String())
	var got VideoID
	if err := got.UnmarshalText([]byte(upper)); err != nil || got != id {
		t.Fatalf("upper-case hex = %v, %v", got, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), id.String() + "00"} {
		var v VideoID
		err := v.UnmarshalText([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "video id") {
			t.Errorf("UnmarshalText(%q) = %v, want an error naming the video id", bad, err)
		}
		if v != (VideoID{}) {
			t.Errorf("UnmarshalText(%q) left %v behind", bad, v)
		}
	}
}

func TestRefs(t *testing.T) {
	var a, b VideoID
	b[0] = 1
	seg := SegmentRef{Video: a, Rendition: 1, Segment: 4}
	r := seg.Shard(9)
	if r.SegmentRef != seg || r.Shard != 9 || r.Video != a || r.Segment != 4 {
		t.Fatalf("seg.Shard(9) = %+v", r)
	}
	if got, want := r.String(), a.String()+"/1/4/9"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	refs := []ShardRef{
		SegmentRef{b, 0, 0}.Shard(0),
		SegmentRef{a, 1, 4}.Shard(9),
		SegmentRef{a, 1, 4}.Shard(2),
		SegmentRef{a, 0, 7}.Shard(1),
		SegmentRef{a, 1, 3}.Shard(5),
	}
	slices.SortFunc(refs, CompareShardRefs)
	want := []ShardRef{
		SegmentRef{a, 0, 7}.Shard(1),
		SegmentRef{a, 1, 3}.Shard(5),
		SegmentRef{a, 1, 4}.Shard(2),
		SegmentRef{a, 1, 4}.Shard(9),
		SegmentRef{b, 0, 0}.Shard(0),
	}
	if !slices.Equal(refs, want) {
		t.Fatalf("sorted = %v, want %v", refs, want)
	}
	if CompareVideoIDs(a, b) >= 0 || strings.Compare(a.String(), b.String()) >= 0 {
		t.Fatal("video id order is not the order of their hex strings")
	}
}

func TestCheckShard(t *testing.T) {
	m := &Manifest{Params: Params{K: 2, NMax: 4}, Renditions: []Rendition{{Segments: make([]Segment, 3)}}}
	ok := SegmentRef{Rendition: 0, Segment: 2}
	if _, err := m.CheckShard(ok.Shard(3)); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[ShardRef]string{
		ok.Shard(4):                       "shard 4 does not exist",
		ok.Shard(-1):                      "shard -1 does not exist",
		SegmentRef{Segment: 3}.Shard(0):   "segment 3 does not exist",
		SegmentRef{Rendition: 1}.Shard(0): "rendition 1 does not exist",
	} {
		if _, err := m.CheckShard(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckShard(%v) = %v, want %q", ref, err, want)
		}
	}
}
