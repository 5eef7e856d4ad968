package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// AccountEntitlements lists the videos an account has unlocked, in id order.
func (db *DB) AccountEntitlements(ctx context.Context, accountID int64) ([]content.VideoID, error) {
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT video FROM entitlements WHERE account_id = ? ORDER BY video"), accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []content.VideoID
	for rows.Next() {
		var v content.VideoID
		if err := rows.Scan(videoColumn{&v}); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VideoTerms is what the coordinator store knows about a video: its price
// in points (0 = free) and the most bytes settlement pays for one viewer
// account, over all its viewer keys (see PlaybackBudget).
type VideoTerms struct {
	Video               content.VideoID
	Price               int64
	PlaybackBudgetBytes int64
}

// PlaybackBudget is the settlement cap for one (viewer account, video): 1.5 × the
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
	return min(top*3/2+4<<20, MaxPlaybackBudgetBytes)
}

// PutVideo sets a video's price and playback budget (insert or update).
func (db *DB) PutVideo(ctx context.Context, v VideoTerms, now time.Time) error {
	if v.Price < 0 || v.PlaybackBudgetBytes < 0 {
		return fmt.Errorf("video %s: price and playback budget must not be negative", v.Video)
	}
	if v.Price > MaxSupply || v.PlaybackBudgetBytes > MaxPlaybackBudgetBytes {
		return fmt.Errorf("video %s: price %d or playback budget %d bytes is beyond the bounds (%d points, %d bytes)", v.Video, v.Price, v.PlaybackBudgetBytes, MaxSupply, MaxPlaybackBudgetBytes)
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO videos (video, price, playback_budget_bytes, updated_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (video) DO UPDATE SET price = excluded.price, playback_budget_bytes = excluded.playback_budget_bytes, updated_ms = excluded.updated_ms`),
		v.Video.String(), v.Price, v.PlaybackBudgetBytes, now.UnixMilli())
	return err
}

// Video returns a video's terms, or ErrUnknownVideo.
func (db *DB) Video(ctx context.Context, id content.VideoID) (VideoTerms, error) {
	return db.video(ctx, db.sql, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (db *DB) video(ctx context.Context, q querier, id content.VideoID) (VideoTerms, error) {
	v := VideoTerms{Video: id}
	err := q.QueryRowContext(ctx, db.q("SELECT price, playback_budget_bytes FROM videos WHERE video = ?"), id.String()).Scan(&v.Price, &v.PlaybackBudgetBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return VideoTerms{}, ErrUnknownVideo
	}
	if err != nil {
		return VideoTerms{}, err
	}
	return v, nil
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
		v, err := db.video(ctx, tx, video)
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
	return db.entitled(ctx, db.sql, accountID, video)
}

func (db *DB) entitled(ctx context.Context, q querier, accountID int64, video content.VideoID) (bool, error) {
	var price int64
	var n int
	err := q.QueryRowContext(ctx, db.q(`SELECT v.price, (SELECT COUNT(*) FROM entitlements e WHERE e.account_id = ? AND e.video = v.video)
		FROM videos v WHERE v.video = ?`), accountID, video.String()).Scan(&price, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrUnknownVideo
	}
	if err != nil {
		return false, err
	}
	return price == 0 || n > 0, nil
}
