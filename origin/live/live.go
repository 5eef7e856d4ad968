// Package live is the origin's live ingest (docs/LIVE.md): it takes a
// publisher's stream (RTMP from OBS or ffmpeg, or HLS pushed with HTTP
// PUT) under a stream key the coordinator authorizes, cuts it at keyframes
// into source segments, transcodes each one independently with a pinned
// deterministic recipe into the ladder, packages every rendition's segment
// as VoD does (AES-128, RS, Merkle root), signs and chains one
// content.LiveEntry per segment, stores it under the store's live/<chain>/
// and appends it on the coordinator. When the broadcast ends the chain is
// sealed into an ordinary video of the store, published like any other.
//
// The origin role wires it: Handler serves the HLS-push route, ServeRTMP
// the RTMP listener, and Manifest/SegmentCiphertext let the origin serve
// live shards on its ordinary shard and segment routes (the chain id is
// the video id).
package live

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/wire"
)

// Coordinator is what ingest asks of the coordinator (a
// *wire.CoordinatorClient made with AsNode by an allowed origin).
type Coordinator interface {
	AuthorizeIngest(ctx context.Context, streamKey string) (wire.IngestAuthResponse, error)
	StartChain(ctx context.Context, genesis []byte, key content.ContentKey) error
	// AppendEntry returns an error wrapping wire.ErrChannelEnded once the
	// channel's owner ended the broadcast.
	AppendEntry(ctx context.Context, chain content.VideoID, entry []byte) error
	ReportChannelState(ctx context.Context, id wire.ChannelID, rep wire.ChannelStateReport) error
	// Channel is the coordinator's view of a channel: a waiting broadcast
	// learns from it that the owner ended it.
	Channel(ctx context.Context, id wire.ChannelID) (wire.ChannelInfo, error)
	Publish(ctx context.Context, req wire.PublishRequest) error
	// LiveEntries is a chain's signed entries from seq on (waitMS 0: what
	// it holds now); a restarted origin reloads its unsealed chains from it.
	LiveEntries(ctx context.Context, chain content.VideoID, from uint64, waitMS int) ([][]byte, error)
}

// DefaultResume is how long a broadcast waits for its publisher to return
// before it is sealed.
const DefaultResume = 60 * time.Second

// DefaultReauth is how often a live publisher's key is checked again.
const DefaultReauth = 10 * time.Second

// Config wires an Ingest.
type Config struct {
	Store       *content.Store // the origin's store: live/<chain>/ and, sealed, videos/
	Coordinator Coordinator
	Origin      wire.NodeID // this origin (PublishRequest.OriginID)
	// Publisher signs the chains and their recordings. The coordinator
	// takes a chain only from the origin whose node key signed its genesis,
	// so this is the origin's node key (identity.Identity.Key); nil: the
	// store's publisher key (tests with their own coordinator).
	Publisher ed25519.PrivateKey
	Ladder    []content.Rung // default content.DefaultLadder
	// Resume is how long a dropped publisher may take to return and
	// continue the same chain (default DefaultResume).
	Resume time.Duration
	FFmpeg string // ffmpeg binary (default: found on PATH)
	// Reauth is how often a live publisher's stream key is asked about
	// again (default DefaultReauth): a revoked key stops within it.
	Reauth time.Duration
	Log    *slog.Logger
	// Signer, if set, makes the origin the root of the channels' relay
	// trees: each published segment's first PushShards shard indices of
	// every rendition are pushed (fanout.Sender, signed as this node) to
	// the children SetLive names. Nil: segments are only served on pull.
	Signer *wire.NodeSigner
	// OnPublished, if set, is told of each segment the coordinator took,
	// with its publish delay (the publish_delay_seconds histogram's
	// observation); demo and benchmarks report from it. Called from the
	// broadcast's worker: it must not block.
	OnPublished func(chain content.VideoID, seq uint64, delay time.Duration)
	// Replicas, if set, replicates each segment's transcode on f+1 BTR
	// workers and decides which ladder is packaged (docs/LIVE.md, "BTR");
	// nil: the local transcode is packaged.
	Replicas Replicator
	// Registry gets the live metrics (swarmcast_origin_live_*); nil: none
	// exported.
	Registry prometheus.Registerer
}

// Ingest runs every live broadcast of one origin. Safe for concurrent use.
type Ingest struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	sender  *fanout.Sender // nil without Config.Signer
	// pushed counts the push body bytes children accepted (PushedBytes).
	pushed atomic.Int64
	ctx    context.Context // cancelled by Close: stops sources, workers and timers
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Ingest starts

	mu        sync.Mutex
	byChannel map[wire.ChannelID]*broadcast // the channel's current broadcast (publishing or waiting)
	byChain   map[content.VideoID]*broadcast
	hls       map[string]*hlsSession // stream key → its pushing publisher
	closed    bool
	// restored closes when the unsealed chains of the store are reloaded
	// (restore.go); publishers wait for it.
	restored chan struct{}
}

// New builds an Ingest. It finds ffmpeg now, so a missing one is a
// startup error rather than a refused publisher.
func New(cfg Config) (*Ingest, error) {
	if cfg.Store == nil || cfg.Coordinator == nil {
		return nil, errors.New("live ingest: needs a store and a coordinator")
	}
	if cfg.Ladder == nil {
		cfg.Ladder = content.DefaultLadder
	}
	if len(cfg.Ladder) == 0 {
		return nil, errors.New("live ingest: empty ladder")
	}
	if cfg.Resume == 0 {
		cfg.Resume = DefaultResume
	}
	if cfg.Reauth <= 0 {
		cfg.Reauth = DefaultReauth
	}
	if cfg.Resume < 0 {
		return nil, fmt.Errorf("live ingest: resume window %v is negative", cfg.Resume)
	}
	if cfg.FFmpeg == "" {
		p, err := exec.LookPath("ffmpeg")
		if err != nil {
			return nil, errors.New("live ingest needs ffmpeg on PATH (apt install ffmpeg) to transcode the ladder")
		}
		cfg.FFmpeg = p
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Store.Dir(), "live"), 0o755); err != nil {
		return nil, fmt.Errorf("live ingest: %w", err)
	}
	in := &Ingest{
		cfg: cfg, log: cfg.Log.With("subsystem", "live"), metrics: NewMetrics(reg),
		byChannel: make(map[wire.ChannelID]*broadcast), byChain: make(map[content.VideoID]*broadcast),
		hls: make(map[string]*hlsSession),
	}
	if cfg.Signer != nil {
		s, err := fanout.NewSender(fanout.SenderConfig{Signer: cfg.Signer, Log: in.log,
			Hooks: fanout.SenderHooks{Pushed: func(_ wire.NodeID, n int, _ time.Duration) { in.pushed.Add(int64(n)) }}})
		if err != nil {
			return nil, err
		}
		in.sender = s
	}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.restored = make(chan struct{})
	in.spawn(in.restore)
	return in, nil
}

// SetLive takes the origin's live assignment from a heartbeat answer:
// the trees it roots (every substream of its chains, with their first
// children). Without a Signer it is ignored.
func (in *Ingest) SetLive(set *wire.LiveSet) {
	if in.sender != nil && set != nil {
		in.sender.SetRoutes(set.Routes)
	}
}

// PushedBytes is every push body byte the origin's children accepted: the
// origin's share of the live fan-out (the demo's origin copies per segment).
func (in *Ingest) PushedBytes() int64 { return in.pushed.Load() }

// spawn runs f on a goroutine the Ingest owns (Close waits for it), unless
// Close has begun: then it starts nothing and reports false. The check and
// the WaitGroup's Add share in.mu with Close's flag, so no Add can race
// Close's Wait.
func (in *Ingest) spawn(f func()) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		f()
	}()
	return true
}

// Close stops every source and worker; broadcasts that are live are not
// sealed (their segments stay under live/). It waits for every goroutine.
func (in *Ingest) Close() {
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	in.cancel()
	in.wg.Wait()
	if in.sender != nil {
		in.sender.Close()
	}
}

// Manifest is the manifest view of a live chain this origin publishes
// (content.LiveChain.Manifest), for the shard and segment routes.
func (in *Ingest) Manifest(id content.VideoID) (*content.Manifest, bool) {
	in.mu.Lock()
	b := in.byChain[id]
	in.mu.Unlock()
	if b == nil {
		return nil, false
	}
	return b.chain.Manifest(), true
}

// SegmentCiphertext reads a packaged live segment of a chain.
func (in *Ingest) SegmentCiphertext(id content.VideoID, rendition, segment int) ([]byte, error) {
	in.mu.Lock()
	b := in.byChain[id]
	in.mu.Unlock()
	if b == nil {
		return nil, content.ErrUnknownVideo
	}
	return os.ReadFile(b.segmentPath(rendition, uint64(segment)))
}

// Broadcast describes a channel's current (or last) broadcast.
type Broadcast struct {
	Channel   wire.ChannelID
	Chain     content.VideoID // zero until the first segment opened
	State     string          // wire.ChannelPublishing, ChannelWaiting, ChannelEnded
	Head      int64           // newest published Seq, -1 before the first
	Recording content.VideoID // set once sealed
	RecipeID  string
}

// Broadcast is channel's current or last broadcast on this origin.
func (in *Ingest) Broadcast(ch wire.ChannelID) (Broadcast, bool) {
	in.mu.Lock()
	b := in.byChannel[ch]
	in.mu.Unlock()
	if b == nil {
		return Broadcast{}, false
	}
	return b.describe(), true
}

// End seals channel's broadcast now (as if the resume window had passed),
// and waits until the recording is published. Demo and tests end
// broadcasts with it; operators end them on the coordinator.
func (in *Ingest) End(ch wire.ChannelID) (Broadcast, error) {
	in.mu.Lock()
	b := in.byChannel[ch]
	in.mu.Unlock()
	if b == nil {
		return Broadcast{}, fmt.Errorf("channel %s has no broadcast on this origin", ch)
	}
	b.requestEnd()
	<-b.done
	return b.describe(), nil
}

// Metrics are the live ingest's families (swarmcast_origin_live_*).
type Metrics struct {
	publishDelay prometheus.Histogram
	segments     prometheus.Counter
	parts        prometheus.Counter
	refused      *prometheus.CounterVec
	transcode    prometheus.Histogram
}

// NewMetrics registers the live families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := metric.For(reg, "origin")
	return &Metrics{
		publishDelay: f.Histogram("live_publish_delay_seconds",
			"From the arrival of the frame that closed a live segment (the next keyframe, or the publisher's drop) to its entry accepted by the coordinator.",
			prometheus.ExponentialBuckets(0.005, 1.6, 14)), // 5 ms .. 2.2 s
		segments:  f.Counter("live_segments_published_total", "Live segments packaged, signed and appended on the coordinator."),
		parts:     f.Counter("live_parts_signed_total", "Low-Latency HLS parts signed and served (every rendition's piece of one part counts once)."),
		refused:   f.CounterVec("live_ingest_refused_total", "Publish attempts refused, by reason (key, codec, keyframe, garbage, busy).", "reason"),
		transcode: f.Histogram("live_transcode_tail_seconds", "From a live segment's close to its ladder transcode finished (the encoder's tail).", prometheus.ExponentialBuckets(0.005, 1.6, 14)),
	}
}
