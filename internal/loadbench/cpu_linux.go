//go:build linux

package loadbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times (100
// on every architecture Go supports).
const clockTicks = 100

// parseProcStat reads the process group and the user + system CPU ticks
// from one /proc/<pid>/stat. The command name (field 2) may hold spaces, so
// fields are counted after its closing ')': state(3) ppid(4) pgrp(5) …
// utime(14) stime(15).
func parseProcStat(b []byte) (pgrp int, ticks int64, err error) {
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want ≥ 13", len(f))
	}
	pgrp, err = strconv.Atoi(f[2])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad process group or CPU times")
	}
	return pgrp, utime + stime, nil
}

// processCPU is the user+system CPU time process pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	name := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	_, ticks, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", name, err)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// groupCPU is the CPU time (user + system) used so far by the live
// processes of process group pgid: nginx's master and workers, or the one
// swarmcast server. ok is false if /proc cannot be read.
func groupCPU(pgid int) (cpu time.Duration, ok bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, false
	}
	var total int64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		if pg, ticks, err := parseProcStat(b); err == nil && pg == pgid {
			total += ticks
		}
	}
	return time.Duration(total) * time.Second / clockTicks, true
}
