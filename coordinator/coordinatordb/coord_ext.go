package coordinatordb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Catalogue is the coordinator's catalogue and bans (signed manifests,
// content keys, banned nodes) plus the look-ups its HTTP routes need beyond
// Store: who a viewer key belongs to, and an edge's audit tallies. *DB
// implements it; EnsureCatalogue creates its tables.
type Catalogue interface {
	EnsureCatalogue(ctx context.Context) error
	PutCatalogueVideo(ctx context.Context, v CatalogueVideo, now time.Time) error
	CatalogueVideos(ctx context.Context) ([]CatalogueVideo, error)
	PutBan(ctx context.Context, node wire.NodeID, reason string, now time.Time) error
	Bans(ctx context.Context) ([]Ban, error)
	ViewerAccount(ctx context.Context, viewer wire.NodeID) (Account, error)
	AuditTally(ctx context.Context, edge wire.NodeID) (AuditTally, error)
	AccountEdge(ctx context.Context, accountID int64) (wire.NodeID, error)
	AccountEntitlements(ctx context.Context, accountID int64) ([]string, error)
}

var _ Catalogue = (*DB)(nil)

// CatalogueVideo is one published video as the coordinator stores it.
type CatalogueVideo struct {
	ID       string // hex video id
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

// AuditTally counts an edge's finished audits and says whether one is
// contained (timed out, to be re-asked).
type AuditTally struct {
	Passed, Failed int64
	Contained      bool
}

// catalogueSchema is portable SQL (bytes as base64 text, so one schema fits
// SQLite and PostgreSQL); IF NOT EXISTS makes it idempotent.
var catalogueSchema = []string{
	`CREATE TABLE IF NOT EXISTS coord_videos (
		video       TEXT PRIMARY KEY,
		manifest    TEXT NOT NULL,
		content_key TEXT NOT NULL,
		origin      TEXT NOT NULL,
		updated_ms  BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS coord_bans (
		node_id TEXT PRIMARY KEY,
		reason  TEXT NOT NULL,
		at_ms   BIGINT NOT NULL
	)`,
}

// EnsureCatalogue creates the catalogue tables if they do not exist.
func (db *DB) EnsureCatalogue(ctx context.Context) error {
	for _, stmt := range catalogueSchema {
		if _, err := db.sql.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create catalogue tables: %w", err)
		}
	}
	return nil
}

// PutCatalogueVideo inserts or replaces a catalogue entry.
func (db *DB) PutCatalogueVideo(ctx context.Context, v CatalogueVideo, now time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO coord_videos (video, manifest, content_key, origin, updated_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (video) DO UPDATE SET manifest = excluded.manifest, content_key = excluded.content_key, origin = excluded.origin, updated_ms = excluded.updated_ms`),
		v.ID, base64.StdEncoding.EncodeToString(v.Manifest), base64.StdEncoding.EncodeToString(v.Key), string(v.Origin), now.UnixMilli())
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
		if err := rows.Scan(&v.ID, &m, &k, &origin); err != nil {
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

// ViewerAccount is the account a viewer key is bound to (ErrNotFound if none).
func (db *DB) ViewerAccount(ctx context.Context, viewer wire.NodeID) (Account, error) {
	if err := checkNodeID("viewer key", viewer); err != nil {
		return Account{}, err
	}
	return scanAccount(db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms
		FROM viewer_keys v JOIN accounts a ON a.id = v.account_id WHERE v.viewer = ?`), string(viewer)))
}

// AuditTally counts an edge's passed and failed audits.
func (db *DB) AuditTally(ctx context.Context, edge wire.NodeID) (AuditTally, error) {
	if err := checkNodeID("edge", edge); err != nil {
		return AuditTally{}, err
	}
	var t AuditTally
	var contained int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT
		COALESCE(SUM(CASE WHEN state = 'passed' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = 'contained' THEN 1 ELSE 0 END), 0)
		FROM audits WHERE edge = ?`), string(edge)).Scan(&t.Passed, &t.Failed, &contained)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditTally{}, nil
	}
	t.Contained = contained > 0
	return t, err
}

// AccountEdge is the edge bound to an account ("" if none).
func (db *DB) AccountEdge(ctx context.Context, accountID int64) (wire.NodeID, error) {
	var node string
	err := db.sql.QueryRowContext(ctx, db.q("SELECT node_id FROM edge_bindings WHERE account_id = ?"), accountID).Scan(&node)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return wire.NodeID(node), err
}

// AccountEntitlements lists the video ids an account has unlocked.
func (db *DB) AccountEntitlements(ctx context.Context, accountID int64) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT video FROM entitlements WHERE account_id = ? ORDER BY video"), accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
