package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// Attacks on node requests, each over HTTP against a real coordinator,
// each checking the victim's state afterwards.

// rawPost sends body to path on h's server as is, signed by signer if
// non-nil, and returns the status and error message.
func (h *harness) rawPost(path string, body []byte, signer *wire.NodeSigner) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signer != nil {
		signer.SignRequest(req, body)
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (int, string) {
	h.t.Helper()
	if req.Method == http.MethodPost && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb wire.ErrorBody
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Error
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// nodeInfo is the registry's view of id, or nil.
func (h *harness) nodeInfo(id wire.NodeID) *wire.NodeInfo {
	h.t.Helper()
	nodes, err := h.client.Nodes(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range nodes {
		if nodes[i].NodeID == id {
			return &nodes[i]
		}
	}
	return nil
}

func wantStatus(t *testing.T, what string, status int, msg string, want int, phrase string) {
	t.Helper()
	if status != want || !strings.Contains(msg, phrase) {
		t.Fatalf("%s: got %d %q, want %d mentioning %q", what, status, msg, want, phrase)
	}
}

// An attacker cannot re-register, heartbeat for or remove a victim's node:
// unsigned, signed by another key, stale, or replayed, each is refused and
// the victim stays listed at its address with its inventory.
func TestAttackNodeRequestsForVictim(t *testing.T) {
	h := newHarness(t)
	v := h.video(0)
	victim := h.edge("eu", set(v, 0, 0, 3))
	attacker := wire.NewNodeSigner(newTestNode().Key, h.clock.Now)
	before := h.nodeInfo(victim)

	hijack := mustJSON(wire.RegisterRequest{NodeID: victim, Role: wire.RoleEdge, Addr: "http://127.0.0.1:6666"})
	lie := mustJSON(wire.HeartbeatRequest{NodeID: victim, Full: true, Added: []wire.ShardSet{set(v, 0, 1, 0, 1, 2, 3)}})
	leave := mustJSON(wire.LeaveRequest{NodeID: victim})
	for _, tc := range []struct {
		path string
		body []byte
	}{{wire.PathRegister, hijack}, {wire.PathHeartbeat, lie}, {wire.PathLeave, leave}} {
		status, msg := h.rawPost(tc.path, tc.body, nil)
		wantStatus(t, tc.path+" unsigned", status, msg, http.StatusUnauthorized, "unsigned")
		status, msg = h.rawPost(tc.path, tc.body, attacker)
		wantStatus(t, tc.path+" signed by the attacker", status, msg, http.StatusForbidden, "only act for itself")
		// The attacker's signature with the victim's id in the header.
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+tc.path, bytes.NewReader(tc.body))
		attacker.SignRequest(req, tc.body)
		req.Header.Set(wire.HeaderNode, string(victim))
		status, msg = h.send(req)
		wantStatus(t, tc.path+" forged", status, msg, http.StatusUnauthorized, "bad node signature")
	}

	after := h.nodeInfo(victim)
	if after == nil || after.Addr != before.Addr || after.Shards != before.Shards {
		t.Fatalf("victim after the attacks: %+v, before %+v", after, before)
	}
	if got := sourcesOf(h.lookup(wire.LookupRequest{Video: v, From: 1, Count: 1}), 0); len(got) != 0 {
		t.Fatalf("the lying heartbeat landed: segment 1 sources %v", got)
	}
}

// A captured signed request is refused when replayed, and so is one signed
// outside the freshness bound; neither changes the registry.
func TestAttackReplayAndStaleNodeRequests(t *testing.T) {
	h := newHarness(t)
	node := newTestNode()
	signer := wire.NewNodeSigner(node.Key, h.clock.Now)
	reg := mustJSON(wire.RegisterRequest{NodeID: node.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"})
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+wire.PathRegister, bytes.NewReader(reg))
	signer.SignRequest(req, reg)
	captured := req.Header.Clone()
	if status, msg := h.send(req); status != http.StatusOK {
		t.Fatalf("honest register: %d %s", status, msg)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: node.ID, Full: true, Added: []wire.ShardSet{set(h.video(0), 0, 0, 1)}})

	// Replaying the registration would wipe the node's inventory.
	replay, _ := http.NewRequest(http.MethodPost, h.srv.URL+wire.PathRegister, bytes.NewReader(reg))
	replay.Header = captured.Clone()
	status, msg := h.send(replay)
	wantStatus(t, "replay", status, msg, http.StatusUnauthorized, "replayed")
	if n := h.nodeInfo(node.ID); n == nil || n.Shards != 1 {
		t.Fatalf("after the replay: %+v, want the node with its 1 shard", n)
	}

	// A request signed 31 s ago (or ahead) is stale.
	late := wire.NewNodeSigner(node.Key, func() time.Time { return h.clock.Now().Add(-wire.NodeRequestMaxSkew - time.Second) })
	status, msg = h.rawPost(wire.PathLeave, mustJSON(wire.LeaveRequest{NodeID: node.ID}), late)
	wantStatus(t, "stale", status, msg, http.StatusUnauthorized, "stale")
	early := wire.NewNodeSigner(node.Key, func() time.Time { return h.clock.Now().Add(wire.NodeRequestMaxSkew + time.Second) })
	status, msg = h.rawPost(wire.PathLeave, mustJSON(wire.LeaveRequest{NodeID: node.ID}), early)
	wantStatus(t, "from the future", status, msg, http.StatusUnauthorized, "stale")
	if h.nodeInfo(node.ID) == nil {
		t.Fatal("a stale leave removed the node")
	}
	// The honest node's own leave still works.
	status, msg = h.rawPost(wire.PathLeave, mustJSON(wire.LeaveRequest{NodeID: node.ID}), signer)
	wantStatus(t, "honest leave", status, msg, http.StatusOK, "")
}

// The replay cache is bounded: at its limit, stale entries go and fresh
// ones are refused (503), never a replay admitted.
func TestReplayCacheBound(t *testing.T) {
	var rc replayCache
	sig := func(i int) []byte {
		b := make([]byte, 64)
		b[0], b[1], b[2] = byte(i), byte(i>>8), byte(i>>16)
		return b
	}
	for i := range replayCacheLimit {
		if err := rc.admit(sig(i), 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.admit(sig(replayCacheLimit), 1000, 1000); err != errReplayCacheFull {
		t.Fatalf("over the limit: %v, want errReplayCacheFull", err)
	}
	if err := rc.admit(sig(1), 1000, 1000); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replay at the limit: %v", err)
	}
	later := 1000 + wire.NodeRequestMaxSkew.Milliseconds() + 1
	if err := rc.admit(sig(replayCacheLimit), later, later); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if len(rc.seen) != 1 {
		t.Fatalf("%d entries after expiry, want 1", len(rc.seen))
	}
}

// The advertised address is fetched by audits and handed to players, so it
// must be the registering node's own IP as a bare base URL: a blind SSRF
// through paths, queries, user info or other hosts is refused, and the
// node is not listed.
func TestAttackSSRFThroughAdvertisedAddress(t *testing.T) {
	h := newHarness(t)
	for _, addr := range []string{
		"http://127.0.0.1:1/admin/delete?x=",
		"http://127.0.0.1:1?x=",
		"http://127.0.0.1:1#frag",
		"http://user:pw@127.0.0.1:1",
		"http://169.254.169.254",
		"http://10.0.0.1:80",
		"http://localhost:1",
		"http://[::1]:1",
		"gopher://127.0.0.1:1",
		"http://127.0.0.1:0",
	} {
		n := newTestNode()
		s := wire.NewNodeSigner(n.Key, h.clock.Now)
		status, msg := h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: wire.RoleEdge, Addr: addr}), s)
		if status != http.StatusBadRequest || !strings.Contains(msg, "addr") {
			t.Errorf("addr %s: got %d %q, want 400 about addr", addr, status, msg)
		}
		if h.nodeInfo(n.ID) != nil {
			t.Errorf("addr %s: node listed", addr)
		}
	}
	// The canonical form is stored (a trailing slash dropped).
	n := newTestNode()
	s := wire.NewNodeSigner(n.Key, h.clock.Now)
	status, msg := h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:7001/"}), s)
	wantStatus(t, "own address", status, msg, http.StatusOK, "")
	if got := h.nodeInfo(n.ID); got == nil || got.Addr != "http://127.0.0.1:7001" {
		t.Fatalf("listed as %+v", got)
	}
}

// Over IPv6 loopback a node registers its [::1] address, and may not name
// an IPv4 host instead.
func TestAdvertisedAddressIPv6(t *testing.T) {
	testenv.RequireIPv6Loopback(t)
	h := newHarness(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.c.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	for addr, want := range map[string]int{"http://[::1]:7001": http.StatusOK, "http://127.0.0.1:7001": http.StatusBadRequest} {
		n := newTestNode()
		body := mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: wire.RoleEdge, Addr: addr})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+wire.PathRegister, bytes.NewReader(body))
		wire.NewNodeSigner(n.Key, h.clock.Now).SignRequest(req, body)
		if status, msg := h.send(req); status != want {
			t.Fatalf("from [::1] advertising %s: %d %q, want %d", addr, status, msg, want)
		}
	}
}

// Only keys the operator allowed are origins: anyone else registering as
// one is refused and never listed as an origin.
func TestAttackRegisterAsOrigin(t *testing.T) {
	h := newHarness(t)
	n := newTestNode()
	s := wire.NewNodeSigner(n.Key, h.clock.Now)
	status, msg := h.rawPost(wire.PathRegister, mustJSON(wire.RegisterRequest{NodeID: n.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:1"}), s)
	wantStatus(t, "unallowed origin", status, msg, http.StatusForbidden, "--origin-key")
	if h.nodeInfo(n.ID) != nil {
		t.Fatal("unallowed origin listed")
	}
	resp := h.lookup(wire.LookupRequest{Video: h.video(0), Count: 1})
	if len(resp.Origins) != 1 || resp.Origins[0].NodeID != h.origin.ID {
		t.Fatalf("origins in lookups: %+v", resp.Origins)
	}
}

// Republishing a public manifest without its key keeps the stored key:
// entitled viewers still get it.
func TestAttackKeylessRepublishKeepsKey(t *testing.T) {
	h := newHarness(t)
	pv := h.fix.published(t, h.video(0))
	// Another allowed origin (and the video's own) republish keyless.
	other := newTestNode()
	if err := h.c.AllowOrigin(t.Context(), other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Register(t.Context(), wire.RegisterRequest{NodeID: other.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []wire.NodeID{other.ID, h.origin.ID} {
		if err := h.client.Publish(t.Context(), wire.PublishRequest{OriginID: o, Videos: []wire.PublishedVideo{{Manifest: pv.Manifest}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A stranger cannot even try.
	stranger := wire.NewNodeSigner(newTestNode().Key, h.clock.Now)
	status, msg := h.rawPost(wire.PathPublish, mustJSON(wire.PublishRequest{OriginID: stranger.ID(), Videos: []wire.PublishedVideo{{Manifest: pv.Manifest}}}), stranger)
	wantStatus(t, "stranger publishes", status, msg, http.StatusForbidden, "not an allowed origin")

	h.c.mu.RLock()
	key := h.c.st.videos[h.video(0)].key
	h.c.mu.RUnlock()
	if !bytes.Equal(key, pv.Key) {
		t.Fatalf("key in memory after keyless republish: %x, want %x", key, pv.Key)
	}
	recs, err := h.c.store.CatalogueVideos(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == h.video(0) && !bytes.Equal(r.Key, pv.Key) {
			t.Fatalf("stored key after keyless republish: %x", r.Key)
		}
	}
}

// countingReader is an endless body that counts what the server took.
type countingReader struct{ n atomic.Int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n.Load() > 256<<20 {
		return 0, io.EOF
	}
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// A publish is refused on its headers before its body is read: a 256 MiB
// body from anyone not an allowed origin costs the coordinator nothing.
func TestAttackHugeUnauthenticatedPublish(t *testing.T) {
	h := newHarness(t)
	stranger := wire.NewNodeSigner(newTestNode().Key, h.clock.Now)
	for name, sign := range map[string]bool{"unsigned": false, "not an allowed origin": true} {
		body := &countingReader{}
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+wire.PathPublish, body)
		req.ContentLength = 256 << 20
		if sign {
			stranger.SignRequest(req, nil) // the headers are all that is checked first
		}
		resp, err := h.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s: status %d", name, resp.StatusCode)
			}
		}
		// Socket buffers take a few MiB at most; the server read none.
		if n := body.n.Load(); n > 32<<20 {
			t.Fatalf("%s: the client sent %d MiB before the refusal", name, n>>20)
		}
	}
	if st := h.c.Stats(); st.Videos != 2 {
		t.Fatalf("catalogue changed: %+v", st)
	}
}

// blockingBody blocks its reader until released.
type blockingBody struct{ release chan struct{} }

func (b *blockingBody) Read([]byte) (int, error) { <-b.release; return 0, io.EOF }

// At most maxConcurrentPublishes bodies are read at once; the next publish
// is told to retry (503), and the slots free up afterwards.
func TestPublishConcurrencyBound(t *testing.T) {
	h := newHarness(t)
	signer := wire.NewNodeSigner(h.origin.Key, h.clock.Now)
	var bodies []*blockingBody
	done := make(chan struct{}, maxConcurrentPublishes)
	for range maxConcurrentPublishes {
		b := &blockingBody{release: make(chan struct{})}
		bodies = append(bodies, b)
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+wire.PathPublish, b)
		signer.SignRequest(req, []byte("whatever comes"))
		go func() {
			defer func() { done <- struct{}{} }()
			if resp, err := h.srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for len(h.c.publishSlots) < maxConcurrentPublishes {
		runtime.Gosched() // both publishes hold their slots (a condition, not a timer)
	}
	status, msg := h.rawPost(wire.PathPublish, mustJSON(wire.PublishRequest{OriginID: h.origin.ID}), signer)
	wantStatus(t, "third publish", status, msg, http.StatusServiceUnavailable, "retry")
	for _, b := range bodies {
		close(b.release)
	}
	for range maxConcurrentPublishes {
		<-done
	}
	pv := h.fix.published(t, h.video(0))
	status, msg = h.rawPost(wire.PathPublish, mustJSON(wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{pv}}), signer)
	wantStatus(t, "publish after the others", status, msg, http.StatusOK, "")
}

// An edge id read off the public node list cannot be bound by someone who
// does not hold the edge's key; the owner binds it afterwards (no 409).
func TestAttackSquatEdgeBinding(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	victim := newTestNode()
	if _, err := h.client.Register(t.Context(), wire.RegisterRequest{NodeID: victim.ID, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	squatter, owner := h.user("squatter"), h.user("owner")
	h.want(h.do("POST", wire.PathBindEdge, squatter, wire.BindEdgeRequest{NodeID: victim.ID}), http.StatusUnauthorized, "sign")
	// The owner's consent, captured, names the owner's account only.
	ownerConsent := h.consent(owner, victim.ID)
	h.want(h.do("POST", wire.PathBindEdge, squatter, ownerConsent), http.StatusUnauthorized, "account")
	// A consent signed by the squatter's own key for the victim's id.
	forged := h.consent(squatter, h.edge(""))
	forged.NodeID = victim.ID
	h.want(h.do("POST", wire.PathBindEdge, squatter, forged), http.StatusUnauthorized, "does not verify")
	// Stale consent.
	stale := ownerConsent
	h.clock.Advance(wire.NodeRequestMaxSkew + time.Second)
	h.want(h.do("POST", wire.PathBindEdge, owner, stale), http.StatusUnauthorized, "stale")

	me := decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, squatter, nil), 200))
	if me.Edge != "" {
		t.Fatalf("squatter bound %s", me.Edge)
	}
	h.want(h.do("POST", wire.PathBindEdge, owner, h.consent(owner, victim.ID)), http.StatusOK)
	me = decode[wire.AccountInfo](t, h.want(h.do("GET", wire.PathMe, owner, nil), 200))
	if me.Edge != victim.ID {
		t.Fatalf("owner's edge = %q, want %s", me.Edge, victim.ID)
	}
}
