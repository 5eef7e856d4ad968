//go:build !unix

package sim

// peakRSSMB is unknown off unix (no getrusage).
func peakRSSMB() float64 { return 0 }

// processCPUSeconds is unknown off unix.
func processCPUSeconds() float64 { return 0 }
