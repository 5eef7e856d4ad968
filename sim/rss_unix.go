//go:build unix

package sim

import "syscall"

// peakRSSMB is the process's peak resident set from getrusage (ru_maxrss
// is KiB on Linux).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return round3(float64(ru.Maxrss) / 1024)
}

// processCPUSeconds is the process's user + system time so far.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
