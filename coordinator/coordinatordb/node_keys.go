// Node keys: the node ids the operator allowed, at run time, to register
// in a role that is admitted by key (wire.AllowListedRoles: origins,
// relays, BTR workers). Migration 010.

package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// NodeKey is one allowed (role, node) pair.
type NodeKey struct {
	Role      wire.Role
	Node      wire.NodeID
	AllowedAt time.Time
}

// AllowNodeKey allows node to register as role. Allowing it again is a
// no-op (the first allowance's time is kept).
func (db *DB) AllowNodeKey(ctx context.Context, role wire.Role, node wire.NodeID, now time.Time) error {
	if err := wire.CheckAllowListedRole(role); err != nil {
		return err
	}
	if err := checkNodeID(string(role)+" key", node); err != nil {
		return err
	}
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO node_keys (role, node_id, allowed_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"), string(role), string(node), now.UnixMilli())
	return err
}

// RevokeNodeKey takes back node's allowance as role and reports whether
// there was one.
func (db *DB) RevokeNodeKey(ctx context.Context, role wire.Role, node wire.NodeID) (bool, error) {
	res, err := db.sql.ExecContext(ctx, db.q("DELETE FROM node_keys WHERE role = ? AND node_id = ?"), string(role), string(node))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// NodeKeyAllowed reports whether node is allowed to register as role.
func (db *DB) NodeKeyAllowed(ctx context.Context, role wire.Role, node wire.NodeID) (bool, error) {
	var one int
	err := db.sql.QueryRowContext(ctx, db.q("SELECT 1 FROM node_keys WHERE role = ? AND node_id = ?"), string(role), string(node)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// NodeKeys lists every stored allowance, by role then node id.
func (db *DB) NodeKeys(ctx context.Context) ([]NodeKey, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT role, node_id, allowed_ms FROM node_keys ORDER BY role, node_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NodeKey
	for rows.Next() {
		var k NodeKey
		var ms int64
		if err := rows.Scan(&k.Role, &k.Node, &ms); err != nil {
			return nil, err
		}
		k.AllowedAt = time.UnixMilli(ms)
		out = append(out, k)
	}
	return out, rows.Err()
}
