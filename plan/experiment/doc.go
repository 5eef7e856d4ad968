// Package experiment runs the planning algorithms of package plan on a
// workload, measures them against their baselines and bounds, and reports
// the results as text tables, JSON and PNG figures. It is what
// `swarmcast plan avardo|ravo|cocos` runs; the command only turns flags into
// a config.
//
// Unlike plan, this package is a harness: it reads the clock (runtimes are
// part of every report), opens trace files, writes figures and may print
// progress. Everything except the runtimes is deterministic for a given
// config, because plan is.
package experiment

import (
	"fmt"
	"io"
)

// ConfigError says which field of a config is out of range. Field is the Go
// field name, so a caller can map it back to its own option name (the command
// maps it to a flag).
type ConfigError struct {
	Field string // e.g. "StreamGbps"
	Value any    // the value given
	Want  string // the allowed range, e.g. "> 0"
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("experiment: %s is %v, want %s", e.Field, e.Value, e.Want)
}

// progress returns a callback that redraws "label done/total" on w and ends
// the line when done reaches total; with w nil it does nothing.
func progress(w io.Writer, label string) func(done, total int) {
	if w == nil {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(w, "\r%s %d/%d", label, done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}
