//go:build linux

package loadbench

import (
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	if d, n, err := parseSchedstat([]byte("108223 122017 2\n")); err != nil || d != 108223*time.Nanosecond || n != 2 {
		t.Fatalf("got %v, %d, %v; want 108.223µs, 2 timeslices", d, n, err)
	}
	for _, bad := range []string{"", "x 1 2", "-5 1 2", "5 1", "5 1 x", "5 1 -2"} {
		if _, _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("schedstat %q accepted", bad)
		}
	}
}

// groupCPU reads this process's group, and the per-thread run time it sums
// resolves a few ms of CPU (stat's ticks would say 0 or 10 ms): this
// process alone (other processes of the group, such as go test's other
// binaries, may exit meanwhile), before and after hashing for ~5 ms of CPU.
func TestGroupCPUResolvesMilliseconds(t *testing.T) {
	if _, _, ok := groupCPU(syscall.Getpgrp()); !ok {
		t.Fatal("cannot read process times from /proc")
	}
	self := fmt.Sprintf("/proc/%d", os.Getpid())
	before, slicesBefore, ok := threadsRunTime(self)
	if !ok {
		t.Fatalf("cannot read %s/task/*/schedstat", self)
	}
	var sum [32]byte
	start := time.Now()
	for i := 0; i < 200000 && time.Since(start) < 5*time.Millisecond; i++ { // bounded
		sum = sha256.Sum256(sum[:])
	}
	after, slicesAfter, _ := threadsRunTime(self)
	if after <= before || slicesAfter < slicesBefore {
		t.Fatalf("run time went from %v to %v and timeslices from %d to %d across a CPU-bound loop", before, after, slicesBefore, slicesAfter)
	}
	if got := after - before; got%(10*time.Millisecond) == 0 {
		t.Fatalf("run time moved by %v, a whole number of 10 ms ticks like stat's: not the threads' ns run time", got)
	}
}
