package viewer

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

// This file is a minimal in-test network: a store with the sample clip,
// shard servers with scripted behaviour and a coordinator answering the few
// routes a viewer uses.

type serverKind string

const (
	kindHonest     serverKind = "honest"
	kindFlipBit    serverKind = "flip-bit"    // one data bit flipped
	kindTruncate   serverKind = "truncate"    // a complete response missing its last bytes
	kindWrongIndex serverKind = "wrong-index" // a valid shard, but not the one asked for
	kindSlowDrip   serverKind = "slow-drip"   // a few bytes now and then, never finishing in time
	kindReset      serverKind = "reset"       // drops the connection mid-body
	kindGone       serverKind = "gone"        // 404 for everything (left the network)
)

func (k serverKind) lies() bool {
	return k == kindFlipBit || k == kindTruncate || k == kindWrongIndex
}

// shardBook builds ShardMessages from the store's ciphertext.
type shardBook struct {
	store *content.Store
	id    content.VideoID
	man   *content.Manifest
	// liveID, if set, is a live chain whose segments are the video's
	// (live_test.go): its shards are the video's under the chain's id.
	liveID content.VideoID
	mu     sync.Mutex
	segs   map[[2]int][][]byte
}

func (b *shardBook) message(video content.VideoID, r, s, i int) (*content.ShardMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	shards, ok := b.segs[[2]int{r, s}]
	if !ok {
		ct, err := b.store.SegmentCiphertext(b.id, r, s)
		if err != nil {
			return nil, err
		}
		if shards, err = content.EncodeShards(b.man.Params, ct); err != nil {
			return nil, err
		}
		b.segs[[2]int{r, s}] = shards
	}
	if i < 0 || i >= len(shards) {
		return nil, fmt.Errorf("no shard %d", i)
	}
	return &content.ShardMessage{
		Video: video, Rendition: r, Segment: s,
		Shard: content.Shard{Index: i, Data: shards[i], Proof: content.InclusionProof(content.ShardLeaves(shards), i)},
	}, nil
}

type shardServer struct {
	node   wire.NodeID
	kind   serverKind
	origin bool
	shards []int
	srv    *httptest.Server
	asked  atomic.Int64 // shard requests received
	// notPushed, if set, says a live segment's push has not reached this
	// server yet: its shards answer 404 ("not held"), as a carrier's do.
	notPushed func(segment int) bool

	// With a key, the server signs receipts over the shard data it sends
	// (lies included) and records the order headers and final orders.
	key    ed25519.PrivateKey
	payMu  sync.Mutex
	sent   int64       // response bytes written so far, counted before writing
	orders []seenOrder // order headers, in arrival order
	finals []wire.SettlementPair
}

// seenOrder is an order header a server received, with its bytes sent by then.
type seenOrder struct {
	limit     wire.OrderLimit
	order     wire.Order
	sentSoFar int64
}

func (s *shardServer) handler(book *shardBook) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathShard, func(w http.ResponseWriter, r *http.Request) {
		ref, err := wire.ParseShardRef(r)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
		w.Header().Set(wire.HeaderNode, string(s.node))
		s.asked.Add(1)
		if lh := r.Header.Get(wire.HeaderOrderLimit); lh != "" && s.key != nil {
			var so seenOrder
			if err := wire.DecodeHeader(lh, &so.limit); err != nil {
				wire.WriteError(w, http.StatusBadRequest, "%v", err)
				return
			}
			if oh := r.Header.Get(wire.HeaderOrder); oh != "" {
				if err := wire.DecodeHeader(oh, &so.order); err != nil {
					wire.WriteError(w, http.StatusBadRequest, "%v", err)
					return
				}
			}
			s.payMu.Lock()
			so.sentSoFar = s.sent
			s.orders = append(s.orders, so)
			s.payMu.Unlock()
		}
		book.mu.Lock()
		live := ref.Video == book.liveID && book.liveID != content.VideoID{}
		known := ref.Video == book.id || live
		book.mu.Unlock()
		pending := live && s.notPushed != nil && s.notPushed(ref.Segment)
		if s.kind == kindGone || !known || pending || (!s.origin && !slices.Contains(s.shards, ref.Shard)) {
			wire.WriteError(w, http.StatusNotFound, "shard not held")
			return
		}
		idx := ref.Shard
		if s.kind == kindWrongIndex {
			idx = (idx + 1) % book.man.Params.NMax
		}
		msg, err := book.message(ref.Video, ref.Rendition, ref.Segment, idx)
		if err != nil {
			wire.WriteError(w, http.StatusNotFound, "%v", err)
			return
		}
		raw := msg.Encode()
		switch s.kind {
		case kindFlipBit:
			raw[len(raw)-1] ^= 0x10
		case kindTruncate:
			raw = raw[:len(raw)-7]
		case kindSlowDrip:
			w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
			for i := range raw {
				if _, err := w.Write(raw[i : i+1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			return
		case kindReset:
			w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
			_, _ = w.Write(raw[:len(raw)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", wire.ContentTypeShard)
		if s.key != nil {
			if _, err := content.DecodeShardMessage(raw); err == nil {
				rc := wire.SignShardReceipt(s.key, ref, raw)
				w.Header().Set(wire.HeaderReceipt, wire.EncodeReceiptHeader(&rc))
			}
			s.payMu.Lock()
			s.sent += int64(len(raw))
			s.payMu.Unlock()
		}
		_, _ = w.Write(raw)
	})
	mux.HandleFunc("POST "+wire.PathOrders, func(w http.ResponseWriter, r *http.Request) {
		var p wire.SettlementPair
		if !wire.DecodeJSON(w, r, &p) {
			return
		}
		s.payMu.Lock()
		s.finals = append(s.finals, p)
		s.payMu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	return mux
}

// testCoordinator answers manifest, key, lookup, videos and reports.
type testCoordinator struct {
	book    *shardBook
	key     content.ContentKey
	edges   []*shardServer // rank order
	origins []*shardServer

	mu        sync.Mutex
	answerAs  *content.VideoID // if set, the coordinator answers for this id instead (a lying coordinator)
	badShards []wire.BadShardReport
	plays     []wire.PlayReport
	lookups   []wire.LookupRequest

	// With a limitKey, lookups carry one order limit per edge for the
	// requesting viewer (reused per edge, as a real coordinator does), and
	// with a token the coordinator wants "Bearer token" on every call.
	limitKey ed25519.PrivateKey
	limitMax int64
	limits   map[wire.NodeID]wire.OrderLimit
	token    string
	binds    []wire.NodeID
	// announces are the verified gateway announcements, in order.
	announces []wire.PlayerGatewayRequest
	// live, if set, is the chain the coordinator serves (live_test.go).
	live *liveBook
}

func (c *testCoordinator) handler() http.Handler {
	mux := http.NewServeMux()
	authed := func(w http.ResponseWriter, r *http.Request) bool {
		c.mu.Lock()
		token := c.token
		c.mu.Unlock()
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			wire.WriteError(w, http.StatusForbidden, "video price 5 points; this account is not entitled")
			return false
		}
		return true
	}
	// The token's account is account 1; a bind must carry the player key's
	// consent to it, as the real coordinator requires.
	mux.HandleFunc("GET "+wire.PathMe, func(w http.ResponseWriter, r *http.Request) {
		if authed(w, r) {
			wire.WriteJSON(w, wire.AccountInfo{ID: 1, Username: "viewer"})
		}
	})
	mux.HandleFunc("POST "+wire.PathBindViewer, func(w http.ResponseWriter, r *http.Request) {
		var req wire.BindViewerRequest
		if !authed(w, r) || !wire.DecodeJSON(w, r, &req) {
			return
		}
		if err := wire.VerifyBindViewer(&req, 1, time.Now()); err != nil {
			wire.WriteError(w, http.StatusUnauthorized, "bind viewer: %v", err)
			return
		}
		c.mu.Lock()
		c.binds = append(c.binds, req.ViewerID)
		c.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	mux.HandleFunc("POST "+wire.PathPlayers, func(w http.ResponseWriter, r *http.Request) {
		var req wire.PlayerGatewayRequest
		if !authed(w, r) || !wire.DecodeJSON(w, r, &req) {
			return
		}
		if err := wire.VerifyPlayerGateway(&req, 1, time.Now()); err != nil {
			wire.WriteError(w, http.StatusUnauthorized, "announce: %v", err)
			return
		}
		c.mu.Lock()
		c.announces = append(c.announces, req)
		c.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	idOK := func(w http.ResponseWriter, r *http.Request) bool {
		if !authed(w, r) {
			return false
		}
		id, err := wire.ParseVideoParam(r)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "%v", err)
			return false
		}
		c.mu.Lock()
		want := c.book.id
		if c.answerAs != nil {
			want = *c.answerAs
		}
		c.mu.Unlock()
		if id != want {
			wire.WriteError(w, http.StatusNotFound, "unknown video %s", id)
			return false
		}
		return true
	}
	mux.HandleFunc("GET "+wire.PathManifest, func(w http.ResponseWriter, r *http.Request) {
		if idOK(w, r) {
			_, _ = w.Write(c.book.man.Encode())
		}
	})
	mux.HandleFunc("GET "+wire.PathKey, func(w http.ResponseWriter, r *http.Request) {
		if idOK(w, r) {
			_, _ = w.Write(c.key[:])
		}
	})
	mux.HandleFunc("GET "+wire.PathVideos, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, []wire.VideoInfo{{ID: c.book.id, Title: c.book.man.Title}})
	})
	mux.HandleFunc("POST "+wire.PathLookup, func(w http.ResponseWriter, r *http.Request) {
		var req wire.LookupRequest
		if !authed(w, r) || !wire.DecodeJSON(w, r, &req) {
			return
		}
		c.mu.Lock()
		c.lookups = append(c.lookups, req)
		c.mu.Unlock()
		var resp wire.LookupResponse
		c.mu.Lock()
		if c.limitKey != nil {
			for _, e := range c.edges {
				l, ok := c.limits[e.node]
				if !ok {
					l = wire.OrderLimit{Edge: e.node, Viewer: req.ViewerID, Video: req.Video, MaxBytes: c.limitMax,
						ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
					copy(l.Serial[:], e.node)
					wire.SignOrderLimit(c.limitKey, &l)
					c.limits[e.node] = l
				}
				resp.Limits = append(resp.Limits, l)
			}
		}
		c.mu.Unlock()
		for s := req.From; s < req.From+req.Count; s++ {
			ss := wire.SegmentSources{Segment: s}
			for _, e := range c.edges {
				if !slices.Contains(req.Exclude, e.node) {
					ss.Sources = append(ss.Sources, wire.Source{NodeID: e.node, Addr: e.srv.URL, Shards: e.shards})
				}
			}
			resp.Segments = append(resp.Segments, ss)
		}
		for _, o := range c.origins {
			resp.Origins = append(resp.Origins, wire.Source{NodeID: o.node, Addr: o.srv.URL})
		}
		wire.WriteJSON(w, resp)
	})
	mux.HandleFunc("POST "+wire.PathBadShard, func(w http.ResponseWriter, r *http.Request) {
		var rep wire.BadShardReport
		if !wire.DecodeJSON(w, r, &rep) {
			return
		}
		c.mu.Lock()
		c.badShards = append(c.badShards, rep)
		c.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	mux.HandleFunc("POST "+wire.PathPlayReport, func(w http.ResponseWriter, r *http.Request) {
		var rep wire.PlayReport
		if r.Header.Get("Authorization") == "" {
			wire.WriteError(w, http.StatusUnauthorized, "play report: authentication required")
			return
		}
		if !authed(w, r) || !wire.DecodeJSON(w, r, &rep) {
			return
		}
		c.mu.Lock()
		c.plays = append(c.plays, rep)
		c.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	c.liveRoutes(mux)
	return mux
}

type testNetwork struct {
	store    *content.Store
	id       content.VideoID
	man      *content.Manifest
	hlsDir   string
	coord    *testCoordinator
	coordURL string
	servers  []*shardServer
}

// ingestSample returns the shared sample store, the video's id and the
// sample's HLS directory (the bytes a rebuilt segment must equal).
func ingestSample(t *testing.T) (*content.Store, content.VideoID, string) {
	t.Helper()
	st, id := samplestore.Video(t, "viewer test clip")
	return st, id, samplestore.HLSDir(t)
}

// newTestNetwork starts shard servers of the given kinds (edges in this rank
// order) plus one honest origin, and a coordinator that knows them all. Edge
// e of E holds shard indices e, e+E, e+2E, … so every edge holds distinct ones.
func newTestNetwork(t *testing.T, edgeKinds []serverKind) *testNetwork {
	t.Helper()
	store, id, dir := ingestSample(t)
	man, err := store.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.ContentKey(id)
	if err != nil {
		t.Fatal(err)
	}
	book := &shardBook{store: store, id: id, man: man, segs: map[[2]int][][]byte{}}
	n := &testNetwork{store: store, id: id, man: man, hlsDir: dir}
	coord := &testCoordinator{book: book, key: key}
	start := func(s *shardServer) {
		s.srv = httptest.NewServer(s.handler(book))
		t.Cleanup(s.srv.Close)
		n.servers = append(n.servers, s)
	}
	for e, kind := range edgeKinds {
		s := &shardServer{node: wire.NodeID(fmt.Sprintf("edge-%02d-%s", e, kind)), kind: kind}
		for i := e; i < man.Params.NMax; i += len(edgeKinds) {
			s.shards = append(s.shards, i)
		}
		start(s)
		coord.edges = append(coord.edges, s)
	}
	o := &shardServer{node: "origin-0", kind: kindHonest, origin: true}
	start(o)
	coord.origins = append(coord.origins, o)
	csrv := httptest.NewServer(coord.handler())
	t.Cleanup(csrv.Close)
	n.coord, n.coordURL = coord, csrv.URL
	return n
}

func (n *testNetwork) liars() []wire.NodeID {
	var out []wire.NodeID
	for _, s := range n.servers {
		if s.kind.lies() {
			out = append(out, s.node)
		}
	}
	return out
}
