package identity

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeyFilesAre0600: a node key written or left readable by others is
// 0600 once loaded, and the same key comes back.
func TestKeyFilesAre0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys", "node.key")
	id, err := LoadOrCreate(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("new key mode %v", st.Mode().Perm())
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(p)
	if err != nil || again.ID != id.ID {
		t.Fatalf("reload: %v %v", again.ID, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("world-readable key left at %v after loading", st.Mode().Perm())
	}
}
