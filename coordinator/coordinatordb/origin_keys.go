// Origin keys: the node ids the operator allowed, at run time, to register
// and publish as origins.

package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// AllowOriginKey allows node to be an origin. Allowing it again is a no-op.
func (db *DB) AllowOriginKey(ctx context.Context, node wire.NodeID, now time.Time) error {
	if err := checkNodeID("origin key", node); err != nil {
		return err
	}
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO origin_keys (node_id, allowed_ms) VALUES (?, ?) ON CONFLICT DO NOTHING"), string(node), now.UnixMilli())
	return err
}

// OriginKeyAllowed reports whether node was allowed to be an origin.
func (db *DB) OriginKeyAllowed(ctx context.Context, node wire.NodeID) (bool, error) {
	var one int
	err := db.sql.QueryRowContext(ctx, db.q("SELECT 1 FROM origin_keys WHERE node_id = ?"), string(node)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
