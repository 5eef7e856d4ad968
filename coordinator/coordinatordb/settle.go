package coordinatordb

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// BatchIDReusedError is returned by Settle for a batch id that was already
// settled with other content (other pairs, or by another edge). Nothing was
// written.
type BatchIDReusedError struct {
	ID        string
	OtherEdge bool // the id was first used by another edge
}

// ErrBatchIDReused matches every *BatchIDReusedError (errors.Is), for
// callers that only need to know the id was taken.
var ErrBatchIDReused = errors.New("settle: batch id already used for a different batch; send these pairs under a fresh random id")

// Is makes errors.Is(err, ErrBatchIDReused) true.
func (e *BatchIDReusedError) Is(target error) bool { return target == ErrBatchIDReused }

func (e *BatchIDReusedError) Error() string {
	if e.OtherEdge {
		return fmt.Sprintf("settle: batch id %s was already used by another edge; choose a fresh random id", e.ID)
	}
	return fmt.Sprintf("settle: batch id %s was already settled with different pairs; resending the same batch returns its stored result, new pairs need a fresh random id", e.ID)
}

// NotPayableError is returned by Settle when the edge may not be paid yet
// (see EdgePayable). Nothing was written, the serials stay unused: the edge
// keeps its orders and sends the same batch again later.
type NotPayableError struct {
	Edge wire.NodeID
	Why  string
}

func (e *NotPayableError) Error() string {
	return fmt.Sprintf("settle: edge %s is not paid yet: %s; keep the orders and settle the same batch again later", e.Edge, e.Why)
}

// Settle settles a batch atomically and idempotently: in one transaction it
// checks that the edge is payable, checks every pair, marks accepted serials
// used, charges each (viewer account, video) playback budget, writes flow
// rows, and credits the edge's account from the mint (or freezes the credit
// if the edge is disqualified). A batch id settles once, across processes: a
// concurrent or repeated Settle of the same id and content returns the first
// result with Replayed set; the same id with other content is a
// *BatchIDReusedError.
//
// Stateless checks (signatures) run before the transaction so the write
// lock is never held during ed25519 work.
func (db *DB) Settle(ctx context.Context, b *wire.SettlementBatch, now time.Time) (BatchResult, error) {
	if err := ValidateBatch(b); err != nil {
		return BatchResult{}, err
	}
	canonical, err := json.Marshal(b)
	if err != nil {
		return BatchResult{}, fmt.Errorf("settle batch %s: %w", b.ID, err)
	}
	digest := sha256.Sum256(canonical)
	sum := hex.EncodeToString(digest[:])
	outcomes := db.checkPairs(b, now)
	var res BatchResult
	for attempt := 1; ; attempt++ {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			var err error
			// settleTx may mark outcomes (a serial found reused): each
			// attempt starts from the signature checks' verdicts.
			res, err = db.settleTx(ctx, tx, b, sum, slices.Clone(outcomes), now)
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

func (db *DB) settleTx(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, sum string, outcomes []Reason, now time.Time) (BatchResult, error) {
	ins, err := tx.ExecContext(ctx, db.q(`INSERT INTO settlement_batches (batch_id, edge, settled_ms, pairs, accepted, accepted_bytes, credited_points, frozen_points, frozen_reason, content_sha256)
		VALUES (?, ?, ?, ?, 0, 0, 0, 0, '', ?) ON CONFLICT DO NOTHING`), b.ID, string(b.Edge), now.UnixMilli(), len(b.Pairs), sum)
	if err != nil {
		return BatchResult{}, fmt.Errorf("settle batch %s: %w", b.ID, err)
	}
	if n, _ := ins.RowsAffected(); n == 0 {
		var storedSum string
		if err := tx.QueryRowContext(ctx, db.q("SELECT content_sha256 FROM settlement_batches WHERE batch_id = ?"), b.ID).Scan(&storedSum); err != nil {
			return BatchResult{}, err
		}
		r, err := db.batch(ctx, tx, b.ID)
		if err != nil {
			return BatchResult{}, err
		}
		if r.Edge != b.Edge {
			return BatchResult{}, &BatchIDReusedError{ID: b.ID, OtherEdge: true}
		}
		// storedSum is '' for batches settled before content digests were
		// kept: those replay as they always did.
		if storedSum != "" && storedSum != sum {
			return BatchResult{}, &BatchIDReusedError{ID: b.ID}
		}
		r.Replayed = true
		return r, nil
	}
	var account int64
	err = tx.QueryRowContext(ctx, db.q("SELECT account_id FROM edge_bindings WHERE node_id = ?"), string(b.Edge)).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return BatchResult{}, ErrEdgeNotBound
	}
	if err != nil {
		return BatchResult{}, err
	}
	status, err := db.loadReputation(ctx, tx, b.Edge, false)
	if err != nil {
		return BatchResult{}, err
	}
	if !status.Disqualified {
		// A disqualified edge's batch is recorded with its credit frozen
		// (below); any other edge must be payable now.
		if why, err := db.unpayable(ctx, tx, b.Edge); err != nil {
			return BatchResult{}, err
		} else if why != "" {
			return BatchResult{}, &NotPayableError{Edge: b.Edge, Why: why}
		}
	}
	viewers, err := db.viewerAccounts(ctx, tx, b, outcomes)
	if err != nil {
		return BatchResult{}, err
	}
	res := BatchResult{BatchID: b.ID, Edge: b.Edge, SettledAt: time.UnixMilli(now.UnixMilli()), Pairs: len(b.Pairs), Rejected: map[Reason]int{}, Outcomes: outcomes}
	videos := map[content.VideoID]VideoTerms{}
	usage := map[usageKey]bool{}
	flows := map[flowKey]int64{}
	var flowOrder []flowKey
	// Visit pairs by (viewer account, video, serial): every settlement then
	// locks the rows it shares with others (accounts' budgets, serials,
	// flows) in one global order, followed by balances in account order
	// (post), so edges settling at once queue instead of deadlocking.
	order := make([]int, len(b.Pairs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		lx, ly := &b.Pairs[x].Limit, &b.Pairs[y].Limit
		return cmp.Or(cmp.Compare(viewers[lx.Viewer], viewers[ly.Viewer]), cmp.Compare(lx.Viewer, ly.Viewer),
			content.CompareVideoIDs(lx.Video, ly.Video), bytes.Compare(lx.Serial[:], ly.Serial[:]))
	})
	for _, i := range order {
		if outcomes[i] == Accepted {
			outcomes[i], err = db.settlePair(ctx, tx, b, &b.Pairs[i], account, viewers[b.Pairs[i].Limit.Viewer], videos, usage)
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
	// Reasons in a fixed order: concurrent settlements upsert the same
	// total rows, and PostgreSQL must see them locked in one order.
	reasons := slices.Sorted(maps.Keys(res.Rejected))
	for _, reason := range reasons {
		n := res.Rejected[reason]
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO batch_rejections (batch_id, reason, count) VALUES (?, ?, ?)"), b.ID, string(reason), n); err != nil {
			return BatchResult{}, err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO rejection_totals (reason, count) VALUES (?, ?)
			ON CONFLICT (reason) DO UPDATE SET count = rejection_totals.count + excluded.count`), string(reason), n); err != nil {
			return BatchResult{}, err
		}
	}
	points := PointsFor(res.AcceptedBytes, db.cfg.PointsPerMB)
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

// usageKey is one viewer account's playback budget for one video.
type usageKey struct {
	account int64
	video   content.VideoID
}

// EdgePayable says why an edge may not be paid now ("" = it may). An edge is
// paid only if it is alive and audited:
//
//   - alive: the limit it settles is coordinator-signed, and a coordinator
//     signs limits only for edges it lists in a lookup, which are registered,
//     heartbeating and unbanned at that moment, so every payable limit proves
//     the edge was alive within its life;
//   - audited: at least one storage audit of the edge has passed (its address
//     answered a fresh random challenge with the origin's bytes), and none is
//     in containment (timed out, being re-asked).
//
// A disqualified edge is not refused here: its batches are recorded with the
// credit frozen. A new edge therefore earns nothing until its first audit
// passes; its orders wait on the edge (a refused batch writes nothing) and
// settle then, as long as that is within SettlementGrace of their limits'
// expiry (see the package doc for how long a first audit takes).
func (db *DB) EdgePayable(ctx context.Context, edge wire.NodeID) (string, error) {
	return db.unpayable(ctx, db.sql, edge)
}

func (db *DB) unpayable(ctx context.Context, q querier, edge wire.NodeID) (string, error) {
	var passed, contained int64
	if err := q.QueryRowContext(ctx, db.q(`SELECT COALESCE(SUM(CASE WHEN state = 'passed' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = 'contained' THEN 1 ELSE 0 END), 0) FROM audits WHERE edge = ?`), string(edge)).Scan(&passed, &contained); err != nil {
		return "", err
	}
	switch {
	case passed == 0:
		return "it has not passed a storage audit yet (the coordinator audits a few edges every round; an edge that holds shards and answers at its registered address is audited soon)", nil
	case contained > 0:
		return "a storage audit of it timed out and is being re-asked (containment); it is paid again once that audit passes", nil
	}
	return "", nil
}

// viewerAccounts maps the batch's viewer keys (of pairs still accepted) to
// the accounts they are bound to; an unbound key is absent (0). Bindings
// never change once made, so reading them before locking anything is safe.
func (db *DB) viewerAccounts(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, outcomes []Reason) (map[wire.NodeID]int64, error) {
	out := map[wire.NodeID]int64{}
	seen := map[wire.NodeID]bool{}
	for i := range b.Pairs {
		v := b.Pairs[i].Limit.Viewer
		if outcomes[i] != Accepted || seen[v] {
			continue
		}
		seen[v] = true
		var acct int64
		err := tx.QueryRowContext(ctx, db.q("SELECT account_id FROM viewer_keys WHERE viewer = ?"), string(v)).Scan(&acct)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			out[v] = acct
		}
	}
	return out, nil
}

// settlePair runs the stateful rules for one pair that passed CheckPair,
// submitted by the edge run by edgeAccount, for a viewer key bound to
// viewerAccount (0: unbound). usage holds the (account, video) budgets
// already touched in this batch, whose usage row therefore exists.
func (db *DB) settlePair(ctx context.Context, tx *sql.Tx, b *wire.SettlementBatch, p *wire.SettlementPair, edgeAccount, viewerAccount int64,
	videos map[content.VideoID]VideoTerms, usage map[usageKey]bool) (Reason, error) {
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
	// Every payable play belongs to an account: its budget is what bounds
	// collusion, so a key bound to none is never paid for, free video or not.
	if viewerAccount == 0 {
		return ReasonNotEntitled, nil
	}
	// An account's own edge serving its own player moves points from the
	// mint to the account for nothing a third party received.
	if viewerAccount == edgeAccount {
		return ReasonSelfDealing, nil
	}
	if v.Price > 0 {
		var n int
		err := tx.QueryRowContext(ctx, db.q("SELECT COUNT(*) FROM entitlements WHERE account_id = ? AND video = ?"),
			viewerAccount, l.Video.String()).Scan(&n)
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
	uk := usageKey{viewerAccount, l.Video}
	if !usage[uk] {
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO account_video_usage (account_id, video, bytes) VALUES (?, ?, 0) ON CONFLICT DO NOTHING"),
			viewerAccount, l.Video.String()); err != nil {
			return "", err
		}
		usage[uk] = true
	}
	// bytes ≤ MaxPlaybackBudgetBytes and amount ≤ MaxOrderBytes: the sum
	// cannot overflow.
	up, err := tx.ExecContext(ctx, db.q("UPDATE account_video_usage SET bytes = bytes + ? WHERE account_id = ? AND video = ? AND bytes + ? <= ?"),
		amount, viewerAccount, l.Video.String(), amount, v.PlaybackBudgetBytes)
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

// RejectionCounts sums rejected pairs per reason over all batches (from
// the rejection_totals cache: one row per reason, whatever the history).
func (db *DB) RejectionCounts(ctx context.Context) (map[Reason]int64, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT reason, count FROM rejection_totals")
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

// AccountUsage is the bytes settled so far for plays of video by any of
// the account's viewer keys, against the video's playback budget.
func (db *DB) AccountUsage(ctx context.Context, accountID int64, video content.VideoID) (int64, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, db.q("SELECT bytes FROM account_video_usage WHERE account_id = ? AND video = ?"), accountID, video.String()).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
