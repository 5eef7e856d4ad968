//go:build !linux

package loadbench

import (
	"errors"
	"time"
)

// processCPU is only measured on Linux (/proc); elsewhere the CPU figures
// of a lookup benchmark stay zero.
func processCPU(int) (time.Duration, error) {
	return 0, errors.New("process CPU time is read from /proc (Linux only)")
}

// groupCPU cannot read process times here: the CPU columns stay empty.
func groupCPU(int) (time.Duration, int64, bool) { return 0, 0, false }
