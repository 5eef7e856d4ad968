// Package live is the coordinator's live-channel subsystem (docs/LIVE.md):
// channels and their stream keys, the chains origins start and the signed
// entries they append (durable, verified, long-polled by viewers), the
// chains' content keys, the COCOS fan-out trees handed to origins, relays
// and edges in heartbeat answers, and the lookups of live segments.
//
// Shaped like coordinator/accounting: Service holds the logic, its HTTP
// endpoints (Routes, endpoint.go) are thin, and it declares the interfaces
// it consumes: DB (the durable store; *coordinatordb.DB implements it),
// Accounts (sessions, admins and the key route's entitlement rule: the
// accounting subsystem) and Network (what it asks of the control plane:
// signed origin requests and the origins' ingest addresses). The tree
// builder (trees.go) is sans-IO.
package live

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// DB is what the live subsystem keeps durably. *coordinatordb.DB
// implements it (live.go there, plus the accounts and video terms the
// channels and keys rest on).
type DB interface {
	AllowBroadcaster(ctx context.Context, accountID int64, now time.Time) error
	BroadcasterAllowed(ctx context.Context, accountID int64) (bool, error)
	CreateLiveChannel(ctx context.Context, ch coordinatordb.LiveChannel, now time.Time) error
	SetLiveChannelState(ctx context.Context, id wire.ChannelID, state, errMsg string, chain content.VideoID, now time.Time) error
	SetLiveChannelKey(ctx context.Context, id wire.ChannelID, keyHash [32]byte, now time.Time) error
	AddLiveRecording(ctx context.Context, id wire.ChannelID, video content.VideoID, now time.Time) error
	LiveChannels(ctx context.Context) ([]coordinatordb.LiveChannel, error)
	PutLiveChain(ctx context.Context, rec coordinatordb.LiveChainRecord, now time.Time) error
	SealLiveChain(ctx context.Context, chain content.VideoID) error
	LiveChains(ctx context.Context) ([]coordinatordb.LiveChainRecord, error)
	AppendLiveEntry(ctx context.Context, chain content.VideoID, seq uint64, entry []byte) error
	LiveEntries(ctx context.Context, chain content.VideoID, from uint64, limit int) ([][]byte, error)
	LiveHead(ctx context.Context, chain content.VideoID) (int64, error)
	PutLiveFork(ctx context.Context, chain content.VideoID, seq uint64, a, b []byte, now time.Time) error
	AppendLiveBTR(ctx context.Context, st coordinatordb.LiveBTRStatement, now time.Time) error
	LiveBTRLog(ctx context.Context) ([]coordinatordb.LiveBTRStatement, error)

	// btrpay.go and minutes.go (migration 011): transcoding credits and
	// live minutes.
	CreditWork(ctx context.Context, c coordinatordb.WorkCredit, now time.Time) (coordinatordb.WorkCreditResult, error)
	SettleWork(ctx context.Context, before, now time.Time) (int64, error)
	ForfeitWork(ctx context.Context, worker wire.NodeID, exclusion, kind string, now time.Time) (int64, error)
	WorkAgreement(ctx context.Context, chain content.VideoID, segment uint64) ([]byte, error)
	AddLiveMinutes(ctx context.Context, m coordinatordb.LiveMinutes, now time.Time) error
	AllLiveMinutes(ctx context.Context) ([]coordinatordb.LiveMinutes, error)
	ViewerAccount(ctx context.Context, viewer wire.NodeID) (coordinatordb.Account, error)

	AccountByName(ctx context.Context, username string) (coordinatordb.Account, error)
	// A chain's terms (price 0: free to any signed-in account) make its key
	// route the VoD key route's rule (Accounts.AuthorizeKey).
	Video(ctx context.Context, id content.VideoID) (coordinatordb.VideoTerms, error)
	PutVideo(ctx context.Context, v coordinatordb.VideoTerms, now time.Time) error
}

var _ DB = (*coordinatordb.DB)(nil)

// Accounts is what the live subsystem asks of the accounting subsystem
// (*accounting.Service implements it).
type Accounts interface {
	// Caller is the account of r's login session.
	Caller(r *http.Request) (coordinatordb.Account, error)
	AuthorizeAdmin(r *http.Request) error
	// AuthorizeKey is the content-key rule (entitlement; free is unlocked
	// on the spot).
	AuthorizeKey(r *http.Request, video content.VideoID) error
	// WriteError answers an accounting error with its status.
	WriteError(w http.ResponseWriter, err error)
}

// Network is what the live subsystem asks of the control plane.
type Network interface {
	// OriginRequest authenticates a signed node request (wire.NodeSigner)
	// from an allowed, registered origin and returns the signer and the
	// verified body (at most limit bytes, refused past it). On failure it
	// has answered (401, 403, 404, 413) and ok is false.
	OriginRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (origin wire.NodeID, body []byte, ok bool)
	// NodeRequest authenticates a fresh signed node request from any key
	// (a worker's rebuttal: the handler checks the signer is the accused)
	// and returns the signer and the verified body; on failure it has
	// answered (401, 413) and ok is false.
	NodeRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (node wire.NodeID, body []byte, ok bool)
	// RelayNodeRequest authenticates a signed node request from a
	// registered relay or edge (the relays' judge's statements) and returns
	// the signer and the verified body (at most limit bytes). On failure it
	// has answered (401, 403, 404, 413) and ok is false.
	RelayNodeRequest(w http.ResponseWriter, r *http.Request, what string, limit int64) (node wire.NodeID, body []byte, ok bool)
	// IngestAddrs lists the alive origins' shard-server base URLs (HLS
	// push) and RTMP listeners (rtmp://IP:PORT, those that have one).
	IngestAddrs(now time.Time) (hls, rtmp []string)
}

// Config configures a Service. Zero values take the defaults.
type Config struct {
	Now      func() time.Time
	Log      *slog.Logger
	Registry prometheus.Registerer
	// MaxWaiters bounds entries long-polls waiting at once (default 4096);
	// past it a long-poll is answered 503 with Retry-After.
	MaxWaiters int
	// MemoryEntries is how many of each chain's newest entries are kept in
	// memory (default 3600: an hour of 1 s segments); older ones are read
	// from the store.
	MemoryEntries int
	// PushShards is the number of shard indices the origin pushes per
	// segment (default content.DefaultLivePushShards) and Substreams the
	// trees per chain (default PushShards: one index each).
	PushShards, Substreams int
	// PointsPerAgreedSegment is what each worker of an agreed segment
	// earns (default DefaultPointsPerAgreedSegment); WorkHold how long the
	// credit stays forfeitable before it settles (default DefaultWorkHold).
	PointsPerAgreedSegment int64
	WorkHold               time.Duration
	// RelayJudgeKey signs the coordinator's statements as the relays'
	// judge (relayjudge.go); nil: a fresh key per process (the channel log
	// keeps each exclusion's judge key, so stored ones still verify).
	RelayJudgeKey ed25519.PrivateKey
}

// MaxWaitMS bounds an entries long-poll's wait_ms.
const MaxWaitMS = 10_000

// Channel limits.
const (
	maxChannelName  = 64
	minSegmentMS    = 200
	maxSegmentMS    = 10_000
	maxErrorLen     = 1024
	maxGenesisBody  = 32 << 10 // JSON with the base64 genesis (≤ 8 KiB) and key
	maxEntryBody    = 8 << 10  // a signed entry is ≤ 4 KiB
	defaultSegment  = 1000
	streamKeyPrefix = "sk_"
)

// Service is the live subsystem. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	db      DB
	acct    Accounts
	net     Network
	log     *slog.Logger
	metrics *metrics

	// mu guards channels, chains and every field of channel and chain not
	// marked otherwise. It is never held across a store call.
	mu       sync.Mutex
	channels map[wire.ChannelID]*channel
	chains   map[content.VideoID]*chain

	waiters chan struct{} // slots of waiting long-polls

	trees  *treeState // guarded by treeMu
	treeMu sync.Mutex
	// buildMu serialises tree builds (taken before treeMu, never inside).
	buildMu sync.Mutex

	btr btrLogs // the chains' BTR channel logs (btrlog.go)

	minutes minutesState // live minutes metering (minutes.go)
	relays  relayJudges  // the relays' judges (relayjudge.go)
}

type channel struct {
	rec coordinatordb.LiveChannel
	// authorizedBy is the origin that last authorized this channel's key
	// (soft state: an origin authorizes again after a restart).
	authorizedBy wire.NodeID
}

type chain struct {
	rec     coordinatordb.LiveChainRecord
	genesis *content.LiveGenesis
	lc      *content.LiveChain
	// raw are the signed encodings of entries base..head, as stored: the
	// newest Config.MemoryEntries or more (older ones are read from the
	// store). The store holds every chain from entry 0.
	raw  [][]byte
	base uint64
	// wake is closed (and replaced) on every append and on the seal, so
	// long-polls wake.
	wake chan struct{}
	// appendMu serialises appends of this chain around their store write
	// (nests outside Service.mu).
	appendMu sync.Mutex
}

// New builds the service and loads channels, chains and entries from db.
func New(ctx context.Context, cfg Config, db DB, acct Accounts, net Network) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxWaiters <= 0 {
		cfg.MaxWaiters = 4096
	}
	if len(cfg.RelayJudgeKey) != ed25519.PrivateKeySize {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("live: relays' judge key: %w", err)
		}
		cfg.RelayJudgeKey = key
	}
	if cfg.MemoryEntries <= 0 {
		cfg.MemoryEntries = 3600
	}
	if cfg.PushShards <= 0 {
		cfg.PushShards = content.DefaultLivePushShards
	}
	if cfg.PointsPerAgreedSegment <= 0 {
		cfg.PointsPerAgreedSegment = DefaultPointsPerAgreedSegment
	}
	if cfg.WorkHold <= 0 {
		cfg.WorkHold = DefaultWorkHold
	}
	if cfg.Substreams <= 0 || cfg.Substreams > cfg.PushShards {
		cfg.Substreams = cfg.PushShards
	}
	s := &Service{
		cfg: cfg, db: db, acct: acct, net: net, log: cfg.Log,
		channels: make(map[wire.ChannelID]*channel),
		chains:   make(map[content.VideoID]*chain),
		waiters:  make(chan struct{}, cfg.MaxWaiters),
		trees:    newTreeState(),
		relays:   relayJudges{key: cfg.RelayJudgeKey},
	}
	s.metrics = newMetrics(cfg.Registry, s)
	if db != nil {
		if err := s.load(ctx); err != nil {
			return nil, err
		}
		if err := s.loadBTR(ctx); err != nil {
			return nil, err
		}
		if err := s.loadMinutes(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.countStatesLocked()
	s.mu.Unlock()
	return s, nil
}

// load restores channels and chains, verifying every stored entry again.
func (s *Service) load(ctx context.Context) error {
	chs, err := s.db.LiveChannels(ctx)
	if err != nil {
		return fmt.Errorf("live: load channels: %w", err)
	}
	for _, rec := range chs {
		s.channels[rec.ID] = &channel{rec: rec}
	}
	recs, err := s.db.LiveChains(ctx)
	if err != nil {
		return fmt.Errorf("live: load chains: %w", err)
	}
	for _, rec := range recs {
		g, err := content.DecodeLiveGenesis(rec.Genesis)
		if err != nil {
			return fmt.Errorf("live: load chain %s: %w", rec.Chain, err)
		}
		ch := &chain{rec: rec, genesis: g, lc: content.NewLiveChain(g), wake: make(chan struct{})}
		head, err := s.db.LiveHead(ctx, rec.Chain)
		if err != nil {
			return fmt.Errorf("live: load chain %s head: %w", rec.Chain, err)
		}
		ch.base = uint64(max(head-int64(s.cfg.MemoryEntries)+1, 0))
		raws, err := s.db.LiveEntries(ctx, rec.Chain, ch.base, 0)
		if err != nil {
			return fmt.Errorf("live: load chain %s entries: %w", rec.Chain, err)
		}
		for i, raw := range raws {
			e, err := content.DecodeLiveEntry(raw, g, rec.Chain)
			if err == nil && e.Seq != ch.base+uint64(i) {
				err = fmt.Errorf("at position %d", e.Seq)
			}
			if err == nil {
				err = ch.lc.Append(e)
			}
			if err != nil {
				return fmt.Errorf("live: load chain %s: stored entry %d: %w", rec.Chain, ch.base+uint64(i), err)
			}
			ch.raw = append(ch.raw, raw)
		}
		if rec.Sealed {
			ch.lc.Seal()
		}
		s.chains[rec.Chain] = ch
	}
	return nil
}

// info renders a channel (s.mu held).
func (s *Service) info(c *channel) wire.ChannelInfo {
	in := wire.ChannelInfo{
		ID: c.rec.ID, Name: c.rec.Name, Owner: c.rec.Owner, State: c.rec.State, Error: c.rec.Error,
		SegmentMS: c.rec.SegmentMS, PartMS: c.rec.PartMS, Chain: c.rec.Chain, Head: -1, Recordings: slices.Clone(c.rec.Recordings),
	}
	if ch := s.chains[c.rec.Chain]; ch != nil {
		in.Head = ch.headLocked()
	}
	in.Viewers = s.watchers(c.rec.Chain)
	return in
}

// Channels lists every channel, by name.
func (s *Service) Channels() []wire.ChannelInfo {
	s.mu.Lock()
	out := make([]wire.ChannelInfo, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, s.info(c))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b wire.ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Channel describes one channel.
func (s *Service) Channel(id wire.ChannelID) (wire.ChannelInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return wire.ChannelInfo{}, unknownChannel(id)
	}
	return s.info(c), nil
}

func unknownChannel(id wire.ChannelID) error {
	return wire.NotFound("no channel %q; `swarmcast live list` shows the channels", id)
}

// checkChannelName accepts 1..64 bytes of letters, digits, spaces and
// - _ . (no leading or trailing space).
func checkChannelName(name string) error {
	if name == "" || len(name) > maxChannelName || strings.TrimSpace(name) != name {
		return fmt.Errorf("channel name %q: want 1..%d characters without leading or trailing spaces", name, maxChannelName)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("channel name %q: %q is not allowed; use letters, digits, spaces, '-', '_' and '.'", name, r)
		}
	}
	return nil
}

// CreateChannel creates a channel owned by owner (checked by the caller:
// an admin or an allowed broadcaster) and returns its stream key, once.
func (s *Service) CreateChannel(ctx context.Context, owner int64, req wire.CreateChannelRequest) (wire.ChannelCreated, error) {
	if err := checkChannelName(req.Name); err != nil {
		return wire.ChannelCreated{}, wire.BadRequest("create channel: %v", err)
	}
	if req.SegmentMS == 0 {
		req.SegmentMS = defaultSegment
	}
	if req.SegmentMS < minSegmentMS || req.SegmentMS > maxSegmentMS {
		return wire.ChannelCreated{}, wire.BadRequest("create channel: segment_ms %d: want %d..%d (0 for %d)", req.SegmentMS, minSegmentMS, maxSegmentMS, defaultSegment)
	}
	// A part is at least 100 ms (below, signatures and requests dominate)
	// and at most half a segment (else it is no lower latency than one).
	if req.PartMS != 0 && (req.PartMS < content.MinLivePartTarget/1000 || 2*req.PartMS > req.SegmentMS) {
		return wire.ChannelCreated{}, wire.BadRequest("create channel: part_ms %d: want %d..%d (half the %d ms segment), or 0 for standard HLS", req.PartMS, content.MinLivePartTarget/1000, req.SegmentMS/2, req.SegmentMS)
	}
	var idb [8]byte
	rand.Read(idb[:])
	key := newStreamKey()
	rec := coordinatordb.LiveChannel{
		ID: wire.ChannelID("ch_" + hex.EncodeToString(idb[:])), Name: req.Name, Owner: owner,
		KeyHash: sha256.Sum256([]byte(key)), SegmentMS: req.SegmentMS, PartMS: req.PartMS, State: wire.ChannelIdle, Created: s.cfg.Now(),
	}
	if err := s.db.CreateLiveChannel(ctx, rec, rec.Created); err != nil {
		if errors.Is(err, coordinatordb.ErrLiveNameTaken) {
			return wire.ChannelCreated{}, wire.Errorf(http.StatusConflict, "create channel %q: %v", req.Name, err)
		}
		return wire.ChannelCreated{}, fmt.Errorf("create channel: %w", err)
	}
	s.mu.Lock()
	c := &channel{rec: rec}
	s.channels[rec.ID] = c
	s.countStatesLocked()
	info := s.info(c)
	s.mu.Unlock()
	out := s.withIngest(wire.ChannelCreated{Channel: info, StreamKey: key})
	s.log.Info("live channel created", "channel", rec.ID, "name", rec.Name, "owner", owner)
	return out, nil
}

// newStreamKey is a fresh stream key (192 random bits).
func newStreamKey() string {
	var keyb [24]byte
	rand.Read(keyb[:])
	return streamKeyPrefix + hex.EncodeToString(keyb[:])
}

// withIngest adds the alive origins' ingest URLs for out's key.
func (s *Service) withIngest(out wire.ChannelCreated) wire.ChannelCreated {
	var hls, rtmp []string
	if s.net != nil {
		hls, rtmp = s.net.IngestAddrs(s.cfg.Now())
	}
	for _, a := range rtmp {
		out.RTMPIngest = append(out.RTMPIngest, wire.LiveIngestRTMPURL(a, out.StreamKey))
	}
	for _, a := range hls {
		out.HLSIngest = append(out.HLSIngest, wire.LiveIngestHLSURL(a, out.StreamKey))
	}
	return out
}

// RotateKey gives channel id a new stream key, for its owner or an admin,
// and returns it (shown once). The old key is refused from then on: an
// origin asks again every live.Config.Reauth while a publisher is live,
// so one still using the old key is cut off within that; the broadcast
// waits for its publisher, and one that returns with the new key within
// the resume window continues the same chain. A refusal changes nothing.
func (s *Service) RotateKey(ctx context.Context, who coordinatordb.Account, id wire.ChannelID) (wire.ChannelCreated, error) {
	s.mu.Lock()
	c := s.channels[id]
	if c == nil {
		s.mu.Unlock()
		return wire.ChannelCreated{}, unknownChannel(id)
	}
	if c.rec.Owner != who.ID && who.Role != coordinatordb.RoleAdmin {
		s.mu.Unlock()
		return wire.ChannelCreated{}, wire.Errorf(http.StatusForbidden, "rotate stream key of %s: account %q neither owns the channel nor is an admin", id, who.Username)
	}
	s.mu.Unlock()
	key := newStreamKey()
	hash := sha256.Sum256([]byte(key))
	if err := s.db.SetLiveChannelKey(ctx, id, hash, s.cfg.Now()); err != nil {
		return wire.ChannelCreated{}, fmt.Errorf("rotate stream key of %s: %w", id, err)
	}
	s.mu.Lock()
	c.rec.KeyHash = hash
	info := s.info(c)
	s.mu.Unlock()
	s.log.Info("live stream key rotated", "channel", id, "by", who.Username)
	return s.withIngest(wire.ChannelCreated{Channel: info, StreamKey: key}), nil
}

// SyncChannels brings the channels' records up to date with the store,
// which other coordinators on it write too: channels created elsewhere
// are added, and every channel takes the store's stream-key hash, so a
// key rotated on any coordinator is refused on all of them from their
// next ingest authorization. Channel states stay this coordinator's:
// they follow the origins that report here.
func (s *Service) SyncChannels(ctx context.Context) error {
	recs, err := s.db.LiveChannels(ctx)
	if err != nil {
		return fmt.Errorf("live: sync channels from the store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added := false
	for _, rec := range recs {
		if c := s.channels[rec.ID]; c != nil {
			c.rec.KeyHash = rec.KeyHash
			continue
		}
		s.channels[rec.ID] = &channel{rec: rec}
		added = true
	}
	if added {
		s.countStatesLocked()
	}
	return nil
}

// AllowBroadcaster lets the named account create channels.
func (s *Service) AllowBroadcaster(ctx context.Context, username string) error {
	a, err := s.db.AccountByName(ctx, username)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		return wire.NotFound("allow broadcaster: no account %q; it signs up first", username)
	}
	if err != nil {
		return err
	}
	return s.db.AllowBroadcaster(ctx, a.ID, s.cfg.Now())
}

// mayCreate reports whether the account may create channels.
func (s *Service) mayCreate(ctx context.Context, a coordinatordb.Account) error {
	if a.Role == coordinatordb.RoleAdmin {
		return nil
	}
	ok, err := s.db.BroadcasterAllowed(ctx, a.ID)
	if err != nil {
		return err
	}
	if !ok {
		return wire.Errorf(http.StatusForbidden, "create channel: account %q may not broadcast; an admin allows it (POST %s)", a.Username, wire.PathLiveBroadcasters)
	}
	return nil
}

// EndChannel ends a channel's broadcast for its owner or an admin: the
// channel is ended, its current chain sealed (appends answer 410 Gone, the
// origin seals the recording and reports it).
func (s *Service) EndChannel(ctx context.Context, who coordinatordb.Account, id wire.ChannelID) (wire.ChannelInfo, error) {
	s.mu.Lock()
	c := s.channels[id]
	if c == nil {
		s.mu.Unlock()
		return wire.ChannelInfo{}, unknownChannel(id)
	}
	if c.rec.Owner != who.ID && who.Role != coordinatordb.RoleAdmin {
		s.mu.Unlock()
		return wire.ChannelInfo{}, wire.Errorf(http.StatusForbidden, "end channel %s: account %q neither owns it nor is an admin", id, who.Username)
	}
	chainID := c.rec.Chain
	s.mu.Unlock()
	now := s.cfg.Now()
	if chainID != (content.VideoID{}) {
		if err := s.db.SealLiveChain(ctx, chainID); err != nil {
			return wire.ChannelInfo{}, err
		}
	}
	if err := s.db.SetLiveChannelState(ctx, id, wire.ChannelEnded, "", chainID, now); err != nil {
		return wire.ChannelInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.rec.State, c.rec.Error = wire.ChannelEnded, ""
	s.countStatesLocked()
	if ch := s.chains[chainID]; ch != nil {
		s.sealLocked(ch)
	}
	s.log.Info("live channel ended", "channel", id, "by", who.Username)
	return s.info(c), nil
}

// sealLocked seals a chain in memory and wakes its long-polls (s.mu held).
func (s *Service) sealLocked(ch *chain) {
	if ch.rec.Sealed {
		return
	}
	ch.rec.Sealed = true
	ch.lc.Seal()
	close(ch.wake)
	ch.wake = make(chan struct{})
	s.treesChanged()
}

// AuthorizeIngest answers an origin's question whether streamKey may
// publish. The key is compared in constant time with every channel's.
func (s *Service) AuthorizeIngest(origin wire.NodeID, streamKey string) (wire.IngestAuthResponse, error) {
	h := sha256.Sum256([]byte(streamKey))
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *channel
	for _, c := range s.channels {
		if subtle.ConstantTimeCompare(h[:], c.rec.KeyHash[:]) == 1 {
			found = c
		}
	}
	if found == nil {
		s.metrics.rejections.WithLabelValues(rejectUnknownKey).Inc()
		return wire.IngestAuthResponse{}, wire.Errorf(http.StatusForbidden, "no channel has this stream key; create one with swarmcast live create")
	}
	found.authorizedBy = origin
	out := wire.IngestAuthResponse{Channel: s.info(found), K: content.DefaultLiveParams().K, NMax: content.DefaultLiveParams().NMax, PushShards: s.cfg.PushShards}
	if ch := s.chains[found.rec.Chain]; ch != nil && !ch.rec.Sealed && ch.rec.Origin == origin &&
		(found.rec.State == wire.ChannelPublishing || found.rec.State == wire.ChannelWaiting) {
		out.Resume = ch.rec.Chain
	}
	return out, nil
}

// ReportState records an origin's report of a channel's state.
func (s *Service) ReportState(ctx context.Context, origin wire.NodeID, id wire.ChannelID, rep wire.ChannelStateReport) error {
	switch rep.State {
	case wire.ChannelPublishing, wire.ChannelWaiting, wire.ChannelError, wire.ChannelEnded:
	default:
		return wire.BadRequest("channel state %q: want %s, %s, %s or %s", rep.State, wire.ChannelPublishing, wire.ChannelWaiting, wire.ChannelError, wire.ChannelEnded)
	}
	if len(rep.Error) > maxErrorLen {
		return wire.BadRequest("channel state: error of %d bytes, at most %d", len(rep.Error), maxErrorLen)
	}
	s.mu.Lock()
	c := s.channels[id]
	if c == nil {
		s.mu.Unlock()
		return unknownChannel(id)
	}
	if !s.publishesLocked(c, origin) {
		s.mu.Unlock()
		return wire.Errorf(http.StatusForbidden, "channel %s: origin %s did not authorize its stream key; only the origin it publishes to reports its state", id, origin)
	}
	chainID := c.rec.Chain
	if rep.Chain != (content.VideoID{}) {
		ch := s.chains[rep.Chain]
		if ch == nil || ch.rec.Channel != id {
			s.mu.Unlock()
			return wire.BadRequest("channel state: chain %s is not a broadcast of channel %s (start it first: POST %s)", rep.Chain, id, wire.PathLiveChains)
		}
		if ch.rec.Sealed && (rep.State == wire.ChannelPublishing || rep.State == wire.ChannelWaiting) {
			s.mu.Unlock()
			return wire.Errorf(http.StatusGone, "channel %s: chain %s was ended; seal it and report %s", id, rep.Chain, wire.ChannelEnded)
		}
		chainID = rep.Chain
	}
	s.mu.Unlock()
	now := s.cfg.Now()
	if rep.State == wire.ChannelEnded && rep.Recording != (content.VideoID{}) {
		if err := s.db.AddLiveRecording(ctx, id, rep.Recording, now); err != nil {
			return err
		}
	}
	if rep.State == wire.ChannelEnded && chainID != (content.VideoID{}) {
		if err := s.db.SealLiveChain(ctx, chainID); err != nil {
			return err
		}
	}
	if err := s.db.SetLiveChannelState(ctx, id, rep.State, rep.Error, chainID, now); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.rec.State, c.rec.Error, c.rec.Chain = rep.State, rep.Error, chainID
	s.countStatesLocked()
	if rep.State == wire.ChannelEnded {
		if rep.Recording != (content.VideoID{}) && !slices.Contains(c.rec.Recordings, rep.Recording) {
			c.rec.Recordings = slices.Insert(c.rec.Recordings, 0, rep.Recording)
		}
		if ch := s.chains[chainID]; ch != nil {
			s.sealLocked(ch)
		}
	}
	s.log.Info("live channel state", "channel", id, "state", rep.State, "error", rep.Error, "chain", chainID)
	return nil
}

// publishesLocked reports whether origin may act for channel c: it
// authorized c's key, or it publishes c's current chain (s.mu held).
func (s *Service) publishesLocked(c *channel, origin wire.NodeID) bool {
	if c.authorizedBy == origin {
		return true
	}
	ch := s.chains[c.rec.Chain]
	return ch != nil && ch.rec.Origin == origin
}
