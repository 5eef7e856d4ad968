package wire

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/swarmcast/swarmcast/content"
)

// Coordinator routes (JSON unless noted). {id} is a hex video id.
const (
	PathRegister   = "/api/v1/nodes/register"       // POST RegisterRequest → RegisterResponse
	PathHeartbeat  = "/api/v1/nodes/heartbeat"      // POST HeartbeatRequest → HeartbeatResponse
	PathLeave      = "/api/v1/nodes/leave"          // POST LeaveRequest → {}
	PathNodes      = "/api/v1/nodes"                // GET → []NodeInfo
	PathPublish    = "/api/v1/videos/publish"       // POST PublishRequest → {} (origins only)
	PathVideos     = "/api/v1/videos"               // GET → []VideoInfo
	PathManifest   = "/api/v1/videos/{id}/manifest" // GET → signed manifest bytes (application/octet-stream)
	PathKey        = "/api/v1/videos/{id}/key"      // GET → 16-byte AES-128 key (application/octet-stream)
	PathLookup     = "/api/v1/lookup"               // POST LookupRequest → LookupResponse
	PathBadShard   = "/api/v1/reports/bad-shard"    // POST BadShardReport → {}
	PathPlayReport = "/api/v1/reports/play"         // POST PlayReport → {}
	PathStats      = "/api/v1/stats"                // GET → Stats
	// PathNodeKeys admits node keys per role (origins, relays, BTR workers:
	// AllowListedRoles), kept in the coordinator's store (admin): POST
	// allows one, GET lists the allowed (the command line's and the
	// store's).
	PathNodeKeys = "/api/v1/admin/node-keys" // POST NodeKeyRequest → {}; GET → []NodeKeyInfo
	// PathNodeKeyRevoke takes an allowance back (admin): the node is
	// dropped from the registry at once (a relay leaves the trees) and its
	// next registration in that role is refused.
	PathNodeKeyRevoke = "/api/v1/admin/node-keys/revoke" // POST NodeKeyRequest → {}
)

// Shard-server routes, served by origins and edges alike so a viewer treats
// the origin as one more source that holds every shard.
const (
	// GET → content.ShardMessage bytes (ContentTypeShard). 404 if not held.
	PathShard = "/v1/shards/{id}/{rendition}/{segment}/{shard}"
	// GET → ciphertext of a whole segment, Range requests allowed (origin only).
	PathSegment = "/v1/segments/{id}/{rendition}/{segment}"
	// GET → signed manifest bytes (origin only).
	PathOriginManifest = "/v1/manifests/{id}"
)

// Every role serves these.
const (
	PathHealth  = "/healthz"
	PathMetrics = "/metrics"
)

// ContentTypeShard labels an encoded content.ShardMessage.
const ContentTypeShard = "application/x-swarmcast-shard"

// HeaderNode carries the sender's node id on shard responses, so a viewer can
// attribute a bad shard to the node that sent it.
const HeaderNode = "X-Swarmcast-Node"

// ShardURL is the URL of one shard on a shard server at base (e.g.
// "http://127.0.0.1:7001"), built from PathShard.
func ShardURL(base string, ref content.ShardRef) string {
	return base + expandPath(PathShard, ref.Video.String(), strconv.Itoa(ref.Rendition), strconv.Itoa(ref.Segment), strconv.Itoa(ref.Shard))
}

// SegmentURL is the URL of a whole ciphertext segment on an origin, built
// from PathSegment.
func SegmentURL(base string, seg content.SegmentRef) string {
	return base + expandPath(PathSegment, seg.Video.String(), strconv.Itoa(seg.Rendition), strconv.Itoa(seg.Segment))
}

// OriginManifestURL is the URL of a manifest on an origin, built from
// PathOriginManifest.
func OriginManifestURL(base string, video content.VideoID) string {
	return base + expandPath(PathOriginManifest, video.String())
}

// expandPath fills the {name} wildcards of a route pattern, in order, with
// values (path-escaped), so every URL is derived from the one constant that
// also routes it on the server. A count mismatch is a programming error
// and panics (TestRoutePatterns covers every pattern).
func expandPath(pattern string, values ...string) string {
	var b strings.Builder
	rest := pattern
	for _, v := range values {
		open := strings.IndexByte(rest, '{')
		end := strings.IndexByte(rest, '}')
		if open < 0 || end < open {
			panic(fmt.Sprintf("wire: route %q has fewer wildcards than the %d values given", pattern, len(values)))
		}
		b.WriteString(rest[:open])
		b.WriteString(url.PathEscape(v))
		rest = rest[end+1:]
	}
	if strings.IndexByte(rest, '{') >= 0 {
		panic(fmt.Sprintf("wire: route %q has more wildcards than the %d values given", pattern, len(values)))
	}
	b.WriteString(rest)
	return b.String()
}

// The platform's HTTP fallback for web playback, served by the coordinator
// to a signed-in account entitled to the video: the playback layout of
// content (master.m3u8, {r}/index.m3u8, {r}/{s}.ts, key) under /watch/{id}/,
// segments being the origins' ciphertext passed through.
const (
	PathWatchMaster = "/watch/{id}/master.m3u8"
	// PathWatch routes the rest of the layout (content.ParsePlaybackPath).
	PathWatch = "/watch/{id}/{path...}"
)

// WatchMasterURL is the fallback's master playlist of video id on the
// coordinator at base, built from PathWatchMaster.
func WatchMasterURL(base string, id content.VideoID) string {
	return base + expandPath(PathWatchMaster, id.String())
}
