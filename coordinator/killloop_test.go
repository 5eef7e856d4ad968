package coordinator

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// The child side of TestKillCoordinatorDuringSettlement: a real
// coordinator over HTTP on the SQLite file and identity named in the
// environment, until it is killed.
const (
	killLoopChildEnv = "SWARMCAST_KILLLOOP_CHILD" // "DB|IDENTITY|LISTEN"
	killLoopRounds   = 50
)

func runKillLoopChild() int {
	parts := strings.Split(os.Getenv(killLoopChildEnv), "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad", killLoopChildEnv)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	id, err := identity.LoadOrCreate(parts[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	store, err := coordinatordb.OpenConfig(ctx, "sqlite:"+parts[0], coordinatordb.Config{
		CoordinatorKeys: []ed25519.PublicKey{id.Key.Public().(ed25519.PublicKey)},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := New(Config{Store: store, Log: slog.New(slog.DiscardHandler), Accounting: accounting.Config{Identity: id, AuditInterval: -1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := httpserve.Listen(ctx, parts[2], "", c.Handler(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	go func() { _ = c.Run(ctx) }()
	_ = srv.Wait()
	return 0
}

// TestKillCoordinatorDuringSettlement kill -9s a real coordinator process
// while an edge settles batches over HTTP, killLoopRounds times. After every
// restart the edge resubmits the batch it had in flight (same id, as edges
// do); at the end every acknowledged batch is in the store exactly once,
// no serial was paid twice, and the ledger balances.
func TestKillCoordinatorDuringSettlement(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dbPath, idPath := filepath.Join(dir, "coordinator.db"), filepath.Join(dir, "coordinator.key")
	coordID, err := identity.LoadOrCreate(idPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()

	// Accounts, video terms and keys, written before the first start.
	setup, err := coordinatordb.OpenConfig(ctx, "sqlite:"+dbPath, coordinatordb.Config{
		CoordinatorKeys: []ed25519.PublicKey{coordID.Key.Public().(ed25519.PublicKey)},
		Password:        coordinatordb.PasswordParams{Time: 1, MemKiB: 8 * 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	edgeID, viewerID := newTestNode(), newTestNode()
	owner, err := setup.CreateAccount(ctx, "edgeowner", "edge-owner-password", now)
	if err != nil {
		t.Fatal(err)
	}
	viewerAcct, err := setup.CreateAccount(ctx, "viewer", "viewer-password-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.BindEdge(ctx, owner.ID, edgeID.ID, now); err != nil {
		t.Fatal(err)
	}
	token, err := setup.CreateAPIToken(ctx, owner.ID, edgeID.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.BindViewerKey(ctx, viewerAcct.ID, viewerID.ID, now); err != nil {
		t.Fatal(err)
	}
	var video content.VideoID
	rand.Read(video[:])
	if err := setup.PutVideo(ctx, coordinatordb.VideoTerms{Video: video, PlaybackBudgetBytes: 1 << 50}, now); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	const pairBytes = 1 << 20
	newBatch := func() wire.SettlementBatch {
		b := wire.SettlementBatch{ID: randomHex(8), Edge: edgeID.ID}
		for range 4 {
			l := wire.OrderLimit{Edge: edgeID.ID, Viewer: viewerID.ID, Video: video, MaxBytes: pairBytes,
				ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
			rand.Read(l.Serial[:])
			wire.SignOrderLimit(coordID.Key, &l)
			o := wire.Order{Serial: l.Serial, Amount: pairBytes}
			wire.SignOrder(viewerID.Key, &o)
			b.Pairs = append(b.Pairs, wire.SettlementPair{Limit: l, Order: o})
		}
		return b
	}

	acked := map[string]bool{}
	var inFlight *wire.SettlementBatch
	resubmitted, replayed := 0, 0 // batches cut off by a kill; of those, found committed
	for round := 0; round < killLoopRounds; round++ {
		addr := freeAddr(t)
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), killLoopChildEnv+"="+dbPath+"|"+idPath+"|"+addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: child did not start (%q)", round, line)
		}
		cc := wire.NewCoordinatorClient("http://"+addr, &http.Client{Timeout: 5 * time.Second})
		cc.Token = token
		// The kill lands at a random point of the settling below, as a
		// crash would; real time on purpose: this tests a real process.
		killed := make(chan struct{})
		time.AfterFunc(time.Duration(20+mustRandInt(t, 150))*time.Millisecond, func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		})
		for {
			if inFlight == nil {
				b := newBatch()
				inFlight = &b
			}
			res, err := cc.Settle(ctx, *inFlight)
			if err != nil {
				resubmitted++
				break // killed mid-request (or before): resubmit after restart
			}
			if res.Replayed {
				replayed++ // committed before the kill, answer lost: counted once
			}
			if res.Accepted+sumRejected(res.Rejected) != len(inFlight.Pairs) && !res.Replayed {
				t.Fatalf("round %d: batch %s answered %+v", round, inFlight.ID, res)
			}
			acked[inFlight.ID] = true
			inFlight = nil
		}
		<-killed
		_ = cmd.Wait()
	}

	// Final state, read by a fresh handle after the last kill.
	db, err := coordinatordb.OpenConfig(ctx, "sqlite:"+dbPath, coordinatordb.Config{
		CoordinatorKeys: []ed25519.PublicKey{coordID.Key.Public().(ed25519.PublicKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckLedger(ctx); err != nil {
		t.Fatalf("ledger after %d kills: %v", killLoopRounds, err)
	}
	var settled int64
	for id := range acked {
		r, err := db.Batch(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged batch %s lost: %v", id, err)
		}
		if r.Accepted != 4 {
			t.Errorf("batch %s: %d of 4 pairs accepted (%v)", id, r.Accepted, r.Rejected)
		}
		settled += r.AcceptedBytes
	}
	batches, err := db.EdgeBatches(ctx, edgeID.ID, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, b := range batches {
		stored += b.AcceptedBytes
	}
	// Every stored batch is acknowledged, or is the one in flight at the
	// last kill (committed before the answer was lost).
	extra := len(batches) - len(acked)
	if extra < 0 || extra > 1 {
		t.Fatalf("%d batches stored, %d acknowledged", len(batches), len(acked))
	}
	if stored != settled+int64(extra)*4*pairBytes {
		t.Fatalf("stored batches settled %d bytes, acknowledged ones %d: something counted twice", stored, settled)
	}
	credited, _, err := db.EdgeEarnings(ctx, edgeID.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Points are credited per batch: floor(batch bytes × 10 per MB).
	if want := coordinatordb.PointsFor(4*pairBytes, 10) * int64(len(batches)); credited != want {
		t.Errorf("credited %d points for %d batches of 4 MiB, want %d", credited, len(batches), want)
	}
	t.Logf("%d kills: %d batches acknowledged, %d stored, %d bytes settled once, %d points credited; %d batches cut off by a kill and resubmitted, %d of them already committed",
		killLoopRounds, len(acked), len(batches), stored, credited, resubmitted, replayed)
}

func sumRejected(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func mustRandInt(t *testing.T, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
