package wire

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Signup creates an account.
func (c *CoordinatorClient) Signup(ctx context.Context, cred Credentials) (AccountInfo, error) {
	var resp AccountInfo
	return resp, c.do(ctx, http.MethodPost, PathSignup, cred, &resp)
}

// BindEdge binds an edge node to the token's account and returns the API
// token the edge authenticates with (shown once).
func (c *CoordinatorClient) BindEdge(ctx context.Context, node NodeID) (BindEdgeResponse, error) {
	var resp BindEdgeResponse
	return resp, c.do(ctx, http.MethodPost, PathBindEdge, BindEdgeRequest{NodeID: node}, &resp)
}

// Grant credits points to an account (admin token).
func (c *CoordinatorClient) Grant(ctx context.Context, req GrantRequest) error {
	return c.do(ctx, http.MethodPost, PathGrant, req, nil)
}

// SetPrice sets a video's price in points (admin token).
func (c *CoordinatorClient) SetPrice(ctx context.Context, video string, price int64) error {
	return c.do(ctx, http.MethodPost, videoPath(PathSetPrice, video), SetPriceRequest{Price: price}, nil)
}

// EdgeStatus reports an edge's standing (its owner's or an admin's token).
func (c *CoordinatorClient) EdgeStatus(ctx context.Context, node NodeID) (EdgeStatusInfo, error) {
	var resp EdgeStatusInfo
	return resp, c.do(ctx, http.MethodGet, strings.Replace(PathEdgeStatus, "{node}", url.PathEscape(string(node)), 1), nil, &resp)
}

// FlowsFromEdge lists settled bytes an edge served, by viewer and video.
func (c *CoordinatorClient) FlowsFromEdge(ctx context.Context, edge NodeID, since time.Time) ([]FlowInfo, error) {
	var resp []FlowInfo
	q := url.Values{"edge": {string(edge)}, "since": {since.UTC().Format(time.RFC3339)}}
	return resp, c.do(ctx, http.MethodGet, PathFlows+"?"+q.Encode(), nil, &resp)
}
