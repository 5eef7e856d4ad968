package netemu

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// The smoke scenario runs real processes in namespaces for 40 s: users
// finish plays with no failure, the origin's egress and the users' bytes
// are measured, and no namespace of the run survives it.
func TestEmulateSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes for 40 s")
	}
	requireNamespaces(t)
	testenv.RequireTool(t, "curl", "curl")
	gobin := testenv.RequireTool(t, "go", "golang")
	sc := smoke
	binary := filepath.Join(t.TempDir(), "swarmcast")
	// The test binary's own build settings, so the build cache serves it.
	build := exec.Command(gobin, "build", "-o", binary, "github.com/swarmcast/swarmcast/cmd/swarmcast")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Emulate(ctx, binary, "sm", sc, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Plays < 1 || res.PlayErrors != 0 {
		t.Errorf("%d plays completed, %d failed: want ≥ 1 and none failed", res.Plays, res.PlayErrors)
	}
	if !(res.OriginMbpsAvg > 0) || !(res.UserMbpsAvg > 0) {
		t.Errorf("origin %.3f Mbit/s, users %.3f Mbit/s: both must have been measured", res.OriginMbpsAvg, res.UserMbpsAvg)
	}
	if names, err := Leftovers(ctx); err != nil || len(names) != 0 {
		t.Errorf("namespaces left after the run: %v %v", names, err)
	}
}

// smoke is a 40 s run: 3 caches, 2 users, 2 titles (the sample's length
// and bitrate).
var smoke = Scenario{
	Name: "smoke", Caches: 3, Users: 2, UserJoinIntervalS: 5, Titles: 2, TitleS: 30, TitleMbps: 0.4,
	CacheUploadMbps: 10, CacheDiskMB: 4, CachePresets: []float64{1}, DurationS: 40,
	CacheLatencyMS: 10, OriginLatencyMS: 10, ViewerLatencyMS: 10, LossPerTransfer: 0.01, Seed: 1,
}

func TestScenarioCheckRefusesUnboundedRuns(t *testing.T) {
	good := smoke
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Scenario){
		"too many nodes":  func(s *Scenario) { s.Caches = maxNodes },
		"too long":        func(s *Scenario) { s.DurationS = 3600 },
		"no users":        func(s *Scenario) { s.Users = 0 },
		"zero multiplier": func(s *Scenario) { s.CachePresets = []float64{0} },
		"negative loss":   func(s *Scenario) { s.LossPerTransfer = -1 },
		"latency of 4 s":  func(s *Scenario) { s.ViewerLatencyMS = 4000 },
	} {
		s := good
		mutate(&s)
		if s.Check() == nil {
			t.Errorf("%s: accepted %+v", name, s)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
