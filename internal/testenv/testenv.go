// Package testenv decides what a test does when something it needs outside Go (ffmpeg, cbc, PostgreSQL, IPv6) is missing: skip on a developer's machine, fail in CI.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is set by .ci/run: there every dependency is installed, so a
// test that would skip for lack of one fails instead — a skipped test in CI
// tests nothing.
const StrictEnv = "SWARMCAST_CI"

// Missing skips the test with the reason, or fails it under StrictEnv.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv(StrictEnv) != "" {
		tb.Fatalf("required in CI ("+StrictEnv+" is set): "+format, args...)
	}
	tb.Skipf(format, args...)
}

// RequireTool returns the path of a program on PATH, or calls Missing with
// how to install it.
func RequireTool(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s not on PATH (apt-get install %s)", name, debianPackage)
	}
	return path
}

// RequireIPv6Loopback calls Missing unless [::1] can be bound.
func RequireIPv6Loopback(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		Missing(tb, "no IPv6 loopback on this machine: %v", err)
		return
	}
	ln.Close()
}
