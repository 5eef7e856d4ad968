package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/plan"
	"github.com/swarmcast/swarmcast/plan/lp"
)

// smallAvardo runs in a few milliseconds: 3000 blocks, n0 = 30, 11 levels.
func smallAvardo() AvardoConfig {
	cfg := DefaultAvardoConfig()
	cfg.Blocks, cfg.Videos, cfg.Slots, cfg.Servers, cfg.Zipf = 3000, 300, 100, 40, 1.0
	return cfg
}

// smallRavo is tiny enough for the in-process gonum simplex.
func smallRavo() RavoConfig {
	cfg := DefaultRavoConfig()
	cfg.Spec.Regions, cfg.Spec.Videos, cfg.Spec.Streams = 2, 4, 2
	cfg.Clusters, cfg.Draws, cfg.Solver = []int{1, 2}, 3, lp.Simplex{}
	return cfg
}

func smallCocos() CocosConfig {
	cfg := DefaultCocosConfig()
	cfg.Spec.Servers, cfg.Spec.Channels = 4, 2
	cfg.Substreams, cfg.Solver = 3, lp.Simplex{}
	return cfg
}

// withoutRuntimes zeroes the wall-clock fields, the only nondeterministic
// part of a report.
func withoutRuntimes(t *testing.T, rep any) string {
	t.Helper()
	var buf bytes.Buffer
	switch r := rep.(type) {
	case *AvardoReport:
		c := *r
		c.RuntimeSeconds = 0
		rep = &c
	case *RavoReport:
		c := *r
		c.RuntimeSeconds, c.LPSeconds = 0, 0
		c.Schemes = append([]RavoRow(nil), r.Schemes...)
		for i := range c.Schemes {
			c.Schemes[i].RuntimeSeconds = 0
		}
		rep = &c
	case *CocosReport:
		c := *r
		c.RuntimeSeconds = 0
		c.Runs = append([]CocosRow(nil), r.Runs...)
		for i := range c.Runs {
			c.Runs[i].Seconds = 0
		}
		rep = &c
	}
	if err := writeJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestRunsAreDeterministicForASeed(t *testing.T) {
	run := map[string]func() (any, error){
		"avardo": func() (any, error) { return RunAvardo(smallAvardo()) },
		"ravo":   func() (any, error) { return RunRavo(smallRavo()) },
		"cocos":  func() (any, error) { return RunCocos(smallCocos()) },
	}
	for name, f := range run {
		t.Run(name, func(t *testing.T) {
			a, err := f()
			if err != nil {
				t.Fatal(err)
			}
			b, err := f()
			if err != nil {
				t.Fatal(err)
			}
			if ja, jb := withoutRuntimes(t, a), withoutRuntimes(t, b); ja != jb {
				t.Fatalf("two runs with the same seed differ:\n%s\n%s", ja, jb)
			}
		})
	}
	// A different seed is a different catalogue.
	cfg := smallAvardo()
	a, _ := RunAvardo(cfg)
	cfg.Seed = 2
	b, _ := RunAvardo(cfg)
	if reflect.DeepEqual(a.Schemes, b.Schemes) {
		t.Fatal("seeds 1 and 2 gave identical AVARDO reports")
	}
}

func TestAvardoTableAndJSONShape(t *testing.T) {
	rep, err := RunAvardo(smallAvardo())
	if err != nil {
		t.Fatal(err)
	}
	if rep.MinServers != 30 || len(rep.Schemes) != 3 {
		t.Fatalf("n0 %d, %d schemes; want 30 and 3", rep.MinServers, len(rep.Schemes))
	}
	for i, want := range []string{"avardo", "uniform", "hierarchical"} {
		if s := rep.Schemes[i]; s.Scheme != want || len(s.Levels) != 40-30+1 {
			t.Fatalf("scheme %d is %q with %d levels; want %q with 11", i, s.Scheme, len(s.Levels), want)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	// title, blank, header, 11 levels, 3 worst gaps, runtime
	if len(lines) != 3+11+3+1 {
		t.Fatalf("table has %d lines:\n%s", len(lines), table.String())
	}
	if !strings.HasPrefix(lines[0], "AVARDO: 3000 blocks, 100 slots/server, 40 servers, n0 = 30, 28.125 req/s per server") ||
		!strings.Contains(lines[2], "closed-form gap") || !strings.HasPrefix(lines[14], "avardo        worst gap ") ||
		!strings.HasPrefix(lines[17], "runtime ") {
		t.Fatalf("unexpected table:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "min_servers", "per_server_rate", "schemes", "thresholds", "runtime_seconds"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON report has no %q", k)
		}
	}
	w := doc["workload"].(map[string]any)
	for _, k := range []string{"block_mb", "blocks", "seed", "servers", "slots", "videos", "zipf"} {
		if _, ok := w[k]; !ok {
			t.Errorf("synthetic workload has no %q", k)
		}
	}
	if _, ok := w["trace"]; ok {
		t.Error("synthetic workload names a trace")
	}
	if d := doc["schemes"].([]any)[0].(map[string]any)["dispatch_capacity"]; len(d.([]any)) != 11 {
		t.Errorf("avardo has %d closed-form capacities, want 11", len(d.([]any)))
	}
}

func TestAvardoTraceWorkload(t *testing.T) {
	cfg := smallAvardo()
	cfg.TracePath, cfg.Slots, cfg.Servers = filepath.Join("..", "testdata", "trace-sample.csv"), 200, 40
	rep, err := RunAvardo(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if w := rep.Workload; w.Trace != cfg.TracePath || w.Blocks != 6887 || w.Videos != nil || w.Zipf != nil || w.Seed != nil {
		t.Fatalf("trace workload %+v", w)
	}
	cfg.TracePath = filepath.Join(t.TempDir(), "missing.csv")
	if _, err := RunAvardo(cfg); err == nil || !strings.Contains(err.Error(), "open trace") {
		t.Fatalf("missing trace: %v", err)
	}
}

func TestTablesOfRavoAndCocos(t *testing.T) {
	rr, err := RunRavo(smallRavo())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rr.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	// local-greedy, greedy-add, exact, ravo ×2
	if got := strings.Count(b.String(), "\n"); got != 3+5+1 || !strings.Contains(b.String(), "RAVO: 2 regions, 4 videos") {
		t.Fatalf("RAVO table:\n%s", b.String())
	}
	cr, err := RunCocos(smallCocos())
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := cr.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if len(cr.Runs) != 3 || cr.Runs[0].Scheme != "cocos" || !strings.Contains(b.String(), "nearest-peer") {
		t.Fatalf("COCOS runs %+v, table:\n%s", cr.Runs, b.String())
	}
}

// decodePNG fails the test unless dir/name is a PNG image of 6×4 inches.
func decodePNG(t *testing.T, dir, name string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() <= b.Dy() || b.Dy() < 100 {
		t.Fatalf("%s is %v, want a landscape figure", name, b)
	}
}

func TestWritePNG(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "figures") // created by WritePNG
	av, err := RunAvardo(smallAvardo())
	if err != nil {
		t.Fatal(err)
	}
	if err := av.WritePNG(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{AvardoCapacityPNG, AvardoServersPNG, AvardoGapPNG} {
		decodePNG(t, dir, name)
	}

	rr, err := RunRavo(smallRavo())
	if err != nil {
		t.Fatal(err)
	}
	if err := rr.WritePNG(dir); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, dir, RavoCostPNG)
	decodePNG(t, dir, RavoRuntimePNG)

	// One COCOS point has no curve; a channel sweep has one.
	cfg := smallCocos()
	single, err := RunCocos(cfg)
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if err := single.WritePNG(empty); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Fatalf("a single COCOS point wrote %v", names)
	}
	cfg.Channels = []int{1, 2}
	swept, err := RunCocos(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := swept.WritePNG(dir); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, dir, CocosChannelsPNG)
}

func TestBadConfigsSayWhichField(t *testing.T) {
	mod := func(f func(*AvardoConfig)) AvardoConfig { c := smallAvardo(); f(&c); return c }
	for _, tc := range []struct {
		cfg   AvardoConfig
		field string
	}{
		{mod(func(c *AvardoConfig) { c.Blocks = -1 }), "Blocks"},
		{mod(func(c *AvardoConfig) { c.Servers = -3 }), "Servers"},
		{mod(func(c *AvardoConfig) { c.StreamGbps = 0 }), "StreamGbps"},
		{mod(func(c *AvardoConfig) { c.Utilisation = 1.5 }), "Utilisation"},
		{mod(func(c *AvardoConfig) { c.BlockMB = -100 }), "BlockMB"},
	} {
		_, err := RunAvardo(tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("want a ConfigError on %s, got %v", tc.field, err)
		}
	}
	if _, err := RunAvardo(mod(func(c *AvardoConfig) { c.Blocks = 0 })); !errors.Is(err, plan.ErrNoBlocks) {
		t.Errorf("no blocks: %v", err)
	}
	// More blocks than slots: the planner's own message, which says why.
	if _, err := RunAvardo(mod(func(c *AvardoConfig) { c.Servers = 10 })); err == nil || !strings.Contains(err.Error(), "storage constraint cannot be met") {
		t.Errorf("too few servers: %v", err)
	}
	rc := smallRavo()
	rc.Clusters = []int{0}
	if _, err := RunRavo(rc); err == nil || !strings.Contains(err.Error(), "Clusters is 0, want ≥ 1") {
		t.Errorf("zero clusters: %v", err)
	}
	cc := smallCocos()
	cc.DelayBounds = []int{-5}
	var ce *ConfigError
	if _, err := RunCocos(cc); !errors.As(err, &ce) || ce.Field != "DelayBounds" {
		t.Errorf("negative delay bound: %v", err)
	}
}
