package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Node requests (register, heartbeat, leave, publish) are signed by the
// node's own ed25519 key, whose public half is its NodeID, so a request
// naming a node proves possession of that node's key. Three headers carry
// the signature; the body is what it covers, through its SHA-256.
const (
	// HeaderNode names the signing node on node requests (and the sender
	// on shard responses).
	HeaderNodeTime      = "X-Swarmcast-Node-Time"      // the signer's clock, unix milliseconds, decimal
	HeaderNodeSignature = "X-Swarmcast-Node-Signature" // base64url (unpadded) ed25519 signature over NodeRequestSigningBytes
)

// NodeRequestMaxSkew is the freshness bound of a signed node request: a
// coordinator refuses one whose timestamp is more than this before or after
// its own clock, and remembers every signature it accepted for as long as
// the timestamp stays fresh, so a captured request can be replayed neither
// later nor within the window. Nodes therefore need clocks within 30 s of
// the coordinator's (NTP gives milliseconds).
const NodeRequestMaxSkew = 30 * time.Second

// nodeRequestDomain separates node-request signatures from every other
// signature a node key makes (receipts, bind-edge challenges).
const nodeRequestDomain = "swarmcast node request v1\x00"

// NodeRequestSigningBytes is what a node signs for one request: the domain,
// then length-prefixed method, path (no query) and node id, the timestamp
// in unix ms as a big-endian 64-bit integer, and the SHA-256 of the body
// (of the empty string for no body).
func NodeRequestSigningBytes(method, path string, node NodeID, unixMS int64, bodySHA256 [32]byte) []byte {
	b := make([]byte, 0, len(nodeRequestDomain)+len(method)+len(path)+len(node)+12+8+32)
	b = append(b, nodeRequestDomain...)
	b = appendString(b, method)
	b = appendString(b, path)
	b = appendString(b, string(node))
	b = binary.BigEndian.AppendUint64(b, uint64(unixMS))
	return append(b, bodySHA256[:]...)
}

// NodeSigner signs a node's requests with its key. Timestamps it issues
// strictly increase (a request in the same millisecond as the previous one
// is stamped a millisecond later), so two identical requests never carry
// the same signature and neither is mistaken for a replay. Safe for
// concurrent use; share one per node across its clients.
type NodeSigner struct {
	id  NodeID
	key ed25519.PrivateKey
	now func() time.Time

	mu   sync.Mutex
	last int64 // unix ms of the last signature
}

// NewNodeSigner signs as the node whose id is key's public half, stamping
// requests with now (nil: time.Now).
func NewNodeSigner(key ed25519.PrivateKey, now func() time.Time) *NodeSigner {
	if now == nil {
		now = time.Now
	}
	return &NodeSigner{id: NodeID(hex.EncodeToString(key.Public().(ed25519.PublicKey))), key: key, now: now}
}

// ID is the signing node's id.
func (s *NodeSigner) ID() NodeID { return s.id }

// stamp is the next timestamp: now, or one past the previous one.
func (s *NodeSigner) stamp() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = max(s.now().UnixMilli(), s.last+1)
	return s.last
}

// SignRequest sets req's node headers for body (the exact bytes sent).
func (s *NodeSigner) SignRequest(req *http.Request, body []byte) {
	ms := s.stamp()
	sig := ed25519.Sign(s.key, NodeRequestSigningBytes(req.Method, req.URL.Path, s.id, ms, sha256.Sum256(body)))
	req.Header.Set(HeaderNode, string(s.id))
	req.Header.Set(HeaderNodeTime, strconv.FormatInt(ms, 10))
	req.Header.Set(HeaderNodeSignature, base64.RawURLEncoding.EncodeToString(sig))
}

// NodeRequestAuth is the signature headers of a node request, parsed but
// not yet verified.
type NodeRequestAuth struct {
	Node      NodeID
	UnixMS    int64
	Signature []byte
}

// Time is the signer's timestamp.
func (a NodeRequestAuth) Time() time.Time { return time.UnixMilli(a.UnixMS) }

// howToSign ends every node-auth error: what a client must do.
const howToSign = "node requests must be signed with the node's key (wire.NodeSigner; the edge and origin do this)"

// ParseNodeRequestAuth reads the signature headers. It needs no body, so a
// server can refuse a request by its headers before reading one.
func ParseNodeRequestAuth(h http.Header) (NodeRequestAuth, error) {
	var a NodeRequestAuth
	node, ts, sig := h.Get(HeaderNode), h.Get(HeaderNodeTime), h.Get(HeaderNodeSignature)
	if node == "" || ts == "" || sig == "" {
		return a, fmt.Errorf("unsigned node request: send %s, %s and %s; %s", HeaderNode, HeaderNodeTime, HeaderNodeSignature, howToSign)
	}
	a.Node = NodeID(node)
	if err := CheckNodeID(a.Node); err != nil {
		return a, fmt.Errorf("%s: %v", HeaderNode, err)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ms <= 0 {
		return a, fmt.Errorf("%s %q: want unix milliseconds", HeaderNodeTime, ts)
	}
	a.UnixMS = ms
	if len(sig) != base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize) {
		return a, fmt.Errorf("%s: want %d bytes of base64url (an ed25519 signature)", HeaderNodeSignature, ed25519.SignatureSize)
	}
	if a.Signature, err = base64.RawURLEncoding.DecodeString(sig); err != nil {
		return a, fmt.Errorf("%s: %v", HeaderNodeSignature, err)
	}
	return a, nil
}

// CheckFresh refuses a timestamp more than NodeRequestMaxSkew from now.
func (a NodeRequestAuth) CheckFresh(now time.Time) error {
	d := now.Sub(a.Time())
	if d > NodeRequestMaxSkew || d < -NodeRequestMaxSkew {
		return fmt.Errorf("stale node request: signed at %s, %s from the coordinator's clock (limit ±%s); check the node's clock (NTP) and send a freshly signed request",
			a.Time().UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), NodeRequestMaxSkew)
	}
	return nil
}

// Verify checks the signature over method, path and body against the
// node's key.
func (a NodeRequestAuth) Verify(method, path string, body []byte) error {
	pub, err := hex.DecodeString(string(a.Node))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%s %q is not an ed25519 public key", HeaderNode, a.Node)
	}
	if !ed25519.Verify(pub, NodeRequestSigningBytes(method, path, a.Node, a.UnixMS, sha256.Sum256(body)), a.Signature) {
		return fmt.Errorf("bad node signature: it does not verify under node %s's key for %s %s and this body; %s", a.Node, method, path, howToSign)
	}
	return nil
}

// bindEdgeDomain separates an edge's consent to be bound to an account.
const bindEdgeDomain = "swarmcast bind edge v1\x00"

// BindEdgeSigningBytes is what an edge signs to consent to being bound to
// one account: the domain, the length-prefixed node id, the account id and
// the timestamp (unix ms), both big-endian 64-bit integers.
func BindEdgeSigningBytes(node NodeID, account int64, unixMS int64) []byte {
	b := []byte(bindEdgeDomain)
	b = appendString(b, string(node))
	b = binary.BigEndian.AppendUint64(b, uint64(account))
	return binary.BigEndian.AppendUint64(b, uint64(unixMS))
}

// bindViewerDomain separates a player key's binding consent from every
// other signature the key makes (orders, node requests).
const bindViewerDomain = "swarmcast bind viewer v1\x00"

// BindViewerSigningBytes are the bytes a player key signs to consent to be
// bound to account at unixMS.
func BindViewerSigningBytes(viewer NodeID, account int64, unixMS int64) []byte {
	b := []byte(bindViewerDomain)
	b = appendString(b, string(viewer))
	b = binary.BigEndian.AppendUint64(b, uint64(account))
	return binary.BigEndian.AppendUint64(b, uint64(unixMS))
}

// SignBindViewer is a player key's signed consent to be bound to account.
func SignBindViewer(key ed25519.PrivateKey, account int64, now time.Time) BindViewerRequest {
	viewer := NodeID(hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	ms := now.UnixMilli()
	return BindViewerRequest{ViewerID: viewer, Account: account, UnixMS: ms, Signature: ed25519.Sign(key, BindViewerSigningBytes(viewer, account, ms))}
}

// VerifyBindViewer checks req is the player key's fresh consent
// (NodeRequestMaxSkew) to be bound to account.
func VerifyBindViewer(req *BindViewerRequest, account int64, now time.Time) error {
	if err := CheckNodeID(req.ViewerID); err != nil {
		return err
	}
	if len(req.Signature) == 0 {
		return fmt.Errorf("no signature: the player must sign its consent with its own key (wire.SignBindViewer; swarmcast players do this), so nobody can bind a key they do not hold")
	}
	if req.Account != account {
		return fmt.Errorf("the player key signed consent for account %d, not this account (%d)", req.Account, account)
	}
	if err := (NodeRequestAuth{Node: req.ViewerID, UnixMS: req.UnixMS}).CheckFresh(now); err != nil {
		return err
	}
	pub, _ := hex.DecodeString(string(req.ViewerID))
	if !ed25519.Verify(pub, BindViewerSigningBytes(req.ViewerID, req.Account, req.UnixMS), req.Signature) {
		return fmt.Errorf("signature does not verify under player key %s; sign with that key", req.ViewerID)
	}
	return nil
}

// SignBindEdge is the edge's signed consent to be bound to account.
func (s *NodeSigner) SignBindEdge(account int64) BindEdgeRequest {
	ms := s.stamp()
	return BindEdgeRequest{NodeID: s.id, Account: account, UnixMS: ms, Signature: ed25519.Sign(s.key, BindEdgeSigningBytes(s.id, account, ms))}
}

// VerifyBindEdge checks req is the edge's fresh consent (NodeRequestMaxSkew)
// to be bound to account: the proof that whoever binds an edge holds its key.
func VerifyBindEdge(req *BindEdgeRequest, account int64, now time.Time) error {
	if err := CheckNodeID(req.NodeID); err != nil {
		return err
	}
	if len(req.Signature) == 0 {
		return fmt.Errorf("no signature: the edge must sign its consent with its own key (wire.NodeSigner.SignBindEdge; swarmcast edge does this), so nobody can bind an edge they do not run")
	}
	if req.Account != account {
		return fmt.Errorf("the edge signed consent for account %d, not this account (%d)", req.Account, account)
	}
	if err := (NodeRequestAuth{Node: req.NodeID, UnixMS: req.UnixMS}).CheckFresh(now); err != nil {
		return err
	}
	pub, _ := hex.DecodeString(string(req.NodeID))
	if !ed25519.Verify(pub, BindEdgeSigningBytes(req.NodeID, req.Account, req.UnixMS), req.Signature) {
		return fmt.Errorf("signature does not verify under edge %s's key; sign with the edge's own key", req.NodeID)
	}
	return nil
}
