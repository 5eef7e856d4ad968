package coordinator

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/swarmcast/swarmcast/wire"
)

// BTR workers in the registry (docs/LIVE.md, "BTR"): a worker registers as
// wire.RoleWorker with its slots and heartbeats its busy ones; it is never
// a shard source, a tree node or a placement target. Origins with --btr-f
// read the alive ones from wire.PathBTRWorkers to build a chain's standby
// plan. Workers are admitted by key like origins and relays (the node-key
// allow-list, --worker-key).

// maxBTRSlots bounds the concurrent transcodes a worker may register.
const maxBTRSlots = 256

// BTRWorkers lists the alive, unbanned workers, least loaded (busy/slots)
// first, then by node id, so every origin reading it at once derives the
// same plan.
func (c *Coordinator) BTRWorkers() []wire.BTRWorkerEntry {
	now := c.cfg.Now()
	out := []wire.BTRWorkerEntry{}
	c.mu.RLock()
	for _, n := range c.st.nodes {
		if n.role == wire.RoleWorker && c.st.alive(n, now) {
			out = append(out, wire.BTRWorkerEntry{NodeID: n.id, Addr: n.addr, Slots: n.btrSlots, Busy: n.btrBusy})
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b wire.BTRWorkerEntry) int {
		// busy/slots compared without division: a.busy·b.slots vs b.busy·a.slots.
		if d := cmp.Compare(a.Busy*b.Slots, b.Busy*a.Slots); d != 0 {
			return d
		}
		return cmp.Compare(a.NodeID, b.NodeID)
	})
	return out
}

func (c *Coordinator) handleBTRWorkers(w http.ResponseWriter, _ *http.Request) {
	wire.WriteJSON(w, c.BTRWorkers())
}
