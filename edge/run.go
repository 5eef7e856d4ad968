package edge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

const (
	// fetchTimeout bounds one shard fetch, so a stalling peer cannot hold
	// up prefetching.
	fetchTimeout = 10 * time.Second
	// maxQueuedJobs bounds the prefetch/keep queue (one job is a segment).
	maxQueuedJobs = 4096
)

// Run registers with every coordinator, heartbeats to each with inventory
// deltas (the whole inventory after each (re)registration with it),
// follows the primary's placement directives and prefetches in the
// background. When ctx ends it tells each coordinator it is leaving and
// returns nil once its goroutines have exited.
//
// Only the primary's directives are followed: every coordinator runs
// placement over the same inventories, and following several placers
// would fetch and drop shards at cross purposes. The other coordinators
// hear the inventory so their lookups find this edge.
func (e *Edge) Run(ctx context.Context) error {
	if e.cfg.Coordinator == "" {
		return errors.New("edge: no coordinator URL given")
	}
	if e.cfg.Advertise == "" {
		return errors.New("edge: no advertised URL: set Config.Advertise to the address others reach this edge at")
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.workLoop(ctx) })
	wg.Go(func() { e.ordersLoop(ctx) }) // settles what is left when ctx ends
	wg.Go(func() { e.liveWatchLoop(ctx) })
	// One session per coordinator, each in its own goroutine, so a slow
	// or unreachable one never delays the primary's heartbeats.
	sessions := make([]*wire.NodeSession, len(e.coordinators))
	for c := range e.coordinators {
		sessions[c] = e.session(c)
	}
	wire.RunNodeSessions(ctx, sessions)
	wg.Wait()
	return nil
}

// session keeps coordinator c (0 is the primary, whose directives are
// applied) informed of the inventory through its own pending delta.
func (e *Edge) session(c int) *wire.NodeSession {
	var (
		taken    delta // the delta of the heartbeat in flight
		reported int64 // BytesServed at the last heartbeat this coordinator acknowledged
	)
	return &wire.NodeSession{
		Client: e.coordinators[c],
		Register: wire.RegisterRequest{
			NodeID: e.cfg.Identity.ID, Role: wire.RoleEdge, Addr: e.cfg.Advertise, Region: e.cfg.Region,
			DiskCapBytes: e.advertisedDiskCap(), UploadCapBytes: max(e.cfg.UploadCapBytes, 0),
		},
		LeaveTimeout: wire.DefaultLeaveTimeout,
		Log:          e.log,
		OnRegistered: func(_ context.Context, resp wire.RegisterResponse) error {
			e.learnCoordinatorKey(c, resp)
			if c == 0 {
				e.live.recv.Reregistered() // a restarted coordinator numbers live sets from 1 again
			}
			return nil
		},
		NextHeartbeat: func(full bool) wire.HeartbeatRequest {
			if c == 0 {
				e.expire()
			}
			diskCap := e.refreshDiskCap()
			e.mu.Lock()
			taken = e.inv.takeDelta(c, full)
			used := e.inv.used
			e.mu.Unlock()
			return wire.HeartbeatRequest{
				Full: taken.full, Added: shardSets(taken.added), Removed: shardSets(taken.removed),
				UsedBytes: used, ServedBytes: e.BytesServed() - reported, DiskCapBytes: diskCap,
				LiveWatching: e.liveWatching(),
			}
		},
		OnHeartbeat: func(_ context.Context, res wire.HeartbeatResult) error {
			switch {
			case res.Err != nil:
				e.metrics.heartbeats.WithLabelValues("error").Inc()
				e.mu.Lock()
				e.inv.restoreDelta(c, taken)
				e.mu.Unlock()
			case res.Response.Unknown:
				// The session registers again; the next heartbeat
				// carries the whole inventory.
				e.metrics.heartbeats.WithLabelValues("unknown").Inc()
			default:
				e.metrics.heartbeats.WithLabelValues("ok").Inc()
				reported += res.Request.ServedBytes
				if c == 0 {
					e.applyDirectives(res.Response.Directives)
					e.applyLive(res.Response.Live)
				}
			}
			return nil
		},
	}
}

// applyDirectives marks held shards assigned, queues the rest for
// prefetch, and unassigns dropped ones.
func (e *Edge) applyDirectives(ds []wire.Directive) {
	now := e.cfg.Now()
	for _, d := range ds {
		seg, err := d.SegmentRef()
		if err != nil {
			e.log.Warn("ignoring a malformed directive", "video", d.Video, "err", err)
			continue
		}
		var keys []content.ShardRef
		for _, i := range d.Shards {
			if i >= 0 && i < content.MaxTotalShards {
				keys = append(keys, seg.Shard(i))
			}
		}
		switch d.Action {
		case wire.ActionFetch:
			var missing []int
			e.mu.Lock()
			for _, k := range keys {
				if h, ok := e.inv.held[k]; ok {
					if err := e.markLocked(k, h, false, now); err != nil {
						e.log.Warn("cannot mark a held shard assigned", "err", err)
					}
				} else {
					missing = append(missing, k.Shard)
				}
			}
			e.mu.Unlock()
			if len(missing) > 0 && !e.work.push(job{kind: jobFetch, seg: seg, shards: missing}) {
				e.metrics.queueFull.Inc()
			}
		case wire.ActionDrop:
			e.work.cancel(keys)
			e.dropShards(keys)
		default:
			e.log.Warn("ignoring a directive with an unknown action", "action", d.Action)
		}
	}
}

// workLoop prefetches directed shards and stores kept ones, one segment
// at a time, until ctx ends.
func (e *Edge) workLoop(ctx context.Context) {
	for {
		j, ok := e.work.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-e.work.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		switch j.kind {
		case jobFetch:
			e.prefetch(ctx, j)
		case jobKeep:
			e.keep(ctx, j)
		}
	}
}

// ensureManifest returns a verified manifest, fetching it from the
// coordinator the first time.
func (e *Edge) ensureManifest(ctx context.Context, id content.VideoID) (*content.Manifest, error) {
	if m := e.manifest(id); m != nil {
		return m, nil
	}
	raw, err := e.cc.VideoManifest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("manifest of video %s: %w", id, err)
	}
	m, err := e.saveManifest(id, raw)
	if err != nil {
		e.metrics.verifyFailures.WithLabelValues("manifest").Inc()
		return nil, fmt.Errorf("manifest of video %s from the coordinator: %w", id, err)
	}
	return m, nil
}

// keep verifies and stores shards handed over by the local player.
func (e *Edge) keep(ctx context.Context, j job) {
	m, err := e.ensureManifest(ctx, j.seg.Video)
	if err != nil {
		e.log.Warn("cannot keep watched shards", "err", err)
		return
	}
	for _, b := range j.msgs {
		msg, err := content.DecodeShardMessage(b)
		if err != nil {
			e.metrics.verifyFailures.WithLabelValues("keep").Inc()
			continue
		}
		k := j.seg.Shard(msg.Index)
		if _, err := verifyMessage(m, k, b); err != nil {
			e.metrics.verifyFailures.WithLabelValues("keep").Inc()
			e.log.Warn("not keeping a shard that fails verification", "err", err)
			continue
		}
		if err := e.storeShard(k, b, true); err != nil && !errors.Is(err, errNoRoom) {
			e.log.Warn("cannot keep a watched shard", "err", err)
		}
	}
}

// prefetch fetches the directed shards of one segment, from edges holding
// them first, else the origin, verifying each before storing it.
func (e *Edge) prefetch(ctx context.Context, j job) {
	// Claim first: whatever happens below, these shards are no longer
	// queued, so a later directive can queue them again.
	var wanted []int
	for _, i := range j.shards {
		if e.work.claim(j.seg.Shard(i)) {
			wanted = append(wanted, i)
		}
	}
	if len(wanted) == 0 {
		return
	}
	m, err := e.ensureManifest(ctx, j.seg.Video)
	if err != nil {
		e.log.Warn("cannot prefetch", "err", err)
		e.metrics.prefetchFailed.Add(float64(len(wanted)))
		return
	}
	seg, err := m.Segment(j.seg.Rendition, j.seg.Segment)
	if err != nil {
		e.log.Warn("ignoring a directive for a segment the manifest lacks", "err", err)
		return
	}
	wanted = slices.DeleteFunc(wanted, func(i int) bool { return i >= m.Params.NMax })
	lookup, err := e.cc.PrefetchLookup(ctx, wire.LookupRequest{
		Video: j.seg.Video, Rendition: j.seg.Rendition, From: j.seg.Segment, Count: 1,
		ViewerID: e.cfg.Identity.ID, Region: e.cfg.Region, Exclude: []wire.NodeID{e.cfg.Identity.ID},
	})
	if err != nil {
		e.log.Warn("prefetch lookup failed", "err", err)
		e.metrics.prefetchFailed.Add(float64(len(wanted)))
		return
	}
	var edges []wire.Source
	for _, s := range lookup.Segments {
		if s.Segment == j.seg.Segment {
			edges = s.Sources
		}
	}
	maxBytes := int64(content.ShardHeaderSize + 32*8 + 4 + m.Params.ShardSize(int(seg.Size)))
	for _, i := range wanted {
		if ctx.Err() != nil {
			return
		}
		e.serving.wait(ctx) // prefetch in idle time: serving others comes first
		k := j.seg.Shard(i)
		var sources, complete []wire.Source
		for _, s := range edges {
			switch {
			case s.NodeID == e.cfg.Identity.ID:
			case slices.Contains(s.Shards, i):
				sources = append(sources, s)
			case completeHolder(s, m.Params.K):
				complete = append(complete, s) // regenerates shard i (see regen.go)
			}
		}
		sources = append(sources, complete...)
		nEdges := len(sources)
		if nEdges == 0 && !e.originDue(k) {
			// No edge can supply it yet: wait for one (the coordinator
			// resends unmet directives) rather than pull it from the
			// origin, which is the byte we are trying not to send.
			e.metrics.originDeferred.Inc()
			continue
		}
		sources = append(sources, lookup.Origins...)
		result := fetchFailed
		for si, src := range sources {
			if result = e.fetchFrom(ctx, m, k, src, maxBytes); result == fetchStored {
				kind := "origin"
				if si < nEdges {
					kind = "edge"
				}
				e.metrics.prefetched.WithLabelValues(kind).Inc()
			}
			if result != fetchFailed || ctx.Err() != nil {
				break
			}
		}
		if result == fetchFailed {
			e.metrics.prefetchFailed.Inc()
		}
	}
}

// completeHolder reports whether a source holds at least k shards of the
// segment, so it can regenerate any other index.
func completeHolder(s wire.Source, k int) bool { return len(s.Shards) >= k }

// originDue reports whether a directed shard no edge could supply has
// waited originDelay, so the origin may fill it. The first call for a
// shard starts the wait.
func (e *Edge) originDue(k content.ShardRef) bool {
	now := e.cfg.Now()
	first, loaded := e.firstNoEdge.LoadOrStore(k, now)
	if !loaded {
		return e.cfg.PrefetchOriginDelay <= 0
	}
	if now.Sub(first.(time.Time)) >= e.cfg.PrefetchOriginDelay {
		e.firstNoEdge.Delete(k)
		return true
	}
	return false
}

type fetchResult int

const (
	fetchFailed  fetchResult = iota // try the next source
	fetchStored                     // done
	fetchSkipped                    // verified but does not fit the disk cap: skip the directive
)

// fetchFrom gets one shard from one source, verifies and stores it. A
// shard that fails verification is reported to the coordinator with the
// bytes as evidence.
func (e *Edge) fetchFrom(ctx context.Context, m *content.Manifest, k content.ShardRef, src wire.Source, maxBytes int64) fetchResult {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	resp, err := wire.GetShard(fctx, e.hc, wire.ShardRequest{Base: src.Addr, Ref: k, MaxBytes: maxBytes})
	b, node := resp.Body, resp.Node
	if err != nil {
		e.log.Debug("prefetch from a source failed", "source", src.Addr, "err", err)
		return fetchFailed
	}
	if _, err := verifyMessage(m, k, b); err != nil {
		e.metrics.verifyFailures.WithLabelValues("prefetch").Inc()
		e.log.Warn("a source sent a bad shard", "source", src.NodeID, "err", err)
		if node == "" {
			node = src.NodeID
		}
		rep := wire.BadShardReport{Reporter: e.cfg.Identity.ID, Node: node, Video: k.Video,
			Rendition: k.Rendition, Segment: k.Segment, Shard: k.Shard, Reason: err.Error(), Evidence: b}
		if rc, err := wire.CheckShardReceipt(resp.Receipt, node, k, b); err == nil {
			rep.Receipt = rc // only a signed receipt makes the report count against the source
		}
		if err := e.cc.ReportBadShard(fctx, rep); err != nil {
			e.log.Debug("cannot report a bad shard", "err", err)
		}
		return fetchFailed
	}
	if err := e.storeShard(k, b, false); err != nil {
		if errors.Is(err, errNoRoom) {
			e.log.Debug("skipping a directed shard larger than the disk cap", "shard", k.Shard)
			return fetchSkipped
		}
		e.log.Warn("cannot store a prefetched shard", "err", err)
		return fetchFailed
	}
	return fetchStored
}
