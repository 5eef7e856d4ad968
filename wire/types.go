package wire

import (
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// NodeID is the lowercase hex of a node's ed25519 public key.
type NodeID string

// Role says what a registered node does.
type Role string

const (
	RoleEdge   Role = "edge"
	RoleOrigin Role = "origin"
)

// Edge resource defaults, as in the seed deployment.
const (
	DefaultDiskCapBytes   = 1_500_000_000  // 1.5 GB
	DefaultUploadCapBytes = 10_000_000 / 8 // 10 Mbit/s, in bytes per second
)

// RegisterRequest announces a node. Addr is the advertised base URL other
// nodes use to reach its shard server, which may differ from the address it
// binds (NAT, cloud, containers).
type RegisterRequest struct {
	NodeID         NodeID `json:"node_id"`
	Role           Role   `json:"role"`
	Addr           string `json:"addr"`
	Region         string `json:"region,omitempty"`
	DiskCapBytes   int64  `json:"disk_cap_bytes,omitempty"`
	UploadCapBytes int64  `json:"upload_cap_bytes_per_s,omitempty"`
	// PricePerGB is what a relay's upload costs the platform (COCOS's
	// upload price), in points per GB; 0 for edges and origins.
	PricePerGB float64 `json:"price_per_gb,omitempty"`
	// RTMPAddr is an origin's RTMP ingest listener, rtmp://IP:PORT with the
	// IP the registration comes from (docs/LIVE.md); empty without one.
	RTMPAddr string `json:"rtmp_addr,omitempty"`
	// BTRSlots is a worker's concurrent transcodes (swarmcast worker
	// --slots); 0 for other roles.
	BTRSlots int `json:"btr_slots,omitempty"`
}

// RegisterResponse tells the node how often to heartbeat (an edge that
// misses 3 heartbeats is dropped from lookups) and which key the
// coordinator signs order limits with: CoordinatorKey is its ed25519 public
// key, hex. Edges verify every limit a viewer presents against the keys of
// the coordinators they registered with, which they reached at an address
// their operator configured; a limit itself never names its key.
type RegisterResponse struct {
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
	CoordinatorKey      string `json:"coordinator_key,omitempty"`
}

// HeartbeatInterval converts the response field.
func (r RegisterResponse) HeartbeatInterval() time.Duration {
	return time.Duration(r.HeartbeatIntervalMS) * time.Millisecond
}

// ShardSet names shards of one segment.
type ShardSet struct {
	Video     content.VideoID `json:"video"`
	Rendition int             `json:"rendition"`
	Segment   int             `json:"segment"`
	Shards    []int           `json:"shards"`
}

// NewShardSet names shards of seg.
func NewShardSet(seg content.SegmentRef, shards []int) ShardSet {
	return ShardSet{Video: seg.Video, Rendition: seg.Rendition, Segment: seg.Segment, Shards: shards}
}

// SegmentRef checks the set's segment from untrusted JSON: the indices must
// be non-negative (bounds against the manifest are the receiver's to check;
// the video id was checked when the JSON was decoded). Shards are not
// checked.
func (s ShardSet) SegmentRef() (content.SegmentRef, error) {
	if s.Rendition < 0 || s.Segment < 0 {
		return content.SegmentRef{}, fmt.Errorf("video %s rendition %d segment %d: negative index", s.Video, s.Rendition, s.Segment)
	}
	return content.SegmentRef{Video: s.Video, Rendition: s.Rendition, Segment: s.Segment}, nil
}

// HeartbeatRequest keeps a node alive and carries its inventory changes
// since the previous heartbeat. With Full set, Added is the whole inventory
// and replaces what the coordinator knew (sent after (re)registration).
type HeartbeatRequest struct {
	NodeID      NodeID     `json:"node_id"`
	Full        bool       `json:"full,omitempty"`
	Added       []ShardSet `json:"added,omitempty"`
	Removed     []ShardSet `json:"removed,omitempty"`
	UsedBytes   int64      `json:"used_bytes"`
	ServedBytes int64      `json:"served_bytes"` // shard bytes uploaded since the previous heartbeat
	// DiskCapBytes is the disk cap the node can honour now, which free
	// space on its filesystem may have shrunk below the registered one;
	// 0 leaves the cap unchanged.
	DiskCapBytes int64 `json:"disk_cap_bytes,omitempty"`
	// LiveWatching are the live chains this edge's players watch now, so
	// the coordinator puts the edge in their overlays (docs/LIVE.md).
	LiveWatching []content.VideoID `json:"live_watching,omitempty"`
	// PeerRTTMS are round trips this node measured to other nodes (ms),
	// COCOS's link delays; relays report their parents and children.
	PeerRTTMS map[NodeID]float64 `json:"peer_rtt_ms,omitempty"`
	// BTRBusy is how many of a worker's slots are transcoding now (its
	// load; origins prefer idle workers).
	BTRBusy int `json:"btr_busy,omitempty"`
}

// Directive actions.
const (
	ActionFetch = "fetch" // get these shards (from edges first, else the origin) and keep them
	ActionDrop  = "drop"  // these shards are no longer assigned; evict when space is needed
)

// Directive is a placement decision for one edge.
type Directive struct {
	Action string `json:"action"`
	ShardSet
}

// HeartbeatResponse carries placement directives. Unknown means the
// coordinator has no record of the node (it restarted or dropped the node):
// register again and send a full inventory.
type HeartbeatResponse struct {
	Unknown    bool        `json:"unknown,omitempty"`
	Directives []Directive `json:"directives,omitempty"`
	// Live is the node's full set of places in live overlays (replaces the
	// previous one when its Version is newer); nil means unchanged.
	Live *LiveSet `json:"live,omitempty"`
}

// LiveSet is a node's whole live assignment: every route it serves. A new
// Version replaces the old set; a node drops routes no longer listed.
type LiveSet struct {
	Version int64       `json:"version"`
	Routes  []LiveRoute `json:"routes"`
}

// LeaveRequest removes a node from lookups at once (graceful shutdown).
type LeaveRequest struct {
	NodeID NodeID `json:"node_id"`
}

// NodeInfo is the coordinator's view of a node, for dashboards and tests.
type NodeInfo struct {
	NodeID         NodeID    `json:"node_id"`
	Role           Role      `json:"role"`
	Addr           string    `json:"addr"`
	Region         string    `json:"region,omitempty"`
	Alive          bool      `json:"alive"`
	LastSeen       time.Time `json:"last_seen"`
	Shards         int       `json:"shards"`
	UsedBytes      int64     `json:"used_bytes"`
	DiskCapBytes   int64     `json:"disk_cap_bytes"`
	UploadCapBytes int64     `json:"upload_cap_bytes_per_s"`
	Banned         bool      `json:"banned,omitempty"`
}

// PublishedVideo is one catalogue entry an origin announces: the signed
// manifest and the content key (the coordinator hands keys to entitled
// players; edges never get them).
type PublishedVideo struct {
	Manifest []byte `json:"manifest"` // content.Manifest encoding, base64 in JSON
	Key      []byte `json:"key,omitempty"`
}

// PublishRequest announces an origin's catalogue.
type PublishRequest struct {
	OriginID NodeID           `json:"origin_id"`
	Videos   []PublishedVideo `json:"videos"`
}

// NodeKeyRequest allows (PathNodeKeys) or revokes (PathNodeKeyRevoke) the
// node with this id (its public key) in a role admitted by key.
type NodeKeyRequest struct {
	Role   Role   `json:"role"`
	NodeID NodeID `json:"node_id"`
}

// NodeKeyInfo is one allowed key (GET PathNodeKeys). Source is
// NodeKeySourceFlag for a key the coordinator was started with (revoked
// only by restarting without it) or NodeKeySourceStore for one allowed at
// run time (AllowedMS is when).
type NodeKeyInfo struct {
	Role      Role   `json:"role"`
	NodeID    NodeID `json:"node_id"`
	Source    string `json:"source"`
	AllowedMS int64  `json:"allowed_ms,omitempty"`
}

// NodeKeyInfo.Source values.
const (
	NodeKeySourceFlag  = "flag"
	NodeKeySourceStore = "store"
)

// AllowListedRoles are the roles a node may register in only when the
// operator allowed its key: an origin publishes the catalogue and its
// content keys, a relay receives live pushes and sits in the fan-out
// trees, a BTR worker's signed outputs decide what is packaged. Edges are
// user-run and admitted by audits and bans instead.
var AllowListedRoles = []Role{RoleOrigin, RoleRelay, RoleWorker}

// CheckAllowListedRole refuses a role that is not admitted by key.
func CheckAllowListedRole(role Role) error {
	for _, r := range AllowListedRoles {
		if role == r {
			return nil
		}
	}
	return fmt.Errorf("role %q: want %q, %q or %q (the roles admitted by key; edges need no allowance)", role, RoleOrigin, RoleRelay, RoleWorker)
}

// RenditionInfo summarises one rendition for catalogue listings.
type RenditionInfo struct {
	Name      string `json:"name"`
	Bandwidth uint32 `json:"bandwidth"`
	Width     uint16 `json:"width"`
	Height    uint16 `json:"height"`
	Segments  int    `json:"segments"`
}

// VideoInfo is a catalogue entry.
type VideoInfo struct {
	ID         content.VideoID `json:"id"`
	Title      string          `json:"title"`
	DurationMS int64           `json:"duration_ms"`
	K          int             `json:"k"`
	NMax       int             `json:"n_max"`
	Renditions []RenditionInfo `json:"renditions"`
}

// LookupRequest asks for sources of Count segments starting at From.
// Exclude lists nodes the viewer has banned this session.
type LookupRequest struct {
	Video     content.VideoID `json:"video"`
	Rendition int             `json:"rendition"`
	From      int             `json:"from"`
	Count     int             `json:"count"`
	ViewerID  NodeID          `json:"viewer_id,omitempty"`
	Region    string          `json:"region,omitempty"`
	Exclude   []NodeID        `json:"exclude,omitempty"`
}

// MaxLookupCount bounds the window of one lookup.
const MaxLookupCount = 64

// Source is a node that can serve shards of a segment. Shards lists the
// indices it holds; for an origin it is empty, meaning every index.
type Source struct {
	NodeID NodeID `json:"node_id"`
	Addr   string `json:"addr"`
	Shards []int  `json:"shards,omitempty"`
}

// SegmentSources lists the edges holding shards of one segment, best first
// (locality, measured speed, load, reputation).
type SegmentSources struct {
	Segment int      `json:"segment"`
	Sources []Source `json:"sources"`
	// Origins, when set, are the origins that hold this segment under the
	// coordinator's origin pool (AVARDO) allocation, the dispatched one
	// first. A viewer must prefer them over LookupResponse.Origins for this
	// segment. Empty when the pool is off.
	Origins []Source `json:"origins,omitempty"`
}

// LookupResponse answers a lookup. Origins hold every shard of every segment
// and are the fallback.
type LookupResponse struct {
	Segments []SegmentSources `json:"segments"`
	Origins  []Source         `json:"origins"`
	// Limits holds one coordinator-signed order limit per edge in Segments,
	// for the requesting viewer (LookupRequest.ViewerID) and this video. The
	// coordinator reuses a limit until it expires or runs out, so a play
	// costs a handful of signatures, not one per lookup.
	Limits []OrderLimit `json:"limits,omitempty"`
}

// BadShardReport is a viewer's evidence that a node sent a shard that fails
// verification against the signed manifest. Evidence is the exact bytes
// received, so the coordinator can re-verify the claim.
type BadShardReport struct {
	Reporter  NodeID          `json:"reporter,omitempty"`
	Node      NodeID          `json:"node"`
	Video     content.VideoID `json:"video"`
	Rendition int             `json:"rendition"`
	Segment   int             `json:"segment"`
	Shard     int             `json:"shard"`
	Reason    string          `json:"reason"`
	Evidence  []byte          `json:"evidence,omitempty"`
	// Receipt is the edge's signed statement over the bytes it sent. Only
	// with it is a report a transferable proof (ProveBadShard) that bans
	// and disqualifies the edge; without it (origins sign none), or with
	// one that proves nothing, the report is counted as unverifiable and
	// changes nothing: anyone can claim anything about anyone.
	Receipt *ServedShardReceipt `json:"receipt,omitempty"`
}

// Ref is the shard the report names (unchecked against any manifest).
func (r *BadShardReport) Ref() content.ShardRef {
	return content.SegmentRef{Video: r.Video, Rendition: r.Rendition, Segment: r.Segment}.Shard(r.Shard)
}

// PlayReport is a viewer's QoE summary of one play, for stats and
// dashboards. It needs the account's login session (bearer token or cookie
// + CSRF), and ViewerID must be a player key bound to that account
// (PathBindViewer). Every number is checked against the video: bytes at
// most its playback budget, PlayedMS at most the rendition's duration,
// Stalls at most its segment count.
type PlayReport struct {
	ViewerID      NodeID           `json:"viewer_id,omitempty"`
	Video         content.VideoID  `json:"video"`
	Rendition     int              `json:"rendition"`
	StartupMS     float64          `json:"startup_ms"`
	Stalls        int              `json:"stalls"`
	StallMS       float64          `json:"stall_ms"`
	PlayedMS      float64          `json:"played_ms"`
	BytesBySource map[NodeID]int64 `json:"bytes_by_source"`
	BadShards     int              `json:"bad_shards"`
	Completed     bool             `json:"completed"`
}

// Stats is the coordinator's network-wide summary.
type Stats struct {
	Nodes         int   `json:"nodes"`
	AliveEdges    int   `json:"alive_edges"`
	Videos        int   `json:"videos"`
	Lookups       int64 `json:"lookups"`
	BadShards     int64 `json:"bad_shard_reports"`
	BannedNodes   int   `json:"banned_nodes"`
	PlaysReported int64 `json:"plays_reported"`
}
