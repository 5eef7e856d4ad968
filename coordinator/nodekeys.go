package coordinator

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/swarmcast/swarmcast/wire"
)

// Node keys admitted per role (wire.AllowListedRoles: origins, relays, BTR
// workers). A node registers in such a role only when the operator allowed
// its key: on the command line (Config.OriginKeys, RelayKeys, WorkerKeys:
// configuration, never stored, revoked only by a restart without them) or
// at run time through wire.PathNodeKeys (the store's node_keys, shared by
// every coordinator on the store). A revocation (wire.PathNodeKeyRevoke)
// drops the node from the registry at once, so a relay leaves the trees at
// the next heartbeat, and refuses its next registration; a revocation made
// through another coordinator on the same store takes effect here at the
// next sweep (syncNodeKeys).

// admittedKeys is the coordinator's view of who is admitted.
type admittedKeys struct {
	// flag holds Config's keys per role; read-only after New.
	flag map[wire.Role]map[wire.NodeID]struct{}
	// stored caches the store's allowances per role, replaced at every
	// sweep; gen counts the changes made here (allow, revoke, a key found
	// in the store on a miss), so a store snapshot read while one happened
	// is not applied. Both guarded by Coordinator.keysMu.
	stored map[wire.Role]map[wire.NodeID]struct{}
	gen    uint64
}

func newAdmittedKeys(cfg Config) (admittedKeys, error) {
	k := admittedKeys{flag: map[wire.Role]map[wire.NodeID]struct{}{}, stored: map[wire.Role]map[wire.NodeID]struct{}{}}
	for role, ids := range map[wire.Role][]wire.NodeID{wire.RoleOrigin: cfg.OriginKeys, wire.RoleRelay: cfg.RelayKeys, wire.RoleWorker: cfg.WorkerKeys} {
		k.flag[role] = map[wire.NodeID]struct{}{}
		k.stored[role] = map[wire.NodeID]struct{}{}
		for _, id := range ids {
			if err := wire.CheckNodeID(id); err != nil {
				return k, fmt.Errorf("coordinator: %s key: %w", role, err)
			}
			k.flag[role][id] = struct{}{}
		}
	}
	return k, nil
}

// nodeAllowed reports whether the operator allows node to register as role
// (an AllowListedRoles role).
func (c *Coordinator) nodeAllowed(ctx context.Context, role wire.Role, node wire.NodeID) (bool, error) {
	if _, ok := c.keys.flag[role][node]; ok {
		return true, nil
	}
	c.keysMu.RLock()
	_, ok := c.keys.stored[role][node]
	c.keysMu.RUnlock()
	if ok {
		return true, nil
	}
	// Allowed through another coordinator since the last sweep?
	ok, err := c.store.NodeKeyAllowed(ctx, role, node)
	if err != nil || !ok {
		return false, err
	}
	c.keysMu.Lock()
	c.keys.stored[role][node] = struct{}{}
	c.keys.gen++
	c.keysMu.Unlock()
	return true, nil
}

// originAllowed is nodeAllowed for origins (publish and the live origin
// routes ask it on every request).
func (c *Coordinator) originAllowed(ctx context.Context, node wire.NodeID) (bool, error) {
	return c.nodeAllowed(ctx, wire.RoleOrigin, node)
}

// notAllowed is the 403 for a node that is not allowed in role: it says
// how the operator admits it.
func notAllowed(what string, role wire.Role, node wire.NodeID) error {
	return wire.Errorf(http.StatusForbidden, "%s: node %s is not an allowed %s; the operator allows it with `swarmcast coordinator --%s-key %s`, or at run time with `swarmcast node-keys allow %s %s --coordinator URL --user ADMIN` (POST %s)",
		what, node, role, role, node, role, node, wire.PathNodeKeys)
}

// notAllowedOrigin is notAllowed for origins.
func notAllowedOrigin(what string, node wire.NodeID) error {
	return notAllowed(what, wire.RoleOrigin, node)
}

// checkNodeKey validates an allow or revoke request before anything is
// written.
func checkNodeKey(what string, role wire.Role, node wire.NodeID) error {
	if err := wire.CheckAllowListedRole(role); err != nil {
		return wire.BadRequest("%s: %v", what, err)
	}
	if err := wire.CheckNodeID(node); err != nil {
		return wire.BadRequest("%s: %v; pass the id `swarmcast %s --print-id` prints", what, err, role)
	}
	return nil
}

// AllowNode allows node to register as role (an AllowListedRoles role),
// durably. Allowing it again is a no-op.
func (c *Coordinator) AllowNode(ctx context.Context, role wire.Role, node wire.NodeID) error {
	const what = "allow node key"
	if err := checkNodeKey(what, role, node); err != nil {
		return err
	}
	if err := c.store.AllowNodeKey(ctx, role, node, c.cfg.Now()); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	c.keysMu.Lock()
	c.keys.stored[role][node] = struct{}{}
	c.keys.gen++
	c.keysMu.Unlock()
	return nil
}

// AllowOrigin is AllowNode(ctx, wire.RoleOrigin, node).
func (c *Coordinator) AllowOrigin(ctx context.Context, node wire.NodeID) error {
	return c.AllowNode(ctx, wire.RoleOrigin, node)
}

// RevokeNode takes back node's allowance as role and drops it from the
// registry if it is registered in that role: a relay leaves the trees at
// the next heartbeat (the builder runs without it), and the node's next
// heartbeat answers Unknown and its re-registration is refused. A key from
// the command line cannot be revoked here (409: restart without it); a key
// that is not allowed is 404. Either refusal changes nothing.
func (c *Coordinator) RevokeNode(ctx context.Context, role wire.Role, node wire.NodeID) error {
	const what = "revoke node key"
	if err := checkNodeKey(what, role, node); err != nil {
		return err
	}
	if _, ok := c.keys.flag[role][node]; ok {
		return wire.Errorf(http.StatusConflict, "%s: node %s is allowed as %s by the command line (--%s-key); restart the coordinator without that flag to revoke it", what, node, role, role)
	}
	had, err := c.store.RevokeNodeKey(ctx, role, node)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	c.keysMu.Lock()
	_, cached := c.keys.stored[role][node]
	delete(c.keys.stored[role], node)
	c.keys.gen++
	c.keysMu.Unlock()
	if !had && !cached {
		return wire.Errorf(http.StatusNotFound, "%s: node %s is not an allowed %s (list them: swarmcast node-keys list)", what, node, role)
	}
	c.dropAdmitted(map[wire.NodeID]wire.Role{node: role}, "key revoked")
	return nil
}

// dropAdmitted removes each registered node whose role is the one given
// (an allowance taken back) from the registry and the trees.
func (c *Coordinator) dropAdmitted(gone map[wire.NodeID]wire.Role, why string) {
	var dropped []wire.NodeID
	c.mu.Lock()
	for id, role := range gone {
		if n := c.st.nodes[id]; n != nil && n.role == role {
			c.st.remove(n)
			dropped = append(dropped, id)
		}
	}
	c.mu.Unlock()
	for _, id := range dropped {
		c.live.NodeDown(id)
		c.log.Info("node dropped", "node", id, "role", gone[id], "why", why)
	}
}

// syncNodeKeys makes the cached allowances the store's, so an allowance or
// a revocation made through another coordinator on the same store takes
// effect here by the next sweep, and drops registered nodes no longer
// allowed. A change made here while the store was read wins: the snapshot
// is dropped and the next sweep retries.
func (c *Coordinator) syncNodeKeys(ctx context.Context) {
	c.keysMu.RLock()
	gen := c.keys.gen
	c.keysMu.RUnlock()
	rows, err := c.store.NodeKeys(ctx)
	if err != nil {
		c.log.Warn("sweep: reload node keys", "err", err)
		return
	}
	want := map[wire.Role]map[wire.NodeID]struct{}{}
	for _, role := range wire.AllowListedRoles {
		want[role] = map[wire.NodeID]struct{}{}
	}
	for _, r := range rows {
		if m := want[r.Role]; m != nil {
			m[r.Node] = struct{}{}
		}
	}
	c.keysMu.Lock()
	if c.keys.gen != gen {
		c.keysMu.Unlock()
		return
	}
	c.keys.stored = want
	c.keysMu.Unlock()
	// keysMu nests outside mu (nothing takes keysMu while holding mu).
	gone := map[wire.NodeID]wire.Role{}
	c.keysMu.RLock()
	c.mu.RLock()
	for id, n := range c.st.nodes {
		if wire.CheckAllowListedRole(n.role) != nil {
			continue
		}
		_, flag := c.keys.flag[n.role][id]
		_, stored := c.keys.stored[n.role][id]
		if !flag && !stored {
			gone[id] = n.role
		}
	}
	c.mu.RUnlock()
	c.keysMu.RUnlock()
	if len(gone) > 0 {
		c.dropAdmitted(gone, "key revoked through another coordinator")
	}
}

// NodeKeys lists every allowed key: the command line's, then the store's,
// each by role and node id.
func (c *Coordinator) NodeKeys(ctx context.Context) ([]wire.NodeKeyInfo, error) {
	rows, err := c.store.NodeKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list node keys: %w", err)
	}
	var out []wire.NodeKeyInfo
	for _, role := range wire.AllowListedRoles {
		for _, id := range slices.Sorted(maps.Keys(c.keys.flag[role])) {
			out = append(out, wire.NodeKeyInfo{Role: role, NodeID: id, Source: wire.NodeKeySourceFlag})
		}
	}
	for _, r := range rows {
		out = append(out, wire.NodeKeyInfo{Role: r.Role, NodeID: r.Node, Source: wire.NodeKeySourceStore, AllowedMS: r.AllowedAt.UnixMilli()})
	}
	return out, nil
}

// handleAllowNodeKey is the admin route allowing a node key in a role.
func (c *Coordinator) handleAllowNodeKey(w http.ResponseWriter, r *http.Request) {
	if err := c.acct.AuthorizeAdmin(r); err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	var req wire.NodeKeyRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := c.AllowNode(r.Context(), req.Role, req.NodeID); err != nil {
		wire.WriteErr(w, err)
		return
	}
	c.log.Info("node key allowed", "role", req.Role, "node", req.NodeID)
	wire.WriteEmpty(w)
}

// handleRevokeNodeKey is the admin route revoking a node key in a role.
func (c *Coordinator) handleRevokeNodeKey(w http.ResponseWriter, r *http.Request) {
	if err := c.acct.AuthorizeAdmin(r); err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	var req wire.NodeKeyRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := c.RevokeNode(r.Context(), req.Role, req.NodeID); err != nil {
		wire.WriteErr(w, err)
		return
	}
	c.log.Info("node key revoked", "role", req.Role, "node", req.NodeID)
	wire.WriteEmpty(w)
}

// handleNodeKeys lists the allowed node keys (admin).
func (c *Coordinator) handleNodeKeys(w http.ResponseWriter, r *http.Request) {
	if err := c.acct.AuthorizeAdmin(r); err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	keys, err := c.NodeKeys(r.Context())
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	if keys == nil {
		keys = []wire.NodeKeyInfo{}
	}
	wire.WriteJSON(w, keys)
}
