package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// ReputationConfig tunes the beta reputation model (after Storj's
// satellite/reputation). Zero fields take the defaults.
type ReputationConfig struct {
	// Lambda is the forgetting factor applied before each update. Default 0.999.
	Lambda float64
	// Weight is how much one observation counts. Default 1.
	Weight float64
	// DisqualifyBelow disqualifies an edge whose audit score falls below it. Default 0.96.
	DisqualifyBelow float64
	// InitialAlpha and InitialBeta seed a new edge. Default 1 and 0: the
	// score starts at 1, and early failures weigh heavily, so an edge must
	// pass audits to build a cushion (raise InitialAlpha to be more lenient;
	// Storj today seeds 1000).
	InitialAlpha, InitialBeta float64
}

func (c ReputationConfig) withDefaults() ReputationConfig {
	if c.Lambda == 0 {
		c.Lambda = 0.999
	}
	if c.Weight == 0 {
		c.Weight = 1
	}
	if c.DisqualifyBelow == 0 {
		c.DisqualifyBelow = 0.96
	}
	if c.InitialAlpha == 0 && c.InitialBeta == 0 {
		c.InitialAlpha = 1
	}
	return c
}

// Beta is a beta-distribution reputation: Alpha counts (decayed) successes,
// Beta (decayed) failures.
type Beta struct{ Alpha, Beta float64 }

// Score is the expected success rate Alpha/(Alpha+Beta), 1 with no evidence.
func (b Beta) Score() float64 {
	if b.Alpha+b.Beta == 0 {
		return 1
	}
	return b.Alpha / (b.Alpha + b.Beta)
}

// Update decays the evidence by lambda and adds one weighted observation.
func (b Beta) Update(success bool, lambda, weight float64) Beta {
	b.Alpha *= lambda
	b.Beta *= lambda
	if success {
		b.Alpha += weight
	} else {
		b.Beta += weight
	}
	return b
}

// EdgeStatus is an edge's reputation and disqualification.
type EdgeStatus struct {
	Node             wire.NodeID
	Audit            Beta // from audits
	Uptime           Beta // from uptime checks (reported, not disqualifying)
	Audits           int64
	Disqualified     bool
	DisqualifiedAt   time.Time
	DisqualifyReason string
	UpdatedAt        time.Time
}

// NewEdgeStatus is the status of an edge never seen before.
func NewEdgeStatus(node wire.NodeID, cfg ReputationConfig) EdgeStatus {
	cfg = cfg.withDefaults()
	b := Beta{cfg.InitialAlpha, cfg.InitialBeta}
	return EdgeStatus{Node: node, Audit: b, Uptime: b}
}

func (s EdgeStatus) disqualify(reason string, now time.Time) EdgeStatus {
	if !s.Disqualified { // the first reason stands
		s.Disqualified, s.DisqualifiedAt, s.DisqualifyReason = true, now, reason
	}
	return s
}

// ApplyAudit is the pure reputation update for one audit result; it
// disqualifies the edge when the score falls below the threshold.
func ApplyAudit(s EdgeStatus, success bool, cfg ReputationConfig, now time.Time) EdgeStatus {
	cfg = cfg.withDefaults()
	s.Audit = s.Audit.Update(success, cfg.Lambda, cfg.Weight)
	s.Audits++
	s.UpdatedAt = now
	if score := s.Audit.Score(); score < cfg.DisqualifyBelow {
		s = s.disqualify("audit score fell below the disqualification threshold", now)
	}
	return s
}

// ApplyUptime is the pure update for one uptime check.
func ApplyUptime(s EdgeStatus, up bool, cfg ReputationConfig, now time.Time) EdgeStatus {
	cfg = cfg.withDefaults()
	s.Uptime = s.Uptime.Update(up, cfg.Lambda, cfg.Weight)
	s.UpdatedAt = now
	return s
}

// ApplyBadShard disqualifies at once on verified bad-shard evidence
// (wire.ProveBadShard returned nil).
func ApplyBadShard(s EdgeStatus, reason string, now time.Time) EdgeStatus {
	s.UpdatedAt = now
	return s.disqualify("served a bad shard: "+reason, now)
}

// EdgeReputation returns an edge's stored status (NewEdgeStatus if unseen).
func (db *DB) EdgeReputation(ctx context.Context, node wire.NodeID) (EdgeStatus, error) {
	if err := checkNodeID("edge", node); err != nil {
		return EdgeStatus{}, err
	}
	return db.loadReputation(ctx, db.sql, node, false)
}

func (db *DB) loadReputation(ctx context.Context, q querier, node wire.NodeID, forUpdate bool) (EdgeStatus, error) {
	query := `SELECT audit_alpha, audit_beta, uptime_alpha, uptime_beta, audits, disqualified_ms, dq_reason, updated_ms
		FROM reputations WHERE node_id = ?`
	if forUpdate && db.dialect == dialectPostgres {
		query += " FOR UPDATE"
	}
	s := EdgeStatus{Node: node}
	var dq, upd int64
	err := q.QueryRowContext(ctx, db.q(query), string(node)).Scan(&s.Audit.Alpha, &s.Audit.Beta, &s.Uptime.Alpha, &s.Uptime.Beta, &s.Audits, &dq, &s.DisqualifyReason, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return NewEdgeStatus(node, db.cfg.Reputation), nil
	}
	if err != nil {
		return EdgeStatus{}, err
	}
	if dq != 0 {
		s.Disqualified, s.DisqualifiedAt = true, time.UnixMilli(dq)
	}
	s.UpdatedAt = time.UnixMilli(upd)
	return s, nil
}

func (db *DB) saveReputation(ctx context.Context, tx *sql.Tx, s EdgeStatus) error {
	var dq int64
	if s.Disqualified {
		dq = max(s.DisqualifiedAt.UnixMilli(), 1)
	}
	_, err := tx.ExecContext(ctx, db.q(`UPDATE reputations SET audit_alpha = ?, audit_beta = ?, uptime_alpha = ?, uptime_beta = ?,
		audits = ?, disqualified_ms = ?, dq_reason = ?, updated_ms = ? WHERE node_id = ?`),
		s.Audit.Alpha, s.Audit.Beta, s.Uptime.Alpha, s.Uptime.Beta, s.Audits, dq, s.DisqualifyReason, s.UpdatedAt.UnixMilli(), string(s.Node))
	return err
}

// updateReputation runs a pure update on the locked row inside tx.
func (db *DB) updateReputation(ctx context.Context, tx *sql.Tx, node wire.NodeID, apply func(EdgeStatus) EdgeStatus) (EdgeStatus, error) {
	init := NewEdgeStatus(node, db.cfg.Reputation)
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO reputations (node_id, audit_alpha, audit_beta, uptime_alpha, uptime_beta, audits, disqualified_ms, dq_reason, updated_ms)
		VALUES (?, ?, ?, ?, ?, 0, 0, '', 0) ON CONFLICT DO NOTHING`), string(node), init.Audit.Alpha, init.Audit.Beta, init.Uptime.Alpha, init.Uptime.Beta); err != nil {
		return EdgeStatus{}, err
	}
	s, err := db.loadReputation(ctx, tx, node, true)
	if err != nil {
		return EdgeStatus{}, err
	}
	s = apply(s)
	return s, db.saveReputation(ctx, tx, s)
}

func (db *DB) reputationTx(ctx context.Context, node wire.NodeID, apply func(EdgeStatus) EdgeStatus) (EdgeStatus, error) {
	if err := checkNodeID("edge", node); err != nil {
		return EdgeStatus{}, err
	}
	var out EdgeStatus
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = db.updateReputation(ctx, tx, node, apply)
		return err
	})
	return out, err
}

// RecordAudit applies one audit result to an edge's reputation.
func (db *DB) RecordAudit(ctx context.Context, node wire.NodeID, success bool, now time.Time) (EdgeStatus, error) {
	return db.reputationTx(ctx, node, func(s EdgeStatus) EdgeStatus { return ApplyAudit(s, success, db.cfg.Reputation, now) })
}

// RecordUptime applies one uptime check to an edge's reputation.
func (db *DB) RecordUptime(ctx context.Context, node wire.NodeID, up bool, now time.Time) (EdgeStatus, error) {
	return db.reputationTx(ctx, node, func(s EdgeStatus) EdgeStatus { return ApplyUptime(s, up, db.cfg.Reputation, now) })
}

// RecordBadShard disqualifies an edge on verified bad-shard evidence; the
// reason is kept so the edge's owner can see it. Later settlements of the
// edge are frozen.
func (db *DB) RecordBadShard(ctx context.Context, node wire.NodeID, reason string, now time.Time) (EdgeStatus, error) {
	if err := validText("bad-shard reason", reason, 2000); err != nil {
		return EdgeStatus{}, err
	}
	return db.reputationTx(ctx, node, func(s EdgeStatus) EdgeStatus { return ApplyBadShard(s, reason, now) })
}

// DisqualifiedEdges lists every disqualified edge with its reason.
func (db *DB) DisqualifiedEdges(ctx context.Context) ([]EdgeStatus, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT node_id FROM reputations WHERE disqualified_ms <> 0 ORDER BY disqualified_ms, node_id")
	if err != nil {
		return nil, err
	}
	var nodes []wire.NodeID
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		nodes = append(nodes, wire.NodeID(n))
	}
	rows.Close()
	out := make([]EdgeStatus, 0, len(nodes))
	for _, n := range nodes {
		s, err := db.EdgeReputation(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
