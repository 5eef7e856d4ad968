package wire

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Signup creates an account.
func (c *CoordinatorClient) Signup(ctx context.Context, cred Credentials) (AccountInfo, error) {
	var resp AccountInfo
	return resp, c.do(ctx, http.MethodPost, PathSignup, cred, &resp)
}

// BindEdge binds the edge that edge signs for to the token's account and
// returns the API token the edge authenticates with (shown once). It asks
// the coordinator for the account's id and has the edge sign its consent to
// exactly that account.
func (c *CoordinatorClient) BindEdge(ctx context.Context, edge *NodeSigner) (BindEdgeResponse, error) {
	var resp BindEdgeResponse
	var me AccountInfo
	if err := c.do(ctx, http.MethodGet, PathMe, nil, &me); err != nil {
		return resp, err
	}
	return resp, c.do(ctx, http.MethodPost, PathBindEdge, edge.SignBindEdge(me.ID), &resp)
}

// AllowNodeKey lets node register as role (an AllowListedRoles role;
// admin token).
func (c *CoordinatorClient) AllowNodeKey(ctx context.Context, role Role, node NodeID) error {
	return c.do(ctx, http.MethodPost, PathNodeKeys, NodeKeyRequest{Role: role, NodeID: node}, nil)
}

// RevokeNodeKey takes node's allowance as role back (admin token).
func (c *CoordinatorClient) RevokeNodeKey(ctx context.Context, role Role, node NodeID) error {
	return c.do(ctx, http.MethodPost, PathNodeKeyRevoke, NodeKeyRequest{Role: role, NodeID: node}, nil)
}

// NodeKeys lists the allowed node keys of every role (admin token).
func (c *CoordinatorClient) NodeKeys(ctx context.Context) ([]NodeKeyInfo, error) {
	var resp []NodeKeyInfo
	return resp, c.do(ctx, http.MethodGet, PathNodeKeys, nil, &resp)
}

// AllowOrigin is AllowNodeKey(ctx, RoleOrigin, node).
func (c *CoordinatorClient) AllowOrigin(ctx context.Context, node NodeID) error {
	return c.AllowNodeKey(ctx, RoleOrigin, node)
}

// RevokeEdgeTokens revokes every API token of the session's edge.
func (c *CoordinatorClient) RevokeEdgeTokens(ctx context.Context) (RevokeEdgeTokensResponse, error) {
	var resp RevokeEdgeTokensResponse
	return resp, c.do(ctx, http.MethodPost, PathRevokeEdgeTokens, nil, &resp)
}

// Grant credits points to an account (admin token).
func (c *CoordinatorClient) Grant(ctx context.Context, req GrantRequest) error {
	return c.do(ctx, http.MethodPost, PathGrant, req, nil)
}

// SetPrice sets a video's price in points (admin token).
func (c *CoordinatorClient) SetPrice(ctx context.Context, video content.VideoID, price int64) error {
	return c.do(ctx, http.MethodPost, videoPath(PathSetPrice, video.String()), SetPriceRequest{Price: price}, nil)
}

// EdgeStatus reports an edge's standing (its owner's or an admin's token).
func (c *CoordinatorClient) EdgeStatus(ctx context.Context, node NodeID) (EdgeStatusInfo, error) {
	var resp EdgeStatusInfo
	return resp, c.do(ctx, http.MethodGet, strings.Replace(PathEdgeStatus, "{node}", url.PathEscape(string(node)), 1), nil, &resp)
}

// Unban lifts a node's ban (admin token).
func (c *CoordinatorClient) Unban(ctx context.Context, node NodeID, req UnbanRequest) (UnbanResponse, error) {
	var resp UnbanResponse
	return resp, c.do(ctx, http.MethodPost, strings.Replace(PathUnban, "{node}", url.PathEscape(string(node)), 1), req, &resp)
}

// FlowsFromEdge lists settled bytes an edge served, by viewer and video.
func (c *CoordinatorClient) FlowsFromEdge(ctx context.Context, edge NodeID, since time.Time) ([]FlowInfo, error) {
	var resp []FlowInfo
	q := url.Values{"edge": {string(edge)}, "since": {since.UTC().Format(time.RFC3339)}}
	return resp, c.do(ctx, http.MethodGet, PathFlows+"?"+q.Encode(), nil, &resp)
}

// Client calls for accounts and settlement, used by players, edges and the
// CLI (issue 4). The token is CoordinatorClient.Token.

// Login exchanges credentials for a session token.
func (c *CoordinatorClient) Login(ctx context.Context, cred Credentials) (LoginResponse, error) {
	var resp LoginResponse
	return resp, c.do(ctx, http.MethodPost, PathLogin, cred, &resp)
}

// Me describes the token's account.
func (c *CoordinatorClient) Me(ctx context.Context) (AccountInfo, error) {
	var resp AccountInfo
	return resp, c.do(ctx, http.MethodGet, PathMe, nil, &resp)
}

// BindViewer binds a player's signing key to the token's account.
func (c *CoordinatorClient) BindViewer(ctx context.Context, key ed25519.PrivateKey) error {
	var me AccountInfo
	if err := c.do(ctx, http.MethodGet, PathMe, nil, &me); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, PathBindViewer, SignBindViewer(key, me.ID, time.Now()), nil)
}

// UnlockVideo spends the account's points on a video (free if already entitled).
func (c *CoordinatorClient) UnlockVideo(ctx context.Context, video content.VideoID) (UnlockResponse, error) {
	var resp UnlockResponse
	return resp, c.do(ctx, http.MethodPost, videoPath(PathUnlock, video.String()), struct{}{}, &resp)
}

// Settle submits an edge's settlement batch (the token is the edge's API
// token). Resubmitting the same batch id is safe: the coordinator answers
// with the stored result.
func (c *CoordinatorClient) Settle(ctx context.Context, b SettlementBatch) (SettlementResult, error) {
	var resp SettlementResult
	return resp, c.do(ctx, http.MethodPost, PathSettle, b, &resp)
}

// IsAuthError reports whether err is a 401 or 403 from another role: the
// caller lacks a valid token or the account is not entitled. Retrying the
// same request does not help.
func IsAuthError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}
