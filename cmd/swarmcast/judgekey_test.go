package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// coordinator --judge-key FILE: the relays' judge's key is created once
// (0600) and a restarted coordinator given the same file signs as the same
// judge, as its GET of the relays' judge names it; without the flag each
// process has a fresh judge key.
func TestCoordinatorJudgeKeyPersists(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "judge.key")
	judgeOf := func(t *testing.T, args ...string) wire.NodeID {
		t.Helper()
		logs := &commandOutput{written: make(chan struct{}, 1), exited: make(chan struct{})}
		runCommandWithStderr(t, logs, append([]string{"coordinator", "--db", "sqlite:" + filepath.Join(dir, "c.db"),
			"--identity", filepath.Join(dir, "coordinator.key"), "--listen", "127.0.0.1:0"}, args...)...)
		url := logs.await(t, regexp.MustCompile(`coordinator listening" url=(http://\S+)`))
		cases, err := wire.NewCoordinatorClient(url, nil).RelayJudgeCases(t.Context(), content.VideoID{1})
		if err != nil {
			t.Fatal(err)
		}
		return cases.Judge
	}
	var first, restarted, fresh1, fresh2 wire.NodeID
	t.Run("first", func(t *testing.T) { first = judgeOf(t, "--judge-key", keyFile) })
	t.Run("restarted", func(t *testing.T) { restarted = judgeOf(t, "--judge-key", keyFile) })
	t.Run("without", func(t *testing.T) { fresh1 = judgeOf(t) })
	t.Run("without again", func(t *testing.T) { fresh2 = judgeOf(t) })
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("--judge-key file mode %v, want 0600", fi.Mode().Perm())
	}
	id, err := identity.LoadOrCreate(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || first != id.ID || restarted != first {
		t.Errorf("judge %q, after restart %q, file's key %q: want all equal", first, restarted, id.ID)
	}
	if fresh1 == "" || fresh1 == fresh2 || fresh1 == first {
		t.Errorf("without --judge-key: judges %q and %q (with the file: %q), want a fresh key per process", fresh1, fresh2, first)
	}
}
