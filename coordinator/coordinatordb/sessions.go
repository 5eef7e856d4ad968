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

// Login checks a password and opens a session. A wrong password and an
// unknown (or system) username both return ErrBadCredentials after the same
// work: one account query and one argon2id evaluation with the store's
// cost (dummyHash), so neither the answer nor its timing says whether the
// account exists. Throttling repeated guesses is the caller's (the
// accounting service throttles per client and guards per username, in
// memory): the store never locks an account, so nobody can lock a
// correct password out for everyone.
func (db *DB) Login(ctx context.Context, username, password string, now time.Time) (Session, error) {
	if ValidateUsername(username) != nil || len(password) > maxPasswordLen {
		CheckPassword(db.dummyHash(), password)
		return Session{}, ErrBadCredentials
	}
	var id int64
	var hash, role string
	err := db.sql.QueryRowContext(ctx, db.q("SELECT id, password_hash, role FROM accounts WHERE username = ?"), username).Scan(&id, &hash, &role)
	if errors.Is(err, sql.ErrNoRows) || err == nil && Role(role) == RoleSystem {
		CheckPassword(db.dummyHash(), password)
		return Session{}, ErrBadCredentials
	}
	if err != nil {
		return Session{}, err
	}
	if !CheckPassword(hash, password) {
		return Session{}, ErrBadCredentials
	}
	s := Session{Token: newToken(), AccountID: id, ExpiresAt: time.UnixMilli(now.Add(db.cfg.SessionTTL).UnixMilli())}
	_, err = db.sql.ExecContext(ctx, db.q("INSERT INTO sessions (token_sha256, account_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)"),
		tokenHash(s.Token), id, now.UnixMilli(), s.ExpiresAt.UnixMilli())
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

// PruneExpired deletes expired sessions (and any rows left in
// login_failures by the store-side lockout this package no longer keeps);
// run it from a periodic chore. It returns the rows removed.
func (db *DB) PruneExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, stmt := range []struct {
			query string
			arg   int64
		}{
			{"DELETE FROM sessions WHERE expires_ms <= ?", now.UnixMilli()},
			{"DELETE FROM login_failures WHERE at_ms <= ?", now.UnixMilli()},
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
