package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

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

// shardPathPrefix is PathShard up to its first wildcard.
var shardPathPrefix = PathShard[:strings.IndexByte(PathShard, '{')]

// ParseShardPath parses a decoded request path of PathShard's shape (for a
// server that routes shard GETs itself, without a ServeMux) into the ref
// ParseShardRef would give, with the same bounds. It allocates nothing. It
// takes only the plain form (64 hex digits, indices in decimal digits);
// ok is false for anything else, which the caller hands to its ServeMux
// (routed with PathShard) to be matched and answered as usual.
func ParseShardPath(path []byte) (ref content.ShardRef, ok bool) {
	rest, found := bytes.CutPrefix(path, []byte(shardPathPrefix))
	if !found || len(rest) < 2*len(ref.Video)+1 || rest[2*len(ref.Video)] != '/' {
		return ref, false
	}
	if _, err := hex.Decode(ref.Video[:], rest[:2*len(ref.Video)]); err != nil {
		return ref, false
	}
	rest = rest[2*len(ref.Video)+1:]
	if ref.Rendition, rest, ok = cutIndex(rest, '/', maxRenditionParam); !ok {
		return ref, false
	}
	if ref.Segment, rest, ok = cutIndex(rest, '/', maxSegmentParam); !ok {
		return ref, false
	}
	if ref.Shard, rest, ok = cutIndex(rest, 0, content.MaxTotalShards); !ok || len(rest) != 0 {
		return ref, false
	}
	return ref, true
}

// cutIndex reads decimal digits up to sep (0: to the end of b) as an
// integer below limit and returns it with what follows sep.
func cutIndex(b []byte, sep byte, limit int) (int, []byte, bool) {
	v, i := 0, 0
	for ; i < len(b) && b[i] != sep; i++ {
		if b[i] < '0' || b[i] > '9' || v >= limit {
			return 0, nil, false
		}
		v = v*10 + int(b[i]-'0')
	}
	if i == 0 || v >= limit || (sep != 0 && i == len(b)) {
		return 0, nil, false
	}
	if sep != 0 {
		i++ // the separator
	}
	return v, b[i:], true
}
