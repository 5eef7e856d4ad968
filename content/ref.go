package content

import (
	"cmp"
	"fmt"
)

// SegmentRef names one segment of one rendition of one video: the address
// every role uses for a segment (map keys, URLs, logs). It is a comparable
// value, so it serves directly as a map key.
//
// A SegmentRef is only a name: nothing guarantees the segment exists until
// CheckSegment has found it in the video's verified manifest. Rendition and
// Segment are 0-based indices into Manifest.Renditions and
// Rendition.Segments.
type SegmentRef struct {
	Video     VideoID
	Rendition int
	Segment   int
}

// ShardRef names one coded shard of one segment. Shard is the shard index,
// 0..NMax-1 of the video's Params (indices below K are plain ciphertext).
//
// The field Shard shadows SegmentRef's Shard method: on a ShardRef, r.Shard
// is the index and r.SegmentRef.Shard(i) names a sibling shard.
type ShardRef struct {
	SegmentRef
	Shard int
}

// Shard names shard i of the segment.
func (s SegmentRef) Shard(i int) ShardRef { return ShardRef{SegmentRef: s, Shard: i} }

// String is "video/rendition/segment", the order of the URL path, for logs
// and error messages.
func (s SegmentRef) String() string {
	return fmt.Sprintf("%s/%d/%d", s.Video, s.Rendition, s.Segment)
}

// String is "video/rendition/segment/shard", the order of the URL path.
func (r ShardRef) String() string {
	return fmt.Sprintf("%s/%d", r.SegmentRef, r.Shard)
}

// CompareVideoIDs orders video ids bytewise, which is also the order of
// their hex strings.
func CompareVideoIDs(a, b VideoID) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// CompareSegmentRefs orders by video, then rendition, then segment: for
// slices.SortFunc and friends.
func CompareSegmentRefs(a, b SegmentRef) int {
	return cmp.Or(CompareVideoIDs(a.Video, b.Video), cmp.Compare(a.Rendition, b.Rendition), cmp.Compare(a.Segment, b.Segment))
}

// CompareShardRefs orders by segment (CompareSegmentRefs), then shard index.
func CompareShardRefs(a, b ShardRef) int {
	return cmp.Or(CompareSegmentRefs(a.SegmentRef, b.SegmentRef), cmp.Compare(a.Shard, b.Shard))
}

// CheckSegment returns the manifest's entry for s, or an error naming the
// rendition or segment beyond the manifest's. m must be the manifest of
// s.Video: callers look manifests up by id, and recomputing m.ID() (a
// SHA-256 of the whole encoding) per request would cost more than serving.
func (m *Manifest) CheckSegment(s SegmentRef) (Segment, error) {
	return m.segment(s.Rendition, s.Segment)
}

// CheckShard is CheckSegment that also checks the shard index is below the
// video's NMax.
func (m *Manifest) CheckShard(r ShardRef) (Segment, error) {
	seg, err := m.CheckSegment(r.SegmentRef)
	if err != nil {
		return seg, err
	}
	if r.Shard < 0 || r.Shard >= m.Params.NMax {
		return Segment{}, fmt.Errorf("shard %d does not exist: video %s has shards 0..%d per segment", r.Shard, r.Video, m.Params.NMax-1)
	}
	return seg, nil
}

// Ref is the shard the message claims to carry (unverified until
// VerifyShard has checked it against the manifest).
func (s *ShardMessage) Ref() ShardRef {
	return SegmentRef{s.Video, s.Rendition, s.Segment}.Shard(s.Index)
}
