package coordinatordb

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/swarmcast/swarmcast/internal/secretfile"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// dialect is the SQL flavour behind a DB.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Config tunes a DB. The zero value means the documented defaults.
type Config struct {
	// CoordinatorKeys verify OrderLimit signatures at settlement; a limit
	// signed by any of them is genuine (several coordinators, key rotation).
	CoordinatorKeys []ed25519.PublicKey
	// PointsPerMB is what the mint credits an edge per settled 1,000,000
	// bytes. Default 10. The credit of a batch is floor(bytes*PointsPerMB/1e6).
	PointsPerMB int64
	// SettlementGrace is how long after its expiry a limit may still be
	// settled. Default 1 h.
	SettlementGrace time.Duration
	// FlowBucket is the width of the time buckets flow rows are summed
	// into. Default 1 h.
	FlowBucket time.Duration
	// SessionTTL is how long a login session lives. Default 30 days.
	SessionTTL time.Duration
	// Password is the argon2id cost for new password hashes.
	Password PasswordParams
	// Reputation tunes the beta reputation model.
	Reputation ReputationConfig
}

func (c Config) withDefaults() Config {
	if c.PointsPerMB == 0 {
		c.PointsPerMB = 10
	}
	if c.SettlementGrace == 0 {
		c.SettlementGrace = time.Hour
	}
	if c.FlowBucket == 0 {
		c.FlowBucket = time.Hour
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 30 * 24 * time.Hour
	}
	c.Password = c.Password.withDefaults()
	c.Reputation = c.Reputation.withDefaults()
	return c
}

// DB is the durable store over SQLite or PostgreSQL. It implements Store and
// is safe for concurrent use; several DB values (processes) may share one
// database and stay consistent.
type DB struct {
	sql     *sql.DB
	dialect dialect
	cfg     Config

	mintID, revenueID int64

	rebound sync.Map // query with ? placeholders -> query with $n (PostgreSQL)

	// dummyHash is what Login checks a password against for an unknown
	// username: a hash at this store's own cost, so an unknown name costs
	// exactly the argon2id work of a known one (computed on first use).
	dummyHash func() string
}

// Open opens (creating if needed) the store named by dsn with the default
// Config: "sqlite:PATH" for an embedded SQLite file, or "postgres://..." /
// "postgresql://..." for PostgreSQL. Migrations run before Open returns.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenConfig(ctx, dsn, Config{})
}

// sqliteSecrets makes the database file and its -wal and -shm files (when
// present) mode 0600.
func sqliteSecrets(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := secretfile.Secure(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// OpenConfig is Open with an explicit Config.
func OpenConfig(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	if cfg.PointsPerMB < 0 || cfg.PointsPerMB > MaxPointsPerMB {
		return nil, fmt.Errorf("open store: points per MB %d: want 0 (default 10) to %d", cfg.PointsPerMB, MaxPointsPerMB)
	}
	db := &DB{cfg: cfg.withDefaults()}
	db.dummyHash = sync.OnceValue(func() string { return HashPassword("swarmcast dummy password", db.cfg.Password) })
	var err error
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("open store: empty SQLite path in dsn (want sqlite:PATH)")
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
		// The file holds content keys and password hashes: 0600 before
		// SQLite opens it, so SQLite's -wal and -shm (created with the
		// database file's mode) are 0600 too; sqliteSecrets re-checks all
		// three after the migrations.
		if err := secretfile.Create(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		// One connection: SQLite has one writer anyway, and one connection
		// means no SQLITE_BUSY inside this process. Other processes on the
		// same file wait up to busy_timeout; _txlock=immediate takes the
		// write lock at BEGIN so two writers never deadlock on an upgrade.
		// synchronous(FULL): points are money, a commit survives power loss.
		q := "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
		db.sql, err = sql.Open("sqlite", "file:"+path+q)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		db.sql.SetMaxOpenConns(1)
		db.sql.SetConnMaxIdleTime(0)
		db.dialect = dialectSQLite
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db.sql, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		db.sql.SetMaxOpenConns(16)
		db.dialect = dialectPostgres
	default:
		return nil, fmt.Errorf("open store: unsupported dsn %q (want sqlite:PATH or postgres://...)", redactDSN(dsn))
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("open %s store: %w", db.dialect, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	db.dummyHash() // now, so the first unknown-user login costs what every other does
	if db.dialect == dialectSQLite {
		if err := sqliteSecrets(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			db.sql.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	for name, dst := range map[string]*int64{"@mint": &db.mintID, "@revenue": &db.revenueID} {
		if err := db.sql.QueryRowContext(ctx, db.q("SELECT id FROM accounts WHERE username = ?"), name).Scan(dst); err != nil {
			db.sql.Close()
			return nil, fmt.Errorf("open store: system account %s: %w", name, err)
		}
	}
	return db, nil
}

func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// Close releases the database handle.
func (db *DB) Close() error { return db.sql.Close() }

// Dialect names the backend: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.String() }

// q rewrites ? placeholders into PostgreSQL's $1, $2, ...; queries in this
// package never contain a literal '?'.
func (db *DB) q(query string) string {
	if db.dialect != dialectPostgres {
		return query
	}
	if v, ok := db.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	db.rebound.Store(query, out)
	return out
}

// tx runs fn in a transaction, committing if it returns nil. PostgreSQL runs
// at READ COMMITTED: every cross-process race in this package is settled by
// a unique constraint (INSERT ... ON CONFLICT DO NOTHING) or a conditional
// UPDATE, both of which wait for the competing transaction and re-check.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded NNN_name.sql files for this dialect: a
// portable file NNN_name.sql, or a per-dialect NNN_name.<dialect>.sql.
func (db *DB) migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		if d := filepath.Ext(name); d == ".sqlite" || d == ".postgres" {
			if d[1:] != db.dialect.String() {
				continue
			}
			name = strings.TrimSuffix(name, d)
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		id := "INTEGER PRIMARY KEY AUTOINCREMENT"
		if db.dialect == dialectPostgres {
			id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
		}
		out = append(out, migration{version: v, name: name, sql: strings.ReplaceAll(string(b), "{{ID}}", id)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}

// migrate applies missing migrations in one transaction. Concurrent starts
// are serialised by SQLite's write lock or a PostgreSQL advisory lock, so
// every migration runs exactly once and a restart is a no-op.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := db.migrations()
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		if db.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7315102)"); err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate %03d_%s (%s): %w", m.version, m.name, db.dialect, err)
			}
			if _, err := tx.ExecContext(ctx, db.q("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)"),
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("migrate %03d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}

// SchemaVersion is the highest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.sql.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}
