package testnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// Live parts of the testnet (docs/LIVE.md): origins that take live
// broadcasts (Config.Live: HLS push on their HTTP address, RTMP on a
// loopback listener of their own), channels created through the real API,
// a publisher that is real ffmpeg (testsrc2 with a burned-in wall clock and
// a machine-readable clock strip, a sine tone, -re) and a live HLS player
// loop that plays a gateway's live playlist the way hls.js does.

// DefaultLiveLadder is the testnet's live ladder: one small rung, so a
// test's per-segment transcode stays cheap on a loaded CI machine.
var DefaultLiveLadder = []content.Rung{{Height: 240, VideoKbps: 300, AudioKbps: 64}}

// startLiveIngest gives an origin its live ingest and RTMP listener; the
// listener's goroutine is owned by the network (on its WaitGroup and on
// done; stopped by ctx), and closes the ingest when it returns.
func (n *Network) startLiveIngest(ctx context.Context, idx int, store *content.Store, done *sync.WaitGroup) (*live.Ingest, string, error) {
	id := n.originIDs[idx]
	// The ingest talks to the coordinator and pushes into the relay trees
	// signed as this origin.
	signer := wire.NewNodeSigner(id.Key, nil)
	cc := wire.NewCoordinatorClient(n.CoordinatorURL, wire.NewHTTPClient()).AsNode(signer)
	ladder := n.cfg.LiveLadder
	if ladder == nil {
		ladder = DefaultLiveLadder
	}
	lc := live.Config{Store: store, Coordinator: cc, Origin: id.ID, Publisher: id.Key, Signer: signer, Ladder: ladder, Resume: n.cfg.LiveResume,
		Log: n.cfg.Log.With("node", "origin-live")}
	reps, err := n.startBTRJudge(idx, &lc) // Config.BTR (btr.go)
	if err != nil {
		return nil, "", err
	}
	in, err := live.New(lc)
	if err != nil {
		reps.Close()
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		in.Close()
		reps.Close()
		return nil, "", err
	}
	n.wg.Add(1)
	done.Add(1)
	go func() {
		defer n.wg.Done()
		defer done.Done()
		_ = in.ServeRTMP(ctx, ln)
		in.Close()
		reps.Close() // after the ingest: its workers call the judges
	}()
	return in, "rtmp://" + ln.Addr().String(), nil
}

// CreateChannel creates a live channel as the network's admin, through
// the coordinator's API, with segments of segment (0: the default).
func (n *Network) CreateChannel(ctx context.Context, name string, segment time.Duration) (wire.ChannelCreated, error) {
	return n.Admin.CreateChannel(ctx, wire.CreateChannelRequest{Name: name, SegmentMS: int(segment / time.Millisecond)})
}

// RTMPIngestURL is origin i's RTMP ingest URL for streamKey.
func (n *Network) RTMPIngestURL(i int, streamKey string) string {
	return wire.LiveIngestRTMPURL(n.Origins[i].RTMP, streamKey)
}

// HLSIngestURL is origin i's HLS-push ingest URL for streamKey.
func (n *Network) HLSIngestURL(i int, streamKey string) string {
	return wire.LiveIngestHLSURL(n.Origins[i].Server.Advertise, streamKey)
}

// The burned-in clock: besides a human-readable wall clock (drawtext
// %{localtime}), the publisher's frames carry a strip of clockBits blocks
// along the top, block i white when bit i of the frame's media time in
// deciseconds is set, then one always-white reference block, all on a black
// band. ReadBurnedClock reads it back from decoded frames without OCR.
const (
	clockBits  = 16
	clockBlock = 16 // px in the source frame
	// ClockSourceWidth and ClockSourceHeight are the publisher's frame
	// size (the strip needs ≥ (clockBits+1)·clockBlock px).
	ClockSourceWidth  = 426
	ClockSourceHeight = 240
)

// PublishOptions shape a test publish.
type PublishOptions struct {
	// Duration of media to send (-t); 0: until Stop.
	Duration time.Duration
	// Segment is the keyframe interval (the channel's segment duration;
	// default 1 s): the source carries a keyframe at every boundary.
	Segment time.Duration
	// HLSPush sends HLS over HTTP PUT (ffmpeg -f hls -method PUT) instead
	// of RTMP (-f flv); the URL is then the HLS ingest URL.
	HLSPush bool
	// Output, if set, is another ffmpeg muxer (-f) for the url (a file).
	Output string
}

// Publisher is a running ffmpeg publisher.
type Publisher struct {
	// Started is the wall clock just before ffmpeg started: the burned-in
	// media time 0 is at about Started.
	Started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	stderr  bytes.Buffer
}

// Publish starts ffmpeg publishing the test source to url at real time
// (-re). Stop or Wait it; the network's context also stops it.
func (n *Network) Publish(url string, opt PublishOptions) (*Publisher, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errors.New("testnet: publishing needs ffmpeg on PATH (apt install ffmpeg)")
	}
	return StartPublisher(n.ctx, ffmpeg, url, opt)
}

// StartPublisher runs ffmpeg as a live publisher (the demo's and the
// tests' source) until ctx ends, Stop, or Duration of media is sent.
func StartPublisher(ctx context.Context, ffmpeg, url string, opt PublishOptions) (*Publisher, error) {
	if opt.Segment <= 0 {
		opt.Segment = content.DefaultLiveSegment
	}
	const fps = 25
	gop := max(1, int(math.Round(opt.Segment.Seconds()*fps)))
	var vf strings.Builder
	fmt.Fprintf(&vf, "drawbox=x=0:y=0:w=%d:h=%d:color=black:t=fill", (clockBits+1)*clockBlock, clockBlock)
	for i := range clockBits {
		fmt.Fprintf(&vf, ",drawbox=x=%d:y=0:w=%d:h=%d:color=white:t=fill:enable='mod(floor(t*10/%d),2)'", i*clockBlock, clockBlock, clockBlock, 1<<i)
	}
	fmt.Fprintf(&vf, ",drawbox=x=%d:y=0:w=%d:h=%d:color=white:t=fill", clockBits*clockBlock, clockBlock, clockBlock)
	vf.WriteString(",drawtext=text='%{localtime\\:%H\\\\\\:%M\\\\\\:%S} %{pts\\:hms}':fontsize=24:fontcolor=white:box=1:boxcolor=black:x=10:y=h-40")
	args := []string{"-nostdin", "-v", "error",
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", ClockSourceWidth, ClockSourceHeight, fps),
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"}
	if opt.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(opt.Duration.Seconds(), 'f', 3, 64))
	}
	args = append(args, "-vf", vf.String(),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-ar", "44100")
	switch {
	case opt.Output != "":
		args = append(args, "-f", opt.Output, "-y", url)
	case opt.HLSPush:
		args = append(args, "-f", "hls", "-method", "PUT", "-hls_time", strconv.FormatFloat(opt.Segment.Seconds(), 'f', 3, 64),
			"-hls_list_size", "5", "-hls_flags", "delete_segments", url)
	default:
		args = append(args, "-f", "flv", url)
	}
	p := &Publisher{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, ffmpeg, args...)
	p.cmd.Stderr = &p.stderr
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testnet: start the publisher: %w", err)
	}
	go func() {
		err := p.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("publisher ffmpeg: %w: %s", err, strings.TrimSpace(p.stderr.String()))
		}
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Stop kills the publisher (a dropped connection, as when OBS crashes) and
// waits for it.
func (p *Publisher) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits for the publisher to finish sending and returns ffmpeg's
// error, if any.
func (p *Publisher) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the publisher has exited.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// ReadBurnedClock decodes url (a playlist or file) with ffmpeg for at most
// d of media and returns each decoded frame's burned-in media time,
// in order. Frames whose strip does not read (no reference block) are
// skipped.
func ReadBurnedClock(ctx context.Context, ffmpeg, url string, d time.Duration) ([]time.Duration, error) {
	w, h := ClockSourceWidth, clockBlock
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-i", url, "-t", strconv.FormatFloat(d.Seconds(), 'f', 3, 64),
		"-map", "0:v:0", "-vf", fmt.Sprintf("scale=%d:%d,crop=%d:%d:0:0", ClockSourceWidth, ClockSourceHeight, w, h),
		"-pix_fmt", "gray", "-f", "rawvideo", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var times []time.Duration
	r := bufio.NewReaderSize(out, 1<<16)
	frame := make([]byte, w*h)
	frames := 0
	for {
		if _, err := io.ReadFull(r, frame); err != nil {
			break
		}
		frames++
		if t, ok := decodeClockStrip(frame, w); ok {
			times = append(times, t)
		}
	}
	if err := cmd.Wait(); err != nil {
		return times, fmt.Errorf("ffmpeg reading %s: %w: %s", url, err, strings.TrimSpace(stderr.String()))
	}
	if len(times) == 0 {
		return nil, fmt.Errorf("ffmpeg decoded %d frames of %s, none with a readable clock strip: %s", frames, url, strings.TrimSpace(stderr.String()))
	}
	return times, nil
}

// decodeClockStrip reads the clock strip of one gray frame row block
// (w px wide, clockBlock rows), sampling each block's centre.
func decodeClockStrip(frame []byte, w int) (time.Duration, bool) {
	sample := func(i int) int {
		x, y := i*clockBlock+clockBlock/2, clockBlock/2
		sum := 0
		for dy := -2; dy <= 2; dy++ {
			for dx := -2; dx <= 2; dx++ {
				sum += int(frame[(y+dy)*w+x+dx])
			}
		}
		return sum / 25
	}
	white := sample(clockBits)
	if white < 160 {
		return 0, false
	}
	threshold := white / 2
	var ds int
	for i := range clockBits {
		if sample(i) > threshold {
			ds |= 1 << i
		}
	}
	return time.Duration(ds) * 100 * time.Millisecond, true
}

// LivePlay is one live play's outcome (PlayLive).
type LivePlay struct {
	Segments  int           // segments played
	Played    time.Duration // media played
	Stalls    int
	StallTime time.Duration
	Skipped   int // segments that left the window before the player got them
	Ended     bool
	Err       error // non-nil: the play failed
	// Digests are the played segments' bytes, by seq (SHA-256 and size):
	// the BTR demo compares them with an honest re-run of the ladder.
	Digests PlayedSegments
}

// PlayedSegments are a play's segments by seq.
type PlayedSegments map[uint64]PlayedSegment

// String keeps a play's printout short (tests log plays with %+v).
func (p PlayedSegments) String() string { return fmt.Sprintf("%d segments", len(p)) }

// PlayedSegment is one segment as a player got it.
type PlayedSegment struct {
	SHA256 [32]byte
	Size   int
}

// RebufferRatio is stall time over the play's wall time.
func (p LivePlay) RebufferRatio() float64 {
	if p.Played+p.StallTime == 0 {
		return 0
	}
	return p.StallTime.Seconds() / (p.Played + p.StallTime).Seconds()
}

// livePlaylist is what PlayLive reads of a live media playlist.
type livePlaylist struct {
	mediaSeq uint64
	target   time.Duration
	holdBack time.Duration
	segs     []livePlaylistSegment
	ended    bool
}

type livePlaylistSegment struct {
	seq uint64
	dur time.Duration
	uri string
}

func parseLivePlaylist(b []byte) (livePlaylist, error) {
	var pl livePlaylist
	var dur time.Duration
	lines := strings.Split(string(b), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "#EXTM3U" {
		return pl, errors.New("not an HLS playlist")
	}
	seq := uint64(0)
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			if err != nil {
				return pl, fmt.Errorf("media sequence: %w", err)
			}
			pl.mediaSeq, seq = v, v
		case strings.HasPrefix(l, "#EXT-X-TARGETDURATION:"):
			v, _ := strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-TARGETDURATION:"))
			pl.target = time.Duration(v) * time.Second
		case strings.HasPrefix(l, "#EXT-X-SERVER-CONTROL:"):
			for _, a := range strings.Split(strings.TrimPrefix(l, "#EXT-X-SERVER-CONTROL:"), ",") {
				if v, ok := strings.CutPrefix(a, "HOLD-BACK="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					pl.holdBack = time.Duration(f * float64(time.Second))
				}
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return pl, fmt.Errorf("EXTINF %q: %w", v, err)
			}
			dur = time.Duration(f * float64(time.Second))
		case l == "#EXT-X-ENDLIST":
			pl.ended = true
		case l != "" && !strings.HasPrefix(l, "#"):
			pl.segs = append(pl.segs, livePlaylistSegment{seq: seq, dur: dur, uri: l})
			seq++
		}
	}
	if pl.holdBack == 0 {
		pl.holdBack = 3 * pl.target
	}
	return pl, nil
}

// PlayLive plays a live media playlist at mediaURL the way a standard HLS
// player does: it joins HOLD-BACK behind the playlist's end, reloads the
// playlist every half target duration while it waits, fetches each next
// segment in order, and keeps a playback clock to count stalls. It plays
// until ENDLIST, ctx ends, or d of wall time has passed. A segment or
// playlist that cannot be fetched for 10 s fails the play.
func PlayLive(ctx context.Context, hc *http.Client, mediaURL string, d time.Duration) LivePlay {
	var res LivePlay
	stop := time.Now().Add(d)
	const giveUp = 10 * time.Second
	get := func(u string) ([]byte, error) {
		failingSince := time.Now()
		for {
			rctx, cancel := context.WithTimeout(ctx, giveUp)
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
			resp, err := hc.Do(req)
			var b []byte
			if err == nil {
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
				}
			}
			cancel()
			if err == nil {
				return b, nil
			}
			if ctx.Err() != nil || time.Since(failingSince) > giveUp {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	base := mediaURL[:strings.LastIndexByte(mediaURL, '/')+1]
	var next uint64
	joined := false
	var playStart, bufferEnd time.Time // wall clock the buffered media runs out
	for time.Now().Before(stop) && ctx.Err() == nil {
		b, err := get(mediaURL)
		if err != nil {
			res.Err = err
			return res
		}
		pl, err := parseLivePlaylist(b)
		if err != nil {
			res.Err = fmt.Errorf("live playlist %s: %w", mediaURL, err)
			return res
		}
		if !joined && len(pl.segs) > 0 {
			// Join at the live edge: the segment that starts HOLD-BACK
			// before the playlist's end (at least the first).
			i, behind := len(pl.segs)-1, pl.segs[len(pl.segs)-1].dur
			for i > 0 && behind < pl.holdBack {
				i--
				behind += pl.segs[i].dur
			}
			next, joined = pl.segs[i].seq, true
		}
		if joined && next < pl.mediaSeq {
			res.Skipped += int(pl.mediaSeq - next)
			next = pl.mediaSeq
		}
		progressed := false
		for _, s := range pl.segs {
			if !joined || s.seq < next || !time.Now().Before(stop) {
				continue
			}
			seg, err := get(base + s.uri)
			if err != nil {
				res.Err = err
				return res
			}
			if res.Digests == nil {
				res.Digests = PlayedSegments{}
			}
			res.Digests[s.seq] = PlayedSegment{SHA256: sha256.Sum256(seg), Size: len(seg)}
			now := time.Now()
			if playStart.IsZero() {
				playStart, bufferEnd = now, now
			} else if now.After(bufferEnd) {
				res.Stalls++
				res.StallTime += now.Sub(bufferEnd)
				bufferEnd = now
			}
			bufferEnd = bufferEnd.Add(s.dur)
			res.Segments++
			res.Played += s.dur
			next, progressed = s.seq+1, true
		}
		if pl.ended && (len(pl.segs) == 0 || next > pl.segs[len(pl.segs)-1].seq) {
			res.Ended = true
			return res
		}
		if !progressed {
			wait := max(pl.target/2, 100*time.Millisecond)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	return res
}

// LiveFigures sum many plays.
type LiveFigures struct {
	Plays         int     `json:"plays"`
	PlaysFailed   int     `json:"plays_failed"`
	Stalls        int     `json:"stalls"`
	RebufferRatio float64 `json:"rebuffer_ratio"`
	FirstError    string  `json:"first_error,omitempty"`
}

// SumLivePlays adds plays into figures: rebuffer ratio over the total.
func SumLivePlays(plays []LivePlay) LiveFigures {
	var f LiveFigures
	var stall, played time.Duration
	for _, p := range plays {
		f.Plays++
		f.Stalls += p.Stalls
		stall += p.StallTime
		played += p.Played
		if p.Err != nil {
			f.PlaysFailed++
			if f.FirstError == "" {
				f.FirstError = p.Err.Error()
			}
		}
	}
	if stall+played > 0 {
		f.RebufferRatio = stall.Seconds() / (stall + played).Seconds()
	}
	return f
}

// LiveLatencies collects the gateways' T_serve reports (set
// viewer.Config.OnLiveServable to its Record).
type LiveLatencies struct {
	mu  sync.Mutex
	all []time.Duration
}

// Record keeps one servable report's glass-to-glass latency.
func (l *LiveLatencies) Record(d time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
}

// Percentile is the p-th percentile (0..100) of the recorded latencies,
// nearest rank, and how many there are.
func (l *LiveLatencies) Percentile(p float64) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return 0, 0
	}
	s := slices.Clone(l.all)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)], len(s)
}

// Relays lists the relays started with the network (Config.Relays).
func (n *Network) Relays() []*RelayNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*RelayNode(nil), n.relays...)
}
