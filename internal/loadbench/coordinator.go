package loadbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// CoordinatorOptions configure the coordinator-at-scale benchmark. Every
// count and duration is bounded by the caller (the command validates them).
type CoordinatorOptions struct {
	Binary string // swarmcast binary (default: this executable)
	Dir    string
	// Edges synthetic edges register, then heartbeat at Heartbeat.
	Edges int
	// Videos × Segments is the catalogue (one rendition each); every
	// edge holds one shard of ShardsPerEdge distinct segments, drawn as
	// contiguous runs (what its player watched) from Zipf-popular titles.
	Videos, Segments, ShardsPerEdge int
	// Heartbeat is the interval the coordinator tells nodes (--heartbeat);
	// each heartbeat carries a delta of DeltaShards added and as many
	// removed (a full disk that keeps turning over).
	Heartbeat   time.Duration
	DeltaShards int
	// Workers bound the load process's concurrent node requests.
	Workers int
	// LookupClients issue lookups of Window segments back to back while
	// the edges heartbeat, for Duration.
	LookupClients, Window int
	Duration              time.Duration
	// CPUProfile, if set, is where the coordinator's CPU profile of the
	// first 30 s of registrations is written (from its --pprof-listen).
	CPUProfile string
	Progress   io.Writer
}

// CoordinatorResult is what the coordinator sustained.
type CoordinatorResult struct {
	Edges              int     `json:"edges"`
	ShardsPerEdge      int     `json:"shards_per_edge"`
	InventoryShards    int64   `json:"inventory_shards"`
	CatalogueSegments  int     `json:"catalogue_segments"`
	HeartbeatIntervalS float64 `json:"heartbeat_interval_s"`
	RegisterSeconds    float64 `json:"register_seconds"`
	RegistrationsPerS  float64 `json:"registrations_per_s"` // register + full-inventory heartbeat, per edge
	RegisterErrors     int64   `json:"register_errors"`
	HeartbeatsOffered  float64 `json:"heartbeats_offered_per_s"` // Edges / Heartbeat
	HeartbeatsPerS     float64 `json:"heartbeats_per_s"`         // acknowledged
	HeartbeatErrors    int64   `json:"heartbeat_errors"`
	ReRegistrations    int64   `json:"re_registrations"` // edges the coordinator forgot (missed heartbeats) and that registered again
	HeartbeatP99ms     float64 `json:"heartbeat_p99_ms"`
	HeartbeatLagP99ms  float64 `json:"heartbeat_lag_p99_ms"` // how late past its due time a heartbeat left
	Lookups            int64   `json:"lookups"`
	LookupErrors       int64   `json:"lookup_errors"`
	LookupsPerS        float64 `json:"lookups_per_s"`
	LookupP50ms        float64 `json:"lookup_p50_ms"`
	LookupP99ms        float64 `json:"lookup_p99_ms"`
	AliveEdgesAtEnd    int     `json:"alive_edges_at_end"`
	// The coordinator's CPU (user + system): on a shared machine a rate
	// measures the machine, this measures the coordinator. Cores are CPU
	// seconds per wall second in each phase; CPUPerHeartbeatMS is all of
	// its CPU in the heartbeats-alone phase over the heartbeats in it, so
	// it includes the background work (placement every 2 s, sweeps, GC)
	// and bounds a heartbeat's cost from above.
	CoresRegistering    float64 `json:"coordinator_cores_registering"`
	CoresHeartbeats     float64 `json:"coordinator_cores_heartbeats_alone"`
	CoresWithLookups    float64 `json:"coordinator_cores_heartbeats_and_lookups"`
	CPUPerHeartbeatMS   float64 `json:"coordinator_cpu_ms_per_heartbeat_upper_bound"`
	RSSAfterRegisterMB  float64 `json:"coordinator_rss_after_register_mb"`
	RSSAtEndMB          float64 `json:"coordinator_rss_at_end_mb"`
	PeakRSSMB           float64 `json:"coordinator_peak_rss_mb"`
	BytesPerInventoryEl float64 `json:"coordinator_bytes_per_inventory_shard"` // (RSS after register − RSS before) / inventory shards
	// The coordinator's live heap after a forced collection (its
	// /debug/pprof/heap?gc=1), after registration: RSS also counts the
	// garbage a collector at GOGC=100 lets grow to the live heap's size.
	HeapAfterRegisterMB float64 `json:"coordinator_live_heap_after_register_mb"`
	HeapPerInventoryEl  float64 `json:"coordinator_live_heap_bytes_per_inventory_shard"` // (heap after register − heap before) / inventory shards
	// CPU per registration: the coordinator's CPU while edges registered
	// (the heartbeats of edges already registered included) over the
	// edges, and the same per inventory shard.
	CPUPerRegistrationMS float64 `json:"coordinator_cpu_ms_per_registration"`
	CPUPerShardUS        float64 `json:"coordinator_cpu_us_per_inventory_shard"`
}

// syntheticEdge is one edge of the load process: its signing client and
// the segments it holds, packed as (video << segmentBits | segment) with
// the shard index kept beside (one shard per segment, as placement
// assigns): 5 bytes per held shard, so 10^5 edges × 2,000 shards fit the
// load process in 1 GB.
type syntheticEdge struct {
	client *wire.CoordinatorClient
	id     wire.NodeID
	held   []uint32
	shard  []uint8
	rng    *rand.Rand
}

// segmentBits is the bits of a held entry that number the segment.
const segmentBits = 20

// Coordinator starts a real `swarmcast coordinator` process on loopback
// with a synthetic catalogue, registers Edges signed edges with full
// inventories, then has every edge heartbeat at the coordinator's interval
// with inventory deltas while LookupClients issue lookups, and reports the
// rates, latencies and the coordinator's resident memory. The load process
// shares the cores with the coordinator: rates are lower bounds.
func Coordinator(ctx context.Context, opt CoordinatorOptions) (CoordinatorResult, error) {
	var res CoordinatorResult
	binary, dir, cleanup, err := prepare(opt.Binary, opt.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	opt.Binary, opt.Dir = binary, dir
	res.Edges, res.ShardsPerEdge, res.HeartbeatIntervalS = opt.Edges, opt.ShardsPerEdge, opt.Heartbeat.Seconds()
	res.CatalogueSegments = opt.Videos * opt.Segments
	if opt.Segments >= 1<<segmentBits || opt.Videos >= 1<<(32-segmentBits) {
		return res, fmt.Errorf("%d videos of %d segments: the bench numbers at most %d videos of %d segments", opt.Videos, opt.Segments, 1<<(32-segmentBits)-1, 1<<segmentBits-1)
	}
	if opt.ShardsPerEdge > res.CatalogueSegments {
		return res, fmt.Errorf("%d shards per edge from a catalogue of %d segments: an edge holds one shard per segment, so raise --videos or --segments", opt.ShardsPerEdge, res.CatalogueSegments)
	}
	say := func(format string, a ...any) {
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, format+"\n", a...)
		}
	}

	pub, videos, nmax, err := syntheticCatalogue(ctx, dir, opt.Videos, opt.Segments)
	if err != nil {
		return res, err
	}
	// Heartbeat bodies are rendered by hand (appendSet): encoding/json
	// spent more CPU on a 2,000-shard inventory than the coordinator.
	hexIDs := make([]string, len(videos))
	for i, v := range videos {
		hexIDs[i] = v.String()
	}
	addr, err := freePort()
	if err != nil {
		return res, err
	}
	origin := identity.New()
	// Audits are off: the synthetic edges serve no shards (their
	// addresses lead nowhere), so every audit would only time out.
	args := []string{"coordinator", "--listen", addr,
		"--heartbeat", opt.Heartbeat.String(), "--audit-interval", "-1s", "--db", "sqlite:" + filepath.Join(dir, "coordinator.db"), "--origin-key", string(origin.ID)}
	// The pprof listener (loopback) gives the live heap, and the CPU
	// profile when asked for.
	pprofAddr, err := freePort()
	if err != nil {
		return res, err
	}
	args = append(args, "--pprof-listen", pprofAddr)
	cmd := exec.CommandContext(ctx, opt.Binary, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start coordinator: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitHTTP(ctx, base+wire.PathHealth); err != nil {
		return res, fmt.Errorf("coordinator did not come up: %w", err)
	}
	hc := wire.NewHTTPClient()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = opt.Workers + opt.LookupClients
	cc := wire.NewCoordinatorClient(base, hc)
	oc := cc.AsNode(wire.NewNodeSigner(origin.Key, nil))
	if _, err := oc.Register(ctx, wire.RegisterRequest{NodeID: origin.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:1"}); err != nil {
		return res, err
	}
	pub.OriginID = origin.ID
	if err := oc.Publish(ctx, pub); err != nil {
		return res, err
	}
	rssBefore, _ := processRSS(cmd.Process.Pid)
	heapBefore, _ := liveHeapMB(ctx, "http://"+pprofAddr)
	say("coordinator up (%.0f MB) with %d videos of %d segments; building %d edges of %d shards...", rssBefore.rss, opt.Videos, opt.Segments, opt.Edges, opt.ShardsPerEdge)

	edges := make([]*syntheticEdge, opt.Edges)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(5, 6)), 1.1, 1, uint64(opt.Videos-1))
	var zipfMu sync.Mutex
	for i := range edges {
		id := identity.New()
		e := &syntheticEdge{client: cc.AsNode(wire.NewNodeSigner(id.Key, nil)), id: id.ID, rng: rand.New(rand.NewPCG(uint64(i), 9))}
		zipfMu.Lock()
		e.fill(opt.ShardsPerEdge, opt.Segments, nmax, func() uint64 { return zipf.Uint64() })
		zipfMu.Unlock()
		edges[i] = e
		res.InventoryShards += int64(len(e.held))
	}

	// Every worker owns the edges i ≡ w (mod Workers): it registers each
	// (register, then the full-inventory heartbeat every registration
	// sends) and from then on heartbeats it once per interval with a
	// delta, re-registering an edge the coordinator forgot, as
	// wire.NodeSession does. Edges registered first heartbeat while the
	// rest register, so none expires during a long registration. The
	// measured window opens when the last edge has registered and lasts
	// Duration; lookups run in it.
	say("registering %d edges (%d shards in all)...", opt.Edges, res.InventoryShards)
	var regErrs, reRegs, acked atomic.Int64
	var firstErr, firstHBErr atomic.Value
	var registering sync.WaitGroup
	registering.Add(opt.Workers)
	profile := make(chan error, 1)
	if opt.CPUProfile != "" {
		go func() {
			profile <- fetchProfile(ctx, "http://"+pprofAddr+"/debug/pprof/profile", 30*time.Second, opt.CPUProfile)
		}()
	} else {
		profile <- nil
	}
	start := time.Now()
	cpuStart := cpuSeconds(cmd.Process.Pid)
	var windowStart, windowEnd time.Time
	windowOpen := make(chan struct{})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	register := func(i int) bool {
		e := edges[i]
		_, err := e.client.Register(rctx, wire.RegisterRequest{NodeID: e.id, Role: wire.RoleEdge, Addr: fmt.Sprintf("http://127.0.0.1:%d", 1024+i%60000),
			DiskCapBytes: 1 << 31, UploadCapBytes: 10e6 / 8})
		if err == nil {
			_, err = e.client.HeartbeatJSON(rctx, e.full(hexIDs))
		}
		if err != nil && rctx.Err() == nil {
			regErrs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
		return err == nil
	}
	var wg sync.WaitGroup
	var hbLat, hbLag, lkLat []float64
	var hbErrs, lkErrs int64
	var mu sync.Mutex
	for w := 0; w < opt.Workers; w++ {
		wg.Go(func() {
			var lat, lag []float64
			var errs int64
			defer func() {
				mu.Lock()
				hbLat, hbLag, hbErrs = append(hbLat, lat...), append(hbLag, lag...), hbErrs+errs
				mu.Unlock()
			}()
			// queue holds this worker's registered edges in the order they
			// last reached the coordinator, so its head is always the next
			// heartbeat due (one interval for all). A due heartbeat goes
			// before the next registration: edges registered first keep
			// heartbeating while the rest register, as real ones would.
			type sent struct {
				edge int
				at   time.Time
			}
			var queue []sent
			next := w // next edge of this worker to register
			if next >= len(edges) {
				registering.Done()
			}
			defer func() {
				if next < len(edges) { // cut short: still counted as done
					registering.Done()
				}
			}()
			for rctx.Err() == nil {
				if next < len(edges) && (len(queue) == 0 || time.Until(queue[0].at.Add(opt.Heartbeat)) > 0) {
					register(next)
					queue = append(queue, sent{next, time.Now()})
					if next += opt.Workers; next >= len(edges) {
						registering.Done()
					}
					continue
				}
				head := queue[0]
				queue = queue[1:]
				due := head.at.Add(opt.Heartbeat)
				if d := time.Until(due); d > 0 {
					select {
					case <-rctx.Done():
						return
					case <-time.After(d):
					}
				}
				at := time.Now()
				i := head.edge
				resp, err := edges[i].client.HeartbeatJSON(rctx, edges[i].delta(hexIDs, opt.DeltaShards, opt.Segments, nmax))
				if err == nil && resp.Unknown {
					reRegs.Add(1)
					register(i)
					queue = append(queue, sent{i, time.Now()})
					continue
				}
				queue = append(queue, sent{i, at})
				if err == nil {
					acked.Add(1)
				}
				select {
				case <-windowOpen:
				default:
					continue // before the window: not measured
				}
				if err != nil {
					if rctx.Err() == nil {
						errs++
						firstHBErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				lat = append(lat, ms(time.Since(at)))
				lag = append(lag, ms(at.Sub(due)))
			}
		})
	}
	registering.Wait()
	res.RegisterSeconds = time.Since(start).Seconds()
	res.RegistrationsPerS = float64(opt.Edges) / res.RegisterSeconds
	res.RegisterErrors = regErrs.Load()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.RegisterErrors > 0 {
		say("%d registrations failed, first: %v", res.RegisterErrors, firstErr.Load())
	}
	rssReg, _ := processRSS(cmd.Process.Pid)
	res.RSSAfterRegisterMB = rssReg.rss
	if res.InventoryShards > 0 {
		res.BytesPerInventoryEl = (rssReg.rss - rssBefore.rss) * (1 << 20) / float64(res.InventoryShards)
	}
	say("registered in %.1f s (%.0f/s); coordinator RSS %.0f MB; measuring heartbeats at %s with lookups for %s...", res.RegisterSeconds, res.RegistrationsPerS, rssReg.rss, opt.Heartbeat, opt.Duration)
	// CPU per registration: the coordinator's CPU time while edges
	// registered, less what the heartbeats of the registered ones cost
	// (measured next, with heartbeats alone, for half the window).
	cpuReg := cpuSeconds(cmd.Process.Pid)
	hbDuringReg := acked.Load()
	res.CPUPerRegistrationMS = 1000 * (cpuReg - cpuStart) / float64(opt.Edges)
	if res.InventoryShards > 0 {
		res.CPUPerShardUS = 1e6 * (cpuReg - cpuStart) / float64(res.InventoryShards)
	}
	if heap, err := liveHeapMB(ctx, "http://"+pprofAddr); err == nil {
		res.HeapAfterRegisterMB = heap
		if res.InventoryShards > 0 {
			res.HeapPerInventoryEl = (heap - heapBefore) * (1 << 20) / float64(res.InventoryShards)
		}
	}
	windowStart = time.Now()
	close(windowOpen)
	select {
	case <-rctx.Done():
		return res, rctx.Err()
	case <-time.After(opt.Duration / 2):
	}
	cpuHB := cpuSeconds(cmd.Process.Pid)
	hbAlone := acked.Load() - hbDuringReg
	if hbAlone > 0 {
		res.CPUPerHeartbeatMS = 1000 * (cpuHB - cpuReg) / float64(hbAlone)
	}
	res.CoresRegistering = (cpuReg - cpuStart) / res.RegisterSeconds
	res.CoresHeartbeats = (cpuHB - cpuReg) / time.Since(windowStart).Seconds()
	say("heartbeats alone: %.0f/s, %.3f ms of coordinator CPU each; lookups join for %s...", float64(hbAlone)/time.Since(windowStart).Seconds(), res.CPUPerHeartbeatMS, opt.Duration/2)
	lctx, lcancel := context.WithTimeout(rctx, opt.Duration/2)
	defer lcancel()
	var lookups sync.WaitGroup
	for w := 0; w < opt.LookupClients; w++ {
		lookups.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			popular := rand.NewZipf(r, 1.1, 1, uint64(len(videos)-1))
			var lat []float64
			var errs int64
			for lctx.Err() == nil {
				// Viewers pick titles as edges do: Zipf-popular.
				v := videos[popular.Uint64()]
				body := fmt.Sprintf(`{"video":%q,"rendition":0,"from":%d,"count":%d}`, v, r.IntN(opt.Segments-opt.Window+1), opt.Window)
				t0 := time.Now()
				if err := postLookup(lctx, hc, base, body, ""); err != nil {
					if lctx.Err() == nil {
						errs++
					}
					continue
				}
				lat = append(lat, ms(time.Since(t0)))
			}
			mu.Lock()
			lkLat, lkErrs = append(lkLat, lat...), lkErrs+errs
			mu.Unlock()
		})
	}
	lookups.Wait()
	windowEnd = time.Now()
	cpuEnd := cpuSeconds(cmd.Process.Pid)
	cancel()
	wg.Wait()
	secs := windowEnd.Sub(windowStart).Seconds()
	res.HeartbeatsOffered = float64(opt.Edges) / opt.Heartbeat.Seconds()
	res.HeartbeatsPerS = float64(len(hbLat)) / secs
	res.HeartbeatErrors = hbErrs
	res.ReRegistrations = reRegs.Load()
	if hbErrs > 0 {
		say("%d heartbeats failed, first: %v", hbErrs, firstHBErr.Load())
	}
	res.HeartbeatP99ms = percentile(hbLat, 99)
	res.HeartbeatLagP99ms = percentile(hbLag, 99)
	res.Lookups, res.LookupErrors = int64(len(lkLat)), lkErrs
	res.LookupsPerS = float64(len(lkLat)) / (secs / 2)
	res.CoresWithLookups = (cpuEnd - cpuHB) / (secs / 2)
	res.LookupP50ms, res.LookupP99ms = percentile(lkLat, 50), percentile(lkLat, 99)
	if st, err := cc.Stats(ctx); err == nil {
		res.AliveEdgesAtEnd = st.AliveEdges
	}
	end, err := processRSS(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.RSSAtEndMB, res.PeakRSSMB = end.rss, end.hwm
	if err := <-profile; err != nil {
		return res, fmt.Errorf("coordinator CPU profile: %w", err)
	}
	return res, nil
}

// fill draws n distinct segments as runs of 30–300 consecutive segments of
// Zipf-popular titles, one random shard index each.
func (e *syntheticEdge) fill(n, segments, nmax int, video func() uint64) {
	seen := make(map[uint32]bool, n)
	e.held, e.shard = make([]uint32, 0, n), make([]uint8, 0, n)
	for len(e.held) < n {
		v := uint32(video())
		run := min(segments, 30+e.rng.IntN(271), n-len(e.held))
		from := e.rng.IntN(segments - run + 1)
		for s := from; s < from+run && len(e.held) < n; s++ {
			k := v<<segmentBits | uint32(s)
			if !seen[k] {
				seen[k] = true
				e.held = append(e.held, k)
				e.shard = append(e.shard, uint8(e.rng.IntN(nmax)))
			}
		}
	}
}

// appendSet appends held entry i as a wire.ShardSet in JSON.
func (e *syntheticEdge) appendSet(b []byte, videos []string, i int) []byte {
	k := e.held[i]
	b = append(b, `{"video":"`...)
	b = append(b, videos[k>>segmentBits]...)
	b = append(b, `","rendition":0,"segment":`...)
	b = strconv.AppendUint(b, uint64(k&(1<<segmentBits-1)), 10)
	b = append(b, `,"shards":[`...)
	b = strconv.AppendUint(b, uint64(e.shard[i]), 10)
	return append(b, "]}"...)
}

// heartbeatHead starts a heartbeat body.
func (e *syntheticEdge) heartbeatHead(b []byte) []byte {
	b = append(b, `{"node_id":"`...)
	b = append(b, e.id...)
	return append(b, '"')
}

// heartbeatTail ends a heartbeat body.
func (e *syntheticEdge) heartbeatTail(b []byte, served int64) []byte {
	b = append(b, `,"used_bytes":`...)
	b = strconv.AppendInt(b, int64(len(e.held))<<17, 10)
	b = append(b, `,"served_bytes":`...)
	b = strconv.AppendInt(b, served, 10)
	return append(b, '}')
}

// full is the heartbeat of a fresh registration: the whole inventory, as
// a JSON wire.HeartbeatRequest.
func (e *syntheticEdge) full(videos []string) []byte {
	b := make([]byte, 0, 160+len(e.held)*112)
	b = e.heartbeatHead(b)
	b = append(b, `,"full":true,"added":[`...)
	for i := range e.held {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.appendSet(b, videos, i)
	}
	b = append(b, ']')
	return e.heartbeatTail(b, 0)
}

// delta evicts n random held segments and adds the n segments following
// the edge's newest run (its player watching on), as a full disk does,
// and returns the heartbeat that says so (JSON). The added segment may
// already be held (a run that met an older one); the coordinator takes
// that add as a no-op, so its inventory can end a few shards smaller than
// the load process's count, never larger.
func (e *syntheticEdge) delta(videos []string, n, segments, nmax int) []byte {
	b := make([]byte, 0, 256+2*n*112)
	b = e.heartbeatHead(b)
	var added []int // held entries added (indices are stable below)
	b = append(b, `,"removed":[`...)
	for j := 0; j < n && len(e.held) > 1; j++ {
		i := e.rng.IntN(len(e.held) - 1)
		if j > 0 {
			b = append(b, ',')
		}
		b = e.appendSet(b, videos, i)
		last := len(e.held) - 1
		next := e.held[last] + 1
		if int(next&(1<<segmentBits-1)) >= segments {
			next = e.held[last] &^ (1<<segmentBits - 1)
		}
		// The evicted slot takes the newest run's last segment and the new
		// one goes last, so held stays distinct unless next was held.
		e.held[i], e.shard[i] = e.held[last], e.shard[last]
		e.held[last], e.shard[last] = next, uint8(e.rng.IntN(nmax))
		added = append(added, int(e.held[last]), int(e.shard[last]))
	}
	b = append(b, `],"added":[`...)
	for j := 0; j < len(added); j += 2 {
		if j > 0 {
			b = append(b, ',')
		}
		k := uint32(added[j])
		b = append(b, `{"video":"`...)
		b = append(b, videos[k>>segmentBits]...)
		b = append(b, `","rendition":0,"segment":`...)
		b = strconv.AppendUint(b, uint64(k&(1<<segmentBits-1)), 10)
		b = append(b, `,"shards":[`...)
		b = strconv.AppendUint(b, uint64(added[j+1]), 10)
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	return e.heartbeatTail(b, int64(e.rng.IntN(1<<20)))
}

// syntheticCatalogue ingests videos titles of segments tiny segments each
// (the bench needs manifests, not bytes: one 188-byte MPEG-TS null packet
// per segment) and returns the publish body, their ids and n_max.
func syntheticCatalogue(ctx context.Context, dir string, videos, segments int) (wire.PublishRequest, []content.VideoID, int, error) {
	var pub wire.PublishRequest
	store, err := content.OpenStore(filepath.Join(dir, "publisher"))
	if err != nil {
		return pub, nil, 0, err
	}
	ids := make([]content.VideoID, 0, videos)
	nmax := 0
	for v := 0; v < videos; v++ {
		hls := filepath.Join(dir, "hls", strconv.Itoa(v))
		if err := os.MkdirAll(hls, 0o755); err != nil {
			return pub, nil, 0, err
		}
		packet := make([]byte, 188)
		packet[0], packet[1], packet[2], packet[3] = 0x47, 0x1f, 0xff, 0x10
		packet[4] = byte(v) // distinct titles have distinct bytes
		if err := os.WriteFile(filepath.Join(hls, "s.ts"), packet, 0o644); err != nil {
			return pub, nil, 0, err
		}
		var pl strings.Builder
		pl.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n")
		for s := 0; s < segments; s++ {
			pl.WriteString("#EXTINF:2.0,\ns.ts\n")
		}
		pl.WriteString("#EXT-X-ENDLIST\n")
		if err := os.WriteFile(filepath.Join(hls, "index.m3u8"), []byte(pl.String()), 0o644); err != nil {
			return pub, nil, 0, err
		}
		id, err := store.Ingest(ctx, hls, content.IngestOptions{Title: fmt.Sprintf("synthetic %d", v)})
		if err != nil {
			return pub, nil, 0, fmt.Errorf("synthetic title %d: %w", v, err)
		}
		m, _ := store.Manifest(id)
		key, _ := store.ContentKey(id)
		pub.Videos = append(pub.Videos, wire.PublishedVideo{Manifest: m.Encode(), Key: key[:]})
		ids = append(ids, id)
		nmax = m.Params.NMax
	}
	return pub, ids, nmax, nil
}

// liveHeapMB is the coordinator's live heap (MiB) right after a forced
// collection: HeapAlloc of its /debug/pprof/heap?gc=1 text form.
func liveHeapMB(ctx context.Context, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			b, err := strconv.ParseFloat(v, 64)
			return b / (1 << 20), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no HeapAlloc in the heap profile")
}

// cpuSeconds is process pid's user + system CPU time in seconds, 0 where
// it cannot be read (the CPU columns then read 0).
func cpuSeconds(pid int) float64 {
	d, err := processCPU(pid)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

type rssSample struct{ rss, hwm float64 } // MiB

// processRSS reads a process's resident and peak resident memory from
// /proc (Linux).
func processRSS(pid int) (rssSample, error) {
	var s rssSample
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("coordinator memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		switch name {
		case "VmRSS":
			s.rss = kb / 1024
		case "VmHWM":
			s.hwm = kb / 1024
		}
	}
	return s, sc.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile of unsorted xs (sorts them); 0 when empty.
func percentile(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, len(xs)*p/100)]
}
