package coordinatordb

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Session is a login session. Token is shown once; only its SHA-256 is stored.
type Session struct {
	Token     string // 64 hex digits (32 random bytes)
	AccountID int64
	ExpiresAt time.Time
}

// LoginPolicy locks an account after MaxFailures failed logins within Window.
type LoginPolicy struct {
	MaxFailures int           // default 5
	Window      time.Duration // default 15 min
}

func (p LoginPolicy) withDefaults() LoginPolicy {
	if p.MaxFailures == 0 {
		p.MaxFailures = 5
	}
	if p.Window == 0 {
		p.Window = 15 * time.Minute
	}
	return p
}

// LoginLockout is the sans-IO lockout rule: given the times of recent failed
// logins, is the account locked at now, and for how long? The account stays
// locked until the oldest of the last MaxFailures failures leaves the window.
func LoginLockout(failures []time.Time, now time.Time, p LoginPolicy) (locked bool, retryAfter time.Duration) {
	p = p.withDefaults()
	var recent []time.Time
	for _, f := range failures {
		if now.Sub(f) < p.Window {
			recent = append(recent, f)
		}
	}
	if len(recent) < p.MaxFailures {
		return false, 0
	}
	// The lock lifts when fewer than MaxFailures failures remain in the window.
	oldest := recent[len(recent)-p.MaxFailures]
	for _, f := range recent[len(recent)-p.MaxFailures:] {
		if f.Before(oldest) {
			oldest = f
		}
	}
	return true, oldest.Add(p.Window).Sub(now)
}

// Login checks a password and opens a session. After LoginPolicy.MaxFailures
// failures within the window it returns *LockedError (even for the right
// password) until the window moves on. Unknown users get ErrBadCredentials
// after the same amount of hashing work as known ones.
func (db *DB) Login(ctx context.Context, username, password string, now time.Time) (Session, error) {
	if ValidateUsername(username) != nil {
		CheckPassword(dummyHash, password)
		return Session{}, ErrBadCredentials
	}
	var id int64
	var hash, role string
	err := db.sql.QueryRowContext(ctx, db.q("SELECT id, password_hash, role FROM accounts WHERE username = ?"), username).Scan(&id, &hash, &role)
	if errors.Is(err, sql.ErrNoRows) || err == nil && Role(role) == RoleSystem {
		CheckPassword(dummyHash, password)
		return Session{}, ErrBadCredentials
	}
	if err != nil {
		return Session{}, err
	}
	since := now.Add(-db.cfg.Login.Window).UnixMilli()
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT at_ms FROM login_failures WHERE account_id = ? AND at_ms > ? ORDER BY at_ms"), id, since)
	if err != nil {
		return Session{}, err
	}
	var failures []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			rows.Close()
			return Session{}, err
		}
		failures = append(failures, time.UnixMilli(ms))
	}
	rows.Close()
	if locked, after := LoginLockout(failures, now, db.cfg.Login); locked {
		return Session{}, &LockedError{RetryAfter: after}
	}
	if !CheckPassword(hash, password) {
		_, err := db.sql.ExecContext(ctx, db.q("INSERT INTO login_failures (account_id, at_ms) VALUES (?, ?)"), id, now.UnixMilli())
		if err != nil {
			return Session{}, err
		}
		return Session{}, ErrBadCredentials
	}
	s := Session{Token: newToken(), AccountID: id, ExpiresAt: time.UnixMilli(now.Add(db.cfg.SessionTTL).UnixMilli())}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q("DELETE FROM login_failures WHERE account_id = ?"), id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q("INSERT INTO sessions (token_sha256, account_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)"),
			tokenHash(s.Token), id, now.UnixMilli(), s.ExpiresAt.UnixMilli())
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return s, nil
}

// SessionAccount resolves a session token to its account.
func (db *DB) SessionAccount(ctx context.Context, token string, now time.Time) (Account, error) {
	a, err := scanAccount(db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms
		FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_sha256 = ? AND s.expires_ms > ?`),
		tokenHash(token), now.UnixMilli()))
	if errors.Is(err, ErrNotFound) {
		return Account{}, ErrSessionInvalid
	}
	return a, err
}

// Logout deletes a session; logging out twice is not an error.
func (db *DB) Logout(ctx context.Context, token string) error {
	_, err := db.sql.ExecContext(ctx, db.q("DELETE FROM sessions WHERE token_sha256 = ?"), tokenHash(token))
	return err
}

// PruneExpired deletes expired sessions and login failures older than the
// lockout window; run it from a periodic chore. It returns the rows removed.
func (db *DB) PruneExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, stmt := range []struct {
			query string
			arg   int64
		}{
			{"DELETE FROM sessions WHERE expires_ms <= ?", now.UnixMilli()},
			{"DELETE FROM login_failures WHERE at_ms <= ?", now.Add(-db.cfg.Login.Window).UnixMilli()},
		} {
			res, err := tx.ExecContext(ctx, db.q(stmt.query), stmt.arg)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}
