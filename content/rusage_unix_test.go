//go:build unix

package content

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system, all threads) this process has
// used. Benchmarks report it per op because on a shared machine it is far
// steadier than wall time, and it counts work spread over cores in full.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
