package secretfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestWriteIs0600WhateverTheUmaskOrOldFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "edge.token")
	if err := Write(p, []byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != Mode {
		t.Fatalf("new secret file mode %v", m)
	}
	if m := mode(t, filepath.Dir(p)); m != 0o700 {
		t.Fatalf("new directory mode %v", m)
	}
	os.Chmod(p, 0o666)
	if err := Write(p, []byte("rotated\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "rotated\n" || mode(t, p) != Mode {
		t.Fatalf("rewritten: %q mode %v", b, mode(t, p))
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestReadFixesAWorldReadableSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.key")
	os.WriteFile(p, []byte("k"), 0o644)
	os.Chmod(p, 0o644)
	b, err := Read(p)
	if err != nil || string(b) != "k" {
		t.Fatalf("Read: %q %v", b, err)
	}
	if m := mode(t, p); m != Mode {
		t.Fatalf("mode after Read %v, want 0600", m)
	}
	os.Chmod(p, 0o400)
	if _, err := Read(p); err != nil || mode(t, p) != 0o400 {
		t.Fatalf("a stricter mode was changed: %v %v", err, mode(t, p))
	}
}

func TestCreate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "coord.db")
	if err := Create(p); err != nil || mode(t, p) != Mode {
		t.Fatalf("Create: %v mode %v", err, mode(t, p))
	}
	os.WriteFile(p, []byte("data"), 0o644)
	os.Chmod(p, 0o664)
	if err := Create(p); err != nil || mode(t, p) != Mode {
		t.Fatalf("Create on an existing file: %v mode %v", err, mode(t, p))
	}
	if b, _ := os.ReadFile(p); string(b) != "data" {
		t.Fatal("Create truncated an existing file")
	}
}
