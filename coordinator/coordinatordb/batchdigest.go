package coordinatordb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/wire"
)

// ErrBatchIDReused refuses a batch whose id was settled before with other
// content (another edge's batch, or other pairs): a conflict the edge
// resolves by sending the new pairs under a fresh random id.
var ErrBatchIDReused = errors.New("settle: batch id already used for a different batch; send these pairs under a fresh random id")

// batchDigest is the hex SHA-256 of a batch's pairs as JSON: the same pairs
// always encode the same (struct fields in order, bytes as base64).
func batchDigest(b *wire.SettlementBatch) string {
	j, _ := json.Marshal(b.Pairs) // plain structs: cannot fail
	sum := sha256.Sum256(j)
	return hex.EncodeToString(sum[:])
}

// checkReplay decides what a settled batch id means for b: a true replay
// (same edge, same pairs) is answered with the stored result; anything else
// is ErrBatchIDReused. A batch stored before digests existed ("") compares
// by edge only.
func (db *DB) checkReplay(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, stored BatchResult) error {
	var digest string
	if err := tx.QueryRowContext(ctx, db.q("SELECT content_sha256 FROM settlement_batches WHERE batch_id = ?"), b.ID).Scan(&digest); err != nil {
		return err
	}
	if stored.Edge != b.Edge {
		return fmt.Errorf("%w (batch %s was another edge's)", ErrBatchIDReused, b.ID)
	}
	if digest != "" && digest != batchDigest(b) {
		return fmt.Errorf("%w (batch %s had other pairs)", ErrBatchIDReused, b.ID)
	}
	return nil
}

// recordDigest stores b's digest on its freshly inserted row.
func (db *DB) recordDigest(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch) error {
	_, err := tx.ExecContext(ctx, db.q("UPDATE settlement_batches SET content_sha256 = ? WHERE batch_id = ?"), batchDigest(b), b.ID)
	return err
}
