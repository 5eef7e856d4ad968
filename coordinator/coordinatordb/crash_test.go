package coordinatordb

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// crashChildEnv makes the test binary a settling child (see settleForever).
const crashChildEnv = "SWARMCAST_COORDINATORDB_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		settleForever(path)
		return
	}
	os.Exit(m.Run())
}

// settleForever settles batches against the SQLite file at path until it is
// killed, printing "committed <batch id>" after each Settle returns. Each
// batch has two fresh serials and one serial shared by every batch (only its
// first settlement may count); every fourth batch replays the previous id.
func settleForever(path string) {
	ctx := context.Background()
	db, err := OpenConfig(ctx, "sqlite:"+path, testConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	edge, viewer := newParty(1), newParty(2)
	out := bufio.NewWriter(os.Stdout)
	var prev *wire.SettlementBatch
	for n := 0; ; n++ {
		id := randomHex(8)
		b := &wire.SettlementBatch{ID: id, Edge: edge.id}
		for range 2 {
			b.Pairs = append(b.Pairs, pair(binary.LittleEndian.Uint64([]byte(randomHex(4))), edge, viewer, videoID(2), 1_000_000, 250_000, t0.Add(time.Hour)))
		}
		b.Pairs = append(b.Pairs, pair(42, edge, viewer, videoID(2), 1_000_000, 250_000, t0.Add(time.Hour)))
		if n%4 == 3 && prev != nil {
			b, id = prev, prev.ID // a replay resends the same batch
		}
		if _, err := db.Settle(ctx, b, t0.Add(time.Minute)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "committed %s\n", id)
		out.Flush()
		prev = b
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestCrashSafety SIGKILLs a settling child process 50 times at random
// points and checks after every restart that the books balance and that
// every batch the child saw committed is there exactly once.
func TestCrashSafety(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	setup := openDB(t, "sqlite:"+path, testConfig())
	f := newSettleFixture(t, setup)
	setup.Close()
	rng := mrand.New(mrand.NewPCG(1, 2))
	committed := map[string]bool{}
	const kills = 50
	for round := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of commits (0 = during start-up), at
		// whatever point of the next transaction the child has reached.
		want := rng.IntN(6)
		sc := bufio.NewScanner(stdout)
		seen := 0
		for seen < want && sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				committed[id] = true
				seen++
			}
		}
		if want > 0 && seen < want {
			cmd.Wait()
			t.Fatalf("round %d: child exited early: %s", round, stderr.String())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		// Lines written before the kill still count as committed.
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				committed[id] = true
			}
		}
		cmd.Wait()

		db, err := OpenConfig(ctx, "sqlite:"+path, testConfig())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if err := db.CheckLedger(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for id := range committed {
			var n int
			if err := db.sql.QueryRow("SELECT COUNT(*) FROM settlement_batches WHERE batch_id = ?", id).Scan(&n); err != nil || n != 1 {
				t.Fatalf("round %d: committed batch %s present %d times (%v)", round, id, n, err)
			}
		}
		var accepted, credited, serials, acceptedSerials, flowBytes int64
		db.sql.QueryRow("SELECT COALESCE(SUM(accepted_bytes), 0), COALESCE(SUM(credited_points), 0), COALESCE(SUM(accepted), 0) FROM settlement_batches").Scan(&accepted, &credited, &acceptedSerials)
		db.sql.QueryRow("SELECT COUNT(*) FROM settled_serials WHERE status = 'accepted'").Scan(&serials)
		db.sql.QueryRow("SELECT COALESCE(SUM(bytes), 0) FROM flows").Scan(&flowBytes)
		bal, _ := db.Balance(ctx, f.edgeAcct.ID)
		usage, _ := db.ViewerUsage(ctx, f.viewer.id, f.free)
		if bal != credited || serials != acceptedSerials || flowBytes != accepted || usage != accepted || accepted != serials*250_000 {
			t.Fatalf("round %d: counted twice or lost: balance %d credited %d, serials %d accepted %d, flows %d usage %d accepted bytes %d",
				round, bal, credited, serials, acceptedSerials, flowBytes, usage, accepted)
		}
		db.Close()
	}
	if len(committed) < kills {
		t.Fatalf("only %d batches committed over %d rounds: the child barely ran", len(committed), kills)
	}
	t.Logf("%d kills, %d committed batches verified", kills, len(committed))
}
