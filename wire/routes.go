package wire

import (
	"fmt"
	"net/url"
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
// "http://127.0.0.1:7001").
func ShardURL(base, video string, rendition, segment, shard int) string {
	return fmt.Sprintf("%s/v1/shards/%s/%d/%d/%d", base, url.PathEscape(video), rendition, segment, shard)
}

// SegmentURL is the URL of a whole ciphertext segment on an origin.
func SegmentURL(base, video string, rendition, segment int) string {
	return fmt.Sprintf("%s/v1/segments/%s/%d/%d", base, url.PathEscape(video), rendition, segment)
}

// OriginManifestURL is the URL of a manifest on an origin.
func OriginManifestURL(base, video string) string {
	return fmt.Sprintf("%s/v1/manifests/%s", base, url.PathEscape(video))
}
