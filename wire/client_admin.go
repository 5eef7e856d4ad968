package wire

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Admin read calls (an admin's session token in CoordinatorClient.Token).

// AdminOverview fetches the load overview, offload and metering.
func (c *CoordinatorClient) AdminOverview(ctx context.Context) (AdminOverview, error) {
	var resp AdminOverview
	return resp, c.do(ctx, http.MethodGet, PathAdminOverview, nil, &resp)
}

// AdminNodes fetches a page of the node table (after "" is the first).
func (c *CoordinatorClient) AdminNodes(ctx context.Context, after NodeID, limit int) (AdminNodesPage, error) {
	var resp AdminNodesPage
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", string(after))
	}
	return resp, c.do(ctx, http.MethodGet, PathAdminNodes+"?"+q.Encode(), nil, &resp)
}

// AdminVideos fetches the video table.
func (c *CoordinatorClient) AdminVideos(ctx context.Context) ([]AdminVideo, error) {
	var resp []AdminVideo
	return resp, c.do(ctx, http.MethodGet, PathAdminVideos, nil, &resp)
}
