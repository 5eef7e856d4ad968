package loadbench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// processesMentioning lists the pids whose command line names dir or that
// hold a file under dir open. nginx's workers retitle themselves ("nginx:
// worker process") but keep the error log under dir open.
func processesMentioning(t *testing.T, dir string) []string {
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

// Serve measures both roles against nginx and leaves no process behind:
// not nginx's master, not its workers, not the swarmcast server.
func TestServeMeasuresAndCleansUp(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Fatalf("listing processes needs /proc (Linux): %v", err)
	}
	nginx := testenv.RequireTool(t, "nginx", "nginx-light")
	bin := filepath.Join(t.TempDir(), "swarmcast")
	build := exec.Command("go", "build", "-o", bin, "github.com/swarmcast/swarmcast/cmd/swarmcast")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build swarmcast: %v\n%s", err, out)
	}
	// The detector sees a running nginx's workers (else the check below
	// could not fail).
	probe := t.TempDir()
	_ = os.Chmod(probe, 0o755)
	if err := os.MkdirAll(filepath.Join(probe, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, stop, _, err := startNginx(t.Context(), nginx, probe, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(processesMentioning(t, probe)); n < 3 {
		stop()
		t.Fatalf("saw %d processes of a running nginx (master and 2 workers), want 3", n)
	}
	stop()
	if left := processesMentioning(t, probe); len(left) != 0 {
		t.Fatalf("nginx processes left after stopping it: %v", left)
	}
	// The edge at its default (one P), the origin forced to two: the result
	// says what the server ran with either way.
	for _, tc := range []struct {
		role            string
		procs, wantProc int
	}{{RoleEdge, 0, 1}, {RoleOrigin, 2, 2}} {
		role := tc.role
		t.Run(role, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Serve(ctx, ServeOptions{Role: role, Binary: bin, Nginx: nginx, Dir: dir, Concurrency: 2, Duration: 200 * time.Millisecond, Rounds: 1, ServerProcs: tc.procs})
			if err != nil {
				t.Fatal(err)
			}
			if res.ServerGOMAXPROCS != tc.wantProc || res.ServerProcs != tc.procs {
				t.Errorf("the %s ran with GOMAXPROCS %d (forced: %d), want %d", role, res.ServerGOMAXPROCS, res.ServerProcs, tc.wantProc)
			}
			if res.Role != role || res.NginxMBps <= 0 || res.SwarmcastMBps <= 0 || res.Ratio <= 0 || len(res.Runs) != 2 || res.Runs[1].Server != role {
				t.Fatalf("result %+v", res)
			}
			if res.CPURatio <= 0 || res.NginxCPUMicros <= 0 || res.SwarmcastCPUMicros <= 0 || res.NginxWakeups <= 0 || res.SwarmcastWakeups <= 0 {
				t.Errorf("no CPU time per request measured: %+v", res)
			}
			for _, r := range res.Runs {
				if r.Errors != 0 {
					t.Errorf("%s: %d errors", r.Server, r.Errors)
				}
			}
			if left := processesMentioning(t, dir); len(left) != 0 {
				t.Fatalf("processes left running after Serve returned: %v", left)
			}
		})
	}
	if _, err := Serve(context.Background(), ServeOptions{Role: "coordinator"}); err == nil {
		t.Fatal("an unknown role was accepted")
	}
}
