package coordinatordb

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/swarmcast/swarmcast/wire"
)

// Role is an account's privilege level.
type Role string

const (
	RoleUser   Role = "user"
	RoleAdmin  Role = "admin"
	RoleSystem Role = "system" // the ledger's mint and revenue accounts; cannot log in
)

// Account is one user of the network (viewer, edge operator, admin).
type Account struct {
	ID        int64
	Username  string
	Role      Role
	CreatedAt time.Time
}

var (
	ErrNotFound        = errors.New("not found")
	ErrUsernameTaken   = errors.New("username is already taken; choose another")
	ErrViewerKeyTaken  = errors.New("bound to another account; generate a new player key")
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrSessionInvalid  = errors.New("session token is unknown or expired; log in again")
	ErrAPITokenInvalid = errors.New("API token is unknown or revoked; create a new one")
)

// UsernameError says why a username was refused.
type UsernameError struct{ Reason string }

func (e *UsernameError) Error() string { return "invalid username: " + e.Reason }

// PasswordError says why a password was refused at sign-up.
type PasswordError struct{ Reason string }

func (e *PasswordError) Error() string { return "invalid password: " + e.Reason }

// EdgeBindingError refuses binding a second node to an account, or a node
// that another account already runs.
type EdgeBindingError struct {
	AccountID int64
	Bound     wire.NodeID // the node already bound
	Requested wire.NodeID
	OtherUser bool // Requested belongs to another account
}

func (e *EdgeBindingError) Error() string {
	if e.OtherUser {
		return fmt.Sprintf("node %s is already bound to another account", e.Requested)
	}
	return fmt.Sprintf("account %d already runs edge %s; an account runs one edge, so node %s cannot be bound (use the existing node identity or another account)", e.AccountID, e.Bound, e.Requested)
}

const (
	minUsernameLen = 3
	maxUsernameLen = 32
	minPasswordLen = 10   // with the common-password list and the username rule (ValidatePassword)
	maxPasswordLen = 1024 // argon2 cost does not depend on length, but bodies should be bounded
)

// ValidateUsername accepts 3..32 characters of [a-z0-9_.-], starting with a
// letter or digit. Usernames are case-sensitive as given (callers may lower-case).
func ValidateUsername(name string) error {
	if len(name) < minUsernameLen || len(name) > maxUsernameLen {
		return &UsernameError{fmt.Sprintf("want %d to %d characters, got %d", minUsernameLen, maxUsernameLen, len(name))}
	}
	for i, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			return &UsernameError{fmt.Sprintf("character %q at position %d; use lower-case letters, digits, and _ . - (not first)", c, i+1)}
		}
	}
	return nil
}

// PasswordParams is the argon2id cost. Defaults follow RFC 9106's second
// recommended option scaled for a coordinator: t=3, m=64 MiB, p=2.
type PasswordParams struct {
	Time    uint32
	MemKiB  uint32
	Threads uint8
}

func (p PasswordParams) withDefaults() PasswordParams {
	if p.Time == 0 {
		p.Time = 3
	}
	if p.MemKiB == 0 {
		p.MemKiB = 64 * 1024
	}
	if p.Threads == 0 {
		p.Threads = 2
	}
	return p
}

// HashPassword returns a PHC-style argon2id string:
// $argon2id$v=19$m=65536,t=3,p=2$<salt b64>$<hash b64>.
func HashPassword(password string, p PasswordParams) string {
	p = p.withDefaults()
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// CheckPassword compares password with a HashPassword string in constant time.
func CheckPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemKiB, &p.Time, &p.Threads); err != nil {
		return false
	}
	// Refuse absurd parameters from a corrupted row rather than allocate them.
	if p.MemKiB == 0 || p.MemKiB > 4<<20 || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validText refuses strings PostgreSQL's TEXT cannot hold (invalid UTF-8,
// NUL), so both backends accept exactly the same inputs.
func validText(field, s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("%s: at most %d bytes, got %d", field, maxLen, len(s))
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%s: must be UTF-8 text without NUL bytes", field)
	}
	return nil
}

// checkNodeID refuses anything but a hex ed25519 public key, so malformed
// ids are reported as such and never reach SQL.
func checkNodeID(what string, node wire.NodeID) error {
	if _, err := hex.DecodeString(string(node)); err != nil || len(node) != 2*ed25519.PublicKeySize {
		return fmt.Errorf("%s %q: want %d hex digits", what, node, 2*ed25519.PublicKeySize)
	}
	return nil
}

// CreateAccount signs up a user. The first admin is made with SetRole.
func (db *DB) CreateAccount(ctx context.Context, username, password string, now time.Time) (Account, error) {
	if err := ValidateUsername(username); err != nil {
		return Account{}, err
	}
	if len(password) < minPasswordLen || len(password) > maxPasswordLen {
		return Account{}, &PasswordError{fmt.Sprintf("want %d to %d bytes, got %d", minPasswordLen, maxPasswordLen, len(password))}
	}
	hash := HashPassword(password, db.cfg.Password)
	a := Account{Username: username, Role: RoleUser, CreatedAt: time.UnixMilli(now.UnixMilli())}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO accounts (username, password_hash, role, created_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (username) DO NOTHING RETURNING id`), username, hash, string(RoleUser), now.UnixMilli()).Scan(&a.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUsernameTaken
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q("INSERT INTO balances (account_id, points) VALUES (?, 0)"), a.ID)
		return err
	})
	if err != nil {
		return Account{}, err
	}
	return a, nil
}

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var role string
	var ms int64
	if err := row.Scan(&a.ID, &a.Username, &role, &ms); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, ErrNotFound
		}
		return Account{}, err
	}
	a.Role, a.CreatedAt = Role(role), time.UnixMilli(ms)
	return a, nil
}

// Account looks an account up by id.
func (db *DB) Account(ctx context.Context, id int64) (Account, error) {
	return scanAccount(db.sql.QueryRowContext(ctx, db.q("SELECT id, username, role, created_ms FROM accounts WHERE id = ?"), id))
}

// AccountByName looks an account up by username.
func (db *DB) AccountByName(ctx context.Context, username string) (Account, error) {
	return scanAccount(db.sql.QueryRowContext(ctx, db.q("SELECT id, username, role, created_ms FROM accounts WHERE username = ?"), username))
}

// SetRole makes an account a user or an admin.
func (db *DB) SetRole(ctx context.Context, id int64, role Role) error {
	if role != RoleUser && role != RoleAdmin {
		return fmt.Errorf("role %q: want %q or %q", role, RoleUser, RoleAdmin)
	}
	res, err := db.sql.ExecContext(ctx, db.q("UPDATE accounts SET role = ? WHERE id = ? AND role <> 'system'"), string(role), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// BindEdge binds node to the account (an account runs one edge). Binding the
// same node again is a no-op; a different node gives *EdgeBindingError.
func (db *DB) BindEdge(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) error {
	if err := checkNodeID("node id", node); err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("INSERT INTO edge_bindings (account_id, node_id, bound_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
			accountID, string(node), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("bind edge: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var bound string
		err = tx.QueryRowContext(ctx, db.q("SELECT node_id FROM edge_bindings WHERE account_id = ?"), accountID).Scan(&bound)
		if errors.Is(err, sql.ErrNoRows) {
			return &EdgeBindingError{AccountID: accountID, Requested: node, OtherUser: true}
		}
		if err != nil {
			return err
		}
		if bound == string(node) {
			return nil
		}
		return &EdgeBindingError{AccountID: accountID, Bound: wire.NodeID(bound), Requested: node}
	})
}

// CreateAPIToken binds node to the account (see BindEdge) and returns a new
// API token the edge presents; only its SHA-256 is stored. The account's
// earlier tokens are revoked in the same transaction: one live token per
// edge, so rebinding is how an owner replaces a token that leaked.
func (db *DB) CreateAPIToken(ctx context.Context, accountID int64, node wire.NodeID, now time.Time) (string, error) {
	if _, err := db.Account(ctx, accountID); err != nil {
		return "", fmt.Errorf("account %d: %w", accountID, err)
	}
	if err := db.BindEdge(ctx, accountID, node, now); err != nil {
		return "", err
	}
	token := newToken()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q("DELETE FROM api_tokens WHERE account_id = ?"), accountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q("INSERT INTO api_tokens (token_sha256, account_id, created_ms) VALUES (?, ?, ?)"),
			tokenHash(token), accountID, now.UnixMilli())
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// RevokeAPITokens deletes every API token of the account and returns how
// many there were; the edge binding stays.
func (db *DB) RevokeAPITokens(ctx context.Context, accountID int64) (int64, error) {
	res, err := db.sql.ExecContext(ctx, db.q("DELETE FROM api_tokens WHERE account_id = ?"), accountID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// APITokenEdge resolves an edge's API token to its account and node.
func (db *DB) APITokenEdge(ctx context.Context, token string) (Account, wire.NodeID, error) {
	var node string
	var a Account
	var role string
	var ms int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms, e.node_id
		FROM api_tokens t JOIN edge_bindings e ON e.account_id = t.account_id JOIN accounts a ON a.id = t.account_id
		WHERE t.token_sha256 = ?`), tokenHash(token)).Scan(&a.ID, &a.Username, &role, &ms, &node)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, "", ErrAPITokenInvalid
	}
	if err != nil {
		return Account{}, "", err
	}
	a.Role, a.CreatedAt = Role(role), time.UnixMilli(ms)
	return a, wire.NodeID(node), nil
}

// RevokeAPIToken deletes an API token.
func (db *DB) RevokeAPIToken(ctx context.Context, token string) error {
	_, err := db.sql.ExecContext(ctx, db.q("DELETE FROM api_tokens WHERE token_sha256 = ?"), tokenHash(token))
	return err
}

// EdgeAccount is the account that runs node.
func (db *DB) EdgeAccount(ctx context.Context, node wire.NodeID) (Account, error) {
	if err := checkNodeID("node id", node); err != nil {
		return Account{}, err
	}
	return scanAccount(db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms
		FROM edge_bindings e JOIN accounts a ON a.id = e.account_id WHERE e.node_id = ?`), string(node)))
}

// BindViewerKey records that viewer (a hex ed25519 public key that signs
// Orders) acts for the account, so settlement can check entitlements. A key
// belongs to one account; rebinding it to the same account is a no-op.
func (db *DB) BindViewerKey(ctx context.Context, accountID int64, viewer wire.NodeID, now time.Time) error {
	if err := checkNodeID("viewer key", viewer); err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("INSERT INTO viewer_keys (viewer, account_id, bound_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
			string(viewer), accountID, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("bind viewer key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var owner int64
		if err := tx.QueryRowContext(ctx, db.q("SELECT account_id FROM viewer_keys WHERE viewer = ?"), string(viewer)).Scan(&owner); err != nil {
			return err
		}
		if owner != accountID {
			return fmt.Errorf("viewer key %s: %w", viewer, ErrViewerKeyTaken)
		}
		return nil
	})
}

// ViewerAccount is the account a viewer key is bound to (ErrNotFound if none).
func (db *DB) ViewerAccount(ctx context.Context, viewer wire.NodeID) (Account, error) {
	if err := checkNodeID("viewer key", viewer); err != nil {
		return Account{}, err
	}
	return scanAccount(db.sql.QueryRowContext(ctx, db.q(`SELECT a.id, a.username, a.role, a.created_ms
		FROM viewer_keys v JOIN accounts a ON a.id = v.account_id WHERE v.viewer = ?`), string(viewer)))
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
