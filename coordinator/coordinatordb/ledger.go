package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
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
	if points <= 0 {
		return fmt.Errorf("grant: points must be positive, got %d", points)
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

// CheckLedger verifies the ledger's invariants: all entries sum to zero,
// every transaction sums to zero, and every cached balance equals the SUM
// of its account's entries. A nil error means the books balance.
func (db *DB) CheckLedger(ctx context.Context) error {
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
	return nil
}

// VideoTerms is what the coordinator store knows about a video: its price
// in points (0 = free) and the most bytes settlement pays for one viewer key
// (see PlaybackBudget).
type VideoTerms struct {
	Video               content.VideoID
	Price               int64
	PlaybackBudgetBytes int64
}

// PlaybackBudget is the settlement cap for one (viewer, video): 1.5 × the
// ciphertext bytes of the largest rendition plus 4 MiB of slack. A viewer
// needs about 1× (any k shards rebuild a segment); the margin covers hedged
// requests, rendition switches and a few re-fetches of bad shards.
func PlaybackBudget(m *content.Manifest) int64 {
	var top int64
	for _, r := range m.Renditions {
		var sum int64
		for _, s := range r.Segments {
			sum += int64(s.Size)
		}
		top = max(top, sum)
	}
	return top*3/2 + 4<<20
}

// PutVideo sets a video's price and playback budget (insert or update).
func (db *DB) PutVideo(ctx context.Context, v VideoTerms, now time.Time) error {
	if v.Price < 0 || v.PlaybackBudgetBytes < 0 {
		return fmt.Errorf("video %s: price and playback budget must not be negative", v.Video)
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO videos (video, price, playback_budget_bytes, updated_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (video) DO UPDATE SET price = excluded.price, playback_budget_bytes = excluded.playback_budget_bytes, updated_ms = excluded.updated_ms`),
		v.Video.String(), v.Price, v.PlaybackBudgetBytes, now.UnixMilli())
	return err
}

// Video returns a video's terms, or ErrUnknownVideo.
func (db *DB) Video(ctx context.Context, id content.VideoID) (VideoTerms, error) {
	return db.video(ctx, db.sql, id.String())
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (db *DB) video(ctx context.Context, q querier, id string) (VideoTerms, error) {
	var v VideoTerms
	err := q.QueryRowContext(ctx, db.q("SELECT price, playback_budget_bytes FROM videos WHERE video = ?"), id).Scan(&v.Price, &v.PlaybackBudgetBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return VideoTerms{}, ErrUnknownVideo
	}
	if err != nil {
		return VideoTerms{}, err
	}
	v.Video, err = content.ParseVideoID(id)
	return v, err
}

// UnlockResult says what Unlock did.
type UnlockResult struct {
	Charged         int64 // points spent now (0 for free videos and re-watches)
	AlreadyEntitled bool  // the account had unlocked the video before
}

// Unlock entitles the account to watch a video, spending its price. Unlocking
// an entitled video is a free no-op; a short balance fails with
// *InsufficientPointsError and writes nothing.
func (db *DB) Unlock(ctx context.Context, accountID int64, video content.VideoID, now time.Time) (UnlockResult, error) {
	var out UnlockResult
	err := db.tx(ctx, func(tx *sql.Tx) error {
		v, err := db.video(ctx, tx, video.String())
		if err != nil {
			return err
		}
		// The entitlement row is the idempotency key: a concurrent unlock of
		// the same video waits here and then finds it already done.
		res, err := tx.ExecContext(ctx, db.q("INSERT INTO entitlements (account_id, video, paid, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
			accountID, video.String(), v.Price, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out = UnlockResult{AlreadyEntitled: true}
			return nil
		}
		if v.Price > 0 {
			if _, err := db.post(ctx, tx, KindUnlock, "unlock "+video.String(), now, []posting{
				{account: accountID, amount: -v.Price, floor: true},
				{account: db.revenueID, amount: v.Price},
			}); err != nil {
				return err
			}
		}
		out = UnlockResult{Charged: v.Price}
		return nil
	})
	return out, err
}

// Entitled reports whether the account may watch the video (it unlocked it,
// or the video is free).
func (db *DB) Entitled(ctx context.Context, accountID int64, video content.VideoID) (bool, error) {
	return db.entitled(ctx, db.sql, accountID, video.String())
}

func (db *DB) entitled(ctx context.Context, q querier, accountID int64, video string) (bool, error) {
	var price int64
	var n int
	err := q.QueryRowContext(ctx, db.q(`SELECT v.price, (SELECT COUNT(*) FROM entitlements e WHERE e.account_id = ? AND e.video = v.video)
		FROM videos v WHERE v.video = ?`), accountID, video).Scan(&price, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrUnknownVideo
	}
	if err != nil {
		return false, err
	}
	return price == 0 || n > 0, nil
}
