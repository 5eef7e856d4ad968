package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// processesUnder lists the pids whose command line names dir or that hold
// a file under dir open (nginx's workers retitle themselves but keep their
// error log under the bench's scratch dir open).
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join(p, "cmdline"))
		mentions := err == nil && bytes.Contains(b, []byte(dir))
		fds, _ := filepath.Glob(filepath.Join(p, "fd", "*"))
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, dir) {
				mentions = true
			}
		}
		if mentions {
			pids = append(pids, filepath.Base(p))
		}
	}
	return pids
}

// `swarmcast bench serve` stopped mid-run by Ctrl-C (SIGINT) or by a
// plain kill (SIGTERM) leaves nothing running: not nginx's master or
// workers (a process group of their own, which the terminal's Ctrl-C does
// not reach), not the edge.
func TestBenchServeCleansUpWhenInterrupted(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Fatalf("listing processes needs /proc (Linux): %v", err)
	}
	testenv.RequireTool(t, "nginx", "nginx-light")
	bin := filepath.Join(t.TempDir(), "swarmcast")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build swarmcast: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir() // the bench's scratch dir is made under $TMPDIR
			_ = os.Chmod(tmp, 0o755)
			cmd := exec.Command(bin, "bench", "serve", "--rounds", "50", "--duration", "2s")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			out := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }() // owned here: the test waits for it below
			// Measuring has begun once a round is reported; by then nginx
			// (master and 2 workers) and the edge run.
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(out.String(), "round 1") {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					<-done
					t.Fatalf("no round reported within 2 minutes:\n%s", out.String())
				}
				select {
				case err := <-done:
					t.Fatalf("bench ended before it was interrupted: %v\n%s", err, out.String())
				case <-time.After(50 * time.Millisecond):
				}
			}
			if n := len(processesUnder(t, tmp)); n < 4 {
				t.Fatalf("saw %d processes of the bench's servers (nginx's master, 2 workers, the edge), want ≥ 4", n)
			}
			_ = cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("bench still running a minute after %v", sig)
			}
			// Every process it started was reaped before it exited.
			if left := processesUnder(t, tmp); len(left) != 0 {
				t.Fatalf("processes left running after %v: %v\n%s", sig, left, out.String())
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer the test reads while the child's output
// is copied into it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
