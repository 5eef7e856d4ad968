package testnet

import (
	"context"
	"testing"
	"time"
)

// TestHostileDemo runs the demo's hostile settings (swarmcast demo --churn
// 0.15 --byzantine 0.3): 30% of the edges lie in every way, 15% of the
// edges are killed abruptly per minute and replaced, while every player
// plays video after video. While the origin is up plays may degrade but
// never fail: every play completes. Startup and rebuffering are logged,
// not asserted (they depend on the machine's load; the bars are measured
// by the demo).
func TestHostileDemo(t *testing.T) {
	const edges = 20
	n := startNet(t, Config{
		Edges: edges, Videos: 4, Seed: 7,
		HeartbeatInterval: time.Second, // as the demo
		GrantPoints:       1000,
		SettleInterval:    10 * time.Second,
		Fault:             ByzantineFaults(0.3),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := Workload{
		Viewers:      edges,
		Duration:     25 * time.Second,
		JoinInterval: 250 * time.Millisecond,
		Zipf:         1,
		Speed:        4,
		// 15%/min of 20 edges is 3 kills a minute: about one in the
		// window. The rate is raised to 0.15×4 so that the compressed
		// playback clock (4x) sees the demo's churn per media minute.
		Churn: 0.15 * 4,
		Seed:  7,
	}
	rep, results := n.RunWorkload(ctx, w)
	t.Logf("hostile workload: %d plays completed, %d failed, %d aborted; %d edges killed; %d bad shards detected; offload %.1f%%; startup p50 %.0f ms p95 %.0f ms; rebuffering %.2f%%",
		rep.PlaysCompleted, rep.PlaysFailed, rep.PlaysAborted, rep.EdgesKilled, rep.BadShardsDetected, 100*rep.Offload, rep.StartupP50MS, rep.StartupP95MS, 100*rep.RebufferRatio)
	if rep.PlaysFailed != 0 {
		for _, r := range results {
			if r.Err != nil || (!r.Aborted && !r.QoE.Completed) {
				t.Errorf("viewer %d, video %d: %v", r.Viewer, r.Video, r.Err)
			}
		}
		t.Fatalf("%d plays failed with the origin up; first error: %s", rep.PlaysFailed, rep.FirstError)
	}
	if rep.PlaysCompleted == 0 {
		t.Fatal("no play completed")
	}
	if rep.EdgesKilled == 0 {
		t.Error("no edge was killed: the workload did not churn")
	}
}
