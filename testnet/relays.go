package testnet

import (
	"context"
	"fmt"
	"net/http"

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

	transport *severableTransport
	cancel    context.CancelFunc
	done      chan struct{}
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
	r, err := relay.New(relay.Config{Coordinator: n.CoordinatorURL, Identity: id, Region: "local",
		UploadCapBytes: RelayUploadCap, PricePerGB: pricePerGB, HTTP: &http.Client{Transport: tr}, Fault: fault,
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
	node := &RelayNode{Identity: id, Relay: r, Server: srv, transport: tr, cancel: cancel, done: make(chan struct{})}
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
