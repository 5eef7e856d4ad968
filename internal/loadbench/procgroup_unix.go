//go:build unix

package loadbench

import (
	"os/exec"
	"syscall"
	"time"
)

// ownGroup starts cmd in a process group of its own, so stopGroup can end
// everything it forks (nginx's workers outlive a killed master otherwise).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cancelling the context asks the whole group to stop, not just cmd.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
}

// stopGroup asks cmd's process group to stop (SIGTERM: nginx's master then
// stops its workers), kills what is left after a grace period, and reaps cmd.
func stopGroup(cmd *exec.Cmd) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { // owned here: it ends when cmd is reaped, which this function waits for
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Workers may still be exiting after their master; the group is gone
	// once they have.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
