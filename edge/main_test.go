package edge

import (
	"os"
	"testing"

	"github.com/swarmcast/swarmcast/internal/samplestore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	samplestore.RemoveAll()
	os.Exit(code)
}
