//go:build linux

package loadbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times (100
// on every architecture Go supports).
const clockTicks = 100

// groupCPU is the CPU time (user + system) used so far by the live
// processes of process group pgid: nginx's master and workers, or the one
// swarmcast server. ok is false if /proc cannot be read.
func groupCPU(pgid int) (cpu time.Duration, ok bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, false
	}
	var ticks int64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// Fields after the parenthesised command name: state ppid pgrp … utime(14) stime(15).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 13 {
			continue
		}
		if pg, err := strconv.Atoi(fields[2]); err != nil || pg != pgid {
			continue
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 == nil && err2 == nil {
			ticks += utime + stime
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}
