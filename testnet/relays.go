package testnet

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/wire"
)

// RelayNode is one running live relay (swarmcast relay).
type RelayNode struct {
	Identity identity.Identity
	Relay    *relay.Relay
	Server   *httpserve.Server

	// Fault is its injected fault (Config.RelayFaults; zero: honest).
	Fault relay.Fault

	transport *severableTransport
	cancel    context.CancelFunc
	done      chan struct{}

	mu      sync.Mutex
	faulted []uint64 // segments its fault spoiled while it had children
}

// Faulted returns the segments the relay's fault spoiled while it had
// children, in order.
func (r *RelayNode) Faulted() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.faulted)
}

// RelayUploadCap is a testnet relay's upload capacity, bytes per second
// (100 Mbit/s: a platform node).
const RelayUploadCap = 100_000_000 / 8

// AddRelay starts a relay registered with the primary coordinator, with
// the given price (points per GB). The operator allows its key first
// (coordinators admit relays by key; the store is shared, so every
// coordinator takes it). It runs until the network closes or
// KillRelay/StopRelay.
func (n *Network) AddRelay(pricePerGB float64) (*RelayNode, error) {
	return n.addRelay(pricePerGB, relay.Fault{})
}

// addRelay is AddRelay with an injected fault (Config.RelayFaults).
func (n *Network) addRelay(pricePerGB float64, fault relay.Fault) (*RelayNode, error) {
	id := identity.New()
	if err := n.Coordinators[0].AllowNode(n.ctx, wire.RoleRelay, id.ID); err != nil {
		return nil, fmt.Errorf("allow relay: %w", err)
	}
	tr := &severableTransport{base: wire.NewHTTPClient().Transport}
	ctx, cancel := context.WithCancel(n.ctx)
	node := &RelayNode{Identity: id, Fault: fault, transport: tr, cancel: cancel, done: make(chan struct{})}
	onFault := func(_ content.VideoID, seq uint64, _ relay.FaultKind) {
		node.mu.Lock()
		node.faulted = append(node.faulted, seq)
		node.mu.Unlock()
	}
	r, err := relay.New(relay.Config{Coordinator: n.CoordinatorURL, Identity: id, Region: "local",
		UploadCapBytes: RelayUploadCap, PricePerGB: pricePerGB, HTTP: &http.Client{Transport: tr}, Fault: fault, OnFault: onFault,
		Registry: httpserve.NewRegistry(), Log: n.cfg.Log.With("node", fmt.Sprintf("relay-%s", id.ID[:8]))})
	if err != nil {
		cancel()
		return nil, err
	}
	srv, err := httpserve.Listen(ctx, "127.0.0.1:0", "", r.Handler(), n.cfg.Log)
	if err != nil {
		cancel()
		return nil, err
	}
	r.SetAdvertise(srv.Advertise)
	node.Relay, node.Server = r, srv
	n.goRun(func() {
		defer close(node.done)
		_ = r.Run(ctx)
	}, srv)
	return node, nil
}

// KillRelay kills a relay as if its machine lost power: connections drop
// and it never says goodbye (the coordinator notices by missed heartbeats).
func (n *Network) KillRelay(r *RelayNode) {
	r.transport.sever()
	_ = r.Server.Kill()
	r.cancel()
	<-r.done
}

// StopRelay stops a relay gracefully (it leaves the network).
func (n *Network) StopRelay(r *RelayNode) {
	r.cancel()
	<-r.done
}
