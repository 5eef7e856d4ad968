// Package secretfile keeps files that hold secrets (node keys, API tokens,
// the coordinator's database with its content keys) readable by their
// owner only: mode 0600, checked and fixed every time one is opened.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Mode is the only mode a secret file may have.
const Mode fs.FileMode = 0o600

// Write replaces path with data atomically (a temporary file in the same
// directory, then a rename), mode 0600 whatever the umask or an old file's
// mode; the directory is created 0700 if missing.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // CreateTemp makes it 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chmod(Mode), f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Read returns path's contents after Secure: a secret left readable by
// others is fixed before it is used.
func Read(path string) ([]byte, error) {
	if err := Secure(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// Secure makes an existing path mode 0600 if group or others have any
// access to it (it never widens a stricter mode). A file this process
// cannot fix (another user's) is refused with an error that says what to
// do. A missing file is fs.ErrNotExist.
func Secure(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, Mode); err != nil {
		return fmt.Errorf("%s holds secrets but is readable by others (mode %v) and cannot be fixed: %w; run chmod 600 %s", path, st.Mode().Perm(), err, path)
	}
	return nil
}

// Create makes path an empty file with mode 0600 if it does not exist, so
// a program that then opens it (SQLite) inherits the mode instead of
// creating it under the umask; an existing file is Secured.
func Create(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, Mode)
	if errors.Is(err, fs.ErrExist) {
		return Secure(path)
	}
	if err != nil {
		return err
	}
	return f.Close()
}
