package origin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// DefaultCacheBytes bounds the cache of encoded segments when Config.CacheBytes is 0.
const DefaultCacheBytes = 256 << 20

// Config wires an origin together.
type Config struct {
	Store       *content.Store // publisher store (holds ciphertext + content keys)
	Identity    identity.Identity
	Coordinator string // the primary coordinator's base URL
	// Coordinators lists every coordinator of the deployment; Coordinator
	// is added first if missing. The origin registers, heartbeats and
	// publishes to each. Empty: just Coordinator.
	Coordinators []string
	Advertise    string // base URL this origin is reachable at (set after httpserve.Listen)
	CacheBytes   int64  // bound on the parity cache (encoded segments), default 256 MiB
	Log          *slog.Logger
	Registry     *prometheus.Registry
	HTTPClient   *http.Client
	// RTMPPort is the RTMP ingest listener's port, registered as
	// rtmp://HOST:PORT with Advertise's host (0: no RTMP listener).
	RTMPPort int
	// Live, if set, is the live ingest (origin/live.Ingest): its chains are
	// served on the shard and segment routes like stored videos (the chain
	// id is the video id), and it takes HLS pushes on
	// wire.PathLiveIngestHLS.
	Live LiveSource
	// BTR, if set, is the origin's BTR judge (origin/worker.Replicas): it
	// takes statements any party hands in on wire.PathBTRForward.
	BTR BTRJudge
}

// BTRJudge is what the origin mounts of its BTR judges.
type BTRJudge interface {
	HandleForward(w http.ResponseWriter, r *http.Request)
}

// LiveSource is what the origin serves of its live broadcasts.
type LiveSource interface {
	// Manifest is the manifest view of a live chain (it grows: never cache it).
	Manifest(id content.VideoID) (*content.Manifest, bool)
	SegmentCiphertext(id content.VideoID, rendition, segment int) ([]byte, error)
	HandleHLSPush(w http.ResponseWriter, r *http.Request)
	// HandleLivePart serves a low-latency chain's signed parts
	// (wire.PathLivePart).
	HandleLivePart(w http.ResponseWriter, r *http.Request)
	// SetLive takes the origin's live assignment (the trees it roots)
	// from each heartbeat answer that carries one.
	SetLive(set *wire.LiveSet)
}

// Origin serves shards, whole segments and manifests of its store.
type Origin struct {
	cfg Config
	// hotNodeID is cfg.Identity.ID as ServeHot's header value (no copy
	// per response).
	hotNodeID []byte
	log       *slog.Logger
	hc        *http.Client
	metrics   *metrics
	handler   http.Handler

	manifestsMu sync.RWMutex
	manifests   map[content.VideoID]*content.Manifest // verified manifests loaded so far

	encoded *lru[*encodedSegment] // full shard sets, the expensive part
	leaves  *lru[[]content.Hash]  // leaf hashes per segment, kept far longer than the shards
	encodes singleflight.Group    // content.SegmentRef.String() -> *encodedSegment

	bytesServed atomic.Int64
}

// encodedSegment is every shard of one segment, their Merkle leaves, and
// every shard's encoded ShardMessage, ready to send: shards[i] aliases the
// data at the end of messages[i], so the cache holds the bytes once.
// Read-only once built.
type encodedSegment struct {
	shards   [][]byte
	leaves   []content.Hash
	messages [][]byte
}

// New builds an origin over a store. It does not touch the network.
func New(cfg Config) (*Origin, error) {
	if cfg.Store == nil {
		return nil, errors.New("origin: no content store given")
	}
	if cfg.Identity.Key == nil {
		return nil, errors.New("origin: no node identity")
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.CacheBytes < 0 {
		return nil, fmt.Errorf("origin: cache size %d bytes is negative", cfg.CacheBytes)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = httpserve.NewRegistry()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.NewHTTPClient()
	}
	o := &Origin{
		cfg:       cfg,
		hotNodeID: []byte(cfg.Identity.ID),
		log:       cfg.Log.With("role", "origin", "node", shortID(cfg.Identity.ID)),
		hc:        cfg.HTTPClient,
		manifests: make(map[content.VideoID]*content.Manifest),
		encoded:   newLRU[*encodedSegment](cfg.CacheBytes),
		// Leaves are 32 bytes per shard: 1/16 of the budget holds the
		// hashes of far more segments than the shard cache can.
		leaves: newLRU[[]content.Hash](max(cfg.CacheBytes/16, 1<<20)),
	}
	o.metrics = newMetrics(cfg.Registry, o.encoded.usedBytes)
	mux := httpserve.NewMux(cfg.Registry)
	mux.HandleFunc("GET "+wire.PathShard, o.serveShard)
	mux.HandleFunc("GET "+wire.PathSegment, o.serveSegment)
	mux.HandleFunc("GET "+wire.PathOriginManifest, o.serveManifest)
	if cfg.Live != nil {
		mux.HandleFunc("PUT "+wire.PathLiveIngestHLS, cfg.Live.HandleHLSPush)
		mux.HandleFunc("GET "+wire.PathLivePart, cfg.Live.HandleLivePart)
	}
	if cfg.BTR != nil {
		mux.HandleFunc("POST "+wire.PathBTRForward, cfg.BTR.HandleForward)
	}
	o.handler = mux
	return o, nil
}

func shortID(id wire.NodeID) string {
	if len(id) > 8 {
		return string(id[:8])
	}
	return string(id)
}

// Handler serves wire.PathShard, PathSegment, PathOriginManifest, /healthz and /metrics.
func (o *Origin) Handler() http.Handler { return o.handler }

// BytesServed is every body byte sent (shards and segment ranges), to
// viewers and edges alike.
func (o *Origin) BytesServed() int64 { return o.bytesServed.Load() }

// ID is the origin's node id.
func (o *Origin) ID() wire.NodeID { return o.cfg.Identity.ID }

// manifest returns the verified manifest of a stored video.
func (o *Origin) manifest(id content.VideoID) (*content.Manifest, error) {
	if o.cfg.Live != nil {
		if m, ok := o.cfg.Live.Manifest(id); ok {
			return m, nil
		}
	}
	o.manifestsMu.RLock()
	m, ok := o.manifests[id]
	o.manifestsMu.RUnlock()
	if ok {
		return m, nil
	}
	m, err := o.cfg.Store.Manifest(id)
	if err != nil {
		return nil, err
	}
	o.manifestsMu.Lock()
	o.manifests[id] = m
	o.manifestsMu.Unlock()
	return m, nil
}

func (o *Origin) liveManifest(id content.VideoID) (*content.Manifest, bool) {
	if o.cfg.Live == nil {
		return nil, false
	}
	return o.cfg.Live.Manifest(id)
}

// lookupVideo resolves a request's video and segment, writing a 4xx and
// returning nil when either does not exist.
func (o *Origin) lookupVideo(w http.ResponseWriter, route string, ref content.SegmentRef) (*content.Manifest, content.Segment, bool) {
	m, err := o.manifest(ref.Video)
	if errors.Is(err, content.ErrUnknownVideo) {
		o.fail(w, route, http.StatusNotFound, "video %s is not on this origin", ref.Video)
		return nil, content.Segment{}, false
	}
	if err != nil {
		o.log.Error("stored manifest unreadable", "video", ref.Video, "err", err)
		o.fail(w, route, http.StatusInternalServerError, "video %s: stored manifest unreadable", ref.Video)
		return nil, content.Segment{}, false
	}
	seg, err := m.CheckSegment(ref)
	if err != nil {
		o.fail(w, route, http.StatusNotFound, "video %s: %v", ref.Video, err)
		return nil, content.Segment{}, false
	}
	return m, seg, true
}

func (o *Origin) fail(w http.ResponseWriter, route string, status int, format string, args ...any) {
	o.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	wire.WriteError(w, status, format, args...)
}

func (o *Origin) serveShard(w http.ResponseWriter, r *http.Request) {
	const route = "shard"
	ref, err := wire.ParseShardRef(r)
	if err != nil {
		o.fail(w, route, http.StatusBadRequest, "%v", err)
		return
	}
	m, seg, ok := o.lookupVideo(w, route, ref.SegmentRef)
	if !ok {
		return
	}
	if _, err := m.CheckShard(ref); err != nil {
		o.fail(w, route, http.StatusNotFound, "%v", err)
		return
	}
	body, err := o.shardMessage(m, seg, ref)
	if err != nil {
		o.log.Error("cannot build shard", "shard", ref, "err", err)
		o.fail(w, route, http.StatusInternalServerError, "shard %d of video %s rendition %d segment %d: %v", ref.Shard, ref.Video, ref.Rendition, ref.Segment, err)
		return
	}
	w.Header().Set("Content-Type", wire.ContentTypeShard)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set(wire.HeaderNode, string(o.cfg.Identity.ID))
	o.metrics.shardOK.Inc()
	n, _ := w.Write(body)
	o.servedShard(int64(n))
}

// ServeHot is the origin's shard route on fasthttp (httpserve.ListenHot
// with Handler as the rest): a GET of a shard of a stored video, the same
// bytes, headers and metrics as serveShard. It returns false, having
// written nothing, for every other request, and for any shard request
// that is not a 200 (serveShard finds the same error and answers it).
func (o *Origin) ServeHot(c *fasthttp.RequestCtx) bool {
	if !c.IsGet() {
		return false
	}
	ref, ok := wire.ParseShardPath(c.Path())
	if !ok {
		return false
	}
	m, err := o.manifest(ref.Video)
	if err != nil {
		return false
	}
	seg, err := m.CheckSegment(ref.SegmentRef)
	if err != nil {
		return false
	}
	if _, err := m.CheckShard(ref); err != nil {
		return false
	}
	body, err := o.shardMessage(m, seg, ref)
	if err != nil {
		return false
	}
	c.Response.Header.SetContentType(wire.ContentTypeShard)
	// The name is canonical already: SetCanonical skips Set's per-response
	// normalisation, as the edge's ServeHot does.
	c.Response.Header.SetCanonical(hotHeaderNode, o.hotNodeID)
	o.metrics.shardOK.Inc()
	c.Response.SetBodyRaw(body) // cached messages are never modified
	o.servedShard(int64(len(body)))
	return true
}

// hotHeaderNode is wire.HeaderNode for SetCanonical.
var hotHeaderNode = []byte(wire.HeaderNode)

func (o *Origin) servedShard(n int64) {
	o.bytesServed.Add(n)
	o.metrics.shardBytes.Add(float64(n))
	o.metrics.shardsServed.Inc()
}

// shardMessage is the encoded ShardMessage for ref: the cached one when
// its segment is encoded, else built (shard). Callers must not modify it.
func (o *Origin) shardMessage(m *content.Manifest, seg content.Segment, ref content.ShardRef) ([]byte, error) {
	if enc, ok := o.encoded.get(ref.SegmentRef); ok {
		return enc.messages[ref.Shard], nil
	}
	msg, err := o.shard(m, seg, ref)
	if err != nil {
		return nil, err
	}
	return msg.Encode(), nil
}

func (o *Origin) served(kind string, n int64) {
	o.bytesServed.Add(n)
	o.metrics.bytesServed.WithLabelValues(kind).Add(float64(n))
}

// shard builds the ShardMessage for ref. Data shards come straight from the
// stored ciphertext when the encoded segment is no longer cached; the proof
// needs every leaf, which is cached separately and for longer.
func (o *Origin) shard(m *content.Manifest, seg content.Segment, ref content.ShardRef) (*content.ShardMessage, error) {
	key := ref.SegmentRef
	msg := &content.ShardMessage{Video: ref.Video, Rendition: ref.Rendition, Segment: ref.Segment}
	msg.Index = ref.Shard
	if enc, ok := o.encoded.get(key); ok {
		msg.Data, msg.Proof = enc.shards[ref.Shard], content.InclusionProof(enc.leaves, ref.Shard)
		return msg, nil
	}
	leaves, cached := o.leaves.get(key)
	if !cached || ref.Shard >= m.Params.K {
		enc, err := o.encode(m, seg, key)
		if err != nil {
			return nil, err
		}
		msg.Data, msg.Proof = enc.shards[ref.Shard], content.InclusionProof(enc.leaves, ref.Shard)
		return msg, nil
	}
	ct, err := o.ciphertext(seg, key)
	if err != nil {
		return nil, err
	}
	size := m.Params.ShardSize(len(ct))
	data := make([]byte, size) // zero-padded past the end of the segment
	copy(data, ct[min(ref.Shard*size, len(ct)):min((ref.Shard+1)*size, len(ct))])
	msg.Data, msg.Proof = data, content.InclusionProof(leaves, ref.Shard)
	return msg, nil
}

// ciphertext reads a stored segment and checks its size against the manifest.
func (o *Origin) ciphertext(seg content.Segment, key content.SegmentRef) ([]byte, error) {
	var (
		ct  []byte
		err error
	)
	if _, live := o.liveManifest(key.Video); live {
		ct, err = o.cfg.Live.SegmentCiphertext(key.Video, key.Rendition, key.Segment)
	} else {
		ct, err = o.cfg.Store.SegmentCiphertext(key.Video, key.Rendition, key.Segment)
	}
	if err != nil {
		return nil, err
	}
	if len(ct) != int(seg.Size) {
		return nil, fmt.Errorf("stored ciphertext is %d bytes, the manifest says %d: the store is corrupted (run swarmcast verify)", len(ct), seg.Size)
	}
	return ct, nil
}

// encode computes every shard of a segment once, however many requests ask
// for it at the same time, and checks the result against the signed root.
func (o *Origin) encode(m *content.Manifest, seg content.Segment, key content.SegmentRef) (*encodedSegment, error) {
	v, err, _ := o.encodes.Do(key.String(), func() (any, error) {
		if enc, ok := o.encoded.get(key); ok {
			return enc, nil
		}
		ct, err := o.ciphertext(seg, key)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		shards, err := content.EncodeShards(m.Params, ct)
		if err != nil {
			return nil, err
		}
		leaves := content.ShardLeaves(shards)
		if content.MerkleRoot(leaves) != seg.Root {
			return nil, errors.New("stored ciphertext does not match the manifest's segment root: the store is corrupted (run swarmcast verify)")
		}
		enc := &encodedSegment{shards: shards, leaves: leaves, messages: make([][]byte, len(shards))}
		size := 0
		for i, data := range shards {
			msg := (&content.ShardMessage{Video: key.Video, Rendition: key.Rendition, Segment: key.Segment,
				Shard: content.Shard{Index: i, Data: data, Proof: content.InclusionProof(leaves, i)}}).Encode()
			enc.messages[i], enc.shards[i] = msg, msg[len(msg)-len(data):]
			size += len(msg)
		}
		o.metrics.encodes.Inc()
		o.metrics.encodeSeconds.Observe(time.Since(start).Seconds())
		o.encoded.add(key, enc, int64(size))
		o.leaves.add(key, leaves, int64(len(leaves)*len(content.Hash{})))
		return enc, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*encodedSegment), nil
}

func (o *Origin) serveSegment(w http.ResponseWriter, r *http.Request) {
	const route = "segment"
	ref, err := wire.ParseSegmentRef(r)
	if err != nil {
		o.fail(w, route, http.StatusBadRequest, "%v", err)
		return
	}
	_, seg, ok := o.lookupVideo(w, route, ref)
	if !ok {
		return
	}
	ct, err := o.ciphertext(seg, ref)
	if err != nil {
		o.log.Error("cannot read segment", "segment", ref, "err", err)
		o.fail(w, route, http.StatusInternalServerError, "segment %d of video %s rendition %d: %v", ref.Segment, ref.Video, ref.Rendition, err)
		return
	}
	w.Header().Set("Content-Type", "video/mp2t")
	w.Header().Set(wire.HeaderNode, string(o.cfg.Identity.ID))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(ct))
	status := cw.status
	if status == 0 {
		status = http.StatusOK
	}
	o.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if status/100 == 2 { // a 416's error text is not content
		o.served("segment", cw.n)
	}
}

func (o *Origin) serveManifest(w http.ResponseWriter, r *http.Request) {
	const route = "manifest"
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		o.fail(w, route, http.StatusBadRequest, "%v", err)
		return
	}
	m, ok := o.lookupManifestOnly(w, route, id)
	if !ok {
		return
	}
	body := m.Encode()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set(wire.HeaderNode, string(o.cfg.Identity.ID))
	o.metrics.requests.WithLabelValues(route, "200").Inc()
	_, _ = w.Write(body)
}

func (o *Origin) lookupManifestOnly(w http.ResponseWriter, route string, id content.VideoID) (*content.Manifest, bool) {
	m, err := o.manifest(id)
	if errors.Is(err, content.ErrUnknownVideo) {
		o.fail(w, route, http.StatusNotFound, "video %s is not on this origin", id)
		return nil, false
	}
	if err != nil {
		o.log.Error("stored manifest unreadable", "video", id, "err", err)
		o.fail(w, route, http.StatusInternalServerError, "video %s: stored manifest unreadable", id)
		return nil, false
	}
	return m, true
}

// countingWriter counts body bytes and remembers the status code.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

var _ io.Writer = (*countingWriter)(nil)

// SetAdvertise sets the advertised base URL once the server is listening
// (the bound port may only be known then). Call it before Run.
func (o *Origin) SetAdvertise(url string) { o.cfg.Advertise = url }

// SetRTMPPort sets the RTMP ingest listener's port once it listens (before
// Run); the coordinator hands rtmp://HOST:PORT to broadcasters.
func (o *Origin) SetRTMPPort(port int) { o.cfg.RTMPPort = port }

// rtmpAddr is the RTMP ingest address to register, or "".
func (o *Origin) rtmpAddr() string {
	u, err := url.Parse(o.cfg.Advertise)
	if o.cfg.RTMPPort == 0 || err != nil || u.Hostname() == "" {
		return ""
	}
	return "rtmp://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(o.cfg.RTMPPort))
}
