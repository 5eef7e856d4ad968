//go:build !unix

package loadbench

import "os/exec"

// ownGroup is a no-op where process groups do not exist.
func ownGroup(*exec.Cmd) {}

// stopGroup kills cmd and reaps it.
func stopGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill(); _ = cmd.Wait() }
