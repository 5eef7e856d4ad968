package sim

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator"
)

// rewrite regenerates the golden files (etcd-io/raft's interaction tests
// use the same flag): go test ./sim -run TestGolden -rewrite
var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/golden")

func run(t *testing.T, sc *Scenario, seed int64) *Report {
	t.Helper()
	s, err := New(sc, seed)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run()
}

func load(t *testing.T, path string) *Scenario {
	t.Helper()
	sc, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// render is what a golden file holds: the table and the JSON report with
// the machine-dependent fields zeroed.
func render(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	c := r.WithoutWallClock()
	if err := c.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	if err := c.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGolden runs every scenario in testdata/golden and compares the
// report with NAME.golden byte for byte: any change in a driven core, the
// network model or the workload shows up here as a diff to review (then
// -rewrite).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden scenarios: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			got := render(t, run(t, load(t, f), 0))
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the run (review the change, then -rewrite):\n%s", golden, firstDiff(want, got))
			}
		})
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n- " + w + "\n+ " + g
		}
	}
	return ""
}

// TestDeterministic: the same seed gives the same report byte for byte,
// another seed a different one.
func TestDeterministic(t *testing.T) {
	sc := load(t, "testdata/golden/small.json")
	a, b := render(t, run(t, sc, 11)), render(t, run(t, sc, 11))
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs with seed 11 differ:\n%s", firstDiff(a, b))
	}
	if c := render(t, run(t, sc, 12)); bytes.Equal(a, c) {
		t.Fatal("seeds 11 and 12 gave the same report: the seed does not reach the run")
	}
}

// TestLiarsAreBannedAndPlaysSurvive: lying edges are caught by the real
// scheduler's verification, banned network-wide, and no segment is lost.
func TestLiarsAreBannedAndPlaysSurvive(t *testing.T) {
	sc := load(t, "testdata/golden/small.json")
	sc.Edges.LiarFraction = 0.3
	sc.Edges.ChurnPerHour = 0
	r := run(t, sc, 0)
	if r.BadShards == 0 || r.BannedEdges == 0 {
		t.Fatalf("30%% liars: %d bad shards, %d banned; want both > 0", r.BadShards, r.BannedEdges)
	}
	if r.BannedEdges > r.BadShards {
		t.Fatalf("%d banned edges from %d bad shards: a ban needs a bad shard", r.BannedEdges, r.BadShards)
	}
	if r.FailedSegments != 0 {
		t.Fatalf("%d segments failed; the origin must cover what liars spoil", r.FailedSegments)
	}
}

// TestEdgesOffloadTheOrigin: with edges hosting the players, the origin
// sends less than the no-edge baseline; without edges it sends it all.
func TestEdgesOffloadTheOrigin(t *testing.T) {
	sc := load(t, "testdata/golden/small.json")
	sc.DurationS = 600 // long enough that the join ramp does not skew the averages
	with := run(t, sc, 0)
	if !(with.Offload > 0.2) || !(with.OriginMbpsAvg < 0.8*with.BaselineMbpsAvg) {
		t.Fatalf("with edges: offload %.3f, origin %.1f of baseline %.1f Mbit/s; want offload > 0.2 and origin < 80%%", with.Offload, with.OriginMbpsAvg, with.BaselineMbpsAvg)
	}
	sc.Edges.Count = 0
	sc.Viewers.PlayersAreEdges = false
	without := run(t, sc, 0)
	if without.Offload != 0 || without.OriginToEdgesMbpsAvg != 0 {
		t.Fatalf("no edges: offload %.3f, origin→edges %.1f; want 0, 0", without.Offload, without.OriginToEdgesMbpsAvg)
	}
	if d := without.OriginMbpsAvg / without.BaselineMbpsAvg; d < 0.95 || d > 1.05 {
		t.Fatalf("no edges: origin %.1f vs baseline %.1f Mbit/s; want them equal (±5%%)", without.OriginMbpsAvg, without.BaselineMbpsAvg)
	}
}

// TestScenarioErrors: a bad scenario is refused with the field named.
func TestScenarioErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`{"duration_s": 0}`, "duration_s"},
		{`{"duration_s": 10, "titles": {"count": 1, "duration_s": 10, "bitrate_mbps": 1}, "viewers": {"count": 1, "mode": "binge"}}`, "viewers.mode"},
		{`{"duration_s": 10, "titel": {}}`, "unknown field"},
		{`{"duration_s": 10, "titles": {"count": 1, "duration_s": 10, "bitrate_mbps": 1}, "edges": {"count": 1, "liar_fraction": 2}, "viewers": {"count": 1, "mode": "continuous"}}`, "liar_fraction"},
	} {
		_, err := Parse([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want an error naming %q", c.src, err, c.want)
		}
	}
	if _, err := Load("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "seed-capstone") {
		t.Errorf("Load(unknown) = %v, want an error listing the built-ins", err)
	}
}

// TestBuiltinsParse: every named scenario the command offers is valid.
func TestBuiltinsParse(t *testing.T) {
	names := Builtin()
	for _, want := range []string{"seed-capstone", "flash-crowd", "diurnal", "scale"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("built-in %q missing (have %v)", want, names)
		}
	}
	for _, n := range names {
		if _, err := Load(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestScale runs the built-in 10^5-node scenario (minutes of CPU: only
// with SWARMCAST_SIM_SCALE=1) and logs its figures. Speed and memory are
// reported, not asserted; what is asserted is that plays survive the
// scenario's churn, liars and loss.
func TestScale(t *testing.T) {
	if os.Getenv("SWARMCAST_SIM_SCALE") != "1" {
		t.Skip("set SWARMCAST_SIM_SCALE=1 to run the 10^5-node scenario")
	}
	r := run(t, load(t, "scale"), 0)
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if r.Plays == 0 || r.FailedSegments > r.Segments/100 {
		t.Fatalf("%d plays, %d of %d segments failed; want plays and < 1%% failed", r.Plays, r.FailedSegments, r.Segments)
	}
}

// TestOriginPoolRoutes: with several origins the coordinator's origin pool
// decides which serve: a rate one origin covers keeps the others off, a
// rate beyond it switches more on.
func TestOriginPoolRoutes(t *testing.T) {
	sc := load(t, "testdata/golden/pool-small.json")
	sc.DurationS = 180
	sc.Origin.PerServerRate = 1000
	r := run(t, sc, 0)
	if len(r.OriginMbpsByOrigin) != 3 || r.OriginMbpsByOrigin[0] == 0 || r.OriginMbpsByOrigin[1] != 0 || r.OriginMbpsByOrigin[2] != 0 {
		t.Fatalf("per-server rate 1000/s: by origin %v Mbit/s; want only the first origin on", r.OriginMbpsByOrigin)
	}
	sc.Origin.PerServerRate = 1
	r = run(t, sc, 0)
	on := 0
	for _, m := range r.OriginMbpsByOrigin {
		if m > 0 {
			on++
		}
	}
	if on < 2 {
		t.Fatalf("per-server rate 1/s: by origin %v Mbit/s; want at least two origins serving", r.OriginMbpsByOrigin)
	}
}

// TestFullDiskEvictsLikeTheEdge: the simulated edge stores shard messages
// (data plus header and proof: more than the data bytes the placer
// budgets) and, when full, evicts dropped shards first, then the least
// recently used segment, assigned or not, as edge.inventory does.
func TestFullDiskEvictsLikeTheEdge(t *testing.T) {
	s, err := New(load(t, "testdata/golden/small.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.msgBytes <= s.shardBytes {
		t.Fatalf("a shard message (%d B) is not larger than its data (%d B)", s.msgBytes, s.shardBytes)
	}
	e := s.edges[0]
	e.diskCap = 3 * s.shardBytes // what the placer sees as room for 3 shards holds 2 messages
	seg := func(j int) segID { return s.segOf(0, j) }
	ref := func(j int) content.SegmentRef { return content.SegmentRef{Video: s.titles[0].id, Segment: j} }
	var one coordinator.ShardMask
	one.Set(0)
	store := func(j int) {
		t.Helper()
		if !s.makeRoom(0, s.msgBytes, seg(j)) {
			t.Fatalf("no room for segment %d", j)
		}
		e.assigned[ref(j)] = one
		s.setHeld(0, seg(j), invEntry{placed: one})
	}
	has := func(j int) bool { _, ok := e.inv[seg(j)]; return ok }
	s.now = 1
	store(0)
	s.now = 2
	store(1)
	s.now = 3
	s.touch(e, seg(0)) // a viewer asked for segment 0: segment 1 is now the least recently used
	store(2)
	if !has(0) || has(1) || !has(2) {
		t.Fatalf("after storing segment 2 on a full disk: holds 0 %v, 1 %v, 2 %v; want the LRU segment 1 evicted", has(0), has(1), has(2))
	}
	if slices.Contains(s.holders[seg(1)], 0) || !slices.Contains(s.holders[seg(0)], 0) {
		t.Fatalf("holder index not in step with the inventory: %v / %v", s.holders[seg(1)], s.holders[seg(0)])
	}
	// A dropped shard goes first, however recently it was used.
	x := e.inv[seg(0)]
	x.dropped = one
	e.inv[seg(0)] = x
	e.dropFIFO = append(e.dropFIFO, seg(0))
	s.now = 4
	s.touch(e, seg(0))
	store(3)
	if has(0) || !has(2) || !has(3) {
		t.Fatalf("after storing segment 3: holds 0 %v, 2 %v, 3 %v; want the dropped segment 0 evicted", has(0), has(2), has(3))
	}
	if e.used != 2*s.msgBytes {
		t.Fatalf("disk use %d B, want 2 messages = %d B", e.used, 2*s.msgBytes)
	}
}

// TestHolderIndexInStepAfterRuns: after a whole run (stores, evictions,
// drops, churn sweeps), every segment's holder list names exactly the
// edges whose inventory holds a shard of it, in holderCmp order, and its
// held words are those inventories' held() (what lookups and placement
// read instead of the inventories).
func TestHolderIndexInStepAfterRuns(t *testing.T) {
	for _, f := range []string{"testdata/golden/small.json", "testdata/golden/diurnal-small.json"} {
		s, err := New(load(t, f), 0)
		if err != nil {
			t.Fatal(err)
		}
		s.Run()
		if !s.compactHeld {
			t.Fatalf("%s: nmax %d: held words not kept", f, s.nmax)
		}
		want := make([][]int32, len(s.holders))
		for i, e := range s.edges {
			for sid, x := range e.inv {
				if x.held().Empty() {
					t.Fatalf("%s: edge %d keeps an empty entry for segment %d", f, i, sid)
				}
				want[sid] = append(want[sid], int32(i))
			}
		}
		checked := 0
		for sid := range s.holders {
			slices.SortFunc(want[sid], s.holderCmp)
			if !slices.Equal(s.holders[sid], want[sid]) {
				t.Fatalf("%s: segment %d: holders %v, inventories say %v", f, sid, s.holders[sid], want[sid])
			}
			if len(s.holderHeld[sid]) != len(s.holders[sid]) {
				t.Fatalf("%s: segment %d: %d held words for %d holders", f, sid, len(s.holderHeld[sid]), len(s.holders[sid]))
			}
			for j, i := range s.holders[sid] {
				x := s.edges[i].inv[segID(sid)]
				if got := s.heldAt(segID(sid), int32(j), i); got != x.held() {
					t.Fatalf("%s: segment %d, edge %d: held word %v, inventory %v", f, sid, i, got, x.held())
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatalf("%s: no holdings at the end of the run", f)
		}
	}
}

// TestExplainAddsUpAndChangesNothing: the decomposition of the origin's
// bytes (Sim.Explain) splits exactly what the report counts, and a run
// with it reports the same as one without.
func TestExplainAddsUpAndChangesNothing(t *testing.T) {
	sc := load(t, "testdata/golden/capstone-small.json")
	plain := run(t, sc, 0)
	s, err := New(sc, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Explain()
	explained := s.Run()
	x := explained.Explain
	if x == nil {
		t.Fatal("no origin_explained section with Explain")
	}
	c := *explained.WithoutWallClock()
	c.Explain = nil
	if !bytes.Equal(render(t, plain), render(t, &c)) {
		t.Fatal("Explain changed the run's report")
	}
	sum := func(m map[string]float64) float64 {
		t := 0.0
		for _, v := range m {
			t += v
		}
		return t
	}
	// Each side is rounded per cause (to 0.001 Mbit/s).
	if got, want := sum(x.ToViewersMbps), explained.OriginToViewersMbpsAvg; got < want-0.01 || got > want+0.01 || len(x.ToViewersMbps) != len(explainCauses) {
		t.Fatalf("causes of the origin's bytes to viewers sum to %.3f Mbit/s (%v), report says %.3f", got, x.ToViewersMbps, want)
	}
	if got, want := sum(x.ToEdgesMbps), explained.OriginToEdgesMbpsAvg; got < want-0.01 || got > want+0.01 {
		t.Fatalf("fills sum to %.3f Mbit/s (%v), report says %.3f", got, x.ToEdgesMbps, want)
	}
	if x.ToViewersMbps[causeFirstView] <= 0 || x.ToEdgesMbps["served"] <= 0 || x.FilledSegments == 0 || x.ShardsPerFilledSegment < 1 {
		t.Fatalf("explained: %+v", x)
	}
	if len(x.Curve) != len(explained.Curve) {
		t.Fatalf("%d explained points for %d curve points", len(x.Curve), len(explained.Curve))
	}
}
