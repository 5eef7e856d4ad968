package main

import (
	"errors"
	"io/fs"
	"os"
)

// newPaths remembers which of the paths a command may create did not exist
// before it ran, so that a command failing before it starts serving (a
// refused login, a port in use, a store that will not open) takes back
// every file and directory it made: bad input never leaves partial state.
// Flags are checked before anything is created; this is the backstop for
// what only the network or a library can refuse.
type newPaths struct {
	paths []string
	kept  bool
}

// note records each path that does not exist yet. Call it before creating.
func (n *newPaths) note(paths ...string) {
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			n.paths = append(n.paths, p)
		}
	}
}

// keep marks the command as started: what it created is now its state.
func (n *newPaths) keep() { n.kept = true }

// undoUnlessKept removes every noted path, newest first, unless keep was
// called. Deferred right after the newPaths is made, so it runs after the
// command has closed what it opened.
func (n *newPaths) undoUnlessKept() {
	if n.kept {
		return
	}
	for i := len(n.paths) - 1; i >= 0; i-- {
		_ = os.RemoveAll(n.paths[i])
	}
}
