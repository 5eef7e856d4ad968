//go:build linux || darwin || freebsd || netbsd || openbsd

package edge

import "syscall"

// freeSpace reports the bytes an unprivileged process may still write on
// the filesystem holding dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, errFreeSpace(dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
