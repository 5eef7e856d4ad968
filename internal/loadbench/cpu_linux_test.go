//go:build linux

package loadbench

import (
	"crypto/sha256"
	"syscall"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	if d, err := parseSchedstat([]byte("108223 122017 2\n")); err != nil || d != 108223*time.Nanosecond {
		t.Fatalf("got %v, %v; want 108.223µs", d, err)
	}
	for _, bad := range []string{"", "x 1 2", "-5 1 2"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("schedstat %q accepted", bad)
		}
	}
}

// groupCPU resolves a few ms of CPU (stat's ticks would say 0 or 10 ms):
// this process's group, before and after hashing for ~5 ms of CPU.
func TestGroupCPUResolvesMilliseconds(t *testing.T) {
	pg := syscall.Getpgrp()
	before, ok := groupCPU(pg)
	if !ok {
		t.Fatal("cannot read process times from /proc")
	}
	var sum [32]byte
	start := time.Now()
	for i := 0; i < 200000 && time.Since(start) < 5*time.Millisecond; i++ { // bounded
		sum = sha256.Sum256(sum[:])
	}
	after, _ := groupCPU(pg)
	if after <= before {
		t.Fatalf("group CPU went from %v to %v across a CPU-bound loop", before, after)
	}
	if got := after - before; got%(10*time.Millisecond) == 0 {
		t.Fatalf("group CPU moved by %v, a whole number of 10 ms ticks like stat's: not the threads' ns run time", got)
	}
}
