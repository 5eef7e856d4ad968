package testnet

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/viewer"
)

// Workload is the seed experiment's viewing pattern: viewers join one at a
// time, each picks a video by Zipf popularity, plays it to the end, picks
// the next, until Duration has passed since the first join.
type Workload struct {
	Viewers      int           // how many edges' players take part (≤ edges alive)
	Duration     time.Duration // no new play starts after this; plays in progress finish
	JoinInterval time.Duration // gap between viewers joining
	Zipf         float64       // popularity exponent s (video rank r has weight 1/r^s)
	Speed        float64       // playback clock multiplier
	Churn        float64       // fraction of edges killed abruptly per minute (each replaced by a fresh edge)
	Seed         uint64
	// OnPlay, if set, is called after every play (progress display).
	OnPlay func(PlayResult)
}

// PlayResult is one play's outcome.
type PlayResult struct {
	Viewer int
	Video  int // index into Network.Videos
	QoE    viewer.QoE
	Err    error
	// Aborted plays were cut short because churn killed the viewer's own
	// node; they are neither completed nor failed.
	Aborted bool
}

// Report is the workload's summary, the demo's final table.
type Report struct {
	OriginBytes       int64   `json:"origin_bytes"`
	EdgeBytes         int64   `json:"edge_bytes"`
	DeliveredBytes    int64   `json:"delivered_bytes"`
	Offload           float64 `json:"offload"`
	StartupP50MS      float64 `json:"startup_p50_ms"`
	StartupP95MS      float64 `json:"startup_p95_ms"`
	RebufferRatio     float64 `json:"rebuffer_ratio"`
	BadShardsDetected int     `json:"bad_shards_detected"`
	PlaysCompleted    int     `json:"plays_completed"`
	PlaysFailed       int     `json:"plays_failed"`
	PlaysAborted      int     `json:"plays_aborted"`
	EdgesKilled       int     `json:"edges_killed"`
	FirstError        string  `json:"first_error,omitempty"`
}

// zipfPicker draws ranks 0..n-1 with weight 1/(r+1)^s.
type zipfPicker struct{ cdf []float64 }

func newZipfPicker(n int, s float64) zipfPicker {
	cdf := make([]float64, n)
	sum := 0.0
	for r := range n {
		sum += 1 / math.Pow(float64(r+1), s)
		cdf[r] = sum
	}
	for r := range cdf {
		cdf[r] /= sum
	}
	return zipfPicker{cdf: cdf}
}

func (z zipfPicker) pick(rng *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, rng.Float64())
	return min(i, len(z.cdf)-1)
}

// RunWorkload drives the network's players and returns the report. Offload
// is counted honestly: 1 − (every byte any origin sent, to players and to
// edges, prefetch included, from network start) ÷ (bytes delivered to
// players).
func (n *Network) RunWorkload(ctx context.Context, w Workload) (Report, []PlayResult) {
	if w.Speed <= 0 {
		w.Speed = 1
	}
	rng := rand.New(rand.NewPCG(w.Seed, 0x5eed))
	zipf := newZipfPicker(len(n.Videos), w.Zipf)
	start := time.Now()
	stopAt := start.Add(w.Duration)

	var (
		mu      sync.Mutex
		results []PlayResult
		killed  int
		wg      sync.WaitGroup
	)
	record := func(r PlayResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		if w.OnPlay != nil {
			w.OnPlay(r)
		}
	}

	// Viewers: viewer v runs on the v-th alive edge; if churn kills it, the
	// viewer moves to the edge that replaced it.
	edges := n.AliveEdges()
	viewerCount := min(w.Viewers, len(edges))
	seeds := make([]uint64, viewerCount)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var slotsMu sync.Mutex
	slots := edges[:viewerCount]
	for v := 0; v < viewerCount; v++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vr := rand.New(rand.NewPCG(seeds[v], uint64(v)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(v) * w.JoinInterval):
			}
			for time.Now().Before(stopAt) && ctx.Err() == nil {
				slotsMu.Lock()
				node := slots[v]
				slotsMu.Unlock()
				if !node.Alive() {
					time.Sleep(50 * time.Millisecond) // replacement is being started
					continue
				}
				video := zipf.pick(vr)
				qoe, err := node.Viewer.Play(ctx, n.Videos[video], viewer.PlayOptions{Rendition: -1, Speed: w.Speed})
				r := PlayResult{Viewer: v, Video: video, QoE: qoe, Err: err}
				if err != nil && (!node.Alive() || ctx.Err() != nil) {
					r.Aborted, r.Err = true, nil
				}
				record(r)
			}
		}()
	}

	// Churn: every tick kill one random alive edge so that Churn × edges
	// are killed per minute, and start a fresh edge in its place.
	if w.Churn > 0 && len(edges) > 0 {
		perMinute := w.Churn * float64(len(edges))
		tick := time.Duration(float64(time.Minute) / perMinute)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					if now.After(stopAt) {
						return
					}
				}
				alive := n.AliveEdges()
				if len(alive) == 0 {
					continue
				}
				victim := alive[rng.IntN(len(alive))]
				n.KillEdge(victim)
				mu.Lock()
				killed++
				mu.Unlock()
				repl, err := n.AddEdge()
				if err != nil {
					continue
				}
				slotsMu.Lock()
				for i, s := range slots {
					if s == victim {
						slots[i] = repl
					}
				}
				slotsMu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep := summarize(results, n.OriginBytes())
	rep.EdgesKilled = killed
	return rep, results
}

func summarize(results []PlayResult, originBytes int64) Report {
	rep := Report{OriginBytes: originBytes}
	var startups []float64
	var stall, played time.Duration
	for _, r := range results {
		rep.EdgeBytes += r.QoE.EdgeBytes
		rep.DeliveredBytes += r.QoE.EdgeBytes + r.QoE.OriginBytes
		rep.BadShardsDetected += r.QoE.BadShards
		stall += r.QoE.StallTime
		played += r.QoE.PlayTime
		switch {
		case r.Aborted:
			rep.PlaysAborted++
			continue
		case r.Err != nil || !r.QoE.Completed:
			rep.PlaysFailed++
			if rep.FirstError == "" && r.Err != nil {
				rep.FirstError = r.Err.Error()
			}
			continue
		}
		rep.PlaysCompleted++
		startups = append(startups, float64(r.QoE.Startup)/float64(time.Millisecond))
	}
	if rep.DeliveredBytes > 0 {
		rep.Offload = 1 - float64(rep.OriginBytes)/float64(rep.DeliveredBytes)
	}
	if played+stall > 0 {
		rep.RebufferRatio = float64(stall) / float64(played+stall)
	}
	rep.StartupP50MS = percentile(startups, 0.50)
	rep.StartupP95MS = percentile(startups, 0.95)
	return rep
}

// percentile is the nearest-rank percentile; 0 for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// ByzantineFaults returns a Config.Fault that makes the given fraction of
// edges lie, cycling through every fault kind; lying edges are spread
// evenly over the index range.
func ByzantineFaults(fraction float64) func(i int) edge.Fault {
	if fraction <= 0 {
		return nil
	}
	kinds := []edge.Fault{edge.FlipBits, edge.Truncate, edge.WrongIndex, edge.SlowDrip}
	return func(i int) edge.Fault {
		// Edge i lies iff floor((i+1)·f) > floor(i·f): exactly ⌊N·f⌋ of the first N edges.
		if math.Floor(float64(i+1)*fraction) > math.Floor(float64(i)*fraction) {
			return kinds[int(math.Floor(float64(i)*fraction))%len(kinds)]
		}
		return edge.Honest
	}
}
