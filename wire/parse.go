package wire

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/swarmcast/swarmcast/content"
)

// Bounds ParseSegmentRef and ParseShardRef enforce: values no manifest can
// have (the manifest format's limits), rejected before any lookup.
const (
	maxRenditionParam = 256     // rendition is a u8 in a ShardMessage
	maxSegmentParam   = 1 << 20 // content's limit on segments per rendition
)

// ParseVideoParam reads the {id} path value of a request routed with one of
// the patterns above.
func ParseVideoParam(r *http.Request) (content.VideoID, error) {
	return content.ParseVideoID(r.PathValue("id"))
}

// ParseSegmentRef reads the {id}/{rendition}/{segment} path values of a
// request routed with PathSegment (or PathShard). Bounds against a manifest
// are the server's to check (content.Manifest.CheckSegment); this only
// rejects values no manifest could have (negative, non-numeric, beyond the
// format's limits).
func ParseSegmentRef(r *http.Request) (content.SegmentRef, error) {
	var seg content.SegmentRef
	var err error
	if seg.Video, err = ParseVideoParam(r); err != nil {
		return seg, err
	}
	if seg.Rendition, err = pathIndex(r, "rendition", maxRenditionParam); err != nil {
		return seg, err
	}
	if seg.Segment, err = pathIndex(r, "segment", maxSegmentParam); err != nil {
		return seg, err
	}
	return seg, nil
}

// ParseShardRef reads the {id}/{rendition}/{segment}/{shard} path values of
// a request routed with PathShard, with ParseSegmentRef's checks; the shard
// index must be below content.MaxTotalShards (the video's NMax is the
// server's to check, content.Manifest.CheckShard).
func ParseShardRef(r *http.Request) (content.ShardRef, error) {
	seg, err := ParseSegmentRef(r)
	if err != nil {
		return content.ShardRef{}, err
	}
	shard, err := pathIndex(r, "shard", content.MaxTotalShards)
	if err != nil {
		return content.ShardRef{}, err
	}
	return seg.Shard(shard), nil
}

// pathIndex reads path value name as an integer in [0, limit).
func pathIndex(r *http.Request, name string, limit int) (int, error) {
	v, err := strconv.Atoi(r.PathValue(name))
	if err != nil || v < 0 || v >= limit {
		return 0, fmt.Errorf("%s %q: want an integer in 0..%d", name, r.PathValue(name), limit-1)
	}
	return v, nil
}
