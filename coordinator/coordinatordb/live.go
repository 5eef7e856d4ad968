// Live channels (coordinator/live, migration 008): channels and the hash of
// their stream key, the accounts allowed to broadcast, each broadcast's
// chain (signed genesis, content key) and its signed entries (append-only),
// recordings and fork proofs. Binary values are base64 text, so one schema
// fits both dialects.

package coordinatordb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Live errors.
var (
	// ErrLiveNameTaken: another channel has this name.
	ErrLiveNameTaken = errors.New("a channel with this name exists; pick another name")
	// ErrLiveEntryExists: an entry is already stored at this position of
	// the chain (entries are append-only).
	ErrLiveEntryExists = errors.New("an entry is already stored at this position of the chain")
)

// LiveChannel is a channel as stored. KeyHash is SHA-256 of the stream key
// (the key itself is never stored).
type LiveChannel struct {
	ID         wire.ChannelID
	Name       string
	Owner      int64
	KeyHash    [32]byte
	SegmentMS  int
	PartMS     int // low-latency part target; 0: a standard channel
	State      string
	Error      string
	Chain      content.VideoID // zero before the first broadcast
	Recordings []content.VideoID
	Created    time.Time
}

// LiveChainRecord is one broadcast's chain as stored.
type LiveChainRecord struct {
	Chain   content.VideoID
	Channel wire.ChannelID
	Origin  wire.NodeID
	Genesis []byte // the signed genesis encoding
	Key     []byte // the 16-byte content key
	Sealed  bool
	Started time.Time
}

// AllowBroadcaster lets an account create channels. Allowing again is a no-op.
func (db *DB) AllowBroadcaster(ctx context.Context, accountID int64, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO live_broadcasters (account_id, allowed_ms) VALUES (?, ?) ON CONFLICT DO NOTHING"), accountID, now.UnixMilli())
	return err
}

// BroadcasterAllowed reports whether an account was allowed to broadcast.
func (db *DB) BroadcasterAllowed(ctx context.Context, accountID int64) (bool, error) {
	var one int
	err := db.sql.QueryRowContext(ctx, db.q("SELECT 1 FROM live_broadcasters WHERE account_id = ?"), accountID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CreateLiveChannel stores a new channel; a taken name is ErrLiveNameTaken
// and writes nothing.
func (db *DB) CreateLiveChannel(ctx context.Context, ch LiveChannel, now time.Time) error {
	if err := validText("channel name", ch.Name, 255); err != nil {
		return err
	}
	res, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO live_channels (id, name, owner, key_hash, segment_ms, part_ms, state, error, chain, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		string(ch.ID), ch.Name, ch.Owner, hex.EncodeToString(ch.KeyHash[:]), ch.SegmentMS, ch.PartMS, ch.State, ch.Error, chainText(ch.Chain), now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("create channel: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if db.sql.QueryRowContext(ctx, db.q("SELECT 1 FROM live_channels WHERE name = ?"), ch.Name).Scan(&one) == nil {
			return ErrLiveNameTaken
		}
		return errors.New("create channel: id or stream key collided; try again")
	}
	return nil
}

// chainText stores a zero chain id as ”.
func chainText(id content.VideoID) string {
	if id == (content.VideoID{}) {
		return ""
	}
	return id.String()
}

// SetLiveChannelState records a channel's state, error and current chain.
func (db *DB) SetLiveChannelState(ctx context.Context, id wire.ChannelID, state, errMsg string, chain content.VideoID, now time.Time) error {
	if err := validText("channel error", errMsg, 1024); err != nil {
		return err
	}
	res, err := db.sql.ExecContext(ctx, db.q("UPDATE live_channels SET state = ?, error = ?, chain = ?, updated_ms = ? WHERE id = ?"),
		state, errMsg, chainText(chain), now.UnixMilli(), string(id))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetLiveChannelKey replaces a channel's stream key hash (a rotation).
func (db *DB) SetLiveChannelKey(ctx context.Context, id wire.ChannelID, keyHash [32]byte, now time.Time) error {
	res, err := db.sql.ExecContext(ctx, db.q("UPDATE live_channels SET key_hash = ?, updated_ms = ? WHERE id = ?"),
		hex.EncodeToString(keyHash[:]), now.UnixMilli(), string(id))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AddLiveRecording records a sealed broadcast of a channel (idempotent).
func (db *DB) AddLiveRecording(ctx context.Context, id wire.ChannelID, video content.VideoID, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO live_recordings (channel, video, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
		string(id), video.String(), now.UnixMilli())
	return err
}

// LiveChannels lists every channel with its recordings (newest first).
func (db *DB) LiveChannels(ctx context.Context) ([]LiveChannel, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT id, name, owner, key_hash, segment_ms, part_ms, state, error, chain, created_ms FROM live_channels ORDER BY id")
	if err != nil {
		return nil, err
	}
	var out []LiveChannel
	at := map[wire.ChannelID]int{}
	for rows.Next() {
		var ch LiveChannel
		var id, keyHash, chain string
		var created int64
		if err := rows.Scan(&id, &ch.Name, &ch.Owner, &keyHash, &ch.SegmentMS, &ch.PartMS, &ch.State, &ch.Error, &chain, &created); err != nil {
			rows.Close()
			return nil, err
		}
		ch.ID, ch.Created = wire.ChannelID(id), time.UnixMilli(created)
		if b, err := hex.DecodeString(keyHash); err != nil || len(b) != 32 {
			rows.Close()
			return nil, fmt.Errorf("channel %s: malformed key hash", id)
		} else {
			copy(ch.KeyHash[:], b)
		}
		if chain != "" {
			if ch.Chain, err = content.ParseVideoID(chain); err != nil {
				rows.Close()
				return nil, fmt.Errorf("channel %s: %w", id, err)
			}
		}
		at[ch.ID] = len(out)
		out = append(out, ch)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	recs, err := db.sql.QueryContext(ctx, "SELECT channel, video FROM live_recordings ORDER BY at_ms DESC, video")
	if err != nil {
		return nil, err
	}
	defer recs.Close()
	for recs.Next() {
		var id string
		var v content.VideoID
		if err := recs.Scan(&id, videoColumn{&v}); err != nil {
			return nil, err
		}
		if i, ok := at[wire.ChannelID(id)]; ok {
			out[i].Recordings = append(out[i].Recordings, v)
		}
	}
	return out, recs.Err()
}

// PutLiveChain stores a new chain. Storing the same chain again is a no-op.
func (db *DB) PutLiveChain(ctx context.Context, rec LiveChainRecord, now time.Time) error {
	if err := checkNodeID("chain origin", rec.Origin); err != nil {
		return err
	}
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO live_chains (chain, channel, origin, genesis, content_key, sealed, started_ms)
		VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING`),
		rec.Chain.String(), string(rec.Channel), string(rec.Origin), base64.StdEncoding.EncodeToString(rec.Genesis),
		base64.StdEncoding.EncodeToString(rec.Key), now.UnixMilli())
	return err
}

// SealLiveChain marks a chain ended: no entry may follow.
func (db *DB) SealLiveChain(ctx context.Context, chain content.VideoID) error {
	_, err := db.sql.ExecContext(ctx, db.q("UPDATE live_chains SET sealed = 1 WHERE chain = ?"), chain.String())
	return err
}

// LiveChains lists every stored chain.
func (db *DB) LiveChains(ctx context.Context) ([]LiveChainRecord, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT chain, channel, origin, genesis, content_key, sealed, started_ms FROM live_chains ORDER BY started_ms, chain")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiveChainRecord
	for rows.Next() {
		var rec LiveChainRecord
		var channel, origin, g, k string
		var sealed, started int64
		if err := rows.Scan(videoColumn{&rec.Chain}, &channel, &origin, &g, &k, &sealed, &started); err != nil {
			return nil, err
		}
		rec.Channel, rec.Origin, rec.Sealed, rec.Started = wire.ChannelID(channel), wire.NodeID(origin), sealed != 0, time.UnixMilli(started)
		if rec.Genesis, err = base64.StdEncoding.DecodeString(g); err != nil {
			return nil, fmt.Errorf("chain %s: genesis: %w", rec.Chain, err)
		}
		if rec.Key, err = base64.StdEncoding.DecodeString(k); err != nil {
			return nil, fmt.Errorf("chain %s: key: %w", rec.Chain, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// AppendLiveEntry stores a chain's signed entry at seq; a position already
// stored is ErrLiveEntryExists and changes nothing.
func (db *DB) AppendLiveEntry(ctx context.Context, chain content.VideoID, seq uint64, entry []byte) error {
	if seq > 1<<62 {
		return fmt.Errorf("live entry %d: position out of range", seq)
	}
	res, err := db.sql.ExecContext(ctx, db.q("INSERT INTO live_entries (chain, seq, entry) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
		chain.String(), int64(seq), base64.StdEncoding.EncodeToString(entry))
	if err != nil {
		return fmt.Errorf("store live entry %d: %w", seq, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLiveEntryExists
	}
	return nil
}

// LiveHead is the Seq of a chain's newest stored entry, -1 if none.
func (db *DB) LiveHead(ctx context.Context, chain content.VideoID) (int64, error) {
	var head sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, db.q("SELECT MAX(seq) FROM live_entries WHERE chain = ?"), chain.String()).Scan(&head); err != nil {
		return 0, err
	}
	if !head.Valid {
		return -1, nil
	}
	return head.Int64, nil
}

// LiveEntries returns a chain's stored entries from seq on, in order (at
// most limit; limit ≤ 0 means all).
func (db *DB) LiveEntries(ctx context.Context, chain content.VideoID, from uint64, limit int) ([][]byte, error) {
	q := "SELECT entry FROM live_entries WHERE chain = ? AND seq >= ? ORDER BY seq"
	args := []any{chain.String(), int64(min(from, 1<<62))}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("chain %s: entry: %w", chain, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// PutLiveFork keeps the first fork proof found at a position of a chain.
func (db *DB) PutLiveFork(ctx context.Context, chain content.VideoID, seq uint64, a, b []byte, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO live_forks (chain, seq, entry_a, entry_b, at_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
		chain.String(), int64(min(seq, 1<<62)), base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b), now.UnixMilli())
	return err
}

// LiveForks counts the fork proofs kept per chain.
func (db *DB) LiveForks(ctx context.Context) (map[content.VideoID]int, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT chain, COUNT(*) FROM live_forks GROUP BY chain")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[content.VideoID]int{}
	for rows.Next() {
		var id content.VideoID
		var n int
		if err := rows.Scan(videoColumn{&id}, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
