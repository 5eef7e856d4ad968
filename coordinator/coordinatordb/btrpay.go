package coordinatordb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// BTR economics (migration 011): worker bindings, the credits an agreed
// segment earns its workers (unsettled, then settled through the ledger or
// forfeited on an exclusion), and the live minutes players fetched.

// KindBTRWork is the ledger kind of settled transcoding credits (mint →
// the worker's account).
const KindBTRWork = "btr_work"

// Work credit states.
const (
	WorkUnsettled = "unsettled"
	WorkSettled   = "settled"
	WorkForfeited = "forfeited"
)

// ErrWorkerTaken is returned when a worker key is bound to another account.
var ErrWorkerTaken = errors.New("the worker is bound to another account (its owner must keep it; a worker earns for one account)")

// BindWorker binds a BTR worker's node key to the account (an account may
// run several workers; a worker earns for one account). Binding it again
// to the same account is a no-op.
func (db *DB) BindWorker(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) error {
	if err := checkNodeID("worker id", node); err != nil {
		return err
	}
	if _, err := db.Account(ctx, accountID); err != nil {
		return fmt.Errorf("account %d: %w", accountID, err)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("INSERT INTO worker_bindings (node_id, account_id, bound_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
			string(node), accountID, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("bind worker: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var owner int64
		if err := tx.QueryRowContext(ctx, db.q("SELECT account_id FROM worker_bindings WHERE node_id = ?"), string(node)).Scan(&owner); err != nil {
			return err
		}
		if owner != accountID {
			return fmt.Errorf("worker %s: %w", node, ErrWorkerTaken)
		}
		return nil
	})
}

// WorkerAccount is the account a worker earns for (ErrNotFound if unbound).
func (db *DB) WorkerAccount(ctx context.Context, node wire.NodeID) (Account, error) {
	if err := checkNodeID("worker id", node); err != nil {
		return Account{}, err
	}
	return scanAccount(db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms
		FROM worker_bindings w JOIN accounts a ON a.id = w.account_id WHERE w.node_id = ?`), string(node)))
}

// WorkCredit is one agreed segment's credit request: the judge's checked
// agreement (Statement, whose hex SHA-256 is Evidence) and the workers it
// names, each to be credited Points once.
type WorkCredit struct {
	Chain     content.VideoID
	Segment   uint64
	Evidence  string
	Statement []byte
	Workers   []wire.NodeID
	Points    int64
}

// WorkCreditResult says what a credit did: Credited workers got a new
// unsettled credit, Already had one for this (chain, segment), Unbound have
// no account to earn for (nothing recorded for them).
type WorkCreditResult struct {
	Credited, Already, Unbound []wire.NodeID
}

// CreditWork records the agreement and an unsettled credit per bound
// worker in one transaction; a second call for the same (chain, segment,
// worker) changes nothing (the primary key), so a replayed agreement pays
// nobody twice.
func (db *DB) CreditWork(ctx context.Context, c WorkCredit, now time.Time) (WorkCreditResult, error) {
	var res WorkCreditResult
	if c.Points <= 0 || c.Points > MaxGrantPoints {
		return res, fmt.Errorf("work credit: %d points: want 1 to %d", c.Points, MaxGrantPoints)
	}
	for _, w := range c.Workers {
		if err := checkNodeID("worker id", w); err != nil {
			return res, err
		}
	}
	seg := int64(min(c.Segment, 1<<62))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res = WorkCreditResult{}
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO btr_agreements (chain, segment, evidence, statement, at_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
			c.Chain.String(), seg, c.Evidence, base64.StdEncoding.EncodeToString(c.Statement), now.UnixMilli()); err != nil {
			return err
		}
		var have string
		if err := tx.QueryRowContext(ctx, db.q("SELECT evidence FROM btr_agreements WHERE chain = ? AND segment = ?"), c.Chain.String(), seg).Scan(&have); err != nil {
			return err
		}
		if have != c.Evidence {
			return fmt.Errorf("work credit: segment %d of chain %s was already paid on agreement %s, not %s: one agreement per segment", c.Segment, c.Chain, have, c.Evidence)
		}
		for _, w := range sortedNodes(c.Workers) {
			var account int64
			err := tx.QueryRowContext(ctx, db.q("SELECT account_id FROM worker_bindings WHERE node_id = ?"), string(w)).Scan(&account)
			if errors.Is(err, sql.ErrNoRows) {
				res.Unbound = append(res.Unbound, w)
				continue
			}
			if err != nil {
				return err
			}
			r, err := tx.ExecContext(ctx, db.q(`INSERT INTO btr_work_credits (chain, segment, worker, account_id, points, evidence, state, exclusion, kind, tx_id, credited_ms, updated_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, '', '', 0, ?, ?) ON CONFLICT DO NOTHING`),
				c.Chain.String(), seg, string(w), account, c.Points, c.Evidence, WorkUnsettled, now.UnixMilli(), now.UnixMilli())
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 1 {
				res.Credited = append(res.Credited, w)
			} else {
				res.Already = append(res.Already, w)
			}
		}
		return nil
	})
	return res, err
}

// SettleWork moves the unsettled credits credited at or before `before`
// (the hold: every exclusion for a fault in them is in the log by then)
// into the ledger: one ledger transaction per account (mint → account,
// KindBTRWork), the rows marked settled with it, all in one database
// transaction. It returns the points settled.
func (db *DB) SettleWork(ctx context.Context, before, now time.Time) (int64, error) {
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		total = 0
		rows, err := tx.QueryContext(ctx, db.q(`SELECT account_id, SUM(points), COUNT(*) FROM btr_work_credits
			WHERE state = ? AND credited_ms <= ? GROUP BY account_id ORDER BY account_id`), WorkUnsettled, before.UnixMilli())
		if err != nil {
			return err
		}
		type sum struct{ account, points, n int64 }
		var sums []sum
		for rows.Next() {
			var s sum
			if err := rows.Scan(&s.account, &s.points, &s.n); err != nil {
				rows.Close()
				return err
			}
			sums = append(sums, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, s := range sums {
			txID, err := db.post(ctx, tx, KindBTRWork, fmt.Sprintf("transcoding: %d agreed live segment credits", s.n), now,
				[]posting{{account: db.mintID, amount: -s.points}, {account: s.account, amount: s.points}})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE btr_work_credits SET state = ?, tx_id = ?, updated_ms = ?
				WHERE account_id = ? AND state = ? AND credited_ms <= ?`),
				WorkSettled, txID, now.UnixMilli(), s.account, WorkUnsettled, before.UnixMilli()); err != nil {
				return err
			}
			total += s.points
		}
		return nil
	})
	return total, err
}

// ForfeitWork forfeits every unsettled credit of worker (on every chain):
// the worker was excluded by the exclusion whose hex SHA-256 is exclusion
// (kind its fault kind). Idempotent; returns the points forfeited now.
func (db *DB) ForfeitWork(ctx context.Context, worker wire.NodeID, exclusion, kind string, now time.Time) (int64, error) {
	if err := checkNodeID("worker id", worker); err != nil {
		return 0, err
	}
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.q("SELECT COALESCE(SUM(points), 0) FROM btr_work_credits WHERE worker = ? AND state = ?"),
			string(worker), WorkUnsettled).Scan(&total); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q("UPDATE btr_work_credits SET state = ?, exclusion = ?, kind = ?, updated_ms = ? WHERE worker = ? AND state = ?"),
			WorkForfeited, exclusion, kind, now.UnixMilli(), string(worker), WorkUnsettled)
		return err
	})
	return total, err
}

// WorkerEarning is one worker's credits by state, for its account.
type WorkerEarning struct {
	Worker                         wire.NodeID
	Unsettled, Settled, Forfeited  int64 // points
	UnsettledSegments, SettledSegs int64
}

// WorkForfeit is one exclusion's forfeit, as the worker's owner sees it.
type WorkForfeit struct {
	Worker    wire.NodeID
	Chain     content.VideoID
	Kind      string
	Exclusion string // hex SHA-256 of the exclusion in the chain's channel log
	Points    int64
	Segments  int64
}

// AccountWork lists an account's workers with their credits, and the
// forfeits with the exclusion that caused each.
func (db *DB) AccountWork(ctx context.Context, accountID int64) ([]WorkerEarning, []WorkForfeit, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT w.node_id, c.state, COALESCE(SUM(c.points), 0), COUNT(c.worker)
		FROM worker_bindings w LEFT JOIN btr_work_credits c ON c.worker = w.node_id
		WHERE w.account_id = ? GROUP BY w.node_id, c.state ORDER BY w.node_id`), accountID)
	if err != nil {
		return nil, nil, err
	}
	var earnings []WorkerEarning
	for rows.Next() {
		var node string
		var state sql.NullString
		var points, n int64
		if err := rows.Scan(&node, &state, &points, &n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if len(earnings) == 0 || earnings[len(earnings)-1].Worker != wire.NodeID(node) {
			earnings = append(earnings, WorkerEarning{Worker: wire.NodeID(node)})
		}
		e := &earnings[len(earnings)-1]
		switch state.String {
		case WorkUnsettled:
			e.Unsettled, e.UnsettledSegments = points, n
		case WorkSettled:
			e.Settled, e.SettledSegs = points, n
		case WorkForfeited:
			e.Forfeited = points
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = db.sql.QueryContext(ctx, db.q(`SELECT worker, chain, kind, exclusion, SUM(points), COUNT(*) FROM btr_work_credits
		WHERE account_id = ? AND state = ? GROUP BY worker, chain, kind, exclusion ORDER BY worker, chain`), accountID, WorkForfeited)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var forfeits []WorkForfeit
	for rows.Next() {
		var f WorkForfeit
		var node string
		if err := rows.Scan(&node, videoColumn{&f.Chain}, &f.Kind, &f.Exclusion, &f.Points, &f.Segments); err != nil {
			return nil, nil, err
		}
		f.Worker = wire.NodeID(node)
		forfeits = append(forfeits, f)
	}
	return earnings, forfeits, rows.Err()
}

// WorkAgreement is the stored agreement a segment's credits rest on (for a
// third party to re-check), or ErrNotFound.
func (db *DB) WorkAgreement(ctx context.Context, chain content.VideoID, segment uint64) ([]byte, error) {
	var enc string
	err := db.sql.QueryRowContext(ctx, db.q("SELECT statement FROM btr_agreements WHERE chain = ? AND segment = ?"), chain.String(), int64(min(segment, 1<<62))).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(enc)
}

// LiveMinutes is one player key's metered watching of one chain.
type LiveMinutes struct {
	Chain       content.VideoID
	Viewer      wire.NodeID
	AccountID   int64
	WatchedMS   int64  // media milliseconds of the counted segments
	Segments    int64  // segments counted
	NextSegment uint64 // the first segment not yet counted
}

// AddLiveMinutes adds a metering delta for (chain, viewer): watchedMS and
// segments more, next the new first uncounted segment. The caller (the live
// subsystem, which serialises a viewer's deltas) counts each segment once.
func (db *DB) AddLiveMinutes(ctx context.Context, m LiveMinutes, now time.Time) error {
	if err := checkNodeID("viewer key", m.Viewer); err != nil {
		return err
	}
	if m.WatchedMS < 0 || m.Segments < 0 {
		return fmt.Errorf("live minutes: negative delta (%d ms, %d segments)", m.WatchedMS, m.Segments)
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO live_minutes (chain, viewer, account_id, watched_ms, segments, next_segment, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (chain, viewer) DO UPDATE SET watched_ms = live_minutes.watched_ms + excluded.watched_ms,
			segments = live_minutes.segments + excluded.segments, next_segment = excluded.next_segment, updated_ms = excluded.updated_ms`),
		m.Chain.String(), string(m.Viewer), m.AccountID, m.WatchedMS, m.Segments, int64(min(m.NextSegment, 1<<62)), now.UnixMilli())
	return err
}

// AllLiveMinutes is every metering row (the live subsystem loads them at
// start), in chain and viewer order.
func (db *DB) AllLiveMinutes(ctx context.Context) ([]LiveMinutes, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT chain, viewer, account_id, watched_ms, segments, next_segment FROM live_minutes ORDER BY chain, viewer")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiveMinutes
	for rows.Next() {
		var m LiveMinutes
		var viewer string
		var next int64
		if err := rows.Scan(videoColumn{&m.Chain}, &viewer, &m.AccountID, &m.WatchedMS, &m.Segments, &next); err != nil {
			return nil, err
		}
		m.Viewer, m.NextSegment = wire.NodeID(viewer), uint64(next)
		out = append(out, m)
	}
	return out, rows.Err()
}

// sortedNodes is a copy of ids in order (deterministic SQL order for locks).
func sortedNodes(ids []wire.NodeID) []wire.NodeID {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
