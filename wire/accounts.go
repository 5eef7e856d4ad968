package wire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Accounts, points, proofs of delivery and storage: the coordinator routes.
// Authentication: "Authorization: Bearer <token>" where the token is a
// session token (from login) or an edge's API token; browsers may use the
// session cookie instead, and then every state-changing request must also
// carry HeaderCSRF equal to the csrf_token returned at login. An edge's API
// token is scoped to settling (PathSettle) and nothing else: it reads no
// keys, no account and no ledger. Binding the edge again issues a new
// token and revokes the old; PathRevokeEdgeTokens revokes them all.
const (
	PathSignup     = "/api/v1/accounts/signup" // POST Credentials → AccountInfo
	PathLogin      = "/api/v1/accounts/login"  // POST Credentials → LoginResponse (+ session cookie)
	PathLogout     = "/api/v1/accounts/logout" // POST → {}
	PathMe         = "/api/v1/accounts/me"     // GET → AccountInfo
	PathBindEdge   = "/api/v1/accounts/edge"   // POST BindEdgeRequest → BindEdgeResponse (API token for the edge)
	PathBindViewer = "/api/v1/accounts/viewer" // POST BindViewerRequest → {}
	// PathRevokeEdgeTokens revokes every API token of the caller's edge (a
	// login session only); the edge stays bound and may be bound again
	// for a fresh token.
	PathRevokeEdgeTokens = "/api/v1/accounts/edge/revoke"    // POST → RevokeEdgeTokensResponse
	PathLedger           = "/api/v1/accounts/ledger"         // GET [?limit] → []LedgerEntry (own account)
	PathUnlock           = "/api/v1/videos/{id}/unlock"      // POST → UnlockResponse
	PathSetPrice         = "/api/v1/admin/videos/{id}/price" // POST SetPriceRequest → {} (admin)
	PathGrant            = "/api/v1/admin/grant"             // POST GrantRequest → {} (admin)
	PathSettle           = "/api/v1/settle"                  // POST SettlementBatch → SettlementResult (edge API token)
	PathEdgeStatus       = "/api/v1/edges/{node}/status"     // GET → EdgeStatusInfo (the edge's owner or an admin)
	PathFlows            = "/api/v1/flows"                   // GET ?viewer=ID | ?edge=ID [&since=RFC3339&until=RFC3339] → []FlowInfo
	PathRejections       = "/api/v1/settlement/rejections"   // GET → map[reason]count (admin)
	SessionCookieName    = "swarmcast_session"
	HeaderCSRF           = "X-CSRF-Token"
)

// PathUnban lifts a node's ban (admin): POST UnbanRequest → UnbanResponse.
// Durable and recorded with who and when; a disqualified edge is also
// reinstated with a fresh reputation.
const PathUnban = "/api/v1/admin/nodes/{node}/unban"

// Shard-server additions for proofs of delivery (edges): the viewer sends
// the coordinator-signed limit and its latest cumulative order with every
// shard request; the edge answers with a signed receipt over the shard's
// bytes, so a bad shard is a transferable proof against it.
const (
	// HeaderOrderLimit carries EncodeHeader(OrderLimit) on shard requests.
	HeaderOrderLimit = "X-Swarmcast-Order-Limit"
	// HeaderOrder carries EncodeHeader(Order): the cumulative bytes the
	// viewer has received and verified from this edge under the limit's
	// serial before this request (pay as you go, one shard in arrears).
	HeaderOrder = "X-Swarmcast-Order"
	// HeaderReceipt carries EncodeReceiptHeader(ServedShardReceipt) on
	// shard responses: the signature only (CheckShardReceipt rebuilds the rest).
	HeaderReceipt = "X-Swarmcast-Receipt"
	// PathOrders lets a viewer hand over its final order for a serial at the
	// end of a play (the last shard is otherwise never paid).
	PathOrders = "/v1/orders" // POST SettlementPair → {}
)

// EncodeHeader is base64url(JSON(v)), for the order and limit headers (the
// receipt header is EncodeReceiptHeader).
func EncodeHeader(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxHeaderValue bounds a decoded order/limit/receipt header.
const maxHeaderValue = 4096

// DecodeHeader reverses EncodeHeader into v.
func DecodeHeader(s string, v any) error {
	if len(s) > maxHeaderValue {
		return fmt.Errorf("header value of %d bytes exceeds %d", len(s), maxHeaderValue)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("header value is not base64url: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("header value is not the expected JSON: %v", err)
	}
	return nil
}

// Credentials are a username and password.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// AccountInfo describes the caller's account.
type AccountInfo struct {
	ID       int64             `json:"id"`
	Username string            `json:"username"`
	Role     string            `json:"role"` // "user" or "admin"
	Balance  int64             `json:"balance"`
	Edge     NodeID            `json:"edge,omitempty"`
	Entitled []content.VideoID `json:"entitled,omitempty"` // videos unlocked
}

// LoginResponse carries a session token for API clients (also set as a
// cookie for browsers) and the CSRF token cookie-authenticated requests need.
type LoginResponse struct {
	Token     string      `json:"token"`
	CSRFToken string      `json:"csrf_token"`
	ExpiresAt time.Time   `json:"expires_at"`
	Account   AccountInfo `json:"account"`
}

// BindEdgeRequest binds an edge node to the caller's account (one edge per
// account) and returns an API token the edge authenticates with. The edge
// consents by signing (Account, UnixMS) with its own key
// (NodeSigner.SignBindEdge), so only whoever runs an edge can bind it: an
// id read off the public node list cannot be squatted.
type BindEdgeRequest struct {
	NodeID    NodeID `json:"node_id"`
	Account   int64  `json:"account"`   // the account id the edge consents to (AccountInfo.ID)
	UnixMS    int64  `json:"unix_ms"`   // when it signed; fresh within NodeRequestMaxSkew
	Signature []byte `json:"signature"` // ed25519 over BindEdgeSigningBytes, by the edge's key
}

// BindEdgeResponse returns the edge's API token (shown once).
type BindEdgeResponse struct {
	APIToken string `json:"api_token"`
}

// RevokeEdgeTokensResponse says how many API tokens stopped working.
type RevokeEdgeTokensResponse struct {
	Revoked int64 `json:"revoked"`
}

// BindViewerRequest binds a player's signing key to the caller's account, so
// orders it signs count against the account's entitlements.
type BindViewerRequest struct {
	ViewerID NodeID `json:"viewer_id"`
	// Account, UnixMS and Signature are the player key's consent to be
	// bound to that account (SignBindViewer): the proof that whoever binds
	// a key holds it, so nobody binds another player's (public) key first.
	Account   int64  `json:"account"`
	UnixMS    int64  `json:"unix_ms"`
	Signature []byte `json:"signature"`
}

// UnlockResponse reports an unlock: points charged (0 when free or already
// entitled) and the balance after.
type UnlockResponse struct {
	Charged         int64 `json:"charged"`
	AlreadyEntitled bool  `json:"already_entitled"`
	Balance         int64 `json:"balance"`
}

// SetPriceRequest sets a video's price in points (0 = free).
type SetPriceRequest struct {
	Price int64 `json:"price"`
}

// GrantRequest credits points to an account (admin; from the system mint).
type GrantRequest struct {
	Username string `json:"username"`
	Points   int64  `json:"points"`
	Memo     string `json:"memo,omitempty"`
}

// LedgerEntry is one line of an account's ledger.
type LedgerEntry struct {
	TxID   int64     `json:"tx_id"`
	Amount int64     `json:"amount"` // positive = credit
	Kind   string    `json:"kind"`
	Memo   string    `json:"memo,omitempty"`
	At     time.Time `json:"at"`
}

// SettlementResult answers a settlement batch.
type SettlementResult struct {
	BatchID       string         `json:"batch_id"`
	Accepted      int            `json:"accepted"`
	Rejected      map[string]int `json:"rejected,omitempty"` // reason → pairs
	SettledBytes  int64          `json:"settled_bytes"`
	CreditedPoint int64          `json:"credited_points"`
	FrozenPoints  int64          `json:"frozen_points,omitempty"`
	FrozenReason  string         `json:"frozen_reason,omitempty"`
	Replayed      bool           `json:"replayed,omitempty"`
}

// EdgeStatusInfo is an edge's standing, visible to its owner: no silent
// disqualification.
type EdgeStatusInfo struct {
	NodeID             NodeID    `json:"node_id"`
	Reputation         float64   `json:"reputation"` // beta score alpha/(alpha+beta)
	Alpha              float64   `json:"alpha"`
	Beta               float64   `json:"beta"`
	AuditsPassed       int64     `json:"audits_passed"`
	AuditsFailed       int64     `json:"audits_failed"`
	Contained          bool      `json:"contained"`
	Disqualified       bool      `json:"disqualified"`
	DisqualifiedAt     time.Time `json:"disqualified_at,omitempty"`
	DisqualifiedReason string    `json:"disqualified_reason,omitempty"`
	CreditedPoints     int64     `json:"credited_points"`
	FrozenPoints       int64     `json:"frozen_points"`
	// Banned: the coordinator lists the edge in no lookup (a proven bad
	// shard, or disqualification); BanReason and BannedAt say why and when.
	// An admin lifts a ban with PathUnban.
	Banned    bool      `json:"banned"`
	BannedAt  time.Time `json:"banned_at,omitempty"`
	BanReason string    `json:"ban_reason,omitempty"`
}

// UnbanRequest lifts a node's ban. Note says why (kept with the record of
// who lifted it and when); at most 256 bytes.
type UnbanRequest struct {
	Note string `json:"note,omitempty"`
}

// UnbanResponse is what lifting did: the ban that was lifted, and whether
// the edge was also reinstated from disqualification with a fresh
// reputation (its frozen points stay frozen).
type UnbanResponse struct {
	NodeID     NodeID    `json:"node_id"`
	BanReason  string    `json:"ban_reason"`
	BannedAt   time.Time `json:"banned_at"`
	Reinstated bool      `json:"reinstated"`
	LiftedBy   string    `json:"lifted_by"`
	LiftedAt   time.Time `json:"lifted_at"`
}

// FlowInfo is settled bytes from one edge to one viewer for one video in
// one time bucket.
type FlowInfo struct {
	Edge   NodeID          `json:"edge"`
	Viewer NodeID          `json:"viewer"`
	Video  content.VideoID `json:"video"`
	Bucket time.Time       `json:"bucket"`
	Bytes  int64           `json:"bytes"`
}
