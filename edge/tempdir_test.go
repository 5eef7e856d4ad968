package edge

import (
	"os"
	"testing"
)

var fixtureDir string

// tempDir is a directory removed when the test binary exits.
func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "swarmcast-edge-test-")
	fixtureDir = d
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}
