package coordinatordb

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Flow is settled bytes from one edge to one viewer for one video in one
// time bucket (bucket start, Config.FlowBucket wide, by settlement time).
type Flow struct {
	Edge   wire.NodeID
	Viewer wire.NodeID
	Video  content.VideoID
	Bucket time.Time
	Bytes  int64
}

func (db *DB) flows(ctx context.Context, column, who string, since, until time.Time) ([]Flow, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT edge, viewer, video, bucket_ms, bytes FROM flows
		WHERE `+column+` = ? AND bucket_ms >= ? AND bucket_ms < ? ORDER BY bucket_ms, edge, viewer, video`),
		who, since.Truncate(db.cfg.FlowBucket).UnixMilli(), until.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Flow
	for rows.Next() {
		var f Flow
		var e, v string
		var ms int64
		if err := rows.Scan(&e, &v, videoColumn{&f.Video}, &ms, &f.Bytes); err != nil {
			return nil, err
		}
		f.Edge, f.Viewer, f.Bucket = wire.NodeID(e), wire.NodeID(v), time.UnixMilli(ms)
		out = append(out, f)
	}
	return out, rows.Err()
}

// FlowsToViewer lists which edges fed a viewer in [since, until).
func (db *DB) FlowsToViewer(ctx context.Context, viewer wire.NodeID, since, until time.Time) ([]Flow, error) {
	return db.flows(ctx, "viewer", string(viewer), since, until)
}

// FlowsFromEdge lists which viewers an edge served in [since, until).
func (db *DB) FlowsFromEdge(ctx context.Context, edge wire.NodeID, since, until time.Time) ([]Flow, error) {
	return db.flows(ctx, "edge", string(edge), since, until)
}
