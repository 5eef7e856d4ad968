package wire

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/swarmcast/swarmcast/content"
)

// ShardRef names one shard of one segment.
type ShardRef struct {
	Video     content.VideoID
	Rendition int
	Segment   int
	Shard     int
}

// ParseVideoParam reads the {id} path value of a request routed with one of
// the patterns above.
func ParseVideoParam(r *http.Request) (content.VideoID, error) {
	return content.ParseVideoID(r.PathValue("id"))
}

// ParseShardRef reads {id}/{rendition}/{segment}/{shard} path values. Bounds
// against a manifest are the server's to check; this only rejects values no
// manifest could have (negative, non-numeric, beyond the format's limits).
func ParseShardRef(r *http.Request) (ShardRef, error) {
	var ref ShardRef
	var err error
	if ref.Video, err = ParseVideoParam(r); err != nil {
		return ref, err
	}
	field := func(name string, limit int) (int, error) {
		v, err := strconv.Atoi(r.PathValue(name))
		if err != nil || v < 0 || v >= limit {
			return 0, fmt.Errorf("%s %q: want an integer in 0..%d", name, r.PathValue(name), limit-1)
		}
		return v, nil
	}
	if ref.Rendition, err = field("rendition", 256); err != nil {
		return ref, err
	}
	if ref.Segment, err = field("segment", 1<<20); err != nil {
		return ref, err
	}
	if r.PathValue("shard") != "" {
		if ref.Shard, err = field("shard", content.MaxTotalShards); err != nil {
			return ref, err
		}
	}
	return ref, nil
}
