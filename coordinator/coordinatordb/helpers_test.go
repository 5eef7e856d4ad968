package coordinatordb

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/pgtest"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// coordinatorKey signs the test order limits.
var coordinatorKey = ed25519.NewKeyFromSeed(make([]byte, 32))

func testConfig() Config {
	return Config{
		CoordinatorKeys: []ed25519.PublicKey{coordinatorKey.Public().(ed25519.PublicKey)},
		PointsPerMB:     10,
		Password:        PasswordParams{Time: 1, MemKiB: 1024, Threads: 1}, // cheap for tests
	}
}

// backend is one database the suite runs against; dsn can be opened many
// times (several "processes" on one database).
type backend struct {
	name string
	dsn  string
}

// eachBackend runs fn against a fresh SQLite file and, when
// SWARMCAST_TEST_POSTGRES is set, a fresh PostgreSQL schema.
func eachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, backend{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "coordinator.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, backend{"postgres", freshPostgres(t)})
	})
}

// freshPostgres creates an empty schema for one test and returns a DSN
// whose search_path points at it.
func freshPostgres(tb testing.TB) string { return pgtest.FreshSchema(tb, "t") }

func openDB(tb testing.TB, dsn string, cfg Config) *DB {
	tb.Helper()
	db, err := OpenConfig(context.Background(), dsn, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustCheckLedger(tb testing.TB, db *DB) {
	tb.Helper()
	if err := db.CheckLedger(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func count(tb testing.TB, db *DB, table string) int64 {
	tb.Helper()
	var n int64
	if err := db.sql.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func videoID(n int) content.VideoID {
	var v content.VideoID
	copy(v[:], fmt.Sprintf("video-%d", n))
	return v
}

// party is an edge or viewer key pair.
type party struct {
	key ed25519.PrivateKey
	id  wire.NodeID
}

func newParty(seed byte) party {
	s := make([]byte, 32)
	s[0], s[1] = seed, 0x5c
	k := ed25519.NewKeyFromSeed(s)
	return party{k, wire.NodeID(hex.EncodeToString(k.Public().(ed25519.PublicKey)))}
}

// pair makes a signed (limit, order) pair.
func pair(serial uint64, edge, viewer party, video content.VideoID, maxBytes, amount int64, expires time.Time) wire.SettlementPair {
	var s wire.Serial
	for i := range 8 {
		s[i] = byte(serial >> (8 * i))
	}
	l := wire.OrderLimit{Serial: s, Edge: edge.id, Viewer: viewer.id, Video: video, MaxBytes: maxBytes, ExpiresUnixMs: expires.UnixMilli()}
	wire.SignOrderLimit(coordinatorKey, &l)
	o := wire.Order{Serial: s, Amount: amount}
	wire.SignOrder(viewer.key, &o)
	return wire.SettlementPair{Limit: l, Order: o}
}

// passAudit records one passed storage audit of edge, which settlement
// requires before it pays the edge (EdgePayable).
func passAudit(tb testing.TB, db *DB, edge wire.NodeID) {
	tb.Helper()
	ctx := context.Background()
	a, err := db.CreateAudit(ctx, Challenge{Edge: edge, Ref: content.ShardRef{SegmentRef: content.SegmentRef{Video: videoID(2)}}, Length: 1}, t0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := db.RecordAuditOutcome(ctx, a.ID, OutcomePassed, t0); err != nil {
		tb.Fatal(err)
	}
}
