package livenet_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// liveCoordinator is the coordinator's side of the fan-out a relay and an
// edge see: registration, heartbeats answered with each node's live set
// (built by plan from the registered addresses), and the chain's genesis
// and entries. The tree computation itself is coordinator/live's (L2).
type liveCoordinator struct {
	pub  *fanouttest.Publisher
	plan func(addrs map[wire.NodeID]string) map[wire.NodeID]wire.LiveSet

	mu       sync.Mutex
	addrs    map[wire.NodeID]string
	rtts     map[wire.NodeID]map[wire.NodeID]float64
	watching map[wire.NodeID][]content.VideoID
	left     map[wire.NodeID]bool
}

func (c *liveCoordinator) handler() http.Handler {
	mux := http.NewServeMux()
	c.pub.Routes(mux)
	mux.HandleFunc("POST "+wire.PathRegister, func(w http.ResponseWriter, r *http.Request) {
		var req wire.RegisterRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		c.mu.Lock()
		c.addrs[req.NodeID] = req.Addr
		c.mu.Unlock()
		wire.WriteJSON(w, wire.RegisterResponse{HeartbeatIntervalMS: 100})
	})
	mux.HandleFunc("POST "+wire.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		var req wire.HeartbeatRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		c.mu.Lock()
		if len(req.PeerRTTMS) > 0 {
			c.rtts[req.NodeID] = req.PeerRTTMS
		}
		if len(req.LiveWatching) > 0 {
			c.watching[req.NodeID] = req.LiveWatching
		}
		sets := c.plan(c.addrs)
		c.mu.Unlock()
		resp := wire.HeartbeatResponse{}
		if set, ok := sets[req.NodeID]; ok {
			resp.Live = &set
		}
		wire.WriteJSON(w, resp)
	})
	mux.HandleFunc("POST "+wire.PathLeave, func(w http.ResponseWriter, r *http.Request) {
		var req wire.LeaveRequest
		if !wire.DecodeJSON(w, r, &req) {
			return
		}
		c.mu.Lock()
		c.left[req.NodeID] = true
		c.mu.Unlock()
		wire.WriteJSON(w, struct{}{})
	})
	return mux
}

// waitLive polls cond every 10 ms for at most 15 s.
func waitLive(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// An origin's sender pushes a chain through two real relays (substreams
// 0–2 and 3–4) to a real edge on 127.0.0.1; the edge serves the shards on
// its shard route with receipts; a relay killed mid-stream costs the edge
// only that relay's substreams.
func TestLiveFanoutThroughRelaysToEdge(t *testing.T) {
	pub := fanouttest.NewPublisher(2, 11)
	origin := wire.NewNodeSigner(identity.New().Key, nil)
	r1ID, r2ID, edgeID := identity.New(), identity.New(), identity.New()
	relayOf := func(j int) identity.Identity {
		if j < 3 {
			return r1ID
		}
		return r2ID
	}
	// The origin's own listener (its /healthz is what relays time).
	originSrv := httptest.NewServer(httpserve.NewMux(httpserve.NewRegistry()))
	defer originSrv.Close()
	originURL := originSrv.URL
	coord := &liveCoordinator{pub: pub, addrs: map[wire.NodeID]string{}, rtts: map[wire.NodeID]map[wire.NodeID]float64{},
		watching: map[wire.NodeID][]content.VideoID{}, left: map[wire.NodeID]bool{}}
	coord.plan = func(addrs map[wire.NodeID]string) map[wire.NodeID]wire.LiveSet {
		sets := map[wire.NodeID]wire.LiveSet{}
		edgeAddr, ok := addrs[edgeID.ID]
		if !ok {
			return sets
		}
		for j := range 5 {
			rid := relayOf(j).ID
			idx := content.SubstreamIndices(j, 5, 5)
			rs := sets[rid]
			rs.Version = 1
			rs.Routes = append(rs.Routes, wire.LiveRoute{Chain: pub.Chain, Substream: j, Indices: idx, Parent: origin.ID(), ParentAddr: originURL,
				Children: []wire.Source{{NodeID: edgeID.ID, Addr: edgeAddr}}})
			sets[rid] = rs
			es := sets[edgeID.ID]
			es.Version = 1
			es.Routes = append(es.Routes, wire.LiveRoute{Chain: pub.Chain, Substream: j, Indices: idx, Parent: rid})
			sets[edgeID.ID] = es
		}
		return sets
	}
	csrv := httptest.NewServer(coord.handler())
	defer csrv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	quiet := slog.New(slog.DiscardHandler)

	// The edge, on its fasthttp hot path like a real one.
	e, err := edge.New(edge.Config{Dir: t.TempDir(), Identity: edgeID, Coordinator: csrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	esrv, err := httpserve.ListenHot(ctx, "127.0.0.1:0", "", e.ServeHot, e.Handler(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer esrv.Close()
	e.SetAdvertise(esrv.Advertise)
	e.SetLiveWatching([]content.VideoID{pub.Chain})
	wg.Go(func() { e.Run(ctx) })

	type runningRelay struct {
		r      *relay.Relay
		srv    *httpserve.Server
		cancel context.CancelFunc
		done   chan struct{}
	}
	startRelay := func(id identity.Identity) *runningRelay {
		r, err := relay.New(relay.Config{Coordinator: csrv.URL, Identity: id, UploadCapBytes: 10 << 20, PricePerGB: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := httpserve.Listen(ctx, "127.0.0.1:0", "", r.Handler(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		r.SetAdvertise(srv.Advertise)
		rctx, rcancel := context.WithCancel(ctx)
		rr := &runningRelay{r: r, srv: srv, cancel: rcancel, done: make(chan struct{})}
		go func() { defer close(rr.done); r.Run(rctx) }()
		return rr
	}
	r1, r2 := startRelay(r1ID), startRelay(r2ID)
	defer r1.srv.Close()
	defer r2.srv.Close()
	waitLive(t, "the relays' and the edge's live routes", func() bool {
		return len(r1.r.Routes()) == 3 && len(r2.r.Routes()) == 2 && len(e.LiveRoutes()) == 5
	})

	sender, err := fanout.NewSender(fanout.SenderConfig{Signer: origin})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	coord.mu.Lock()
	var originRoutes []wire.LiveRoute
	for j := range 5 {
		rid := relayOf(j).ID
		originRoutes = append(originRoutes, wire.LiveRoute{Chain: pub.Chain, Substream: j, Indices: content.SubstreamIndices(j, 5, 5),
			Children: []wire.Source{{NodeID: rid, Addr: coord.addrs[rid]}}})
	}
	coord.mu.Unlock()
	sender.SetRoutes(originRoutes)

	all := []int{0, 1, 2, 3, 4}
	for range 3 {
		_, seg := pub.Next()
		sender.Send(seg)
	}
	win := e.LiveWindow()
	waitLive(t, "segments 0..2 at the edge", func() bool {
		for s := range uint64(3) {
			for r := range 2 {
				if !slices.Equal(win.Indices(pub.Chain, r, s), all) {
					return false
				}
			}
		}
		return true
	})

	// The edge serves them on its shard route (hot path), with receipts,
	// and any k rebuild the segment against the chain's manifest view.
	m := win.Manifest(pub.Chain)
	var shards []content.Shard
	for i := range 4 {
		ref := content.SegmentRef{Video: pub.Chain, Rendition: 1, Segment: 2}.Shard(i)
		resp, err := wire.GetShard(ctx, http.DefaultClient, wire.ShardRequest{Base: esrv.Advertise, Ref: ref, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("edge shard %v: %v", ref, err)
		}
		if resp.Receipt == "" || resp.Node != edgeID.ID {
			t.Fatalf("edge answered shard %v without its receipt or node id", ref)
		}
		msg, err := content.DecodeShardMessage(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, msg.Shard)
	}
	if _, bad, err := content.Rebuild(m, 1, 2, shards); err != nil || len(bad) > 0 {
		t.Fatalf("rebuilding from the edge's live shards: bad %v, %v", bad, err)
	}
	// The relays serve their window too.
	ref := content.SegmentRef{Video: pub.Chain, Rendition: 0, Segment: 1}.Shard(4)
	if _, err := wire.GetShard(ctx, http.DefaultClient, wire.ShardRequest{Base: r2.srv.Advertise, Ref: ref, MaxBytes: 1 << 20}); err != nil {
		t.Fatalf("relay 2 shard %v: %v", ref, err)
	}

	// A push to a relay from a node that is not its parent is refused and
	// nothing reaches the edge.
	outsider := wire.NewNodeSigner(identity.New().Key, nil)
	_, seg3 := pub.Next()
	body := (&fanout.Push{Chain: seg3.Chain, Seq: seg3.Seq, Entry: seg3.Entry, Shards: seg3.Shards[:1]}).Encode()
	var pe *fanout.PushError
	if err := fanout.PushTo(ctx, http.DefaultClient, outsider, r1.srv.Advertise, body); err == nil || !asPushError(err, &pe) || pe.Status != http.StatusForbidden {
		t.Fatalf("outsider's push to relay 1: %v, want 403", err)
	}
	if len(r1.r.Window().Indices(pub.Chain, 0, 3)) != 0 {
		t.Fatal("relay 1 kept the outsider's shard")
	}

	// Heartbeats carry what the edge watches and the relays' round trips to it.
	waitLive(t, "round trips and watching in heartbeats", func() bool {
		coord.mu.Lock()
		defer coord.mu.Unlock()
		_, child := coord.rtts[r1ID.ID][edgeID.ID]
		_, parent := coord.rtts[r1ID.ID][origin.ID()]
		return child && parent && slices.Equal(coord.watching[edgeID.ID], []content.VideoID{pub.Chain})
	})

	// Relay 2 dies mid-stream: the edge keeps getting substreams 0..2.
	r2.cancel()
	<-r2.done
	r2.srv.Kill()
	sender.Send(seg3)
	for range 2 {
		_, seg := pub.Next()
		sender.Send(seg)
	}
	waitLive(t, "segments 3..5 of relay 1's substreams at the edge", func() bool {
		for s := uint64(3); s < 6; s++ {
			for r := range 2 {
				if !slices.Equal(win.Indices(pub.Chain, r, s), []int{0, 1, 2}) {
					return false
				}
			}
		}
		return true
	})
	coord.mu.Lock()
	left := coord.left[r2ID.ID]
	coord.mu.Unlock()
	if !left {
		t.Error("relay 2 did not leave the network gracefully")
	}
	cancel()
	<-r1.done
}

func asPushError(err error, target **fanout.PushError) bool {
	pe, ok := err.(*fanout.PushError)
	if ok {
		*target = pe
	}
	return ok
}

// The same fan-out on the real coordinator: it builds the trees (COCOS)
// from the registered relays and the edges that report watching the
// chain, hands each node its live set in heartbeat answers, and the
// origin's pushes reach every watching edge through them.
func TestLiveFanoutOnTheCoordinatorsTrees(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	net, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Edges: 2, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	created, err := net.Admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: "fanout"})
	if err != nil {
		t.Fatal(err)
	}
	originID := net.OriginIdentity(0)
	signer := wire.NewNodeSigner(originID.Key, nil)
	oc := wire.NewCoordinatorClient(net.CoordinatorURL, nil).AsNode(signer)
	if _, err := oc.AuthorizeIngest(ctx, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	key, err := content.NewContentKey()
	if err != nil {
		t.Fatal(err)
	}
	// The relays register before the chain starts: its trees are built
	// when it goes live (coordinator/live GoLiveSegments), so relays that
	// came later would rebuild them after the sets below were read.
	var relays []*testnet.RelayNode
	for i := range 2 {
		r, err := net.AddRelay(float64(i) + 0.5)
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	pub := fanouttest.NewPublisherFor(originID.Key, string(created.Channel.ID), key.ID(), 2, 12)
	if err := oc.StartChain(ctx, pub.Genesis.Encode(), key); err != nil {
		t.Fatal(err)
	}
	edges := net.Edges()
	for _, e := range edges {
		e.Edge.SetLiveWatching([]content.VideoID{pub.Chain})
	}
	substreams := func(routes []wire.LiveRoute) int {
		n := 0
		for _, r := range routes {
			if r.Chain == pub.Chain {
				n++
			}
		}
		return n
	}
	waitLive(t, "every watching edge in all 5 substream trees", func() bool {
		for _, e := range edges {
			if substreams(e.Edge.LiveRoutes()) != 5 {
				return false
			}
		}
		return true
	})
	// The origin's routes: its children are the nodes whose parent it is
	// (the testnet's origin process does not run the live ingest). Nodes
	// take a new set at their next heartbeat, so wait until every relay an
	// edge names as parent has that edge as its child.
	addr := map[wire.NodeID]string{}
	relayRoutes := map[wire.NodeID][]wire.LiveRoute{}
	for _, e := range edges {
		addr[e.Identity.ID] = e.Server.Advertise
	}
	for _, r := range relays {
		addr[r.Identity.ID] = r.Server.Advertise
	}
	var originRoutes []wire.LiveRoute
	viaRelay := 0
	waitLive(t, "consistent live sets at the relays and edges", func() bool {
		viaRelay = 0
		nodes := map[wire.NodeID][]wire.LiveRoute{}
		for _, r := range relays {
			relayRoutes[r.Identity.ID] = r.Relay.Routes()
			nodes[r.Identity.ID] = relayRoutes[r.Identity.ID]
		}
		for _, e := range edges {
			nodes[e.Identity.ID] = e.Edge.LiveRoutes()
			for _, er := range nodes[e.Identity.ID] {
				rr, isRelay := relayRoutes[er.Parent]
				if !isRelay {
					continue
				}
				viaRelay++
				ok := false
				for _, r := range rr {
					if r.Substream == er.Substream && slices.ContainsFunc(r.Children, func(c wire.Source) bool { return c.NodeID == e.Identity.ID }) {
						ok = true
					}
				}
				if !ok {
					return false
				}
			}
		}
		bySub := map[int]*wire.LiveRoute{}
		for id, routes := range nodes {
			for _, r := range routes {
				if r.Chain != pub.Chain || r.Parent != originID.ID {
					continue
				}
				o := bySub[r.Substream]
				if o == nil {
					o = &wire.LiveRoute{Chain: r.Chain, Substream: r.Substream, Indices: r.Indices}
					bySub[r.Substream] = o
				}
				o.Children = append(o.Children, wire.Source{NodeID: id, Addr: addr[id]})
			}
		}
		originRoutes = originRoutes[:0]
		for _, r := range bySub {
			originRoutes = append(originRoutes, *r)
		}
		return len(originRoutes) == 5
	})
	if viaRelay == 0 {
		t.Fatal("no edge route goes through a relay: the trees did not use the relays")
	}
	sender, err := fanout.NewSender(fanout.SenderConfig{Signer: signer, Hooks: fanout.SenderHooks{
		Failed: func(child wire.NodeID, err error) { t.Errorf("push to %s: %v", child, err) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	sender.SetRoutes(originRoutes)
	for range 3 {
		_, seg := pub.Next()
		if err := oc.AppendEntry(ctx, pub.Chain, seg.Entry); err != nil {
			t.Fatal(err)
		}
		sender.Send(seg)
	}
	all5 := []int{0, 1, 2, 3, 4}
	waitLive(t, "segments 0..2 at every watching edge", func() bool {
		for _, e := range edges {
			for s := range uint64(3) {
				for r := range 2 {
					if !slices.Equal(e.Edge.LiveWindow().Indices(pub.Chain, r, s), all5) {
						return false
					}
				}
			}
		}
		return true
	})
}
