package coordinatordb

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSQLiteFilesAre0600: before, coord.db (content keys, password hashes)
// was created world-readable under the usual umask. Now the database and
// its -wal and -shm are 0600 even under umask 0, and an old world-readable
// file is fixed when the store opens it.
func TestSQLiteFilesAre0600(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	check := func(path string) {
		t.Helper()
		db := openDB(t, "sqlite:"+path, testConfig())
		if _, err := db.CreateAccount(context.Background(), "secrets", "some long password", t0); err != nil { // writes the WAL
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := st.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
			}
		}
		db.Close()
	}
	check(filepath.Join(dir, "fresh", "coord.db"))

	stale := filepath.Join(dir, "stale.db")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check(stale)
}
