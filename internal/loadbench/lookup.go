package loadbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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
	Dir         string
	Progress    io.Writer
	// Wrk drives the load with wrk (a C load generator, Debian package
	// wrk) instead of Go clients: it needs far less CPU per request, so
	// more of the shared cores go to the coordinator.
	Wrk bool
}

// LookupResult is the measured rate and latency.
type LookupResult struct {
	Edges       int     `json:"edges"`
	Videos      int     `json:"videos"`
	Window      int     `json:"window"`
	Concurrency int     `json:"concurrency"`
	Lookups     int64   `json:"lookups"`
	Errors      int64   `json:"errors"`
	PerSecond   float64 `json:"lookups_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Generator   string  `json:"load_generator"`
}

// Lookup starts a real `swarmcast coordinator` process on loopback, gives
// it a catalogue and Edges edges whose inventories cover every segment
// (each edge holds one shard of a random third of the segments), and
// drives POST /api/v1/lookup from Concurrency clients in this process. The
// load generator shares the machine's cores with the coordinator, as a
// real deployment's proxies would not: the figure is a lower bound.
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
	binary, dir, cleanup, err := prepare(opt.Binary, opt.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	opt.Binary, opt.Dir = binary, dir
	res.Edges, res.Videos, res.Window, res.Concurrency = opt.Edges, opt.Videos, opt.Window, opt.Concurrency

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
	args := []string{"coordinator", "--listen", addr, "--heartbeat", "1h", "--db", "sqlite:" + filepath.Join(opt.Dir, "coordinator.db"), "--origin-key", string(origin.ID)}
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
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "coordinator up with %d videos and %d edges; driving lookups for %s...\n", opt.Videos, opt.Edges, opt.Duration)
	}

	if opt.Wrk {
		return driveWrk(ctx, opt, base, manifests, res)
	}
	res.Generator = "go"
	// Drive.
	// Bodies are read and discarded, not decoded: decoding a 20 KB JSON
	// answer costs the client more CPU than the coordinator spends making
	// it, and client and server share the cores here.
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
				m := manifests[r.IntN(len(manifests))]
				rend := len(m.Renditions) - 1
				n := len(m.Renditions[rend].Segments)
				body := fmt.Sprintf(`{"video":%q,"rendition":%d,"from":%d,"count":%d}`, m.ID(), rend, r.IntN(n), opt.Window)
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(rctx, http.MethodPost, base+wire.PathLookup, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
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

// driveWrk runs wrk with a Lua script that posts random lookups.
func driveWrk(ctx context.Context, opt LookupOptions, base string, manifests []*content.Manifest, res LookupResult) (LookupResult, error) {
	res.Generator = "wrk"
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return res, ErrNoWrk
	}
	var bodies []string
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 512; i++ {
		m := manifests[r.IntN(len(manifests))]
		rend := len(m.Renditions) - 1
		n := len(m.Renditions[rend].Segments)
		bodies = append(bodies, fmt.Sprintf("%q", fmt.Sprintf(`{"video":%q,"rendition":%d,"from":%d,"count":%d}`, m.ID(), rend, r.IntN(n), opt.Window)))
	}
	script := "bodies = {" + strings.Join(bodies, ",") + "}\n" +
		"wrk.method = \"POST\"\n" +
		"wrk.headers[\"Content-Type\"] = \"application/json\"\n" +
		"request = function() return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end\n" +
		"done = function(summary, latency, requests)\n" +
		"  io.write(string.format(\"RESULT %d %d %f %f %f\\n\", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))\n" +
		"end\n"
	file := filepath.Join(opt.Dir, "lookup.lua")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return res, err
	}
	out, err := exec.CommandContext(ctx, bin, "-t2", fmt.Sprintf("-c%d", opt.Concurrency),
		fmt.Sprintf("-d%ds", max(1, int(opt.Duration.Seconds()))), "-s", file, base+wire.PathLookup).Output()
	if err != nil {
		return res, fmt.Errorf("wrk: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var secs float64
			if _, err := fmt.Sscanf(rest, "%d %d %f %f %f", &res.Lookups, &res.Errors, &secs, &res.P50ms, &res.P99ms); err != nil {
				return res, fmt.Errorf("parse wrk output %q: %w", line, err)
			}
			res.PerSecond = float64(res.Lookups) / secs
			return res, nil
		}
	}
	return res, fmt.Errorf("wrk printed no result: %s", out)
}
