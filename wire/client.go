package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// NewHTTPClient returns a client tuned for many small concurrent requests to
// a few hosts: large idle pools and no global timeout (callers pass
// contexts with deadlines instead).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// CoordinatorClient calls a coordinator's JSON API.
type CoordinatorClient struct {
	Base string // e.g. "http://127.0.0.1:7000"
	HTTP *http.Client
	// Token, if set, is sent as a bearer token (node API tokens, issue 4).
	Token string
	// node, if set, signs the node requests (register, heartbeat, leave,
	// publish); see AsNode.
	node *NodeSigner
}

// AsNode is a copy of c that signs its node requests (register, heartbeat,
// leave, publish) with s. The coordinator refuses unsigned ones.
func (c *CoordinatorClient) AsNode(s *NodeSigner) *CoordinatorClient {
	cp := *c
	cp.node = s
	return &cp
}

// Node is the signer of c's node requests, or nil.
func (c *CoordinatorClient) Node() *NodeSigner { return c.node }

// NewCoordinatorClient makes a client for the coordinator at base.
func NewCoordinatorClient(base string, hc *http.Client) *CoordinatorClient {
	if hc == nil {
		hc = NewHTTPClient()
	}
	return &CoordinatorClient{Base: strings.TrimRight(base, "/"), HTTP: hc}
}

func (c *CoordinatorClient) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, method, path, nil, false, in, out)
}

// doNode is do for a node request, signed when c has a signer (AsNode).
func (c *CoordinatorClient) doNode(ctx context.Context, path string, in, out any) error {
	return c.doWith(ctx, http.MethodPost, path, nil, true, in, out)
}

// doWith is do with extra request headers, signed as c's node if sign.
func (c *CoordinatorClient) doWith(ctx context.Context, method, path string, header http.Header, sign bool, in, out any) error {
	resp, err := c.send(ctx, method, path, header, sign, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return err
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out)
}

// send makes a request with in as its JSON body and returns a 2xx answer
// (the caller closes its body); any other status is the error it names.
func (c *CoordinatorClient) send(ctx context.Context, method, path string, header http.Header, sign bool, in any) (*http.Response, error) {
	var body []byte
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, contentType = b, "application/json"
	}
	return c.sendBytes(ctx, method, path, header, sign, contentType, body)
}

// sendBytes is send with a body already encoded (contentType "" for none).
func (c *CoordinatorClient) sendBytes(ctx context.Context, method, path string, header http.Header, sign bool, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if sign && c.node != nil {
		c.node.SignRequest(req, body)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("coordinator %s: %w", c.Base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// lookup posts a lookup asking for the binary answer, and decodes either
// encoding (a coordinator, or a test's stand-in, may answer JSON).
func (c *CoordinatorClient) lookup(ctx context.Context, req LookupRequest, header http.Header) (LookupResponse, error) {
	var out LookupResponse
	h := http.Header{"Accept": {ContentTypeLookupBinary + ", application/json"}}
	for k, v := range header {
		h[k] = v
	}
	resp, err := c.send(ctx, http.MethodPost, PathLookup, h, false, req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != ContentTypeLookupBinary {
		return out, json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return out, fmt.Errorf("coordinator %s: %w", c.Base, err)
	}
	return DecodeLookupBinary(b, req.ViewerID, req.Video)
}

// videoPath fills a route's {id} with a video id as given (a string, so
// the coordinator's own tests can send ids that are not hex).
func videoPath(pattern, id string) string { return expandPath(pattern, id) }

// Register announces a node.
func (c *CoordinatorClient) Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error) {
	var resp RegisterResponse
	return resp, c.doNode(ctx, PathRegister, req, &resp)
}

// Heartbeat keeps a node alive and exchanges inventory for directives.
func (c *CoordinatorClient) Heartbeat(ctx context.Context, req HeartbeatRequest) (HeartbeatResponse, error) {
	var resp HeartbeatResponse
	return resp, c.doNode(ctx, PathHeartbeat, req, &resp)
}

// HeartbeatJSON is Heartbeat with the request already encoded as a JSON
// HeartbeatRequest (load generators render thousands of shard sets
// without reflection); it is signed as c's node like any heartbeat.
func (c *CoordinatorClient) HeartbeatJSON(ctx context.Context, body []byte) (HeartbeatResponse, error) {
	var out HeartbeatResponse
	resp, err := c.sendBytes(ctx, http.MethodPost, PathHeartbeat, nil, true, "application/json", body)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out)
}

// Leave removes a node from lookups.
func (c *CoordinatorClient) Leave(ctx context.Context, id NodeID) error {
	return c.doNode(ctx, PathLeave, LeaveRequest{NodeID: id}, nil)
}

// Nodes lists registered nodes.
func (c *CoordinatorClient) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	return out, c.do(ctx, http.MethodGet, PathNodes, nil, &out)
}

// Publish announces an origin's catalogue.
func (c *CoordinatorClient) Publish(ctx context.Context, req PublishRequest) error {
	return c.doNode(ctx, PathPublish, req, nil)
}

// Videos lists the catalogue.
func (c *CoordinatorClient) Videos(ctx context.Context) ([]VideoInfo, error) {
	var out []VideoInfo
	return out, c.do(ctx, http.MethodGet, PathVideos, nil, &out)
}

// Manifest fetches a signed manifest. The caller must decode and verify it
// (content.DecodeManifest) and check its hash is the id it asked for.
func (c *CoordinatorClient) Manifest(ctx context.Context, video string) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, http.MethodGet, videoPath(PathManifest, video), nil, &b)
}

// Key fetches a video's content key.
func (c *CoordinatorClient) Key(ctx context.Context, video string) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, http.MethodGet, videoPath(PathKey, video), nil, &b)
}

// VideoManifest is Manifest for a typed id. The caller must decode and
// verify the bytes and check that their id is video.
func (c *CoordinatorClient) VideoManifest(ctx context.Context, video content.VideoID) ([]byte, error) {
	return c.Manifest(ctx, video.String())
}

// VideoKey is Key for a typed id.
func (c *CoordinatorClient) VideoKey(ctx context.Context, video content.VideoID) ([]byte, error) {
	return c.Key(ctx, video.String())
}

// Lookup asks for ranked sources of a window of segments.
func (c *CoordinatorClient) Lookup(ctx context.Context, req LookupRequest) (LookupResponse, error) {
	return c.lookup(ctx, req, nil)
}

// ReportBadShard sends evidence of a bad shard.
func (c *CoordinatorClient) ReportBadShard(ctx context.Context, rep BadShardReport) error {
	return c.do(ctx, http.MethodPost, PathBadShard, rep, nil)
}

// ReportPlay sends a play's QoE summary.
func (c *CoordinatorClient) ReportPlay(ctx context.Context, rep PlayReport) error {
	return c.do(ctx, http.MethodPost, PathPlayReport, rep, nil)
}

// Stats fetches the network summary.
func (c *CoordinatorClient) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, c.do(ctx, http.MethodGet, PathStats, nil, &s)
}
