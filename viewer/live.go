package viewer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Live playback (docs/LIVE.md "Playback"). The gateway serves a chain under
// /live/{chain}/ (or /live/{channel}/, resolved to the channel's current
// chain) in the VoD playback layout. Behind it, one follower per chain
// fetches the genesis once, then long-polls the coordinator's entries and
// passes each through LiveChain.Append, so only entries that verify and
// chain reach the playlist; a forged, reordered or forked one is refused
// and the good chain kept. As soon as an entry arrives, its segment of
// every rendition a player is watching is fetched any k of n through the
// VoD fetch path (the chain id is the video; shards verify against the
// chain's manifest view), so it is servable early, and the instant it
// became servable is recorded: that is T_serve of the latency figure.

// Live gateway and follower bounds.
const (
	gatewayLivePrefix = "/live/"
	// liveWindowSegments is how many segments a live media playlist lists:
	// the hold-back plus room for a player that reloads late.
	liveWindowSegments = content.LiveHoldBackSegments + 3
	// liveKeepSegments bounds the entries and rebuilt segments a gateway
	// keeps per chain (older ones fall out of every window).
	liveKeepSegments = 2 * liveWindowSegments
	// liveEntriesWait is how long one entries long-poll waits on the
	// coordinator (it caps wait_ms at 10 s).
	liveEntriesWait = 5 * time.Second
	// liveWatchTTL: a rendition whose media playlist nobody asked for in
	// this long is no longer fetched ahead.
	liveWatchTTL = 15 * time.Second
	// liveIdleTimeout: a chain nobody asked the gateway about in this long
	// is no longer followed (its state is dropped).
	liveIdleTimeout = 30 * time.Second
	// liveChannelTTL is how long a channel → chain resolution is reused.
	liveChannelTTL = 2 * time.Second
	// liveRetryMin and liveRetryMax bound the follower's back-off after a
	// failed or refused entries answer.
	liveRetryMin = 100 * time.Millisecond
	liveRetryMax = 2 * time.Second
	// livePushGrace is how long after an entry arrives its segment is
	// fetched (see onEntry).
	livePushGrace = 250 * time.Millisecond
	// liveCarrierRetry is the pause between two carriers-only rounds of a
	// live fetch (fetchLive): a carrier that answered 404 had not yet
	// received the segment's push, which crosses up to two relay levels.
	liveCarrierRetry = 150 * time.Millisecond
	// livePushWait bounds the carriers-only phase of a live fetch: a push
	// lands within a few hundred milliseconds of its entry on a healthy
	// network (the entry is published as the push leaves, and the fetch
	// starts livePushGrace after the entry); past that, a missing shard is
	// more likely lost than late, and the origin must have the time left.
	livePushWait = 400 * time.Millisecond
	// liveCarriersPerRound bounds the carriers one carriers-only round asks
	// (in multiples of k), so a round where the push has not landed costs
	// a few 404s, not one per carrier of the chain.
	liveCarriersPerRound = 2
)

// Why a live segment's fetch started (LiveServable.Fetch).
const (
	LiveFetchEntry   = "entry"   // its entry arrived while a player watched the rendition
	LiveFetchJoin    = "join"    // a player joined: the hold-back's segments
	LiveFetchRequest = "request" // a player asked for it before anything fetched it
)

// LiveServable is reported (Config.OnLiveServable) once per segment of a
// chain the gateway rebuilt: when it could first serve it, and from where.
type LiveServable struct {
	Chain       content.VideoID
	Rendition   int
	Seq         uint64
	ProgramTime time.Time     // the entry's ProgramTime: the segment's first frame at the origin
	Duration    time.Duration // the rendition segment's duration
	At          time.Time     // T_serve: when the verified ciphertext was ready
	HoldBack    time.Duration // what the playlist advertises
	OriginBytes int64
	EdgeBytes   int64
	// Why the origin served shards, for the figures: Fetch is what started
	// the fetch (LiveFetchEntry, LiveFetchJoin, LiveFetchRequest),
	// CarrierRounds how many carriers-only rounds ran, NoCarriers that the
	// lookup listed no carrier (the chain's trees did not reach any edge
	// yet), OriginFallback that the carriers did not deliver k shards
	// before the fetch turned to the origin (the push was late or lost).
	Fetch          string
	CarrierRounds  int
	NoCarriers     bool
	OriginFallback bool
	// EntryAt is when the segment's entry reached this gateway as the
	// chain's newest (zero for an entry of a backlog), FetchStart when the
	// fetch began: T_serve splits into the origin's publish and the
	// entry's delivery (EntryAt − segment end), the wait for the push
	// (FetchStart − EntryAt) and the fetch (At − FetchStart).
	EntryAt    time.Time
	FetchStart time.Time
	// A segment of a joining player's first window (Fetch == LiveFetchJoin)
	// is played from when the whole window is servable (WindowAt, the
	// instant the player's first playlist could list a hold-back's worth;
	// zero if the join gave up waiting first), HOLD-BACK behind the live
	// edge the player saw, whose end is JoinEdgeEnd (the program time +
	// duration of the chain's newest entry at the join).
	JoinEdgeEnd time.Time
	WindowAt    time.Time
}

// Latency is glass-to-glass as docs/LIVE.md ("Glass-to-glass latency")
// defines it: T_serve − (the segment's program time + its duration) +
// HOLD-BACK; for a segment of a joining player's first window, the latency
// the player plays it at: max(T_serve, WindowAt) − JoinEdgeEnd + HOLD-BACK
// (it starts HOLD-BACK behind the live edge it saw, so every segment of
// that window plays at that edge's latency, not at its own age).
func (s LiveServable) Latency() time.Duration {
	if s.JoinEdgeEnd.IsZero() {
		return s.SegmentAgeLatency()
	}
	played := s.At
	if s.WindowAt.After(played) {
		played = s.WindowAt
	}
	return played.Sub(s.JoinEdgeEnd) + s.HoldBack
}

// SegmentAgeLatency is T_serve − (program time + duration) + HOLD-BACK for
// every segment, a joining player's window included (where it adds the
// segment's age at the join, which no player sees): the demo reports its
// p95 beside Latency's so nothing is hidden.
func (s LiveServable) SegmentAgeLatency() time.Duration {
	return s.At.Sub(s.ProgramTime.Add(s.Duration)) + s.HoldBack
}

// liveJoin holds back the servable reports of a joining player's first
// window until the window is servable (or the join gave up), so they
// carry WindowAt.
type liveJoin struct {
	edgeEnd time.Time
	emit    func(LiveServable)

	mu       sync.Mutex
	windowAt time.Time
	closed   bool
	held     []LiveServable
}

// report emits sv now if the window is already servable, else holds it.
func (j *liveJoin) report(sv LiveServable) {
	j.mu.Lock()
	sv.JoinEdgeEnd = j.edgeEnd
	if !j.closed {
		j.held = append(j.held, sv)
		j.mu.Unlock()
		return
	}
	sv.WindowAt = j.windowAt
	j.mu.Unlock()
	j.emit(sv)
}

// close emits the held reports: windowAt is when the window was servable
// (zero: the join stopped waiting without it).
func (j *liveJoin) close(windowAt time.Time) {
	j.mu.Lock()
	j.closed, j.windowAt = true, windowAt
	held := j.held
	j.held = nil
	j.mu.Unlock()
	for _, sv := range held {
		sv.WindowAt = windowAt
		j.emit(sv)
	}
}

// liveChannel is the gateway's state of one chain.
type liveChannel struct {
	id    content.VideoID
	ready chan struct{} // closed when loaded (or failed)
	err   error

	chain *content.LiveChain
	key   content.ContentKey
	entry *videoEntry // the fetch path's view: entry.live = chain
	hold  time.Duration

	lastAsked time.Time // guarded by the viewer's mu (idle check)

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	watched map[int]time.Time
	segs    map[segKey]*liveSegment
	// arrived is when each entry that came as the chain's newest reached
	// this gateway (entries of a first backlog, older than the newest,
	// are absent: their pushes have long landed). A fetch started before
	// arrived + livePushGrace meets carriers the push has not reached.
	arrived map[uint64]time.Time
	// landed is closed for a Seq once the gateway's own edge accepted that
	// segment's push (Viewer.LivePushLanded): the fetch waiting in the
	// grace for the push starts then. Trimmed with arrived.
	landed map[uint64]chan struct{}
	discs  []uint64 // Seqs of the held entries with Discontinuity
	// discsTrimmed counts the discontinuities of entries already trimmed.
	discsTrimmed int
	ended        bool
	// ll is a low-latency chain's parts (livell.go); nil for standard HLS.
	ll *llState
}

type segKey struct {
	rendition int
	seq       uint64
}

// liveSegment is one rebuilt (or failed, or in-flight) segment.
type liveSegment struct {
	done chan struct{}
	ct   []byte
	err  error
}

func (s *liveSegment) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// notifyLocked wakes everyone waiting for a change. lc.mu is held.
func (lc *liveChannel) notifyLocked() {
	close(lc.changed)
	lc.changed = make(chan struct{})
}

// liveTarget is a parsed /live/ path: a chain, or a channel to resolve.
type liveTarget struct {
	channel wire.ChannelID
	chain   content.VideoID
	res     content.PlaybackPath
	part    int // ResourcePart: the part index
}

// parseLivePath parses {chain or channel}/{playback path} (the part after
// /live/).
func parseLivePath(rest string) (liveTarget, error) {
	name, rel, _ := strings.Cut(rest, "/")
	var t liveTarget
	if strings.HasPrefix(name, "ch_") {
		if !validChannelID(name) {
			return t, fmt.Errorf("channel %q: want ch_ and 16 lowercase hex digits, or a 64-digit chain id", name)
		}
		t.channel = wire.ChannelID(name)
	} else {
		id, err := content.ParseVideoID(name)
		if err != nil {
			return t, fmt.Errorf("live: %w (want /live/{chain id or channel id}/master.m3u8)", err)
		}
		t.chain = id
	}
	res, part, err := content.ParseLivePlaybackPath(rel)
	if err != nil {
		return t, err
	}
	t.res, t.part = res, part
	return t, nil
}

func validChannelID(s string) bool {
	hex, ok := strings.CutPrefix(s, "ch_")
	if !ok || len(hex) != 16 {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolveChannel returns a channel's current (or last) chain.
func (v *Viewer) resolveChannel(ctx context.Context, id wire.ChannelID) (content.VideoID, error) {
	now := v.cfg.Now()
	v.mu.Lock()
	r, ok := v.channels[id]
	v.mu.Unlock()
	if ok && now.Sub(r.at) < liveChannelTTL {
		return r.chain, nil
	}
	info, err := v.coord.Channel(ctx, id)
	if err != nil {
		return content.VideoID{}, fmt.Errorf("channel %s: %w", id, err)
	}
	if info.Chain == (content.VideoID{}) {
		return content.VideoID{}, &wire.APIError{Status: http.StatusNotFound, Message: fmt.Sprintf("channel %s has not broadcast yet (state %s): start publishing, then reload", id, info.State)}
	}
	v.mu.Lock()
	v.channels[id] = channelResolution{at: now, chain: info.Chain}
	v.mu.Unlock()
	return info.Chain, nil
}

type channelResolution struct {
	at    time.Time
	chain content.VideoID
}

// liveChain returns the loaded state of a chain, starting its follower on
// first use, and marks it asked for now (keeping the follower alive).
func (v *Viewer) liveChain(ctx context.Context, id content.VideoID) (*liveChannel, error) {
	v.mu.Lock()
	lc, ok := v.lives[id]
	if !ok {
		lc = &liveChannel{id: id, ready: make(chan struct{}), changed: make(chan struct{}),
			watched: map[int]time.Time{}, segs: map[segKey]*liveSegment{}, arrived: map[uint64]time.Time{},
			landed: map[uint64]chan struct{}{}}
		v.lives[id] = lc
	}
	lc.lastAsked = v.cfg.Now()
	v.mu.Unlock()
	if !ok {
		next, err := v.loadLive(ctx, lc)
		lc.err = err
		if err == nil && v.ctx.Err() != nil {
			lc.err = v.ctx.Err()
		}
		if lc.err != nil {
			v.mu.Lock()
			delete(v.lives, id) // retried on the next request
			v.mu.Unlock()
		} else {
			v.wg.Add(1)
			go v.followLive(lc, next)
			if lc.ll != nil {
				v.wg.Add(1)
				go v.followParts(lc)
			}
		}
		close(lc.ready)
		if lc.err == nil {
			v.announceLiveWatching()
		}
	}
	select {
	case <-lc.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return lc, lc.err
}

// loadLive fetches and verifies the genesis and key, and the entries from
// a few before the head; it returns the Seq to follow from.
func (v *Viewer) loadLive(ctx context.Context, lc *liveChannel) (uint64, error) {
	raw, err := v.coord.LiveGenesis(ctx, lc.id)
	if err != nil {
		return 0, fmt.Errorf("live chain %s: genesis: %w", lc.id, err)
	}
	g, err := content.DecodeLiveGenesis(raw)
	if err != nil {
		return 0, fmt.Errorf("live chain %s: the coordinator's genesis fails verification: %w", lc.id, err)
	}
	if g.ID() != lc.id {
		return 0, fmt.Errorf("live chain %s: the coordinator sent the genesis of %s instead", lc.id, g.ID())
	}
	kb, err := v.coord.LiveKey(ctx, lc.id)
	if err != nil {
		if wire.IsAuthError(err) {
			return 0, notEntitled(lc.id, err)
		}
		return 0, fmt.Errorf("live chain %s: content key: %w", lc.id, err)
	}
	if len(kb) != len(lc.key) {
		return 0, fmt.Errorf("live chain %s: content key of %d bytes, want %d", lc.id, len(kb), len(lc.key))
	}
	copy(lc.key[:], kb)
	if lc.key.ID() != g.KeyID {
		return 0, fmt.Errorf("live chain %s: the coordinator's key does not match the genesis' key id", lc.id)
	}
	lc.chain = content.NewLiveChain(g)
	lc.hold = content.LiveHoldBack(g.TargetDuration)
	if g.PartTarget > 0 {
		lc.ll = newLLState(g)
	}
	lc.entry = &videoEntry{ready: make(chan struct{}), key: lc.key, live: lc.chain, windows: map[int]*lookupResult{}}
	close(lc.entry.ready)
	v.bind(ctx)
	// Join a few entries before the head: enough for a player's
	// hold-back. Without the channel's head, follow from 0 (one answer
	// holds at most MaxLiveEntriesPerAnswer; the follower asks on).
	var from uint64
	if info, err := v.coord.Channel(ctx, wire.ChannelID(g.Channel)); err == nil && info.Chain == lc.id {
		if info.Head >= liveKeepSegments {
			from = uint64(info.Head) - liveKeepSegments + 1
		}
		if info.State == wire.ChannelEnded {
			lc.ended = true
		}
	}
	raws, err := v.coord.LiveEntries(ctx, lc.id, from, 0)
	if err != nil && !isGone(err) {
		return 0, fmt.Errorf("live chain %s: entries: %w", lc.id, err)
	}
	return v.appendEntries(lc, raws, from), nil
}

func isGone(err error) bool {
	var ae *wire.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusGone
}

// appendEntries verifies and appends raw entries in order, stopping at the
// first refused one (the rest cannot chain), and returns the Seq to ask
// for next.
func (v *Viewer) appendEntries(lc *liveChannel, raws [][]byte, from uint64) uint64 {
	g := lc.chain.Genesis()
	for i, raw := range raws {
		e, err := content.DecodeLiveEntry(raw, g, lc.id)
		if err == nil {
			err = lc.chain.Append(e)
		}
		var fork *content.LiveForkError
		switch {
		case errors.As(err, &fork):
			v.met.liveEntries.WithLabelValues("fork").Inc()
			v.log.Warn("the coordinator sent a second, validly signed entry for a held position: the publisher forked the chain; keeping the first", "chain", lc.id, "seq", fork.Proof.A.Seq)
		case err != nil:
			v.met.liveEntries.WithLabelValues("refused").Inc()
			v.log.Warn("refused a live entry", "chain", lc.id, "err", err)
		}
		if err != nil {
			break
		}
		v.met.liveEntries.WithLabelValues("accepted").Inc()
		v.onEntry(lc, e, i == len(raws)-1)
	}
	if h := lc.chain.Head(); h != nil {
		return h.Seq + 1
	}
	return from
}

// onEntry starts the fetch of the new segment in every watched rendition
// and forgets what fell out of every window. newest says e is the last of
// its answer (it may have just been published: its arrival is kept).
func (v *Viewer) onEntry(lc *liveChannel, e *content.LiveEntry, newest bool) {
	now := v.cfg.Now()
	lc.mu.Lock()
	if newest {
		lc.arrived[e.Seq] = now
	}
	if e.Discontinuity {
		lc.discs = append(lc.discs, e.Seq)
	}
	var watched []int
	for r, at := range lc.watched {
		if now.Sub(at) <= liveWatchTTL {
			watched = append(watched, r)
		}
	}
	if e.Seq >= liveKeepSegments {
		low := e.Seq - liveKeepSegments + 1
		for k := range lc.segs {
			if k.seq < low {
				delete(lc.segs, k)
			}
		}
		for seq := range lc.arrived {
			if seq < low {
				delete(lc.arrived, seq)
			}
		}
		for seq := range lc.landed {
			if seq < low {
				delete(lc.landed, seq)
			}
		}
		for len(lc.discs) > 0 && lc.discs[0] < low {
			// The count must survive the trim: a window's
			// DISCONTINUITY-SEQUENCE counts from the first entry held.
			lc.discsTrimmed++
			lc.discs = lc.discs[1:]
		}
		lc.chain.Trim(low)
	}
	lc.notifyLocked()
	lc.mu.Unlock()
	if len(watched) == 0 {
		return
	}
	// The entry reaches players as the origin starts pushing the
	// segment's shards down the trees: asked at once, the edges do not
	// hold them yet and the scheduler turns to the origin. A short wait
	// lets the push land (measured in docs/PERFORMANCE.md "Live channels").
	landed := lc.landedChan(e.Seq)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		if !waitSignal(v.ctx, landed, livePushGrace) {
			return
		}
		for _, r := range watched {
			v.startLiveSegment(lc, r, e.Seq, LiveFetchEntry, nil)
		}
	}()
}

// landedChan is the channel closed when seq's push reached this gateway's
// edge (made on first use).
func (lc *liveChannel) landedChan(seq uint64) chan struct{} {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.landedChanLocked(seq)
}

func (lc *liveChannel) landedChanLocked(seq uint64) chan struct{} {
	c, ok := lc.landed[seq]
	if !ok {
		c = make(chan struct{})
		lc.landed[seq] = c
	}
	return c
}

// pushLandedLocked reports whether seq's push reached this gateway's edge.
func (lc *liveChannel) pushLandedLocked(seq uint64) bool {
	c, ok := lc.landed[seq]
	if !ok {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitSignal waits until signal is closed, d has passed or ctx ends; it
// reports whether ctx is still live. The live gateway's waits (a push
// landing within its grace, a window filling before its join's deadline)
// all take this shape: the wake is only a hint to look again.
func waitSignal(ctx context.Context, signal <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-signal:
	case <-t.C:
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}

// LivePushLanded tells the gateway that its own edge (the edge whose
// built-in player this viewer is) accepted the push of segment seq of
// chain: the push down the trees has reached the edges' level, so the
// segment's fetch need not wait out livePushGrace. Without the calls (a
// gateway with no edge, or an edge outside the chain's trees) the grace
// holds as before. Only a hint for when to start: every shard is still
// fetched and verified as always.
func (v *Viewer) LivePushLanded(chain content.VideoID, seq uint64) {
	v.mu.Lock()
	lc, ok := v.lives[chain]
	v.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-lc.ready: // lc.chain is set
	default:
		return
	}
	if lc.err != nil {
		return
	}
	if h := lc.chain.Head(); h != nil && seq+liveKeepSegments <= h.Seq {
		return // long gone from the window
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	c := lc.landedChanLocked(seq)
	select {
	case <-c:
	default:
		close(c)
		lc.notifyLocked() // a join waiting out the grace looks again
	}
}

// followLive long-polls the chain's entries until the viewer closes or
// nobody asked for the chain for liveIdleTimeout.
func (v *Viewer) followLive(lc *liveChannel, next uint64) {
	defer v.wg.Done()
	g := lc.chain.Genesis()
	wait := time.Duration(0)
	lastCheck := v.cfg.Now()
	for {
		if v.idleLive(lc) {
			return
		}
		if wait > 0 {
			if sleepUntil(v.ctx, v.cfg.Now, v.cfg.Now().Add(wait)) != nil {
				return
			}
		}
		lc.mu.Lock()
		ended := lc.ended
		lc.mu.Unlock()
		if ended {
			// Nothing follows a sealed chain: stay (the ended playlist is
			// served) until idle.
			wait = liveRetryMax
			continue
		}
		ctx, cancel := context.WithTimeout(v.ctx, liveEntriesWait+5*time.Second)
		raws, err := v.coord.LiveEntries(ctx, lc.id, next, int(liveEntriesWait/time.Millisecond))
		cancel()
		if v.ctx.Err() != nil {
			return
		}
		switch {
		case isGone(err):
			v.markEnded(lc)
			continue
		case err != nil:
			v.log.Debug("live entries long-poll failed; retrying", "chain", lc.id, "err", err)
			wait = min(max(2*wait, liveRetryMin), liveRetryMax)
			continue
		}
		got := v.appendEntries(lc, raws, next)
		switch {
		case got > next:
			next, wait = got, 0
		case len(raws) > 0:
			// Everything refused: the coordinator (or what it relays) is
			// wrong; keep the good chain and ask again, backing off.
			wait = min(max(2*wait, liveRetryMin), liveRetryMax)
		}
		// No entry for a while: has the broadcast ended (or moved on to
		// another chain)?
		if len(raws) == 0 || v.cfg.Now().Sub(lastCheck) >= liveEntriesWait {
			lastCheck = v.cfg.Now()
			ctx, cancel := context.WithTimeout(v.ctx, liveEntriesWait)
			info, err := v.coord.Channel(ctx, wire.ChannelID(g.Channel))
			cancel()
			if err == nil && ((info.State == wire.ChannelEnded && info.Chain == lc.id) || (info.Chain != lc.id && info.Chain != content.VideoID{})) {
				v.markEnded(lc)
			}
		}
	}
}

func (v *Viewer) markEnded(lc *liveChannel) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.ended {
		lc.ended = true
		lc.chain.Seal()
		lc.notifyLocked()
	}
}

// idleLive drops the chain's state if nobody asked for it lately; a
// request after that loads it afresh.
func (v *Viewer) idleLive(lc *liveChannel) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ctx.Err() != nil {
		return true
	}
	if v.cfg.Now().Sub(lc.lastAsked) < liveIdleTimeout {
		return false
	}
	if v.lives[lc.id] == lc {
		delete(v.lives, lc.id)
		v.wg.Add(1)
		go func() { // not under v.mu: the callback may call back in
			defer v.wg.Done()
			v.announceLiveWatching()
		}()
	}
	return true
}

// announceLiveWatching hands Config.OnLiveWatching the followed chains.
func (v *Viewer) announceLiveWatching() {
	if v.cfg.OnLiveWatching == nil {
		return
	}
	v.mu.Lock()
	chains := make([]content.VideoID, 0, len(v.lives))
	for id, lc := range v.lives {
		select {
		case <-lc.ready:
			if lc.err == nil {
				chains = append(chains, id)
			}
		default:
		}
	}
	v.mu.Unlock()
	slices.SortFunc(chains, func(a, b content.VideoID) int { return bytes.Compare(a[:], b[:]) })
	v.cfg.OnLiveWatching(chains)
}

// startLiveSegment makes sure segment seq of rendition r is rebuilt or
// being rebuilt (a failed one is tried again), under the viewer's context;
// why says what asked for it (LiveServable.Fetch).
// A join's (non-nil j) report waits for its window (liveJoin).
func (v *Viewer) startLiveSegment(lc *liveChannel, r int, seq uint64, why string, j *liveJoin) *liveSegment {
	k := segKey{r, seq}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if s, ok := lc.segs[k]; ok && (!s.finished() || s.err == nil) {
		return s
	}
	s := &liveSegment{done: make(chan struct{})}
	if v.ctx.Err() != nil {
		s.err = v.ctx.Err()
		close(s.done)
		return s
	}
	lc.segs[k] = s
	e, _ := lc.chain.Entry(seq)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		ref := content.SegmentRef{Video: lc.id, Rendition: r, Segment: int(seq)}
		var dur time.Duration
		if e != nil {
			dur = time.Duration(e.Segments[r].Duration) * time.Microsecond
		}
		// The player needs segment seq when its playhead, HOLD-BACK behind
		// the live edge, reaches the segment's start: about hold − dur from
		// now (the entry arrives as the segment ends). A deadline of one
		// segment made every live fetch "late" at once, so the origin raced
		// the edges for every segment (offload 50 %, 9 origin copies).
		fetchStart := v.cfg.Now()
		res, how, err := v.fetchLive(v.ctx, lc, ref, fetchStart.Add(max(dur, lc.hold-dur)))
		at := v.cfg.Now()
		lc.mu.Lock()
		entryAt := lc.arrived[seq]
		if err != nil {
			s.err = err
		} else {
			s.ct = res.ciphertext
		}
		close(s.done)
		lc.notifyLocked()
		lc.mu.Unlock()
		if err != nil {
			if v.ctx.Err() == nil {
				v.log.Warn("could not rebuild a live segment", "chain", lc.id, "rendition", r, "seq", seq, "err", err)
			}
			return
		}
		if e == nil {
			return
		}
		sv := LiveServable{Chain: lc.id, Rendition: r, Seq: seq, ProgramTime: time.UnixMicro(e.ProgramTime), Duration: dur,
			At: at, HoldBack: lc.hold, OriginBytes: res.originBytes, EdgeBytes: res.edgeBytes,
			Fetch: why, CarrierRounds: how.rounds, NoCarriers: how.noCarriers, OriginFallback: how.fallback,
			EntryAt: entryAt, FetchStart: fetchStart}
		if j != nil {
			j.report(sv)
			return
		}
		v.emitLiveServable(sv)
	}()
	return s
}

// emitLiveServable observes sv's latency and hands it to OnLiveServable.
func (v *Viewer) emitLiveServable(sv LiveServable) {
	v.met.liveLatency.Observe(sv.Latency().Seconds())
	if v.cfg.OnLiveServable != nil {
		v.cfg.OnLiveServable(sv)
	}
}

// liveFetchHow is how fetchLive got a segment (LiveServable's fields).
type liveFetchHow struct {
	rounds     int
	noCarriers bool
	fallback   bool
}

// fetchLive rebuilds a live segment due at deadline (when the player's
// playhead reaches it). The carriers (the edges and relays of the chain's
// trees) are asked first, and only they, while the deadline is more than a
// segment away: a carrier that answers 404 has not received the push yet
// (the entry reaches the gateway as the push leaves the origin, and the
// push crosses up to two relay levels), so the next round, after
// liveCarrierRetry, asks carriers again rather than the origin. Once the
// segment is within one duration of its deadline (the scheduler's "late"),
// or livePushWait has passed, or the carriers are fewer than k, it is an
// ordinary fetch, origin included. Without this, a fetch that met
// a few 404s in its first milliseconds turned to the origin for every
// missing shard (docs/PERFORMANCE.md, "Live at 50 viewers"). A segment
// whose push has landed (see landed below) gets one round of every
// carrier instead: waiting cannot bring it to a carrier that lacks it.
func (v *Viewer) fetchLive(ctx context.Context, lc *liveChannel, ref content.SegmentRef, deadline time.Time) (*segmentResult, liveFetchHow, error) {
	var how liveFetchHow
	e := lc.entry
	segDur := time.Second
	if ent, ok := lc.chain.Entry(uint64(ref.Segment)); ok && ref.Rendition < len(ent.Segments) {
		segDur = time.Duration(ent.Segments[ref.Rendition].Duration) * time.Microsecond
	}
	k := lc.chain.Genesis().Params.K
	start := v.cfg.Now()
	// A segment whose push has landed (its entry came in a backlog, or
	// arrived longer ago than the grace and the wait a push may take) is
	// held by every carrier that was in the trees then: one round asks all
	// of them, so the scheduler replaces a carrier that answers 404 (one
	// placed since) with the next at once instead of waiting a round.
	lc.mu.Lock()
	at, young := lc.arrived[uint64(ref.Segment)]
	lc.mu.Unlock()
	landed := !young || start.Sub(at) >= livePushGrace+livePushWait
	for round := 0; v.cfg.Now().Sub(start) < livePushWait && deadline.Sub(v.cfg.Now()) > segDur+liveCarrierRetry && (round == 0 || !landed); round++ {
		if round > 0 {
			if err := sleepUntil(ctx, v.cfg.Now, v.cfg.Now().Add(liveCarrierRetry)); err != nil {
				return nil, how, err
			}
		}
		edges, _, err := v.sources(ctx, e, ref, false)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrNotEntitled) {
				return nil, how, err
			}
			break // the ordinary fetch retries the lookup
		}
		if len(edges) == 0 {
			how.noCarriers = true
			break
		}
		if len(edges) < k {
			break // fewer carriers than k: only the origin can complete it
		}
		// Each round asks the next few carriers in rank order, so rounds
		// spread over the carriers rather than re-asking the first ones.
		per := max(liveCarriersPerRound*k, 1)
		if len(edges) > per && !landed {
			off := (round * per) % len(edges)
			edges = append(slices.Clone(edges[off:]), edges[:off]...)[:per]
		}
		how.rounds++
		res, err := v.fetchOnce(ctx, e, ref, urgency{deadline: deadline, speed: 1}, edges, nil)
		if err == nil {
			return res, how, nil
		}
		if ctx.Err() != nil {
			return nil, how, err
		}
	}
	how.fallback = !how.noCarriers
	res, err := v.fetchSegment(ctx, e, ref, urgency{deadline: deadline, speed: 1})
	return res, how, err
}

// window is what rendition r's media playlist lists now: the newest run of
// consecutive segments this gateway has finished (a failed one is listed:
// a request for it tries again), up to liveWindowSegments.
func (lc *liveChannel) window(r int) content.LiveWindow {
	g := lc.chain.Genesis()
	w := content.LiveWindow{Rendition: r, TargetDuration: g.TargetDuration}
	entries := lc.chain.Entries(0, 0)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var run []content.LiveWindowSegment
	complete := true
	for i, e := range entries {
		s, ok := lc.segs[segKey{r, e.Seq}]
		if !ok {
			complete = false
			if len(run) > 0 && !lc.fetchedAfterLocked(r, entries[i+1:]) {
				// The newest entries' fetches have not started yet
				// (livePushGrace): the run ends here for now.
				break
			}
			// Never fetched (before the player joined, or while nobody
			// watched): a later run replaces the one before the gap.
			run = nil
			continue
		}
		if !s.finished() {
			complete = false
			break
		}
		complete = true
		run = append(run, content.LiveWindowSegment{Seq: e.Seq, Duration: e.Segments[r].Duration, ProgramTime: e.ProgramTime, Discontinuity: e.Discontinuity})
	}
	if len(run) > liveWindowSegments {
		run = run[len(run)-liveWindowSegments:]
	}
	w.Segments = run
	if len(run) > 0 {
		w.DiscontinuitySeq = lc.discsTrimmed
		for _, d := range lc.discs {
			if d < run[0].Seq {
				w.DiscontinuitySeq++
			}
		}
		w.Ended = lc.ended && complete && len(entries) > 0 && run[len(run)-1].Seq == entries[len(entries)-1].Seq
	}
	return w
}

// fetchedAfterLocked reports whether any of entries has a fetch of
// rendition r. lc.mu is held.
func (lc *liveChannel) fetchedAfterLocked(r int, entries []*content.LiveEntry) bool {
	for _, e := range entries {
		if _, ok := lc.segs[segKey{r, e.Seq}]; ok {
			return true
		}
	}
	return false
}

// joinLive marks rendition r watched; a player that just joined gets the
// newest hold-back's worth of segments fetched, and the first playlist
// waits (bounded) until they are servable, so it starts at the live edge.
// A segment whose entry arrived less than livePushGrace ago is fetched
// only once the grace has passed, as onEntry would have (asked at once,
// the carriers do not hold it yet and the origin serves it: the join-time
// copies of docs/PERFORMANCE.md "Live at 50 viewers").
func (v *Viewer) joinLive(ctx context.Context, lc *liveChannel, r int) {
	now := v.cfg.Now()
	lc.mu.Lock()
	last, seen := lc.watched[r]
	lc.watched[r] = now
	lc.mu.Unlock()
	if seen && now.Sub(last) <= liveWatchTTL {
		// Watched already: another request's join (a second gateway or
		// player on this viewer) is fetching the window. While it is
		// empty this request waits for it, bounded as the join is,
		// rather than answering a playlist without a segment (ffmpeg
		// then gives up: "matches no streams"). With trees from go-live
		// the join's segments come from carriers after the push grace,
		// not at once from the origin, so that gap became visible.
		v.waitLiveWindow(ctx, lc, r, now.Add(2*lc.hold))
		return
	}
	want := content.LiveHoldBackSegments + 1
	deadline := now.Add(2 * lc.hold)
	var j *liveJoin
	if newest := lc.chain.Head(); newest != nil && r < len(newest.Segments) {
		j = &liveJoin{edgeEnd: time.UnixMicro(newest.ProgramTime).Add(time.Duration(newest.Segments[r].Duration) * time.Microsecond), emit: v.emitLiveServable}
	}
	windowAt := time.Time{}
	defer func() {
		if j != nil {
			j.close(windowAt)
		}
	}()
	for {
		entries := lc.chain.Entries(0, 0)
		if len(entries) > want {
			entries = entries[len(entries)-want:]
		}
		wait := deadline.Sub(v.cfg.Now())
		for _, e := range entries {
			lc.mu.Lock()
			at, young := lc.arrived[e.Seq]
			landed := lc.pushLandedLocked(e.Seq)
			lc.mu.Unlock()
			if ready := at.Add(livePushGrace).Sub(v.cfg.Now()); young && ready > 0 && !landed {
				wait = min(wait, ready)
				continue
			}
			v.startLiveSegment(lc, r, e.Seq, LiveFetchJoin, j)
		}
		lc.mu.Lock()
		changed, ended := lc.changed, lc.ended
		lc.mu.Unlock()
		if n := len(lc.window(r).Segments); n >= want || (ended && n > 0) {
			windowAt = v.cfg.Now()
			return
		}
		if deadline.Sub(v.cfg.Now()) <= 0 {
			return
		}
		if !waitSignal(ctx, changed, wait) {
			return
		}
	}
}

// waitLiveWindow waits until rendition r's window lists a segment, the
// deadline passes or ctx ends.
func (v *Viewer) waitLiveWindow(ctx context.Context, lc *liveChannel, r int, deadline time.Time) {
	for {
		lc.mu.Lock()
		changed := lc.changed
		lc.mu.Unlock()
		wait := deadline.Sub(v.cfg.Now())
		if len(lc.window(r).Segments) > 0 || wait <= 0 {
			return
		}
		if !waitSignal(ctx, changed, wait) {
			return
		}
	}
}

// serveLive answers /live/{chain or channel}/{playback path}.
func (v *Viewer) serveLive(w http.ResponseWriter, r *http.Request, rest string) {
	t, err := parseLivePath(rest)
	if err != nil {
		wire.WriteError(w, http.StatusNotFound, "%v", err)
		return
	}
	chain := t.chain
	if t.channel != "" {
		if chain, err = v.resolveChannel(r.Context(), t.channel); err != nil {
			writeLiveError(w, err)
			return
		}
	}
	lc, err := v.liveChain(r.Context(), chain)
	if err != nil {
		writeLiveError(w, err)
		return
	}
	g := lc.chain.Genesis()
	if t.res.Resource == content.ResourceMedia || t.res.Resource == content.ResourceSegment || t.res.Resource == content.ResourcePart {
		if t.res.Rendition >= len(g.Renditions) {
			wire.WriteError(w, http.StatusNotFound, "rendition %d does not exist (the channel has %d)", t.res.Rendition, len(g.Renditions))
			return
		}
	}
	if t.res.Resource == content.ResourcePart && lc.ll == nil {
		wire.WriteError(w, http.StatusNotFound, "chain %s is not a low-latency channel: it has no parts", chain)
		return
	}
	if lc.ll != nil && v.serveLL(w, r, lc, t) {
		return
	}
	switch t.res.Resource {
	case content.ResourceMaster:
		w.Header().Set("Content-Type", content.PlaylistContentType)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(content.LiveMasterPlaylist(g)))
	case content.ResourceKey:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(lc.key[:])
	case content.ResourceMedia:
		v.joinLive(r.Context(), lc, t.res.Rendition)
		pl, err := content.LiveMediaPlaylist(lc.window(t.res.Rendition), lc.key)
		if err != nil {
			wire.WriteError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		w.Header().Set("Content-Type", content.PlaylistContentType)
		// A live playlist changes every segment: no cache may hold it.
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(pl))
	case content.ResourceSegment:
		seq := uint64(t.res.Segment)
		if _, ok := lc.chain.Entry(seq); !ok {
			head := int64(-1)
			if h := lc.chain.Head(); h != nil {
				head = int64(h.Seq)
			}
			wire.WriteError(w, http.StatusNotFound, "live segment %d is not held here (the newest is %d; older ones leave the window): reload the playlist", seq, head)
			return
		}
		s := v.startLiveSegment(lc, t.res.Rendition, seq, LiveFetchRequest, nil)
		select {
		case <-s.done:
		case <-r.Context().Done():
			return
		}
		if s.err != nil {
			wire.WriteError(w, http.StatusBadGateway, "%v", s.err)
			return
		}
		w.Header().Set("Content-Type", content.SegmentContentType)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.ct))
	}
}

// writeLiveError maps a load error to a status: unknown chains and
// channels are 404s, refusals 403, the rest 502.
func writeLiveError(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case wire.IsNotFound(err):
		status = http.StatusNotFound
	case errors.Is(err, ErrNotEntitled):
		status = http.StatusForbidden
	}
	wire.WriteError(w, status, "%v", err)
}
