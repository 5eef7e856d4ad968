package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// AuditState is where an audit challenge stands.
type AuditState string

const (
	AuditPending   AuditState = "pending"   // issued, no answer yet
	AuditPassed    AuditState = "passed"    // the edge returned the right bytes
	AuditFailed    AuditState = "failed"    // wrong bytes, or MaxAuditAttempts timeouts
	AuditContained AuditState = "contained" // timed out; the same challenge will be re-asked
)

// AuditOutcome is the result of asking a challenge once.
type AuditOutcome string

const (
	OutcomePassed  AuditOutcome = "passed"
	OutcomeFailed  AuditOutcome = "failed"
	OutcomeTimeout AuditOutcome = "timeout" // offline or too slow
)

// MaxAuditAttempts is how often a contained challenge is asked in all
// before a timeout counts as a failure (Storj's MaxReverifyCount).
const MaxAuditAttempts = 3

// Challenge asks an edge for Length bytes at Offset of one stored shard.
type Challenge struct {
	Edge   wire.NodeID
	Ref    content.ShardRef // the shard asked for
	Offset int64            // into the shard's data
	Length int64
}

// Audit is a stored challenge and its progress.
type Audit struct {
	ID int64
	Challenge
	IssuedAt  time.Time
	Attempts  int // answers recorded so far
	State     AuditState
	UpdatedAt time.Time
}

// ErrAuditClosed is returned when recording an outcome for a finished audit.
var ErrAuditClosed = errors.New("audit is already passed or failed")

// NextAudit is the pure audit state machine: it applies one outcome and says
// whether the reputation must record a success or failure (nil: no verdict
// yet, the edge is contained and will be asked the same challenge again).
func NextAudit(a Audit, o AuditOutcome, now time.Time) (Audit, *bool, error) {
	if a.State == AuditPassed || a.State == AuditFailed {
		return a, nil, ErrAuditClosed
	}
	a.Attempts++
	a.UpdatedAt = now
	verdict := func(ok bool) *bool { return &ok }
	switch o {
	case OutcomePassed:
		a.State = AuditPassed
		return a, verdict(true), nil
	case OutcomeFailed:
		a.State = AuditFailed
		return a, verdict(false), nil
	case OutcomeTimeout:
		if a.Attempts >= MaxAuditAttempts {
			a.State = AuditFailed
			return a, verdict(false), nil
		}
		a.State = AuditContained
		return a, nil, nil
	}
	return a, nil, fmt.Errorf("audit outcome %q: want passed, failed or timeout", o)
}

const auditColumns = "id, edge, video, rendition, segment, shard, byte_offset, length, issued_ms, attempts, state, updated_ms"

func scanAudit(row interface{ Scan(...any) error }) (Audit, error) {
	var a Audit
	var edge, state string
	var issued, updated int64
	err := row.Scan(&a.ID, &edge, videoColumn{&a.Ref.Video}, &a.Ref.Rendition, &a.Ref.Segment, &a.Ref.Shard, &a.Offset, &a.Length, &issued, &a.Attempts, &state, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Audit{}, ErrNotFound
	}
	a.Edge, a.State, a.IssuedAt, a.UpdatedAt = wire.NodeID(edge), AuditState(state), time.UnixMilli(issued), time.UnixMilli(updated)
	return a, err
}

// CreateAudit stores a new pending challenge. An edge in containment is not
// given a new one: its open contained challenge is returned instead, so it
// cannot escape a hard question by timing out (Storj's containment).
func (db *DB) CreateAudit(ctx context.Context, c Challenge, now time.Time) (Audit, error) {
	if c.Ref.Rendition < 0 || c.Ref.Segment < 0 || c.Ref.Shard < 0 || c.Offset < 0 || c.Length <= 0 {
		return Audit{}, fmt.Errorf("audit challenge %+v: indices and offset must be non-negative and length positive", c)
	}
	if err := checkNodeID("audit edge", c.Edge); err != nil {
		return Audit{}, err
	}
	var out Audit
	err := db.tx(ctx, func(tx *sql.Tx) error {
		a, err := scanAudit(tx.QueryRowContext(ctx, db.q("SELECT "+auditColumns+" FROM audits WHERE edge = ? AND state = 'contained' ORDER BY id LIMIT 1"), string(c.Edge)))
		if err == nil {
			out = a
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		out, err = scanAudit(tx.QueryRowContext(ctx, db.q(`INSERT INTO audits (edge, video, rendition, segment, shard, byte_offset, length, issued_ms, attempts, state, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'pending', ?) RETURNING `+auditColumns),
			string(c.Edge), c.Ref.Video.String(), c.Ref.Rendition, c.Ref.Segment, c.Ref.Shard, c.Offset, c.Length, now.UnixMilli(), now.UnixMilli()))
		return err
	})
	return out, err
}

// Audit returns one audit.
func (db *DB) Audit(ctx context.Context, id int64) (Audit, error) {
	return scanAudit(db.sql.QueryRowContext(ctx, db.q("SELECT "+auditColumns+" FROM audits WHERE id = ?"), id))
}

// OpenAudits lists pending and contained audits (of one edge, or of all
// edges when edge is ""), oldest first.
func (db *DB) OpenAudits(ctx context.Context, edge wire.NodeID, limit int) ([]Audit, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT "+auditColumns+" FROM audits WHERE state IN ('pending', 'contained') AND (? = '' OR edge = ?) ORDER BY id LIMIT ?"),
		string(edge), string(edge), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Audit
	for rows.Next() {
		a, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RecordAuditOutcome applies one answer to an audit and, when it reaches a
// verdict, the edge's reputation, in one transaction.
func (db *DB) RecordAuditOutcome(ctx context.Context, id int64, outcome AuditOutcome, now time.Time) (Audit, EdgeStatus, error) {
	var a Audit
	var status EdgeStatus
	err := db.tx(ctx, func(tx *sql.Tx) error {
		query := "SELECT " + auditColumns + " FROM audits WHERE id = ?"
		if db.dialect == dialectPostgres {
			query += " FOR UPDATE"
		}
		cur, err := scanAudit(tx.QueryRowContext(ctx, db.q(query), id))
		if err != nil {
			return fmt.Errorf("audit %d: %w", id, err)
		}
		next, verdict, err := NextAudit(cur, outcome, now)
		if err != nil {
			return fmt.Errorf("audit %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, db.q("UPDATE audits SET attempts = ?, state = ?, updated_ms = ? WHERE id = ?"),
			next.Attempts, string(next.State), now.UnixMilli(), id); err != nil {
			return err
		}
		a = next
		if verdict == nil {
			status, err = db.loadReputation(ctx, tx, cur.Edge, false)
			return err
		}
		status, err = db.updateReputation(ctx, tx, cur.Edge, func(s EdgeStatus) EdgeStatus {
			return ApplyAudit(s, *verdict, db.cfg.Reputation, now)
		})
		return err
	})
	return a, status, err
}

// AuditTally counts an edge's finished audits and says whether one is
// contained (timed out, to be re-asked).
type AuditTally struct {
	Passed, Failed int64
	Contained      bool
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
