package coordinator

import (
	"context"
	"math/rand"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/playback"
	"github.com/swarmcast/swarmcast/wire"
)

// network is the Coordinator as the accounting subsystem sees it
// (accounting.Network): a defined type, so these answers to accounting stay
// off the Coordinator's own method set.
type network Coordinator

var (
	_ accounting.Network = (*network)(nil)
	_ playback.Network   = (*network)(nil)
)

func (n *network) ContentKey(video content.VideoID) (content.ContentKey, bool) {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	var key content.ContentKey
	v := c.st.videos[video]
	if v == nil || len(v.key) != len(key) {
		return key, false
	}
	copy(key[:], v.key)
	return key, true
}

func (n *network) Manifest(video content.VideoID) (*content.Manifest, bool) {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	v := c.st.videos[video]
	if v == nil {
		return nil, false
	}
	return v.m, true
}

func (n *network) PickAudits(now time.Time, rng *rand.Rand, max int, audited func(wire.NodeID) bool) []accounting.AuditTarget {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.st.pickAudits(now, rng, max, audited)
}

func (n *network) AliveOrigins(now time.Time) []string {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	var addrs []string
	for _, o := range c.st.origins {
		if c.st.alive(o, now) {
			addrs = append(addrs, o.addr)
		}
	}
	return addrs
}

func (n *network) EdgeLiveness(now time.Time) map[wire.NodeID]bool {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[wire.NodeID]bool)
	for _, nd := range c.st.nodes {
		if nd.role == wire.RoleEdge && !nd.banned {
			out[nd.id] = c.st.alive(nd, now)
		}
	}
	return out
}

// Ban persists a ban (the first reason stands) and removes the node from
// lookups and placement, now and after it re-registers.
func (n *network) Ban(ctx context.Context, node wire.NodeID, reason string) error {
	c := (*Coordinator)(n)
	if err := c.store.PutBan(ctx, node, reason, c.cfg.Now()); err != nil {
		return err
	}
	c.mu.Lock()
	c.st.ban(node, reason)
	c.banGen++
	c.mu.Unlock()
	return nil
}

func (n *network) Banned(node wire.NodeID) bool {
	c := (*Coordinator)(n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, banned := c.st.banned[node]
	return banned
}

// Unban lets a node whose ban the store lifted back into lookups and
// placement.
func (n *network) Unban(node wire.NodeID) {
	c := (*Coordinator)(n)
	c.mu.Lock()
	c.st.unban(node)
	c.banGen++
	c.mu.Unlock()
	c.log.Info("node unbanned", "node", node)
}
