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

// Coordinator timing when the coordinator gives none or is unreachable.
const (
	defaultHeartbeat = 2 * time.Second
	minRetry         = 250 * time.Millisecond
	maxRetry         = 5 * time.Second
	leaveTimeout     = 2 * time.Second
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
	wg.Add(2)
	go func() {
		defer wg.Done()
		e.workLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		e.ordersLoop(ctx) // settles what is left when ctx ends
	}()
	// Secondaries each get their own loop, so a slow or unreachable one
	// never delays the primary's heartbeats.
	for c := 1; c < len(e.coordinators); c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.coordinatorLoop(ctx, c)
		}()
	}
	e.coordinatorLoop(ctx, 0)
	wg.Wait()
	return nil
}

// coordinatorLoop heartbeats to coordinator c until ctx ends, then tells
// it the edge is leaving if it ever registered.
func (e *Edge) coordinatorLoop(ctx context.Context, c int) {
	if !e.heartbeatLoop(ctx, c) {
		return
	}
	cc := e.coordinators[c]
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if err := cc.Leave(lctx, e.cfg.Identity.ID); err != nil {
		e.log.Warn("could not tell the coordinator this edge is leaving", "coordinator", e.cfg.Coordinators[c], "err", err)
	} else {
		e.log.Info("left the network", "coordinator", e.cfg.Coordinators[c])
	}
}

// heartbeatLoop registers and heartbeats with coordinator c (0 is the
// primary, whose directives are applied) until ctx ends and reports
// whether it ever registered.
func (e *Edge) heartbeatLoop(ctx context.Context, c int) (everRegistered bool) {
	var (
		cc         = e.coordinators[c]
		url        = e.cfg.Coordinators[c]
		registered bool
		full       bool
		interval   = defaultHeartbeat
		retry      = minRetry
		reported   int64 // BytesServed at the last heartbeat this coordinator acknowledged
	)
	for {
		wait := interval
		if !registered {
			resp, err := cc.Register(ctx, wire.RegisterRequest{
				NodeID: e.cfg.Identity.ID, Role: wire.RoleEdge, Addr: e.cfg.Advertise, Region: e.cfg.Region,
				DiskCapBytes: e.cfg.DiskCapBytes, UploadCapBytes: max(e.cfg.UploadCapBytes, 0),
			})
			if err != nil {
				if ctx.Err() != nil {
					return everRegistered
				}
				e.log.Warn("cannot register with the coordinator; retrying", "coordinator", url, "err", err, "in", retry)
				if !sleep(ctx, retry) {
					return everRegistered
				}
				retry = min(retry*2, maxRetry)
				continue
			}
			if d := resp.HeartbeatInterval(); d > 0 {
				interval, wait = d, d
			}
			registered, everRegistered, full = true, true, true
			e.log.Info("registered with coordinator", "coordinator", url, "advertise", e.cfg.Advertise, "heartbeat", interval)
		}
		if c == 0 {
			e.expire()
		}
		e.mu.Lock()
		d := e.inv.takeDelta(c, full)
		used := e.inv.used
		e.mu.Unlock()
		served := e.BytesServed()
		resp, err := cc.Heartbeat(ctx, wire.HeartbeatRequest{
			NodeID: e.cfg.Identity.ID, Full: d.full,
			Added: shardSets(d.added), Removed: shardSets(d.removed),
			UsedBytes: used, ServedBytes: served - reported,
		})
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return everRegistered
			}
			e.metrics.heartbeats.WithLabelValues("error").Inc()
			e.mu.Lock()
			e.inv.restoreDelta(c, d)
			e.mu.Unlock()
			e.log.Warn("heartbeat failed; retrying", "coordinator", url, "err", err, "in", retry)
			wait, retry = retry, min(retry*2, maxRetry)
		case resp.Unknown:
			e.metrics.heartbeats.WithLabelValues("unknown").Inc()
			e.log.Info("coordinator forgot this edge; registering again", "coordinator", url)
			registered, wait = false, 0
		default:
			e.metrics.heartbeats.WithLabelValues("ok").Inc()
			reported, full, retry = served, false, minRetry
			if c == 0 {
				e.applyDirectives(resp.Directives)
			}
		}
		if !sleep(ctx, wait) {
			return everRegistered
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// applyDirectives marks held shards assigned, queues the rest for
// prefetch, and unassigns dropped ones.
func (e *Edge) applyDirectives(ds []wire.Directive) {
	now := e.cfg.Now()
	for _, d := range ds {
		id, err := content.ParseVideoID(d.Video)
		if err != nil || d.Rendition < 0 || d.Segment < 0 {
			e.log.Warn("ignoring a malformed directive", "video", d.Video, "err", err)
			continue
		}
		seg := segKey{id, d.Rendition, d.Segment}
		var keys []shardKey
		for _, i := range d.Shards {
			if i >= 0 && i < content.MaxTotalShards {
				keys = append(keys, shardKey{id, d.Rendition, d.Segment, i})
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
					missing = append(missing, k.shard)
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
	raw, err := e.cc.Manifest(ctx, id.String())
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
	m, err := e.ensureManifest(ctx, j.seg.video)
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
		k := shardKey{j.seg.video, j.seg.rendition, j.seg.segment, msg.Index}
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
		if e.work.claim(shardKey{j.seg.video, j.seg.rendition, j.seg.segment, i}) {
			wanted = append(wanted, i)
		}
	}
	if len(wanted) == 0 {
		return
	}
	m, err := e.ensureManifest(ctx, j.seg.video)
	if err != nil {
		e.log.Warn("cannot prefetch", "err", err)
		e.metrics.prefetchFailed.Add(float64(len(wanted)))
		return
	}
	seg, err := m.Segment(j.seg.rendition, j.seg.segment)
	if err != nil {
		e.log.Warn("ignoring a directive for a segment the manifest lacks", "err", err)
		return
	}
	wanted = slices.DeleteFunc(wanted, func(i int) bool { return i >= m.Params.NMax })
	lookup, err := e.cc.PrefetchLookup(ctx, wire.LookupRequest{
		Video: j.seg.video.String(), Rendition: j.seg.rendition, From: j.seg.segment, Count: 1,
		ViewerID: e.cfg.Identity.ID, Region: e.cfg.Region, Exclude: []wire.NodeID{e.cfg.Identity.ID},
	})
	if err != nil {
		e.log.Warn("prefetch lookup failed", "err", err)
		e.metrics.prefetchFailed.Add(float64(len(wanted)))
		return
	}
	var edges []wire.Source
	for _, s := range lookup.Segments {
		if s.Segment == j.seg.segment {
			edges = s.Sources
		}
	}
	maxBytes := int64(content.ShardHeaderSize + 32*8 + 4 + m.Params.ShardSize(int(seg.Size)))
	for _, i := range wanted {
		if ctx.Err() != nil {
			return
		}
		e.serving.wait(ctx) // prefetch in idle time: serving others comes first
		k := shardKey{j.seg.video, j.seg.rendition, j.seg.segment, i}
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
func (e *Edge) originDue(k shardKey) bool {
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
func (e *Edge) fetchFrom(ctx context.Context, m *content.Manifest, k shardKey, src wire.Source, maxBytes int64) fetchResult {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	b, node, err := wire.FetchShard(fctx, e.hc, src.Addr, k.video.String(), k.rendition, k.segment, k.shard, maxBytes)
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
		rep := wire.BadShardReport{Reporter: e.cfg.Identity.ID, Node: node, Video: k.video.String(),
			Rendition: k.rendition, Segment: k.segment, Shard: k.shard, Reason: err.Error(), Evidence: b}
		if err := e.cc.ReportBadShard(fctx, rep); err != nil {
			e.log.Debug("cannot report a bad shard", "err", err)
		}
		return fetchFailed
	}
	if err := e.storeShard(k, b, false); err != nil {
		if errors.Is(err, errNoRoom) {
			e.log.Debug("skipping a directed shard larger than the disk cap", "shard", k.shard)
			return fetchSkipped
		}
		e.log.Warn("cannot store a prefetched shard", "err", err)
		return fetchFailed
	}
	return fetchStored
}
