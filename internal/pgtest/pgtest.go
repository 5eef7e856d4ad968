// Package pgtest gives a test its own empty PostgreSQL schema, or skips it when no server is configured.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// Env names the variable holding the test server's DSN. CI (.ci/run) sets
// it; without it PostgreSQL tests skip.
const Env = "SWARMCAST_TEST_POSTGRES"

// FreshSchema creates an empty schema named prefix_<random> for one test,
// drops it at cleanup, and returns a DSN whose search_path points at it,
// so tests never see each other's tables. It skips the test when Env is
// unset.
func FreshSchema(tb testing.TB, prefix string) string {
	tb.Helper()
	base := os.Getenv(Env)
	if base == "" {
		testenv.Missing(tb, "needs PostgreSQL: set %s (e.g. postgres://swarmcast:swarmcast@127.0.0.1:5432/swarmcast_test?sslmode=disable)", Env)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		tb.Fatalf("create test schema (is PostgreSQL running at $%s?): %v", Env, err)
	}
	tb.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
