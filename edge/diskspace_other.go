//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package edge

// freeSpace is unknown here: the configured disk cap is advertised as is.
func freeSpace(string) (int64, error) { return -1, nil }
