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
// swarmcast server, and how many times the scheduler put one of their
// threads on a CPU (0 where schedstat is missing). ok is false if /proc
// cannot be read.
//
// A process's time is its threads' run time in ns as the scheduler
// accounts it (/proc/<pid>/task/<tid>/schedstat), not stat's 10 ms ticks:
// a run of a few hundred requests (a loaded machine, this package's test)
// is a few ms of CPU, which ticks round to 0 or 10 ms. Where schedstat is
// missing (a kernel without CONFIG_SCHED_INFO) the ticks are used.
func groupCPU(pgid int) (cpu time.Duration, timeslices int64, ok bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, 0, false
	}
	var total time.Duration
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		if pg, ticks, err := parseProcStat(b); err == nil && pg == pgid {
			if run, slices, ok := threadsRunTime(filepath.Dir(f)); ok {
				total += run
				timeslices += slices
			} else {
				total += time.Duration(ticks) * time.Second / clockTicks
			}
		}
	}
	return total, timeslices, true
}

// threadsRunTime sums the run time and the timeslices of the threads of
// the process whose /proc directory is dir.
func threadsRunTime(dir string) (time.Duration, int64, bool) {
	files, err := filepath.Glob(filepath.Join(dir, "task", "[0-9]*", "schedstat"))
	if err != nil || len(files) == 0 {
		return 0, 0, false
	}
	var total time.Duration
	var timeslices int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited meanwhile
		}
		run, slices, err := parseSchedstat(b)
		if err != nil {
			return 0, 0, false
		}
		total += run
		timeslices += slices
	}
	return total, timeslices, true
}

// parseSchedstat reads a thread's run time and its number of timeslices
// (times it was put on a CPU: each wakeup from a wait is one) from its
// schedstat: "run_ns wait_ns timeslices".
func parseSchedstat(b []byte) (time.Duration, int64, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, 0, fmt.Errorf("schedstat %q: want run_ns wait_ns timeslices", b)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, 0, fmt.Errorf("schedstat run time %q", f[0])
	}
	slices, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || slices < 0 {
		return 0, 0, fmt.Errorf("schedstat timeslices %q", f[2])
	}
	return time.Duration(ns), slices, nil
}
