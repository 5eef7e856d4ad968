package coordinatordb

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// The admin dashboard's reads. Each is a range over a primary key (or an
// index), so its cost follows the page asked for, never the ledger's or
// the flows' history: balances come from the balances cache table that
// every posting updates in its own transaction.

// AccountRow is one account as the admin table shows it.
type AccountRow struct {
	Account
	Points int64       // the cached balance
	Edge   wire.NodeID // the bound edge, if any
}

// AccountsPage lists up to limit accounts with id > after, by id (system
// accounts included: the mint's balance is minus the points supply).
func (db *DB) AccountsPage(ctx context.Context, after int64, limit int) ([]AccountRow, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms, COALESCE(b.points, 0), COALESCE(e.node_id, '')
		FROM accounts a LEFT JOIN balances b ON b.account_id = a.id LEFT JOIN edge_bindings e ON e.account_id = a.id
		WHERE a.id > ? ORDER BY a.id LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccountRow
	for rows.Next() {
		var r AccountRow
		var role, edge string
		var ms int64
		if err := rows.Scan(&r.ID, &r.Username, &role, &ms, &r.Points, &edge); err != nil {
			return nil, err
		}
		r.Role, r.CreatedAt, r.Edge = Role(role), time.UnixMilli(ms), wire.NodeID(edge)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReputationsBetween is the stored status of every node with first ≤ id ≤
// last (one range over the reputations key). Nodes without a row are
// absent: their status is NewEdgeStatus.
func (db *DB) ReputationsBetween(ctx context.Context, first, last wire.NodeID) (map[wire.NodeID]EdgeStatus, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT node_id, audit_alpha, audit_beta, uptime_alpha, uptime_beta, audits, disqualified_ms, dq_reason, updated_ms
		FROM reputations WHERE node_id >= ? AND node_id <= ?`), string(first), string(last))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[wire.NodeID]EdgeStatus)
	for rows.Next() {
		var s EdgeStatus
		var node string
		var dq, upd int64
		if err := rows.Scan(&node, &s.Audit.Alpha, &s.Audit.Beta, &s.Uptime.Alpha, &s.Uptime.Beta, &s.Audits, &dq, &s.DisqualifyReason, &upd); err != nil {
			return nil, err
		}
		s.Node = wire.NodeID(node)
		if dq != 0 {
			s.Disqualified, s.DisqualifiedAt = true, time.UnixMilli(dq)
		}
		s.UpdatedAt = time.UnixMilli(upd)
		out[s.Node] = s
	}
	return out, rows.Err()
}

// DefaultEdgeStatus is the status of an edge without a stored row, under
// this store's reputation configuration.
func (db *DB) DefaultEdgeStatus(node wire.NodeID) EdgeStatus {
	return NewEdgeStatus(node, db.cfg.Reputation)
}

// AccountViewerKeys lists the player keys bound to an account, sorted. (A
// scan of viewer_keys, which holds one row per player key: it grows with
// players, not with plays.)
func (db *DB) AccountViewerKeys(ctx context.Context, accountID int64) ([]wire.NodeID, error) {
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT viewer FROM viewer_keys WHERE account_id = ? ORDER BY viewer"), accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wire.NodeID
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, wire.NodeID(v))
	}
	return out, rows.Err()
}
