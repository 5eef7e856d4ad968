package coordinatordb

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// BatchResult is the outcome of settling one batch.
type BatchResult struct {
	BatchID        string
	Edge           wire.NodeID
	SettledAt      time.Time
	Pairs          int
	Accepted       int
	AcceptedBytes  int64
	CreditedPoints int64 // paid to the edge's account
	FrozenPoints   int64 // earned but withheld: the edge is disqualified
	FrozenReason   string
	Rejected       map[Reason]int
	// Outcomes is the per-pair verdict (Accepted or a reason), in batch
	// order; nil when Replayed.
	Outcomes []Reason
	// Replayed is true when the batch id had been settled before: nothing
	// was written and the stored totals are returned.
	Replayed bool
}

// ErrEdgeNotBound is returned by Settle for an edge no account runs.
var ErrEdgeNotBound = errors.New("settle: the edge is not bound to an account; create an API token for it first")

// Settle settles a batch atomically and idempotently: in one transaction it
// checks every pair, marks accepted serials used, charges each (viewer,
// video) playback budget, writes flow rows, and credits the edge's account
// from the mint (or freezes the credit if the edge is disqualified). A batch
// id settles once, across processes: a concurrent or repeated Settle of the
// same id returns the first result with Replayed set.
//
// Stateless checks (signatures) run before the transaction so the write
// lock is never held during ed25519 work.
func (db *DB) Settle(ctx context.Context, b *wire.SettlementBatch, now time.Time) (BatchResult, error) {
	if err := ValidateBatch(b); err != nil {
		return BatchResult{}, err
	}
	outcomes := db.checkPairs(b, now)
	var res BatchResult
	for attempt := 1; ; attempt++ {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			var err error
			// settleTx may mark outcomes (a serial found reused): each
			// attempt starts from the signature checks' verdicts.
			res, err = db.settleTx(ctx, tx, b, slices.Clone(outcomes), now)
			return err
		})
		if err == nil {
			return res, nil
		}
		// PostgreSQL aborts one of two batches that lock the same rows
		// (balances, a viewer's budget) in opposite orders; the batch did
		// not happen, so running it again is safe and is what the edge
		// would do anyway, later.
		if !retryable(err) || attempt == maxSettleAttempts {
			return BatchResult{}, err
		}
		select {
		case <-ctx.Done():
			return BatchResult{}, err
		case <-time.After(time.Duration(attempt) * (5*time.Millisecond + time.Duration(mrand.Int64N(int64(20*time.Millisecond))))):
		}
	}
}

// maxSettleAttempts bounds the retries of a batch aborted by a deadlock or
// serialization failure.
const maxSettleAttempts = 5

// retryable reports a PostgreSQL deadlock (40P01) or serialization failure
// (40001): the transaction was rolled back and may simply run again.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

func (db *DB) settleTx(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, outcomes []Reason, now time.Time) (BatchResult, error) {
	ins, err := tx.ExecContext(ctx, db.q(`INSERT INTO settlement_batches (batch_id, edge, settled_ms, pairs, accepted, accepted_bytes, credited_points, frozen_points, frozen_reason)
		VALUES (?, ?, ?, ?, 0, 0, 0, 0, '') ON CONFLICT DO NOTHING`), b.ID, string(b.Edge), now.UnixMilli(), len(b.Pairs))
	if err != nil {
		return BatchResult{}, fmt.Errorf("settle batch %s: %w", b.ID, err)
	}
	if n, _ := ins.RowsAffected(); n == 0 {
		r, err := db.batch(ctx, tx, b.ID)
		if err != nil {
			return BatchResult{}, err
		}
		if err := db.checkReplay(ctx, tx, b, r); err != nil {
			return BatchResult{}, err
		}
		r.Replayed = true
		return r, nil
	}
	if err := db.recordDigest(ctx, tx, b); err != nil {
		return BatchResult{}, err
	}
	var account int64
	err = tx.QueryRowContext(ctx, db.q("SELECT account_id FROM edge_bindings WHERE node_id = ?"), string(b.Edge)).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return BatchResult{}, ErrEdgeNotBound
	}
	if err != nil {
		return BatchResult{}, err
	}
	res := BatchResult{BatchID: b.ID, Edge: b.Edge, SettledAt: time.UnixMilli(now.UnixMilli()), Pairs: len(b.Pairs), Rejected: map[Reason]int{}, Outcomes: outcomes}
	videos := map[content.VideoID]VideoTerms{}
	flows := map[flowKey]int64{}
	var flowOrder []flowKey
	// Visit pairs by (viewer, video, serial): every settlement then locks
	// the rows it shares with others (viewers' budgets, serials, flows) in
	// one global order, followed by balances in account order (post), so
	// edges settling at once queue instead of deadlocking.
	order := make([]int, len(b.Pairs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		lx, ly := &b.Pairs[x].Limit, &b.Pairs[y].Limit
		return cmp.Or(cmp.Compare(lx.Viewer, ly.Viewer), content.CompareVideoIDs(lx.Video, ly.Video), bytes.Compare(lx.Serial[:], ly.Serial[:]))
	})
	for _, i := range order {
		if outcomes[i] == Accepted {
			outcomes[i], err = db.settlePair(ctx, tx, b, &b.Pairs[i], videos, flows)
			if err != nil {
				return BatchResult{}, err
			}
		}
		if outcomes[i] != Accepted {
			res.Rejected[outcomes[i]]++
			continue
		}
		res.Accepted++
		res.AcceptedBytes += b.Pairs[i].Order.Amount
		k := flowKey{b.Pairs[i].Limit.Viewer, b.Pairs[i].Limit.Video}
		if flows[k] == 0 {
			flowOrder = append(flowOrder, k)
		}
		flows[k] += b.Pairs[i].Order.Amount
	}
	bucket := now.Truncate(db.cfg.FlowBucket).UnixMilli()
	for _, k := range flowOrder {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO flows (edge, viewer, video, bucket_ms, bytes) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (edge, viewer, video, bucket_ms) DO UPDATE SET bytes = flows.bytes + excluded.bytes`),
			string(b.Edge), string(k.viewer), k.video.String(), bucket, flows[k]); err != nil {
			return BatchResult{}, err
		}
	}
	for reason, n := range res.Rejected {
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO batch_rejections (batch_id, reason, count) VALUES (?, ?, ?)"), b.ID, string(reason), n); err != nil {
			return BatchResult{}, err
		}
	}
	points := PointsFor(res.AcceptedBytes, db.cfg.PointsPerMB)
	status, err := db.loadReputation(ctx, tx, b.Edge, false)
	if err != nil {
		return BatchResult{}, err
	}
	switch {
	case status.Disqualified:
		res.FrozenPoints = points
		res.FrozenReason = fmt.Sprintf("edge disqualified at %s: %s", status.DisqualifiedAt.UTC().Format(time.RFC3339), status.DisqualifyReason)
	case points > 0:
		if _, err := db.post(ctx, tx, KindSettlement, "batch "+b.ID, now, []posting{
			{account: db.mintID, amount: -points}, {account: account, amount: points},
		}); err != nil {
			return BatchResult{}, err
		}
		res.CreditedPoints = points
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE settlement_batches SET accepted = ?, accepted_bytes = ?, credited_points = ?, frozen_points = ?, frozen_reason = ?
		WHERE batch_id = ?`), res.Accepted, res.AcceptedBytes, res.CreditedPoints, res.FrozenPoints, res.FrozenReason, b.ID)
	return res, err
}

// checkPairs runs CheckPair over the batch, spread over the CPUs for big
// batches (two ed25519 verifications per pair dominate settlement cost).
// Every goroutine it starts has finished when it returns.
func (db *DB) checkPairs(b *wire.SettlementBatch, now time.Time) []Reason {
	outcomes := make([]Reason, len(b.Pairs))
	check := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			outcomes[i] = CheckPair(&b.Pairs[i], b.Edge, db.cfg.CoordinatorKeys, now, db.cfg.SettlementGrace)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(b.Pairs)/16)
	if workers <= 1 {
		check(0, len(b.Pairs))
		return outcomes
	}
	var wg sync.WaitGroup
	chunk := (len(b.Pairs) + workers - 1) / workers
	for lo := 0; lo < len(b.Pairs); lo += chunk {
		wg.Go(func() { check(lo, min(lo+chunk, len(b.Pairs))) })
	}
	wg.Wait()
	return outcomes
}

// flowKey sums a batch's accepted bytes per (viewer, video) before writing.
type flowKey struct {
	viewer wire.NodeID
	video  content.VideoID
}

// settlePair runs the stateful rules for one pair that passed CheckPair.
// flows holds the (viewer, video) pairs already accepted in this batch,
// whose usage row therefore exists.
func (db *DB) settlePair(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, p *wire.SettlementPair, videos map[content.VideoID]VideoTerms, flows map[flowKey]int64) (Reason, error) {
	l, amount := &p.Limit, p.Order.Amount
	v, ok := videos[l.Video]
	if !ok {
		var err error
		v, err = db.video(ctx, tx, l.Video)
		if errors.Is(err, ErrUnknownVideo) {
			return ReasonUnknownVideo, nil
		}
		if err != nil {
			return "", err
		}
		videos[l.Video] = v
	}
	if v.Price > 0 {
		var n int
		err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM viewer_keys k JOIN entitlements e ON e.account_id = k.account_id
			WHERE k.viewer = ? AND e.video = ?`), string(l.Viewer), l.Video.String()).Scan(&n)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return ReasonNotEntitled, nil
		}
	}
	// The serial row is the once-only guard: a concurrent settlement of the
	// same serial (another batch, another coordinator) waits on this insert
	// and then sees the conflict.
	ins, err := tx.ExecContext(ctx, db.q(`INSERT INTO settled_serials (serial, batch_id, edge, viewer, video, amount, status)
		VALUES (?, ?, ?, ?, ?, ?, 'accepted') ON CONFLICT DO NOTHING`), l.Serial.String(), b.ID, string(b.Edge), string(l.Viewer), l.Video.String(), amount)
	if err != nil {
		return "", err
	}
	if n, _ := ins.RowsAffected(); n == 0 {
		return ReasonSerialReused, nil
	}
	if flows[flowKey{l.Viewer, l.Video}] == 0 {
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO viewer_video_usage (viewer, video, bytes) VALUES (?, ?, 0) ON CONFLICT DO NOTHING"),
			string(l.Viewer), l.Video.String()); err != nil {
			return "", err
		}
	}
	up, err := tx.ExecContext(ctx, db.q("UPDATE viewer_video_usage SET bytes = bytes + ? WHERE viewer = ? AND video = ? AND bytes + ? <= ?"),
		amount, string(l.Viewer), l.Video.String(), amount, v.PlaybackBudgetBytes)
	if err != nil {
		return "", err
	}
	if n, _ := up.RowsAffected(); n == 0 {
		// The serial stays used: a pair over budget must not be retried into it.
		if _, err := tx.ExecContext(ctx, db.q("UPDATE settled_serials SET status = ?, amount = 0 WHERE serial = ?"), string(ReasonBeyondPlayback), l.Serial.String()); err != nil {
			return "", err
		}
		return ReasonBeyondPlayback, nil
	}
	return Accepted, nil
}

func (db *DB) batch(ctx context.Context, q interface {
	querier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, id string) (BatchResult, error) {
	r := BatchResult{BatchID: id, Rejected: map[Reason]int{}}
	var edge string
	var ms int64
	err := q.QueryRowContext(ctx, db.q(`SELECT edge, settled_ms, pairs, accepted, accepted_bytes, credited_points, frozen_points, frozen_reason
		FROM settlement_batches WHERE batch_id = ?`), id).Scan(&edge, &ms, &r.Pairs, &r.Accepted, &r.AcceptedBytes, &r.CreditedPoints, &r.FrozenPoints, &r.FrozenReason)
	if errors.Is(err, sql.ErrNoRows) {
		return BatchResult{}, ErrNotFound
	}
	if err != nil {
		return BatchResult{}, err
	}
	r.Edge, r.SettledAt = wire.NodeID(edge), time.UnixMilli(ms)
	rows, err := q.QueryContext(ctx, db.q("SELECT reason, count FROM batch_rejections WHERE batch_id = ?"), id)
	if err != nil {
		return BatchResult{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var reason string
		var n int
		if err := rows.Scan(&reason, &n); err != nil {
			return BatchResult{}, err
		}
		r.Rejected[Reason(reason)] = n
	}
	return r, rows.Err()
}

// Batch returns a settled batch's stored result.
func (db *DB) Batch(ctx context.Context, id string) (BatchResult, error) {
	return db.batch(ctx, db.sql, id)
}

// EdgeBatches lists an edge's settled batches, newest first, so its owner
// can see what was credited and what was frozen and why.
func (db *DB) EdgeBatches(ctx context.Context, edge wire.NodeID, limit int) ([]BatchResult, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT batch_id FROM settlement_batches WHERE edge = ? ORDER BY settled_ms DESC, batch_id LIMIT ?"), string(edge), limit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]BatchResult, 0, len(ids))
	for _, id := range ids {
		r, err := db.Batch(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// EdgeEarnings sums an edge's credited and frozen points.
func (db *DB) EdgeEarnings(ctx context.Context, edge wire.NodeID) (credited, frozen int64, err error) {
	err = db.sql.QueryRowContext(ctx, db.q("SELECT COALESCE(SUM(credited_points), 0), COALESCE(SUM(frozen_points), 0) FROM settlement_batches WHERE edge = ?"),
		string(edge)).Scan(&credited, &frozen)
	return credited, frozen, err
}

// RejectionCounts sums rejected pairs per reason over all batches.
func (db *DB) RejectionCounts(ctx context.Context) (map[Reason]int64, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT reason, SUM(count) FROM batch_rejections GROUP BY reason")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[Reason]int64{}
	for rows.Next() {
		var reason string
		var n int64
		if err := rows.Scan(&reason, &n); err != nil {
			return nil, err
		}
		out[Reason(reason)] = n
	}
	return out, rows.Err()
}

// ViewerUsage is the bytes settled so far for (viewer, video), against the
// video's playback budget.
func (db *DB) ViewerUsage(ctx context.Context, viewer wire.NodeID, video content.VideoID) (int64, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, db.q("SELECT bytes FROM viewer_video_usage WHERE viewer = ? AND video = ?"), string(viewer), video.String()).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
