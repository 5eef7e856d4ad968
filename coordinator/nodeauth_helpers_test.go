package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// nodeKeys holds the key of every node a test made with newTestNode, so
// the harness can play those nodes honestly: sign their requests.
var nodeKeys sync.Map // wire.NodeID → ed25519.PrivateKey

// newTestNode is identity.New, remembered in nodeKeys.
func newTestNode() identity.Identity {
	id := identity.New()
	nodeKeys.Store(id.ID, id.Key)
	return id
}

// nodeSigners hands out one signer per (clock, node), so timestamps of a
// node's requests strictly increase on a clock that may stand still.
type nodeSigners struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[wire.NodeID]*wire.NodeSigner
}

// forBody is the signer of the node a node-request body names (node_id or
// origin_id), or nil if the test holds no key for it.
func (s *nodeSigners) forBody(body []byte) *wire.NodeSigner {
	var named struct {
		NodeID   wire.NodeID `json:"node_id"`
		OriginID wire.NodeID `json:"origin_id"`
	}
	_ = json.Unmarshal(body, &named)
	id := named.NodeID
	if id == "" {
		id = named.OriginID
	}
	key, ok := nodeKeys.Load(id)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = make(map[wire.NodeID]*wire.NodeSigner)
	}
	if s.by[id] == nil {
		s.by[id] = wire.NewNodeSigner(key.(ed25519.PrivateKey), s.now)
	}
	return s.by[id]
}

// sign signs req as the node its body names, if the test holds its key.
func (s *nodeSigners) sign(req *http.Request) {
	switch req.URL.Path {
	case wire.PathRegister, wire.PathHeartbeat, wire.PathLeave, wire.PathPublish:
	default:
		return
	}
	if req.Header.Get(wire.HeaderNodeSignature) != "" || req.Body == nil {
		return
	}
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	if signer := s.forBody(body); signer != nil {
		signer.SignRequest(req, body)
	}
}

// signingTransport signs node requests for nodes the test holds keys of,
// as those nodes' own clients would.
type signingTransport struct {
	base    http.RoundTripper
	signers *nodeSigners
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	t.signers.sign(req)
	return t.base.RoundTrip(req)
}

// signingClient is hc whose node requests are signed on clock now.
func signingClient(hc *http.Client, now func() time.Time) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp := *hc
	cp.Transport = &signingTransport{base: base, signers: &nodeSigners{now: now}}
	return &cp
}

// callSigners are call's signers, one set per coordinator (its clock).
var callSigners sync.Map // *Coordinator → *nodeSigners

func signersFor(c *Coordinator) *nodeSigners {
	s, _ := callSigners.LoadOrStore(c, &nodeSigners{now: c.cfg.Now})
	return s.(*nodeSigners)
}

// consent is the edge's signed consent to be bound to tok's account, as
// swarmcast edge makes it (the test holds the edge's key: newTestNode).
func (h *storeHarness) consent(tok string, edge wire.NodeID) wire.BindEdgeRequest {
	h.t.Helper()
	me := decode[wire.AccountInfo](h.t, h.want(h.do("GET", wire.PathMe, tok, nil), 200))
	key, ok := nodeKeys.Load(edge)
	if !ok {
		h.t.Fatalf("no key for edge %s", edge)
	}
	return wire.NewNodeSigner(key.(ed25519.PrivateKey), h.clock.Now).SignBindEdge(me.ID)
}

// viewerConsent is a player key's signed consent to be bound to tok's
// account, as a player makes it (wire.SignBindViewer).
func (h *storeHarness) viewerConsent(tok string, key ed25519.PrivateKey) wire.BindViewerRequest {
	h.t.Helper()
	me := decode[wire.AccountInfo](h.t, h.want(h.do("GET", wire.PathMe, tok, nil), 200))
	return wire.SignBindViewer(key, me.ID, h.clock.Now())
}
