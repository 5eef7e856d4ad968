package coordinator

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// liveNetwork is what the live subsystem (coordinator/live) asks of the
// control plane: signed origin requests and the origins' ingest addresses.
type liveNetwork Coordinator

// OriginRequest authenticates a signed request from an allowed origin that
// is registered as one, and returns its verified body: the checks of
// handlePublish, in the same order (headers, allowed, registered, body).
func (ln *liveNetwork) OriginRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (wire.NodeID, []byte, bool) {
	c := (*Coordinator)(ln)
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return "", nil, false
	}
	allowed, err := c.originAllowed(r.Context(), auth.Node)
	if err == nil && !allowed {
		err = notAllowedOrigin(what, auth.Node)
	}
	if err != nil {
		wire.WriteErr(w, err)
		return "", nil, false
	}
	c.mu.RLock()
	origin := c.st.nodes[auth.Node]
	c.mu.RUnlock()
	switch {
	case origin == nil:
		wire.WriteError(w, http.StatusNotFound, "%s: origin %q is not registered; register with role %q first", what, auth.Node, wire.RoleOrigin)
		return "", nil, false
	case origin.role != wire.RoleOrigin:
		wire.WriteError(w, http.StatusForbidden, "%s: node %s is registered as %q; only origins publish", what, auth.Node, origin.role)
		return "", nil, false
	}
	body, ok := c.nodeRawBody(w, r, what, auth, limit)
	return auth.Node, body, ok
}

// NodeRequest authenticates a fresh signed request from any node key and
// returns the signer and its verified body.
func (ln *liveNetwork) NodeRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (wire.NodeID, []byte, bool) {
	c := (*Coordinator)(ln)
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return "", nil, false
	}
	body, ok := c.nodeRawBody(w, r, what, auth, limit)
	return auth.Node, body, ok
}

// RelayNodeRequest authenticates a signed request from a registered relay
// or edge (the relays' judge's statements) and returns its verified body.
func (ln *liveNetwork) RelayNodeRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (wire.NodeID, []byte, bool) {
	c := (*Coordinator)(ln)
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return "", nil, false
	}
	c.mu.RLock()
	n := c.st.nodes[auth.Node]
	var role wire.Role
	if n != nil {
		role = n.role
	}
	c.mu.RUnlock()
	switch {
	case n == nil:
		wire.WriteError(w, http.StatusNotFound, "%s: node %q is not registered; register as a %q or %q first", what, auth.Node, wire.RoleRelay, wire.RoleEdge)
		return "", nil, false
	case role != wire.RoleRelay && role != wire.RoleEdge:
		wire.WriteError(w, http.StatusForbidden, "%s: node %s is registered as %q; only relays and edges accuse their parents", what, auth.Node, role)
		return "", nil, false
	}
	body, ok := c.nodeRawBody(w, r, what, auth, limit)
	return auth.Node, body, ok
}

// IngestAddrs lists the alive origins' shard-server URLs and RTMP listeners.
func (ln *liveNetwork) IngestAddrs(now time.Time) (hls, rtmp []string) {
	c := (*Coordinator)(ln)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.st.origins {
		if !c.st.alive(n, now) {
			continue
		}
		hls = append(hls, n.addr)
		if n.rtmpAddr != "" {
			rtmp = append(rtmp, n.rtmpAddr)
		}
	}
	return hls, rtmp
}

// Bounds of a heartbeat's live report.
const (
	maxLiveWatching = 64   // chains one edge's players watch at once
	maxPeerRTTs     = 1024 // round trips one node reports
)

// checkLiveReport validates a heartbeat's live fields before anything uses
// them.
func checkLiveReport(req *wire.HeartbeatRequest) error {
	if len(req.LiveWatching) > maxLiveWatching {
		return fmt.Errorf("live_watching lists %d chains, at most %d", len(req.LiveWatching), maxLiveWatching)
	}
	if len(req.PeerRTTMS) > maxPeerRTTs {
		return fmt.Errorf("peer_rtt_ms lists %d peers, at most %d", len(req.PeerRTTMS), maxPeerRTTs)
	}
	for id, ms := range req.PeerRTTMS {
		if err := wire.CheckNodeID(id); err != nil {
			return fmt.Errorf("peer_rtt_ms: %v", err)
		}
		if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) || ms > 60_000 {
			return fmt.Errorf("peer_rtt_ms[%s] = %v: want a round trip of 0..60000 ms", id, ms)
		}
	}
	return nil
}
