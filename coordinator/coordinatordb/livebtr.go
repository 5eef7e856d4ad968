package coordinatordb

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// LiveBTRStatement is one record of a chain's BTR channel log (migration
// 009): Kind "accusation" or "exclusion", Culprit the worker's node id,
// Statement its signed encoding (checked by coordinator/live before it is
// written).
type LiveBTRStatement struct {
	Chain     content.VideoID
	Seq       uint64
	Kind      string
	Culprit   string
	Statement []byte
	// Judge is the node id of the key the statement verifies against when
	// it is not the chain's origin (the coordinator as the relays' judge,
	// migration 013); empty for the origin's.
	Judge string
}

// AppendLiveBTR appends a statement at position st.Seq of its chain's log
// (the next one; a taken position is the primary key's error).
func (db *DB) AppendLiveBTR(ctx context.Context, st LiveBTRStatement, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO live_btr_log (chain, seq, kind, culprit, statement, at_ms, judge) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		st.Chain.String(), int64(min(st.Seq, 1<<62)), st.Kind, st.Culprit, base64.StdEncoding.EncodeToString(st.Statement), now.UnixMilli(), st.Judge)
	return err
}

// LiveBTRLog is every chain's log, in chain and position order.
func (db *DB) LiveBTRLog(ctx context.Context) ([]LiveBTRStatement, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT chain, seq, kind, culprit, statement, judge FROM live_btr_log ORDER BY chain, seq")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiveBTRStatement
	for rows.Next() {
		var st LiveBTRStatement
		var seq int64
		var enc string
		if err := rows.Scan(videoColumn{&st.Chain}, &seq, &st.Kind, &st.Culprit, &enc, &st.Judge); err != nil {
			return nil, err
		}
		st.Seq = uint64(seq)
		if st.Statement, err = base64.StdEncoding.DecodeString(enc); err != nil {
			return nil, fmt.Errorf("chain %s: btr statement %d: %w", st.Chain, seq, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
