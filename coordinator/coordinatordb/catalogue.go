// The catalogue: signed manifests, content keys and bans, which the
// coordinator rebuilds its in-memory lookup index from at start; and the
// record of lifted bans.

package coordinatordb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// videoColumn scans a video id stored as its hex string (every video
// column is TEXT) into a typed id, refusing a malformed one.
type videoColumn struct{ id *content.VideoID }

func (c videoColumn) Scan(src any) error {
	var text []byte
	switch v := src.(type) {
	case string:
		text = []byte(v)
	case []byte:
		text = v
	default:
		return fmt.Errorf("video column: want text, got %T", src)
	}
	if err := c.id.UnmarshalText(text); err != nil {
		return fmt.Errorf("video column: %w", err)
	}
	return nil
}

// CatalogueVideo is one published video as the coordinator stores it.
type CatalogueVideo struct {
	ID       content.VideoID
	Manifest []byte // signed manifest bytes
	Key      []byte // content key, or nil
	Origin   wire.NodeID
}

// Ban is a node excluded from lookups, with why and when.
type Ban struct {
	Node   wire.NodeID
	Reason string
	At     time.Time
}

// PutCatalogueVideo inserts or replaces a catalogue entry.
func (db *DB) PutCatalogueVideo(ctx context.Context, v CatalogueVideo, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO coord_videos (video, manifest, content_key, origin, updated_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (video) DO UPDATE SET manifest = excluded.manifest, content_key = excluded.content_key, origin = excluded.origin, updated_ms = excluded.updated_ms`),
		v.ID.String(), base64.StdEncoding.EncodeToString(v.Manifest), base64.StdEncoding.EncodeToString(v.Key), string(v.Origin), now.UnixMilli())
	return err
}

// CatalogueVideos lists the catalogue, ordered by video id.
func (db *DB) CatalogueVideos(ctx context.Context) ([]CatalogueVideo, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT video, manifest, content_key, origin FROM coord_videos ORDER BY video")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CatalogueVideo
	for rows.Next() {
		var v CatalogueVideo
		var m, k, origin string
		if err := rows.Scan(videoColumn{&v.ID}, &m, &k, &origin); err != nil {
			return nil, err
		}
		if v.Manifest, err = base64.StdEncoding.DecodeString(m); err != nil {
			return nil, fmt.Errorf("catalogue video %s: manifest: %w", v.ID, err)
		}
		if v.Key, err = base64.StdEncoding.DecodeString(k); err != nil {
			return nil, fmt.Errorf("catalogue video %s: key: %w", v.ID, err)
		}
		if len(v.Key) == 0 {
			v.Key = nil
		}
		v.Origin = wire.NodeID(origin)
		out = append(out, v)
	}
	return out, rows.Err()
}

// PutBan records a ban; the first reason stands.
func (db *DB) PutBan(ctx context.Context, node wire.NodeID, reason string, now time.Time) error {
	if err := checkNodeID("banned node", node); err != nil {
		return err
	}
	_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO coord_bans (node_id, reason, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
		string(node), reason, now.UnixMilli())
	return err
}

// Bans lists banned nodes, ordered by id.
func (db *DB) Bans(ctx context.Context) ([]Ban, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT node_id, reason, at_ms FROM coord_bans ORDER BY node_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var b Ban
		var node string
		var ms int64
		if err := rows.Scan(&node, &b.Reason, &ms); err != nil {
			return nil, err
		}
		b.Node, b.At = wire.NodeID(node), time.UnixMilli(ms)
		out = append(out, b)
	}
	return out, rows.Err()
}

// BanOf returns node's ban, or ErrNotFound.
func (db *DB) BanOf(ctx context.Context, node wire.NodeID) (Ban, error) {
	if err := checkNodeID("node", node); err != nil {
		return Ban{}, err
	}
	b := Ban{Node: node}
	var ms int64
	err := db.sql.QueryRowContext(ctx, db.q("SELECT reason, at_ms FROM coord_bans WHERE node_id = ?"), string(node)).Scan(&b.Reason, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, ErrNotFound
	}
	if err != nil {
		return Ban{}, err
	}
	b.At = time.UnixMilli(ms)
	return b, nil
}

// ErrNotBanned means a node to unban is neither banned nor disqualified.
var ErrNotBanned = errors.New("the node is not banned")

// LiftedBan is the durable record of one lifted ban.
type LiftedBan struct {
	Ban // the ban lifted; Reason is the disqualification's if no ban row was stored
	// Reinstated: the edge was disqualified and now has a fresh reputation
	// (NewEdgeStatus: the probation of a new edge). Points frozen while it
	// was disqualified stay frozen.
	Reinstated       bool
	DisqualifyReason string
	LiftedBy         string // the admin's username
	Note             string
	LiftedAt         time.Time
}

// LiftBan lifts node's ban in one transaction: it deletes the ban, and if
// the edge is disqualified it reinstates it with a fresh reputation (a
// disqualification re-bans at every start, so lifting one without the other
// would not last), and records who lifted what and when. A node neither
// banned nor disqualified is ErrNotBanned and changes nothing.
func (db *DB) LiftBan(ctx context.Context, node wire.NodeID, by, note string, now time.Time) (LiftedBan, error) {
	if err := checkNodeID("node", node); err != nil {
		return LiftedBan{}, err
	}
	if err := validText("unban note", note, 256); err != nil {
		return LiftedBan{}, err
	}
	if err := validText("unbanned by", by, 256); err != nil {
		return LiftedBan{}, err
	}
	out := LiftedBan{Ban: Ban{Node: node}, LiftedBy: by, Note: note, LiftedAt: now}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var banned bool
		var ms int64
		err := tx.QueryRowContext(ctx, db.q("DELETE FROM coord_bans WHERE node_id = ? RETURNING reason, at_ms"), string(node)).Scan(&out.Reason, &ms)
		switch {
		case err == nil:
			banned, out.At = true, time.UnixMilli(ms)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		st, err := db.loadReputation(ctx, tx, node, true)
		if err != nil {
			return err
		}
		if st.Disqualified {
			out.Reinstated, out.DisqualifyReason = true, st.DisqualifyReason
			if !banned {
				out.Reason, out.At = "disqualified: "+st.DisqualifyReason, st.DisqualifiedAt
			}
			fresh := NewEdgeStatus(node, db.cfg.Reputation)
			fresh.UpdatedAt = now
			if err := db.saveReputation(ctx, tx, fresh); err != nil {
				return err
			}
		} else if !banned {
			return ErrNotBanned
		}
		reinstated := int64(0)
		if out.Reinstated {
			reinstated = 1
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO coord_ban_lifts (node_id, ban_reason, banned_ms, reinstated, dq_reason, lifted_by, note, lifted_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			string(node), out.Reason, out.At.UnixMilli(), reinstated, out.DisqualifyReason, by, note, now.UnixMilli())
		return err
	})
	if err != nil {
		return LiftedBan{}, err
	}
	return out, nil
}

// BanLifts lists the lifted bans of node, oldest first.
func (db *DB) BanLifts(ctx context.Context, node wire.NodeID) ([]LiftedBan, error) {
	if err := checkNodeID("node", node); err != nil {
		return nil, err
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT ban_reason, banned_ms, reinstated, dq_reason, lifted_by, note, lifted_ms
		FROM coord_ban_lifts WHERE node_id = ? ORDER BY lifted_ms, id`), string(node))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiftedBan
	for rows.Next() {
		l := LiftedBan{Ban: Ban{Node: node}}
		var banned, lifted, reinstated int64
		if err := rows.Scan(&l.Reason, &banned, &reinstated, &l.DisqualifyReason, &l.LiftedBy, &l.Note, &lifted); err != nil {
			return nil, err
		}
		l.At, l.LiftedAt, l.Reinstated = time.UnixMilli(banned), time.UnixMilli(lifted), reinstated != 0
		out = append(out, l)
	}
	return out, rows.Err()
}
