package wire

import (
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Admin read routes of the coordinator: the operator's view of the network.
// Every one needs an admin's login session (bearer token, or the session
// cookie); anyone else gets 401 (no or a bad session) or 403 (not an admin,
// or an edge API token). None of them scans the ledger or the flows table:
// the overview, nodes and videos come from in-memory state kept from
// events, accounts from the accounts and cached balances tables by id.
const (
	PathAdminOverview = "/api/v1/admin/overview"    // GET → AdminOverview
	PathAdminNodes    = "/api/v1/admin/nodes"       // GET [?after=NODE&limit=N] → AdminNodesPage
	PathAdminVideos   = "/api/v1/admin/videos"      // GET → []AdminVideo (without Holders)
	PathAdminVideo    = "/api/v1/admin/videos/{id}" // GET → AdminVideo (with Holders)
	PathAdminAccounts = "/api/v1/admin/accounts"    // GET [?after=ID&limit=N] → AdminAccountsPage
	// PathAdminAccountKeys lists the player keys bound to an account, so the
	// flows view can go from an account to the edges that fed it.
	PathAdminAccountKeys = "/api/v1/admin/accounts/{account}/viewers" // GET → []NodeID
	// PathAdminEvents is a server-sent event stream (text/event-stream):
	// an "overview" event carrying an AdminOverview each time a load bucket
	// closes, and a comment line every AdminEventsKeepAlive so proxies keep
	// the connection open.
	PathAdminEvents = "/api/v1/admin/events"
)

// AdminEventOverview is the SSE event name of an AdminOverview snapshot.
const AdminEventOverview = "overview"

// AdminEventsKeepAlive is how often an idle event stream sends a comment.
const AdminEventsKeepAlive = 15 * time.Second

// Page sizes of the paginated admin lists.
const (
	AdminPageDefault = 500
	AdminPageMax     = 10_000
)

// LoadPoint is one closed bucket of the load overview. Bytes are totals
// over the bucket; divide by AdminOverview.BucketSeconds for bytes/s.
//
// Provenance, so an operator knows what to trust:
//   - OriginBytes, EdgeBytes: self-reported by the nodes (the served-bytes
//     delta of each signed heartbeat, bounded per node by its upload cap
//     (edges) or a fixed ceiling (origins) over the time since its last
//     heartbeat). A node can only overstate its own figure, never another's.
//     They include edge-to-edge prefetch and audit fetches: a node cannot
//     tell those apart from a viewer's requests, by design.
//   - FallbackBytes: measured by the coordinator itself (the HTTP playback
//     fallback it proxies from origins to browsers).
//   - PlayEdgeBytes, PlayOriginBytes, PlayedMS: reported by viewers in
//     authenticated play reports, each bounded by the video.
//   - SettledBytes: proven: bytes of delivery accepted at settlement
//     (viewer-signed orders under coordinator-signed limits).
type LoadPoint struct {
	Start           time.Time `json:"start"`
	OriginBytes     int64     `json:"origin_bytes"`
	EdgeBytes       int64     `json:"edge_bytes"`
	FallbackBytes   int64     `json:"fallback_bytes"`
	PlayEdgeBytes   int64     `json:"play_edge_bytes"`
	PlayOriginBytes int64     `json:"play_origin_bytes"`
	SettledBytes    int64     `json:"settled_bytes"`
	PlayedMS        float64   `json:"played_ms"`
	// Offload is EdgeBytes / (EdgeBytes + OriginBytes + FallbackBytes), in
	// [0, 1]; -1 when the bucket carried no bytes.
	Offload float64 `json:"offload"`
}

// Metering is usage since the coordinator started (soft state, like the
// registry). Minutes come from viewers' play reports; saved bytes are
// edge egress (self-reported by edges; ProvenSavedBytes is the settled,
// proven part); money saved prices saved bytes at PricePerGB (USD per
// 10^9 bytes, the coordinator's --price-per-gb).
type Metering struct {
	Plays            int64   `json:"plays"`
	MinutesStreamed  float64 `json:"minutes_streamed"`
	OriginBytes      int64   `json:"origin_bytes"`
	EdgeBytes        int64   `json:"edge_bytes"`
	FallbackBytes    int64   `json:"fallback_bytes"`
	SavedBytes       int64   `json:"saved_bytes"`
	ProvenSavedBytes int64   `json:"proven_saved_bytes"`
	PricePerGB       float64 `json:"price_per_gb"`
	MoneySaved       float64 `json:"money_saved"`
	ProvenMoneySaved float64 `json:"proven_money_saved"`
	// Offload is EdgeBytes / (EdgeBytes + OriginBytes + FallbackBytes) since
	// start, in [0, 1]; -1 before any byte.
	Offload float64 `json:"offload"`
}

// AdminOverview is the admin dashboard's headline: the load series (oldest
// first, closed buckets only), the offload over the window, metering and
// the network summary.
type AdminOverview struct {
	At            time.Time   `json:"at"`
	BucketSeconds float64     `json:"bucket_seconds"`
	Points        []LoadPoint `json:"points"`
	// WindowOffload is the offload over Points, in [0, 1]; -1 without bytes.
	WindowOffload float64  `json:"window_offload"`
	Metering      Metering `json:"metering"`
	Stats         Stats    `json:"stats"`
}

// AdminNode is one row of the node table.
type AdminNode struct {
	NodeInfo
	// ServedBytes is what the node reported serving since it registered
	// with this coordinator (self-reported, bounded per heartbeat).
	ServedBytes int64 `json:"served_bytes"`
	// ServedRate is bytes/s, smoothed over heartbeats.
	ServedRate float64 `json:"served_bytes_per_s"`
	// Reputation is the audit score in [0, 1] (edges; origins have none).
	Reputation   float64 `json:"reputation"`
	Audits       int64   `json:"audits"`
	Disqualified bool    `json:"disqualified,omitempty"`
	BanReason    string  `json:"ban_reason,omitempty"`
}

// AdminNodesPage is one page of nodes by id; Next is the `after` of the
// following page, empty on the last.
type AdminNodesPage struct {
	Nodes []AdminNode `json:"nodes"`
	Total int         `json:"total"`
	Next  NodeID      `json:"next,omitempty"`
}

// AdminVideo is one row of the video table. Demand is the decayed lookup
// rate (segment requests per second) over all its segments; holders are
// counted per segment of every rendition.
type AdminVideo struct {
	ID         content.VideoID `json:"id"`
	Title      string          `json:"title"`
	Segments   int             `json:"segments"`
	Demand     float64         `json:"demand"`
	MinHolders int             `json:"min_holders"`
	MaxHolders int             `json:"max_holders"`
	// MeanHolders is holders per segment, averaged over all segments.
	MeanHolders float64 `json:"mean_holders"`
	// Uncovered counts segments no edge holds (origins only).
	Uncovered int `json:"uncovered"`
	// Holders is, per rendition, the number of edges holding shards of each
	// segment (only in the single-video answer, PathAdminVideo).
	Holders [][]int `json:"holders,omitempty"`
	// From play reports (viewer-reported, bounded by the video).
	Plays           int64   `json:"plays"`
	MinutesStreamed float64 `json:"minutes_streamed"`
	EdgeBytes       int64   `json:"edge_bytes"`
	OriginBytes     int64   `json:"origin_bytes"`
}

// AdminAccount is one row of the account table.
type AdminAccount struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Points    int64     `json:"points"`
	Edge      NodeID    `json:"edge,omitempty"`
}

// AdminAccountsPage is one page of accounts by id; Next is the `after` of
// the following page, 0 on the last.
type AdminAccountsPage struct {
	Accounts []AdminAccount `json:"accounts"`
	Next     int64          `json:"next,omitempty"`
}

// Admin pages of the web app (coordinator/web), besides wire.PageAdmin.
const (
	PageAdminNodes    = "/admin/nodes"    // GET [?after=NODE] a page of the node table
	PageAdminAccounts = "/admin/accounts" // GET [?after=ID] a page of the account table
	PageAdminVideo    = "/admin/videos/{id}"
	// PageAdminFlows shows settled flows over the last day, either
	// direction: ?edge=ID (which viewers an edge served), ?viewer=ID (which
	// edges fed a player key) or ?account=ID (every player key of an
	// account).
	PageAdminFlows = "/admin/flows"
)

// AdminFlowsWindow is how far back the admin flow views look.
const AdminFlowsWindow = 24 * time.Hour
