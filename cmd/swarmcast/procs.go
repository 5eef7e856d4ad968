package main

import (
	"fmt"
	"os"
	"runtime"
)

// edgeDefaultProcs is an edge's GOMAXPROCS unless --procs or the
// GOMAXPROCS environment variable says otherwise. One: an edge is
// I/O-bound (one P serves ~25k shards/s, ~300 MB/s, on the slow 2-core VM
// of docs/PERFORMANCE.md, far above a home uplink), and every further P
// costs wakeups per request: when a connection turns readable while a P
// idles, the runtime wakes a second thread to look for work, finds none and
// parks it again. Under `bench serve` that was 0.38 thread wakeups per shard
// at 2 Ps against 0.24 at 1 (nginx: 0.30–0.34), and ~20 % less CPU per
// shard (docs/PERFORMANCE.md, E15).
const edgeDefaultProcs = 1

// originDefaultProcs is an origin's GOMAXPROCS unless --procs or
// $GOMAXPROCS says otherwise. While it serves a store: one P per two
// cores. On the 2-core machines of docs/PERFORMANCE.md (E15) one P served
// the bench's shards with ~20 % less CPU per shard than two (fewer idle-P
// wakeups, as for an edge); but an origin's egress is what the platform
// pays for and one P tops out near 300 MB/s, so a large server keeps half
// its cores serving rather than one. With live ingest, the runtime's
// default (one per core): packaging, BTR and pushes to relay trees run in
// parallel.
func originDefaultProcs(live bool) int {
	if live {
		return 0
	}
	return max(1, runtime.NumCPU()/2)
}

const procsUsage = "Go scheduler threads running at once (GOMAXPROCS; 0: one per core); when not given, $GOMAXPROCS applies if set"

// checkProcs refuses a negative --procs before anything is created.
func checkProcs(n int) error {
	if n < 0 {
		return fmt.Errorf("--procs %d: want 0 (one per core) or a positive count", n)
	}
	return nil
}

// applyProcs sets GOMAXPROCS for a serving command: n if --procs was
// given (given), else the GOMAXPROCS environment variable if set (the
// runtime already applied it), else def. 0 means the runtime's default
// (one per core, or the container's CPU limit).
func applyProcs(given bool, n, def int) {
	if !given {
		if os.Getenv("GOMAXPROCS") != "" {
			return
		}
		n = def
	}
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}
