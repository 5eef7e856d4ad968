// The catalogue: signed manifests, content keys and bans, which the
// coordinator rebuilds its in-memory lookup index from at start.

package coordinatordb

import (
	"context"
	"encoding/base64"
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
