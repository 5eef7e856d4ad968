package main

import (
	"runtime"
	"testing"
)

// applyProcs: --procs wins, then $GOMAXPROCS, then the role's default; 0
// is the runtime's own default.
func TestApplyProcsPrecedence(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)

	t.Setenv("GOMAXPROCS", "")
	applyProcs(false, 7, 1)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("no flag, no $GOMAXPROCS: GOMAXPROCS %d, want the default 1", got)
	}
	applyProcs(true, 3, 1)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("--procs 3: GOMAXPROCS %d, want 3", got)
	}
	applyProcs(true, 0, 1)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("--procs 0: GOMAXPROCS %d, want the runtime's default %d", got, def)
	}

	t.Setenv("GOMAXPROCS", "5")
	runtime.GOMAXPROCS(5) // what the runtime did at start with this environment
	applyProcs(false, 1, 1)
	if got := runtime.GOMAXPROCS(0); got != 5 {
		t.Errorf("$GOMAXPROCS=5 and no flag: GOMAXPROCS %d, want 5 (the environment kept)", got)
	}
	applyProcs(true, 2, 1)
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("$GOMAXPROCS=5 and --procs 2: GOMAXPROCS %d, want 2 (the flag wins)", got)
	}
}
