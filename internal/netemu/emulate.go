package netemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/wire"
)

// Scenario is a seed-capstone-shaped workload scaled to one machine:
// caches (edges) with capped uplinks and disks at preset multipliers,
// users who join one every UserJoinIntervalS and play random titles back
// to back at real time until the end. `swarmcast emulate` builds it from
// a simulator scenario file (package sim's format), so both run the same
// file.
type Scenario struct {
	Name              string
	Caches            int
	Users             int
	UserJoinIntervalS float64
	// Titles are copies of the bundled sample, each its own video: the
	// emulation plays real bytes. TitleS and TitleMbps say what the
	// scenario expects of them; Emulate refuses a scenario whose titles
	// the sample does not match (length exactly, top-rendition bitrate
	// within 25%).
	Titles          int
	TitleS          float64
	TitleMbps       float64
	CacheUploadMbps float64
	CacheDiskMB     float64
	CachePresets    []float64 // cache i gets CachePresets[i % len] × disk and upload
	DurationS       float64
	// CacheLatencyMS and OriginLatencyMS are added by each cache's and the
	// origin's listener in each direction (--impair), plus ViewerLatencyMS:
	// a user's request and the answer each cross the user's and the
	// server's one-way latency, as in the simulator.
	CacheLatencyMS, OriginLatencyMS, ViewerLatencyMS float64
	// LossPerTransfer is the simulator's loss: the probability that one
	// shard transfer suffers a retransmission timeout. The emulated link
	// draws loss per packet, so it gets LossPerTransfer divided by the
	// packets of an average shard.
	LossPerTransfer float64
	Seed            uint64
}

// Bounds of one emulation on a shared machine.
const (
	maxNodes    = 120
	maxDuration = 10 * time.Minute
)

// Check says what is wrong with a scenario, before anything is created.
func (sc Scenario) Check() error {
	switch {
	case sc.Caches < 0 || sc.Users < 1 || sc.Caches+sc.Users > maxNodes:
		return fmt.Errorf("scenario %q: %d caches + %d users: want ≥ 0 caches, ≥ 1 user, at most %d in all", sc.Name, sc.Caches, sc.Users, maxNodes)
	case sc.Titles < 1 || sc.Titles > 200:
		return fmt.Errorf("scenario %q: titles %d: want 1..200", sc.Name, sc.Titles)
	case !(sc.DurationS > 0) || time.Duration(sc.DurationS*float64(time.Second)) > maxDuration:
		return fmt.Errorf("scenario %q: duration_s %v: want 0 < d ≤ %v", sc.Name, sc.DurationS, maxDuration.Seconds())
	case sc.UserJoinIntervalS < 0 || !(sc.CacheUploadMbps > 0) || !(sc.CacheDiskMB > 0):
		return fmt.Errorf("scenario %q: a join interval ≥ 0, a cache upload > 0 and a cache disk > 0 are required", sc.Name)
	case sc.CacheLatencyMS < 0 || sc.OriginLatencyMS < 0 || sc.ViewerLatencyMS < 0 || sc.CacheLatencyMS+sc.OriginLatencyMS+sc.ViewerLatencyMS > 3000:
		return fmt.Errorf("scenario %q: latencies must be ≥ 0 and at most 3 s in all", sc.Name)
	case sc.LossPerTransfer < 0 || sc.LossPerTransfer >= 0.5:
		return fmt.Errorf("scenario %q: loss %v: want 0 ≤ loss < 0.5", sc.Name, sc.LossPerTransfer)
	}
	for _, p := range sc.CachePresets {
		if !(p > 0) || p > 10 {
			return fmt.Errorf("scenario %q: cache multiplier %v: want 0 < m ≤ 10", sc.Name, p)
		}
	}
	return nil
}

// Result is what the emulation measured. Origin figures come from the
// origin's /metrics (every byte it sent, to users and to caches); offload
// is the edges' share of the shard bytes users reported receiving (the
// coordinator's play reports, sent at the end of each completed play).
type Result struct {
	Scenario      string    `json:"scenario"`
	WallSeconds   float64   `json:"wall_seconds"`
	OriginMbpsAvg float64   `json:"origin_mbps_avg"`
	UserMbpsAvg   float64   `json:"user_mbps_avg"` // reported shard bytes of completed plays over the run
	Offload       float64   `json:"offload"`
	Plays         int       `json:"plays_completed"`
	PlayWallSAvg  float64   `json:"play_wall_s_avg"` // a completed play's process from start to exit: title length + startup + stalls + overhead
	PlayErrors    int       `json:"play_errors"`
	OriginMbps    []float64 `json:"origin_mbps_per_minute"`
	// OffloadPerMinute is the edges' share of the bytes of the plays
	// reported in each minute (a play reports when it ends, so it lags
	// the bytes by up to a title).
	OffloadPerMinute []float64 `json:"offload_per_minute"`
}

// Emulate runs sc with binary (a built swarmcast) in a fresh namespace
// network named run, and tears everything down before returning.
func Emulate(ctx context.Context, binary, run string, sc Scenario, progress io.Writer) (res Result, err error) {
	if err := sc.Check(); err != nil {
		return res, err
	}
	res.Scenario = sc.Name
	say := func(format string, a ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", a...)
		}
	}
	dir, err := os.MkdirTemp("", "swarmcast-emulate-")
	if err != nil {
		return res, err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(dir)
		} else {
			err = fmt.Errorf("%w (the nodes' logs are kept in %s)", err, dir)
		}
	}()

	// The catalogue: Titles copies of the sample, each a distinct video.
	storeDir := filepath.Join(dir, "store")
	store, err := content.OpenStore(storeDir)
	if err != nil {
		return res, err
	}
	hls := filepath.Join(dir, "hls")
	if err := sample.WriteHLS(hls); err != nil {
		return res, err
	}
	var titles []content.VideoID
	for i := 0; i < sc.Titles; i++ {
		id, err := store.Ingest(ctx, hls, content.IngestOptions{Title: fmt.Sprintf("%s title %d", sc.Name, i)})
		if err != nil {
			return res, err
		}
		titles = append(titles, id)
	}
	if err := checkTitles(store, titles[0], sc); err != nil {
		return res, err
	}
	lossPerPacket := sc.LossPerTransfer / packetsPerShard(store, titles[0])
	originID, err := identity.LoadOrCreate(filepath.Join(storeDir, "node.key"))
	if err != nil {
		return res, err
	}

	network, err := New(ctx, run)
	if err != nil {
		return res, err
	}
	// Processes stop before their namespaces go (deferred in this order:
	// procs.stop runs first).
	defer func() { err = errors.Join(err, network.Close()) }()
	var procs processes
	defer procs.stop()

	link := func(serverMS float64) string {
		return fmt.Sprintf("latency=%gms,loss=%g%%", serverMS+sc.ViewerLatencyMS, 100*lossPerPacket)
	}
	coordNode, err := network.AddNode(ctx, 2, 0)
	if err != nil {
		return res, err
	}
	coordURL := "http://" + coordNode.IP + ":7000"
	if err := procs.start(ctx, coordNode, dir, "coordinator", binary, "coordinator", "--listen", coordNode.IP+":7000",
		"--db", "sqlite:"+filepath.Join(dir, "coordinator.db"), "--origin-key", string(originID.ID),
		"--seed", strconv.FormatUint(sc.Seed+1, 10), "--audit-interval", "-1s"); err != nil {
		return res, err
	}
	if err := waitURL(ctx, coordNode, coordURL+wire.PathHealth); err != nil {
		return res, fmt.Errorf("coordinator: %w", err)
	}
	originNode, err := network.AddNode(ctx, 3, 0)
	if err != nil {
		return res, err
	}
	originURL := "http://" + originNode.IP + ":7100"
	if err := procs.start(ctx, originNode, dir, "origin", binary, "origin", "--store", storeDir, "--coordinator", coordURL,
		"--listen", originNode.IP+":7100", "--impair", link(sc.OriginLatencyMS)); err != nil {
		return res, err
	}
	if err := waitURL(ctx, originNode, originURL+wire.PathHealth); err != nil {
		return res, fmt.Errorf("origin: %w", err)
	}
	for i := 0; i < sc.Caches; i++ {
		preset := 1.0
		if len(sc.CachePresets) > 0 {
			preset = sc.CachePresets[i%len(sc.CachePresets)]
		}
		uploadBytes := int64(math.Round(sc.CacheUploadMbps * preset * 1e6 / 8)) // the edge takes whole bytes per second
		node, err := network.AddNode(ctx, 10+i, 8*uploadBytes)
		if err != nil {
			return res, err
		}
		if err := procs.start(ctx, node, dir, fmt.Sprintf("edge%d", i), binary, "edge", "--dir", filepath.Join(dir, fmt.Sprintf("edge%d", i)),
			"--coordinator", coordURL, "--listen", node.IP+":7200", "--player-listen", "",
			"--disk", fmt.Sprintf("%dB", int64(sc.CacheDiskMB*preset*1e6)), "--upload", fmt.Sprintf("%dB/s", uploadBytes),
			"--impair", link(sc.CacheLatencyMS)); err != nil {
			return res, err
		}
		if err := waitURL(ctx, node, "http://"+node.IP+":7200"+wire.PathHealth); err != nil {
			return res, fmt.Errorf("edge %d: %w", i, err)
		}
	}
	users := make([]*Node, sc.Users)
	tokens := make([]string, sc.Users)
	for i := range users {
		if users[i], err = network.AddNode(ctx, 100+i, 0); err != nil {
			return res, err
		}
		if out, err := users[i].Output(ctx, binary, "account", "signup", "--coordinator", coordURL, "--user", fmt.Sprintf("user%d", i), "--password", userPassword); err != nil {
			return res, fmt.Errorf("signup user%d: %w: %s", i, err, out)
		}
		// One login per user, as a player app keeps its session: a play
		// then costs no password hash, and users move on to the next title
		// as fast as the simulator's do.
		if tokens[i], err = loginFrom(ctx, users[i], coordURL, fmt.Sprintf("user%d", i)); err != nil {
			return res, err
		}
	}
	say("%s: coordinator, origin, %d caches and %d users up in namespaces %s*; running %v s...", sc.Name, sc.Caches, sc.Users, Prefix+run, sc.DurationS)

	// The run: users join one per interval and play until the end.
	duration := time.Duration(sc.DurationS * float64(time.Second))
	start := time.Now()
	rctx, cancel := context.WithDeadline(ctx, start.Add(duration))
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var playWall float64 // seconds, completed plays
	for i, u := range users {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(sc.Seed, uint64(i)))
			join := time.Duration(float64(i) * sc.UserJoinIntervalS * float64(time.Second))
			select {
			case <-rctx.Done():
				return
			case <-time.After(join):
			}
			for play := 0; rctx.Err() == nil; play++ {
				title := titles[rng.IntN(len(titles))]
				cmd := u.Command(rctx, binary, "play", title.String(), "--coordinator", coordURL, "--headless",
					"--token", tokens[i], "--seed", strconv.FormatUint(sc.Seed*1000+uint64(i*100+play), 10))
				began := time.Now()
				out, err := cmd.CombinedOutput()
				if rctx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				mu.Lock()
				if err != nil {
					res.PlayErrors++
					say("user%d play %d: %v: %s", i, play, err, lastLine(out))
				} else {
					res.Plays++
					playWall += time.Since(began).Seconds()
				}
				mu.Unlock()
			}
		})
	}
	// Origin egress, sampled each minute (and at the end).
	var samples []float64
	origin0, err := scrape(ctx, originNode, originURL+wire.PathMetrics, "swarmcast_origin_served_bytes_total")
	if err != nil {
		return res, err
	}
	last := origin0
	var minuteOffload []float64
	var lastEdge, lastOrigin float64
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for rctx.Err() == nil {
		select {
		case <-rctx.Done():
		case <-tick.C:
			v, err := scrape(ctx, originNode, originURL+wire.PathMetrics, "swarmcast_origin_served_bytes_total")
			if err == nil {
				samples = append(samples, (v-last)*8/60/1e6)
				last = v
			}
			if edge, origin, err := playBytes(ctx, coordNode, coordURL); err == nil {
				minuteOffload = append(minuteOffload, ratio(edge-lastEdge, edge-lastEdge+origin-lastOrigin))
				lastEdge, lastOrigin = edge, origin
			}
		}
	}
	originEnd, err := scrape(ctx, originNode, originURL+wire.PathMetrics, "swarmcast_origin_served_bytes_total")
	if err != nil {
		return res, err
	}
	res.WallSeconds = time.Since(start).Seconds()
	if rest := res.WallSeconds - 60*float64(len(samples)); rest >= 10 {
		samples = append(samples, (originEnd-last)*8/rest/1e6)
	}
	wg.Wait()
	edgeBytes, originBytes, err := playBytes(ctx, coordNode, coordURL)
	if err != nil {
		return res, err
	}
	res.OriginMbps, res.OffloadPerMinute = samples, minuteOffload
	if res.Plays > 0 {
		res.PlayWallSAvg = playWall / float64(res.Plays)
	}
	res.OriginMbpsAvg = (originEnd - origin0) * 8 / res.WallSeconds / 1e6
	res.UserMbpsAvg = (edgeBytes + originBytes) * 8 / res.WallSeconds / 1e6
	if edgeBytes+originBytes > 0 {
		res.Offload = edgeBytes / (edgeBytes + originBytes)
	}
	return res, nil
}

// checkTitles refuses a scenario whose titles the bundled sample cannot
// stand for.
func checkTitles(store *content.Store, id content.VideoID, sc Scenario) error {
	m, err := store.Manifest(id)
	if err != nil {
		return err
	}
	top := len(m.Renditions) - 1
	secs := m.Duration(top).Seconds()
	var bytes int64
	for _, seg := range m.Renditions[top].Segments {
		bytes += int64(seg.Size)
	}
	mbps := float64(bytes) * 8 / secs / 1e6
	if math.Abs(secs-sc.TitleS) > 0.5 || math.Abs(mbps-sc.TitleMbps) > 0.25*mbps {
		return fmt.Errorf("scenario %q: titles of %g s at %g Mbit/s, but the emulation plays the bundled sample: %.0f s at %.3f Mbit/s (top rendition); set titles.duration_s to %.0f and titles.bitrate_mbps to %.3f", sc.Name, sc.TitleS, sc.TitleMbps, secs, mbps, secs, mbps)
	}
	return nil
}

// packetsPerShard is an average shard of the title's top rendition in
// 1460-byte packets (at least 1).
func packetsPerShard(store *content.Store, id content.VideoID) float64 {
	m, err := store.Manifest(id)
	if err != nil {
		return 1
	}
	segs := m.Renditions[len(m.Renditions)-1].Segments
	var bytes float64
	for _, seg := range segs {
		bytes += float64(seg.Size)
	}
	return max(1, math.Ceil(bytes/float64(len(segs))/float64(m.Params.K)/1460))
}

// playBytes is the shard bytes users reported receiving from edges and
// from the origin (the coordinator's play reports).
func playBytes(ctx context.Context, coordNode *Node, coordURL string) (edge, origin float64, err error) {
	if edge, err = scrapeLabel(ctx, coordNode, coordURL+wire.PathMetrics, "swarmcast_coordinator_play_bytes_total", `source="edge"`); err != nil {
		return 0, 0, err
	}
	origin, err = scrapeLabel(ctx, coordNode, coordURL+wire.PathMetrics, "swarmcast_coordinator_play_bytes_total", `source="origin"`)
	return edge, origin, err
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// loginFrom logs user in from inside node and returns the session token.
func loginFrom(ctx context.Context, node *Node, coordURL, user string) (string, error) {
	body, _ := json.Marshal(wire.Credentials{Username: user, Password: userPassword})
	out, err := node.Output(ctx, "curl", "-sf", "-H", "Content-Type: application/json", "--data-binary", string(body), coordURL+wire.PathLogin)
	if err != nil {
		return "", fmt.Errorf("log in %s: %w", user, err)
	}
	var resp wire.LoginResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Token == "" {
		return "", fmt.Errorf("log in %s: answer %q: %v", user, out, err)
	}
	return resp.Token, nil
}

// userPassword is every emulated user's password (accounts live only in
// the run's temporary database).
const userPassword = "emulated-user-password"

// processes are the run's long-lived nodes.
type processes struct {
	mu   sync.Mutex
	cmds []*exec.Cmd
}

func (p *processes) start(ctx context.Context, node *Node, dir, name, binary string, args ...string) error {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := node.Command(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	f.Close() // the child holds its own descriptor
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, cmd)
	return nil
}

// stop sends every node SIGTERM (edges leave, origins unregister), then
// SIGKILL after 5 s, newest first, and reaps them.
func (p *processes) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.cmds) - 1; i >= 0; i-- {
		_ = p.cmds[i].Process.Signal(os.Interrupt)
	}
	done := make(chan struct{})
	go func() {
		for _, c := range p.cmds {
			_ = c.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, c := range p.cmds {
			_ = c.Process.Kill()
		}
		<-done
	}
	p.cmds = nil
}

// waitURL polls url from inside node until it answers (15 s at most).
func waitURL(ctx context.Context, node *Node, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return node.Exec(ctx, "curl", "-sf", "--retry", "30", "--retry-connrefused", "--retry-delay", "0", "--retry-max-time", "15", "-o", "/dev/null", url)
}

// scrape sums a metric family's samples on a /metrics page read from
// inside node.
func scrape(ctx context.Context, node *Node, url, family string) (float64, error) {
	return scrapeLabel(ctx, node, url, family, "")
}

// scrapeLabel sums the samples of family whose labels contain label.
func scrapeLabel(ctx context.Context, node *Node, url, family, label string) (float64, error) {
	out, err := node.Output(ctx, "curl", "-sf", url)
	if err != nil {
		return 0, err
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family) || (label != "" && !strings.Contains(line, label)) {
			continue
		}
		rest := strings.TrimPrefix(line, family)
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another family with this prefix
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
