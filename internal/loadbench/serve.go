// Package loadbench measures Swarmcast's servers under load against a reference in the same run: an edge or an origin against nginx serving the same bytes.
package loadbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/wire"
)

// Roles Serve can measure against nginx.
const (
	RoleEdge   = "edge"
	RoleOrigin = "origin"
)

// ServeOptions configure the shard-server-versus-nginx benchmark.
type ServeOptions struct {
	Role        string        // RoleEdge (default) or RoleOrigin: which swarmcast server is measured
	Binary      string        // the swarmcast binary to run as the edge or origin (default: this executable)
	Nginx       string        // nginx binary (default: "nginx" on PATH, else /usr/sbin/nginx)
	Concurrency int           // parallel client connections (default 16)
	Duration    time.Duration // per measured run (default 5s)
	Rounds      int           // alternating nginx/swarmcast rounds (default 3)
	Dir         string        // scratch directory (default: a temp dir, removed after)
	// NginxWorkers is nginx's worker_processes (default 2: one per core
	// of the machine the figures were taken on, what "auto" gives there).
	NginxWorkers int
	// ServerProcs, when > 0, runs the swarmcast server with GOMAXPROCS set
	// to it (to compare it with nginx at the same number of workers); 0
	// leaves the server's own default.
	ServerProcs int
	Progress    io.Writer // one line per run, may be nil
}

// ServeRun is one measured run against one server.
type ServeRun struct {
	Server   string  `json:"server"` // "nginx", "edge" or "origin"
	Requests int64   `json:"requests"`
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	MBps     float64 `json:"mb_per_s"`
	Errors   int64   `json:"errors"`
	// CPUMicros is the server's CPU time (user + system, all its
	// processes) per request in µs during the run: unlike MB/s it hardly
	// depends on what else the machine runs. 0 where it cannot be read.
	CPUMicros float64 `json:"server_cpu_us_per_request"`
	// Wakeups is how many times per request the scheduler put one of the
	// server's threads on a CPU (schedstat timeslices): the context
	// switches an event loop saves. 0 where it cannot be read.
	Wakeups float64 `json:"server_wakeups_per_request"`
}

// ServeResult holds every run and the medians (MB/s are 10^6 body bytes
// per second).
type ServeResult struct {
	Role          string  `json:"role"` // the swarmcast server measured
	NginxMBps     float64 `json:"nginx_mbps"`
	SwarmcastMBps float64 `json:"swarmcast_mbps"`
	Ratio         float64 `json:"ratio"` // median over rounds of swarmcast/nginx
	// Medians of the servers' CPU µs per request, and of nginx's over
	// swarmcast's per round: ≥ 1 means swarmcast spends no more CPU per
	// shard than nginx. 0 where process times cannot be read.
	NginxCPUMicros     float64 `json:"nginx_cpu_us_per_request"`
	SwarmcastCPUMicros float64 `json:"swarmcast_cpu_us_per_request"`
	CPURatio           float64 `json:"cpu_ratio"`
	NginxWakeups       float64 `json:"nginx_wakeups_per_request"` // medians of ServeRun.Wakeups
	SwarmcastWakeups   float64 `json:"swarmcast_wakeups_per_request"`
	Shards             int     `json:"shards"`
	ShardBytes         int     `json:"mean_shard_bytes"`
	Concurrency        int     `json:"concurrency"`
	NginxWorkers       int     `json:"nginx_workers"`
	ServerProcs        int     `json:"server_procs,omitempty"` // GOMAXPROCS forced on the swarmcast server; absent: its default
	// ServerGOMAXPROCS is the GOMAXPROCS the swarmcast server reported
	// running with (its go_sched_gomaxprocs_threads metric): what was in
	// effect, whether forced or the server's default. 0: not read.
	ServerGOMAXPROCS int        `json:"server_gomaxprocs"`
	Runs             []ServeRun `json:"runs"`
}

// Serve packages the bundled sample, lays every shard of its top rendition
// out both as an edge cache and as static files, starts nginx and a real
// `swarmcast edge` (or `swarmcast origin`, over the publisher store the
// shards came from) process on loopback, and drives both with the same
// load generator in alternating rounds (ABBA). The edge's upload cap is lifted:
// this measures the data path, not the rate limiter. Every process it
// started is gone when it returns (nginx's workers included).
func Serve(ctx context.Context, opt ServeOptions) (ServeResult, error) {
	var res ServeResult
	switch opt.Role {
	case "":
		opt.Role = RoleEdge
	case RoleEdge, RoleOrigin:
	default:
		return res, fmt.Errorf("role %q: want %q or %q", opt.Role, RoleEdge, RoleOrigin)
	}
	res.Role = opt.Role
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.Duration <= 0 {
		opt.Duration = 5 * time.Second
	}
	if opt.Rounds <= 0 {
		opt.Rounds = 3
	}
	if opt.NginxWorkers <= 0 {
		opt.NginxWorkers = 2
	}
	if opt.ServerProcs < 0 {
		opt.ServerProcs = 0
	}
	res.NginxWorkers, res.ServerProcs = opt.NginxWorkers, opt.ServerProcs
	if opt.Nginx == "" {
		opt.Nginx = "nginx"
		if _, err := exec.LookPath("nginx"); err != nil {
			opt.Nginx = "/usr/sbin/nginx"
		}
	}
	if _, err := os.Stat(opt.Nginx); err != nil {
		if _, err := exec.LookPath(opt.Nginx); err != nil {
			return res, errors.New("nginx not found: install it (Debian/Ubuntu: apt-get install nginx-light) to have a reference to compare with")
		}
	}
	binary, dir, cleanup, err := prepare(opt.Binary, opt.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	opt.Binary, opt.Dir = binary, dir
	// nginx workers drop privileges; let them traverse the scratch dir.
	_ = os.Chmod(opt.Dir, 0o755)

	paths, shardBytes, err := layOut(ctx, opt.Dir)
	if err != nil {
		return res, err
	}
	res.Shards, res.ShardBytes, res.Concurrency = len(paths), shardBytes, opt.Concurrency

	nginxAddr, stopNginx, nginxGroup, err := startNginx(ctx, opt.Nginx, opt.Dir, opt.NginxWorkers)
	if err != nil {
		return res, err
	}
	defer stopNginx()
	start := startEdge
	if opt.Role == RoleOrigin {
		start = startOrigin
	}
	ourAddr, stopOurs, ourGroup, err := start(ctx, opt.Binary, opt.Dir, opt.ServerProcs)
	if err != nil {
		return res, err
	}
	defer stopOurs()
	res.ServerGOMAXPROCS = serverGOMAXPROCS(ctx, "http://"+ourAddr)
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "%s running with GOMAXPROCS %d, nginx with %d workers\n", opt.Role, res.ServerGOMAXPROCS, opt.NginxWorkers)
	}

	servers := []struct {
		name, base string
		group      int // process group, for CPU time
	}{{"nginx", "http://" + nginxAddr, nginxGroup}, {opt.Role, "http://" + ourAddr, ourGroup}}
	// Warm both (page cache, connection pools, JIT-free but GC-warm) once.
	for _, s := range servers {
		if _, err := drive(ctx, s.base, paths, opt.Concurrency, time.Second); err != nil {
			return res, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	var ourRates, nginxRates, ratios, ourCPU, nginxCPU, cpuRatios, ourWakeups, nginxWakeups []float64
	for round := 0; round < opt.Rounds; round++ {
		rates, cpu, wakeups := map[string]float64{}, map[string]float64{}, map[string]float64{}
		// ABBA order (nginx first in even rounds, last in odd ones): a
		// machine getting busier or quieter during a run favours neither.
		order := servers
		if round%2 == 1 {
			order = slices.Clone(servers)
			slices.Reverse(order)
		}
		for _, s := range order {
			cpu0, slices0, cpuOK := groupCPU(s.group)
			run, err := drive(ctx, s.base, paths, opt.Concurrency, opt.Duration)
			if err != nil {
				return res, fmt.Errorf("%s: %w", s.name, err)
			}
			if cpu1, slices1, ok := groupCPU(s.group); ok && cpuOK {
				run.CPUMicros = float64((cpu1 - cpu0).Microseconds()) / float64(run.Requests)
				run.Wakeups = float64(slices1-slices0) / float64(run.Requests)
			}
			cpu[s.name] = run.CPUMicros
			wakeups[s.name] = run.Wakeups
			run.Server = s.name
			res.Runs = append(res.Runs, run)
			rates[s.name] = run.MBps
			if opt.Progress != nil {
				fmt.Fprintf(opt.Progress, "round %d %-6s %8.1f MB/s %8d requests %d errors %6.1f µs CPU/request %5.2f wakeups/request\n", round+1, s.name, run.MBps, run.Requests, run.Errors, run.CPUMicros, run.Wakeups)
			}
		}
		ourRates = append(ourRates, rates[opt.Role])
		nginxRates = append(nginxRates, rates["nginx"])
		ratios = append(ratios, rates[opt.Role]/rates["nginx"])
		if cpu[opt.Role] > 0 {
			ourCPU = append(ourCPU, cpu[opt.Role])
			nginxCPU = append(nginxCPU, cpu["nginx"])
			cpuRatios = append(cpuRatios, cpu["nginx"]/cpu[opt.Role])
			ourWakeups = append(ourWakeups, wakeups[opt.Role])
			nginxWakeups = append(nginxWakeups, wakeups["nginx"])
		}
	}
	res.SwarmcastMBps, res.NginxMBps, res.Ratio = median(ourRates), median(nginxRates), median(ratios)
	res.SwarmcastCPUMicros, res.NginxCPUMicros, res.CPURatio = median(ourCPU), median(nginxCPU), median(cpuRatios)
	res.SwarmcastWakeups, res.NginxWakeups = median(ourWakeups), median(nginxWakeups)
	return res, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// layOut writes every shard of the sample's top rendition as an edge cache
// (manifests/, shards/) and as nginx static files under www/ at the same URL
// paths, and returns those paths.
func layOut(ctx context.Context, dir string) ([]string, int, error) {
	store, err := content.OpenStore(filepath.Join(dir, "publisher"))
	if err != nil {
		return nil, 0, err
	}
	hls := filepath.Join(dir, "hls")
	if err := sample.WriteHLS(hls); err != nil {
		return nil, 0, err
	}
	id, err := store.Ingest(ctx, hls, content.IngestOptions{Title: sample.Title})
	if err != nil {
		return nil, 0, err
	}
	m, err := store.Manifest(id)
	if err != nil {
		return nil, 0, err
	}
	edgeDir := filepath.Join(dir, "edge")
	for _, d := range []string{"manifests", filepath.Join("shards", id.String())} {
		if err := os.MkdirAll(filepath.Join(edgeDir, d), 0o755); err != nil {
			return nil, 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(edgeDir, "manifests", id.String()), m.Encode(), 0o644); err != nil {
		return nil, 0, err
	}
	r := len(m.Renditions) - 1
	var paths []string
	total := 0
	for s := range m.Renditions[r].Segments {
		ct, err := store.SegmentCiphertext(id, r, s)
		if err != nil {
			return nil, 0, err
		}
		shards, err := content.EncodeShards(m.Params, ct)
		if err != nil {
			return nil, 0, err
		}
		leaves := content.ShardLeaves(shards)
		for i, data := range shards {
			msg := (&content.ShardMessage{Video: id, Rendition: r, Segment: s,
				Shard: content.Shard{Index: i, Data: data, Proof: content.InclusionProof(leaves, i)}}).Encode()
			if err := os.WriteFile(filepath.Join(edgeDir, "shards", id.String(), fmt.Sprintf("%d-%d-%d.shard", r, s, i)), msg, 0o644); err != nil {
				return nil, 0, err
			}
			p := wire.ShardURL("", content.SegmentRef{Video: id, Rendition: r, Segment: s}.Shard(i))
			file := filepath.Join(dir, "www", filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return nil, 0, err
			}
			if err := os.WriteFile(file, msg, 0o644); err != nil {
				return nil, 0, err
			}
			paths = append(paths, p)
			total += len(msg)
		}
	}
	return paths, total / len(paths), nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startNginx(ctx context.Context, bin, dir string, workers int) (string, func(), int, error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, 0, err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes %[4]d;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %[2]s/nginx-tmp;
  proxy_temp_path %[2]s/nginx-tmp;
  fastcgi_temp_path %[2]s/nginx-tmp;
  uwsgi_temp_path %[2]s/nginx-tmp;
  scgi_temp_path %[2]s/nginx-tmp;
  default_type application/x-swarmcast-shard;
  server {
    listen %[3]s;
    root %[2]s/www;
  }
}
`, user, dir, addr, workers)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return "", nil, 0, err
	}
	_ = os.MkdirAll(filepath.Join(dir, "nginx-tmp"), 0o755)
	cmd := exec.CommandContext(ctx, bin, "-c", confFile, "-e", filepath.Join(dir, "nginx-error.log"))
	cmd.Stderr = os.Stderr
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, 0, fmt.Errorf("start nginx: %w", err)
	}
	stop := func() { stopGroup(cmd) }
	if err := waitHTTP(ctx, "http://"+addr+"/"); err != nil {
		stop()
		return "", nil, 0, fmt.Errorf("nginx did not come up: %w", err)
	}
	return addr, stop, cmd.Process.Pid, nil // ownGroup: the group is the master's pid
}

func startEdge(ctx context.Context, bin, dir string, procs int) (string, func(), int, error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, 0, err
	}
	// The coordinator address is deliberately dead: the edge keeps retrying
	// registration in the background while serving its cache.
	cmd := exec.CommandContext(ctx, bin, "edge", "--dir", filepath.Join(dir, "edge"),
		"--coordinator", "http://127.0.0.1:9", "--listen", addr,
		"--disk", "100GB", "--upload", "100000Mbit")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	withProcs(cmd, procs)
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, 0, fmt.Errorf("start edge: %w", err)
	}
	stop := func() { stopGroup(cmd) }
	if err := waitHTTP(ctx, "http://"+addr+wire.PathHealth); err != nil {
		stop()
		return "", nil, 0, fmt.Errorf("edge did not come up: %w", err)
	}
	return addr, stop, cmd.Process.Pid, nil
}

// startOrigin runs `swarmcast origin` over the publisher store layOut
// ingested into, so it serves the very messages nginx serves from www/.
func startOrigin(ctx context.Context, bin, dir string, procs int) (string, func(), int, error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, 0, err
	}
	// As for the edge, the coordinator address is dead on purpose.
	cmd := exec.CommandContext(ctx, bin, "origin", "--store", filepath.Join(dir, "publisher"),
		"--coordinator", "http://127.0.0.1:9", "--listen", addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	withProcs(cmd, procs)
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, 0, fmt.Errorf("start origin: %w", err)
	}
	stop := func() { stopGroup(cmd) }
	if err := waitHTTP(ctx, "http://"+addr+wire.PathHealth); err != nil {
		stop()
		return "", nil, 0, fmt.Errorf("origin did not come up: %w", err)
	}
	return addr, stop, cmd.Process.Pid, nil
}

// withProcs sets GOMAXPROCS for cmd when procs > 0 (an explicit
// setting in the caller's environment is replaced, not duplicated).
func withProcs(cmd *exec.Cmd, procs int) {
	if procs <= 0 {
		return
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	cmd.Env = append(env, fmt.Sprintf("GOMAXPROCS=%d", procs))
}

// serverGOMAXPROCS reads the GOMAXPROCS a swarmcast server runs with from
// its /metrics (Go's collector: go_sched_gomaxprocs_threads); 0 when it
// cannot be read.
func serverGOMAXPROCS(ctx context.Context, base string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.PathMetrics, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "go_sched_gomaxprocs_threads "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return int(n)
		}
	}
	return 0
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// drive runs concurrency workers fetching random paths for d and counts
// the body bytes received.
func drive(ctx context.Context, base string, paths []string, concurrency int, d time.Duration) (ServeRun, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var reqs, bytes, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			buf := make([]byte, 64<<10)
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[rng.IntN(len(paths))], nil)
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				reqs.Add(1)
				bytes.Add(n)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	run := ServeRun{Requests: reqs.Load(), Bytes: bytes.Load(), Seconds: secs, MBps: float64(bytes.Load()) / 1e6 / secs, Errors: errs.Load()}
	if run.Requests == 0 {
		return run, errors.New("no request succeeded")
	}
	return run, nil
}

// prepare fills in the defaults every benchmark shares: the swarmcast
// binary to run (this executable) and a scratch directory (a temp dir,
// removed by cleanup).
func prepare(binary, dir string) (string, string, func(), error) {
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", "", nil, err
		}
		binary = exe
	}
	if dir != "" {
		return binary, dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "swarmcast-bench-")
	if err != nil {
		return "", "", nil, err
	}
	return binary, d, func() { os.RemoveAll(d) }, nil
}
