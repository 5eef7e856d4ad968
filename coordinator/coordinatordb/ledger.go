package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Ledger transaction kinds.
const (
	KindSettlement = "settlement" // mint -> edge, for settled bytes
	KindUnlock     = "unlock"     // viewer -> revenue, to unlock a video
	KindGrant      = "grant"      // mint -> account, admin grant or sign-up bonus
)

// Entry is one append-only ledger row: a signed amount of points on one
// account; the entries of one transaction sum to zero.
type Entry struct {
	TxID      int64
	Kind      string
	Memo      string
	AccountID int64
	Amount    int64
	At        time.Time
}

// InsufficientPointsError is returned by Unlock when the balance is short.
type InsufficientPointsError struct{ Have, Need int64 }

func (e *InsufficientPointsError) Error() string {
	return fmt.Sprintf("insufficient points: have %d, need %d", e.Have, e.Need)
}

// ErrSupplyExhausted is returned when a posting from the mint would put
// more than MaxSupply points in circulation. Nothing was written.
var ErrSupplyExhausted = fmt.Errorf("ledger: the mint would pass its supply of %d points in circulation; nothing was credited", MaxSupply)

// ErrUnknownVideo is returned for a video that has no price set.
var ErrUnknownVideo = errors.New("unknown video: it has no price in the coordinator store (publish it first)")

// MintAccountID is the system account that creates points (its balance is
// minus all points in circulation).
func (db *DB) MintAccountID() int64 { return db.mintID }

// RevenueAccountID is the system account that receives unlock payments.
func (db *DB) RevenueAccountID() int64 { return db.revenueID }

type posting struct {
	account int64
	amount  int64
	// floor, when set on a negative posting, refuses it if the balance
	// would fall below zero (system accounts have no floor).
	floor bool
}

// post appends one balanced transaction and updates the cached balances in
// the same database transaction. Postings are applied in account-id order so
// concurrent PostgreSQL transactions lock balance rows in one global order.
func (db *DB) post(ctx context.Context, tx *sql.Tx, kind, memo string, now time.Time, ps []posting) (int64, error) {
	var sum int64
	for _, p := range ps {
		sum += p.amount
	}
	if sum != 0 {
		return 0, fmt.Errorf("ledger: %s transaction does not balance (sum %d)", kind, sum)
	}
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b posting) int { return int(a.account - b.account) })
	for _, p := range ps {
		if p.amount < -MaxSupply || p.amount > MaxSupply {
			return 0, fmt.Errorf("ledger: %s posting of %d points is beyond the supply of %d", kind, p.amount, MaxSupply)
		}
	}
	for _, p := range ps {
		if p.account == db.mintID && p.amount < 0 {
			// The mint's balance is minus the points in circulation: keeping
			// it ≥ -MaxSupply bounds every balance (see MaxSupply).
			res, err := tx.ExecContext(ctx, db.q("UPDATE balances SET points = points + ? WHERE account_id = ? AND points + ? >= ?"), p.amount, p.account, p.amount, -MaxSupply)
			if err != nil {
				return 0, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return 0, ErrSupplyExhausted
			}
			continue
		}
		if p.floor && p.amount < 0 {
			res, err := tx.ExecContext(ctx, db.q("UPDATE balances SET points = points + ? WHERE account_id = ? AND points + ? >= 0"), p.amount, p.account, p.amount)
			if err != nil {
				return 0, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				var have int64
				if err := tx.QueryRowContext(ctx, db.q("SELECT points FROM balances WHERE account_id = ?"), p.account).Scan(&have); err != nil {
					return 0, fmt.Errorf("balance of account %d: %w", p.account, err)
				}
				return 0, &InsufficientPointsError{Have: have, Need: -p.amount}
			}
			continue
		}
		res, err := tx.ExecContext(ctx, db.q("UPDATE balances SET points = points + ? WHERE account_id = ?"), p.amount, p.account)
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return 0, fmt.Errorf("ledger: account %d has no balance row", p.account)
		}
	}
	var txID int64
	if err := tx.QueryRowContext(ctx, db.q("INSERT INTO ledger_transactions (kind, memo, created_ms) VALUES (?, ?, ?) RETURNING id"),
		kind, memo, now.UnixMilli()).Scan(&txID); err != nil {
		return 0, err
	}
	for _, p := range ps {
		if _, err := tx.ExecContext(ctx, db.q("INSERT INTO ledger_entries (tx_id, account_id, amount) VALUES (?, ?, ?)"), txID, p.account, p.amount); err != nil {
			return 0, err
		}
	}
	return txID, nil
}

// Balance is an account's points (the cached SUM of its ledger entries).
func (db *DB) Balance(ctx context.Context, accountID int64) (int64, error) {
	var points int64
	err := db.sql.QueryRowContext(ctx, db.q("SELECT points FROM balances WHERE account_id = ?"), accountID).Scan(&points)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return points, err
}

// Grant credits points to an account from the mint (admin grants, sign-up bonus).
func (db *DB) Grant(ctx context.Context, accountID, points int64, memo string, now time.Time) error {
	if points <= 0 || points > MaxGrantPoints {
		return fmt.Errorf("grant: %d points: want 1 to %d per grant", points, MaxGrantPoints)
	}
	if err := validText("grant memo", memo, 1000); err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		_, err := db.post(ctx, tx, KindGrant, memo, now, []posting{{account: db.mintID, amount: -points}, {account: accountID, amount: points}})
		return err
	})
}

// Entries lists an account's most recent ledger entries, newest first.
func (db *DB) Entries(ctx context.Context, accountID int64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT t.id, t.kind, t.memo, e.account_id, e.amount, t.created_ms
		FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id
		WHERE e.account_id = ? ORDER BY e.id DESC LIMIT ?`), accountID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var ms int64
		if err := rows.Scan(&e.TxID, &e.Kind, &e.Memo, &e.AccountID, &e.Amount, &ms); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(ms)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CheckLedger verifies the ledger's invariants: every cached balance is an
// integer within ±MaxSupply, all entries sum to zero, every transaction
// sums to zero, and every cached balance equals the SUM of its account's
// entries, and the cached settlement-rejection totals equal the batches'
// rejections. A nil error means the books balance. Because postings keep the
// points in circulation within MaxSupply, none of these sums can overflow.
func (db *DB) CheckLedger(ctx context.Context) error {
	var bad int64
	typeCheck := "FALSE"
	if db.dialect == dialectSQLite {
		// SQLite stores an overflowed integer as a float; say so plainly.
		typeCheck = "typeof(points) <> 'integer'"
	}
	if err := db.sql.QueryRowContext(ctx, db.q("SELECT COUNT(*) FROM balances WHERE "+typeCheck+" OR points > ? OR points < ?"), MaxSupply, -MaxSupply).Scan(&bad); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("ledger: %d balances are not integers within ±%d", bad, MaxSupply)
	}
	var total int64
	if err := db.sql.QueryRowContext(ctx, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries").Scan(&total); err != nil {
		return err
	}
	if total != 0 {
		return fmt.Errorf("ledger: entries sum to %d, not zero", total)
	}
	var txID, sum int64
	err := db.sql.QueryRowContext(ctx, "SELECT tx_id, SUM(amount) FROM ledger_entries GROUP BY tx_id HAVING SUM(amount) <> 0 LIMIT 1").Scan(&txID, &sum)
	if err == nil {
		return fmt.Errorf("ledger: transaction %d sums to %d, not zero", txID, sum)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var account, cached, derived int64
	err = db.sql.QueryRowContext(ctx, `SELECT b.account_id, b.points, COALESCE(s.total, 0) FROM balances b
		LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries GROUP BY account_id) s ON s.account_id = b.account_id
		WHERE b.points <> COALESCE(s.total, 0) LIMIT 1`).Scan(&account, &cached, &derived)
	if err == nil {
		return fmt.Errorf("ledger: account %d caches balance %d but its entries sum to %d", account, cached, derived)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// The rejection totals (the admin's counts) agree with the batches'.
	var reason string
	err = db.sql.QueryRowContext(ctx, `SELECT COALESCE(t.reason, s.reason), COALESCE(t.count, 0), COALESCE(s.total, 0) FROM rejection_totals t
		FULL OUTER JOIN (SELECT reason, SUM(count) AS total FROM batch_rejections GROUP BY reason) s ON s.reason = t.reason
		WHERE COALESCE(t.count, 0) <> COALESCE(s.total, 0) LIMIT 1`).Scan(&reason, &cached, &derived)
	if err == nil {
		return fmt.Errorf("ledger: rejection total %q is %d but the batches' rejections sum to %d", reason, cached, derived)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}
