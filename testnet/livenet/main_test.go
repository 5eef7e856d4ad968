package livenet_test

import (
	"testing"

	"github.com/swarmcast/swarmcast/internal/samplestore"
)

func TestMain(m *testing.M) { samplestore.Main(m) }
