package loadbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/wire"
)

// LookupOptions configure the coordinator lookup benchmark.
type LookupOptions struct {
	Binary      string        // swarmcast binary (default: this executable)
	Edges       int           // registered edges (default 200)
	Videos      int           // catalogue size (default 20)
	Window      int           // segments per lookup (default 8)
	Concurrency int           // parallel clients (default 32)
	Duration    time.Duration // measured run (default 10s)
	// Viewers is the number of player keys bound to one signed-in account
	// entitled to every (free) video; each lookup names one of them, so
	// every answer carries one signed order limit per edge it lists, as a
	// real player's does. 0 sends anonymous lookups (no limits).
	Viewers  int
	Dir      string
	Progress io.Writer
	// Wrk drives the load with wrk (a C load generator, Debian package
	// wrk) instead of Go clients: it needs far less CPU per request, so
	// more of the shared cores go to the coordinator.
	Wrk bool
	// JSON asks for JSON answers instead of the binary ones
	// (wire.ContentTypeLookupBinary) that swarmcast players ask for.
	JSON bool
	// CPUProfile, if set, is where the coordinator's CPU profile over the
	// measured run is written (fetched from its --pprof-listen port).
	CPUProfile string
	// Trace, if set, is where the coordinator's runtime/trace of the
	// measured run is written (go tool trace FILE): what ran while a slow
	// lookup waited.
	Trace string
	// CoordinatorLog, if set, is a file that gets the coordinator's
	// stderr (its log, and the runtime's lines under GODEBUG=gctrace=1,
	// which the coordinator inherits from this process's environment).
	CoordinatorLog string
}

// LookupResult is the measured rate and latency.
type LookupResult struct {
	Edges       int   `json:"edges"`
	Videos      int   `json:"videos"`
	Window      int   `json:"window"`
	Concurrency int   `json:"concurrency"`
	Viewers     int   `json:"viewers"`
	Lookups     int64 `json:"lookups"`
	Errors      int64 `json:"errors"`
	// LimitsPerLookup and ResponseBytes are means over the last warm-up
	// pass (every request body once, answers decoded).
	LimitsPerLookup float64 `json:"limits_per_lookup"`
	ResponseBytes   float64 `json:"response_bytes"`
	// WarmPasses is how many passes over the bodies it took for the
	// limit cache to settle (see warmLookups).
	WarmPasses int     `json:"warm_passes"`
	PerSecond  float64 `json:"lookups_per_s"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	// P90ms, P999ms and MaxMs describe the tail beyond p99 (wrk only: the
	// Go generator leaves them 0).
	P90ms  float64 `json:"p90_ms,omitempty"`
	P999ms float64 `json:"p999_ms,omitempty"`
	MaxMs  float64 `json:"max_ms,omitempty"`
	// CoordinatorCPUus and GeneratorCPUus are the CPU time (user+system)
	// the coordinator process and the load generator spent per lookup over
	// the measured run, in microseconds (Linux only; 0 elsewhere). On a
	// shared, busy machine they say more than the rate: CPUBoundPerSecond
	// is the rate the two would reach together on Cores otherwise idle
	// cores, Cores·10^6 / (coordinator + generator µs per lookup).
	CoordinatorCPUus  float64 `json:"coordinator_cpu_us_per_lookup"`
	GeneratorCPUus    float64 `json:"generator_cpu_us_per_lookup"`
	Cores             int     `json:"cores"`
	CPUBoundPerSecond float64 `json:"cpu_bound_lookups_per_s"`
	Generator         string  `json:"load_generator"`
	Encoding          string  `json:"encoding"` // of the answers: "binary" or "json"
}

// lookupBodies is how many distinct request bodies the load cycles through.
const lookupBodies = 512

// Lookup starts a real `swarmcast coordinator` process on loopback, gives
// it a catalogue and Edges edges whose inventories cover every segment
// (each edge holds one shard of a random third of the segments), and
// Viewers player keys of a signed-in account; it then sends the request
// bodies until the order-limit cache is warm (warmLookups) and drives POST /api/v1/lookup from Concurrency clients for Duration.
// The load generator shares the machine's cores with the coordinator, as
// a real deployment's proxies would not: the figure is a lower bound.
func Lookup(ctx context.Context, opt LookupOptions) (LookupResult, error) {
	var res LookupResult
	if opt.Edges <= 0 {
		opt.Edges = 200
	}
	if opt.Videos <= 0 {
		opt.Videos = 20
	}
	if opt.Window <= 0 {
		opt.Window = 8
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 32
	}
	if opt.Duration <= 0 {
		opt.Duration = 10 * time.Second
	}
	opt.Viewers = max(opt.Viewers, 0)
	binary, dir, cleanup, err := prepare(opt.Binary, opt.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	opt.Binary, opt.Dir = binary, dir
	res.Edges, res.Videos, res.Window, res.Concurrency, res.Viewers = opt.Edges, opt.Videos, opt.Window, opt.Concurrency, opt.Viewers
	res.Encoding = "binary"
	if opt.JSON {
		res.Encoding = "json"
	}

	// Catalogue: the sample under Videos titles.
	store, err := content.OpenStore(filepath.Join(opt.Dir, "publisher"))
	if err != nil {
		return res, err
	}
	hls := filepath.Join(opt.Dir, "hls")
	if err := sample.WriteHLS(hls); err != nil {
		return res, err
	}
	var pub wire.PublishRequest
	var manifests []*content.Manifest
	for i := 0; i < opt.Videos; i++ {
		id, err := store.Ingest(ctx, hls, content.IngestOptions{Title: fmt.Sprintf("bench %d", i)})
		if err != nil {
			return res, err
		}
		m, _ := store.Manifest(id)
		key, _ := store.ContentKey(id)
		pub.Videos = append(pub.Videos, wire.PublishedVideo{Manifest: m.Encode(), Key: key[:]})
		manifests = append(manifests, m)
	}

	addr, err := freePort()
	if err != nil {
		return res, err
	}
	origin := identity.New()
	args := []string{"coordinator", "--listen", addr, "--heartbeat", "1h", "--audit-interval", "-1s",
		"--db", "sqlite:" + filepath.Join(opt.Dir, "coordinator.db"), "--origin-key", string(origin.ID)}
	pprofAddr := ""
	if opt.CPUProfile != "" || opt.Trace != "" {
		if pprofAddr, err = freePort(); err != nil {
			return res, err
		}
		args = append(args, "--pprof-listen", pprofAddr)
	}
	cmd := exec.CommandContext(ctx, opt.Binary, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if opt.CoordinatorLog != "" {
		logFile, err := os.Create(opt.CoordinatorLog)
		if err != nil {
			return res, fmt.Errorf("coordinator log: %w", err)
		}
		defer logFile.Close()
		cmd.Stderr = logFile
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start coordinator: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitHTTP(ctx, base+wire.PathHealth); err != nil {
		return res, fmt.Errorf("coordinator did not come up: %w", err)
	}
	cc := wire.NewCoordinatorClient(base, nil)

	oc := cc.AsNode(wire.NewNodeSigner(origin.Key, nil))
	if _, err := oc.Register(ctx, wire.RegisterRequest{NodeID: origin.ID, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:1"}); err != nil {
		return res, err
	}
	pub.OriginID = origin.ID
	if err := oc.Publish(ctx, pub); err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for e := 0; e < opt.Edges; e++ {
		id := identity.New()
		ec := cc.AsNode(wire.NewNodeSigner(id.Key, nil))
		if _, err := ec.Register(ctx, wire.RegisterRequest{NodeID: id.ID, Role: wire.RoleEdge, Addr: fmt.Sprintf("http://127.0.0.1:%d", 20000+e)}); err != nil {
			return res, err
		}
		hb := wire.HeartbeatRequest{NodeID: id.ID, Full: true}
		for _, m := range manifests {
			r := len(m.Renditions) - 1
			for s := range m.Renditions[r].Segments {
				if rng.IntN(3) == 0 {
					hb.Added = append(hb.Added, wire.NewShardSet(content.SegmentRef{Video: m.ID(), Rendition: r, Segment: s}, []int{rng.IntN(m.Params.NMax)}))
				}
			}
		}
		if _, err := ec.Heartbeat(ctx, hb); err != nil {
			return res, err
		}
	}
	viewers, err := bindViewers(ctx, base, opt.Viewers)
	if err != nil {
		return res, err
	}
	bodies := lookupRequestBodies(manifests, viewers, opt.Window)
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "coordinator up with %d videos, %d edges and %d viewer keys; warming up...\n", opt.Videos, opt.Edges, opt.Viewers)
	}
	if err := warmLookups(ctx, base, bodies, accept(opt), &res); err != nil {
		return res, err
	}
	if opt.Viewers > 0 && res.LimitsPerLookup == 0 {
		return res, errors.New("lookups from bound viewer keys carried no order limits")
	}
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "limit cache warm after %d passes; answers carry %.1f order limits and %.0f bytes on average; driving lookups for %s...\n", res.WarmPasses, res.LimitsPerLookup, res.ResponseBytes, opt.Duration)
	}

	// The profile and the trace cover the measured run but its first and
	// last quarter-second, when the load ramps up and down.
	profile := make(chan error, 2)
	fetches := 0
	if opt.CPUProfile != "" {
		fetches++
		go func() {
			profile <- fetchProfile(ctx, "http://"+pprofAddr+"/debug/pprof/profile", opt.Duration-500*time.Millisecond, opt.CPUProfile)
		}()
	}
	if opt.Trace != "" {
		fetches++
		go func() {
			profile <- fetchProfile(ctx, "http://"+pprofAddr+"/debug/pprof/trace", opt.Duration-500*time.Millisecond, opt.Trace)
		}()
	}
	coordStart, cpuErr := processCPU(cmd.Process.Pid)
	var generatorCPU time.Duration
	if opt.Wrk {
		res, generatorCPU, err = driveWrk(ctx, opt, base, bodies, res)
	} else {
		selfStart, selfErr := processCPU(os.Getpid())
		res, err = driveGo(ctx, opt, base, bodies, res)
		selfEnd, selfErr2 := processCPU(os.Getpid())
		// This process also runs the profile fetch and little else.
		generatorCPU = selfEnd - selfStart
		cpuErr = errors.Join(cpuErr, selfErr, selfErr2)
	}
	coordEnd, cpuErr2 := processCPU(cmd.Process.Pid)
	if err == nil && cpuErr == nil && cpuErr2 == nil && res.Lookups > 0 {
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(res.Lookups) }
		res.CoordinatorCPUus, res.GeneratorCPUus = per(coordEnd-coordStart), per(generatorCPU)
		res.Cores = runtime.NumCPU()
		if sum := res.CoordinatorCPUus + res.GeneratorCPUus; sum > 0 {
			res.CPUBoundPerSecond = float64(res.Cores) * 1e6 / sum
		}
	}
	for range fetches {
		if perr := <-profile; err == nil && perr != nil {
			err = fmt.Errorf("cpu profile or trace: %w", perr)
		}
	}
	return res, err
}

// bindViewers signs up one account and binds n fresh player keys to it.
func bindViewers(ctx context.Context, base string, n int) ([]wire.NodeID, error) {
	if n == 0 {
		return nil, nil
	}
	cc := wire.NewCoordinatorClient(base, nil)
	cred := wire.Credentials{Username: "benchviewer", Password: "bench-viewer-password-1"}
	if _, err := cc.Signup(ctx, cred); err != nil {
		return nil, fmt.Errorf("signup: %w", err)
	}
	login, err := cc.Login(ctx, cred)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	cc.Token = login.Token
	var ids []wire.NodeID
	for range n {
		id := identity.New()
		if err := cc.BindViewer(ctx, id.Key); err != nil {
			return nil, fmt.Errorf("bind viewer key: %w", err)
		}
		ids = append(ids, id.ID)
	}
	return ids, nil
}

// lookupRequestBodies returns lookupBodies JSON lookup requests of window
// segments at random places of random videos, each naming a random viewer
// (none when viewers is empty).
func lookupRequestBodies(manifests []*content.Manifest, viewers []wire.NodeID, window int) []string {
	r := rand.New(rand.NewPCG(3, 4))
	bodies := make([]string, 0, lookupBodies)
	for range lookupBodies {
		m := manifests[r.IntN(len(manifests))]
		rend := len(m.Renditions) - 1
		n := len(m.Renditions[rend].Segments)
		viewer := ""
		if len(viewers) > 0 {
			viewer = fmt.Sprintf(`,"viewer_id":%q`, viewers[r.IntN(len(viewers))])
		}
		bodies = append(bodies, fmt.Sprintf(`{"video":%q,"rendition":%d,"from":%d,"count":%d%s}`, m.ID(), rend, r.IntN(n), window, viewer))
	}
	return bodies
}

// warmLookups sends every body until the coordinator's order-limit cache
// is in its steady state, and records the answers' mean size and number of
// order limits (over the last pass). Lookups rank ties in a random order,
// so a viewer's lookups of one window list different edges each time and
// it collects a limit for every holder within a few lookups; a play's
// steady state is answers made only of cached limits (a limit is signed
// once per viewer, edge and video and reused for 4/5 of its life). Passes
// repeat until one brings fewer than one new limit per 100 lookups, or
// maxWarmPasses.
func warmLookups(ctx context.Context, base string, bodies []string, accept string, res *LookupResult) error {
	const maxWarmPasses = 60
	hc := wire.NewHTTPClient()
	seen := make(map[wire.Serial]bool)
	// Each pass sends the bodies in a fresh order: the coordinator's
	// lookups take turns with its tie-break slots (64, a divisor of
	// lookupBodies), so in a fixed order a body would meet nearly the
	// same slot every pass, and the edges its other slots list, with
	// their limits, only in the measured run.
	order := rand.New(rand.NewPCG(5, 6))
	shuffled := slices.Clone(bodies)
	for pass := 0; pass < maxWarmPasses; pass++ {
		var limits, size, fresh int
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		order.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, body := range shuffled {
			g.Go(func() error {
				lr, n, err := lookupOnce(gctx, hc, base, body, accept)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				limits += len(lr.Limits)
				size += n
				for _, l := range lr.Limits {
					if !seen[l.Serial] {
						seen[l.Serial] = true
						fresh++
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		res.LimitsPerLookup = float64(limits) / float64(len(bodies))
		res.ResponseBytes = float64(size) / float64(len(bodies))
		res.WarmPasses = pass + 1
		if fresh*100 < len(bodies) {
			break
		}
	}
	return nil
}

// accept is the Accept header of the benchmark's lookups.
func accept(opt LookupOptions) string {
	if opt.JSON {
		return "application/json"
	}
	return wire.ContentTypeLookupBinary
}

// lookupOnce posts one lookup body and decodes the answer (JSON or binary,
// as its Content-Type says).
func lookupOnce(ctx context.Context, hc *http.Client, base, body, accept string) (wire.LookupResponse, int, error) {
	var lr wire.LookupResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.PathLookup, strings.NewReader(body))
	if err != nil {
		return lr, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		return lr, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return lr, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return lr, 0, fmt.Errorf("warm-up lookup: status %d: %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Content-Type") == wire.ContentTypeLookupBinary {
		var req wire.LookupRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			return lr, 0, err
		}
		if lr, err = wire.DecodeLookupBinary(b, req.ViewerID, req.Video); err != nil {
			return lr, 0, fmt.Errorf("warm-up lookup: %w", err)
		}
	} else if err := json.Unmarshal(b, &lr); err != nil {
		return lr, 0, fmt.Errorf("warm-up lookup: %w", err)
	}
	if len(lr.Segments) == 0 {
		return lr, 0, fmt.Errorf("warm-up lookup answered no segments: %s", b)
	}
	return lr, len(b), nil
}

// fetchProfile saves what the pprof endpoint at url (a CPU profile or a
// trace) records over the next d.
func fetchProfile(ctx context.Context, endpoint string, d time.Duration, path string) error {
	url := fmt.Sprintf("%s?seconds=%d", endpoint, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return os.WriteFile(path, b, 0o644)
}

// driveGo runs Concurrency Go clients posting random bodies for Duration.
// Bodies are read and discarded, not decoded: decoding a 20 KB JSON answer
// costs the client more CPU than the coordinator spends making it, and
// client and server share the cores here.
func driveGo(ctx context.Context, opt LookupOptions, base string, bodies []string, res LookupResult) (LookupResult, error) {
	res.Generator = "go"
	hc := wire.NewHTTPClient()
	rctx, cancel := context.WithTimeout(ctx, opt.Duration)
	defer cancel()
	var mu sync.Mutex
	var lat []float64
	var errs int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < opt.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var local []float64
			var localErr int64
			for rctx.Err() == nil {
				t0 := time.Now()
				if err := postLookup(rctx, hc, base, bodies[r.IntN(len(bodies))], accept(opt)); err != nil {
					if rctx.Err() == nil {
						localErr++
					}
					continue
				}
				local = append(local, float64(time.Since(t0))/float64(time.Millisecond))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErr
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	res.Lookups, res.Errors = int64(len(lat)), errs
	res.PerSecond = float64(len(lat)) / secs
	if len(lat) > 0 {
		res.P50ms = lat[len(lat)/2]
		res.P99ms = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return res, nil
}

// ErrNoWrk is returned by Lookup with Wrk set when wrk is not on PATH.
var ErrNoWrk = errors.New("wrk not found: install it (apt-get install wrk) or use the Go load generator")

// driveWrk runs wrk with a Lua script that posts random bodies.
// It returns the CPU time wrk used.
func driveWrk(ctx context.Context, opt LookupOptions, base string, bodies []string, res LookupResult) (LookupResult, time.Duration, error) {
	res.Generator = "wrk"
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return res, 0, ErrNoWrk
	}
	quoted := make([]string, len(bodies))
	for i, b := range bodies {
		quoted[i] = strconv.Quote(b)
	}
	// The requests are formatted once, in init (each wrk thread runs its
	// own script): request() only picks one, so wrk spends its CPU on
	// HTTP, not on building strings in Lua per request.
	script := "bodies = {" + strings.Join(quoted, ",") + "}\n" +
		"wrk.method = \"POST\"\n" +
		"wrk.headers[\"Content-Type\"] = \"application/json\"\n" +
		"wrk.headers[\"Accept\"] = \"" + accept(opt) + "\"\n" +
		"requests = {}\n" +
		"init = function(args) for i, b in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, b) end end\n" +
		"request = function() return requests[math.random(#requests)] end\n" +
		"done = function(summary, latency, requests)\n" +
		"  io.write(string.format(\"RESULT %d %d %f %f %f %f %f %f\\n\", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(90) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))\n" +
		"end\n"
	file := filepath.Join(opt.Dir, "lookup.lua")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return res, 0, err
	}
	wrk := exec.CommandContext(ctx, bin, "-t2", fmt.Sprintf("-c%d", opt.Concurrency),
		fmt.Sprintf("-d%ds", max(1, int(opt.Duration.Seconds()))), "-s", file, base+wire.PathLookup)
	out, err := wrk.Output()
	if err != nil {
		return res, 0, fmt.Errorf("wrk: %w", err)
	}
	cpu := wrk.ProcessState.UserTime() + wrk.ProcessState.SystemTime()
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var secs float64
			if _, err := fmt.Sscanf(rest, "%d %d %f %f %f %f %f %f", &res.Lookups, &res.Errors, &secs, &res.P50ms, &res.P99ms, &res.P90ms, &res.P999ms, &res.MaxMs); err != nil {
				return res, 0, fmt.Errorf("parse wrk output %q: %w", line, err)
			}
			res.PerSecond = float64(res.Lookups) / secs
			return res, cpu, nil
		}
	}
	return res, 0, fmt.Errorf("wrk printed no result: %s", out)
}

// postLookup sends one lookup body to the coordinator at base and reads the
// whole answer; any status but 200 is an error. accept may be empty.
func postLookup(ctx context.Context, hc *http.Client, base, body, accept string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.PathLookup, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
