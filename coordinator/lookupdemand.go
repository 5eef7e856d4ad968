package coordinator

import (
	"sync"
	"sync/atomic"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Lookups hand their demand to the tracker without waiting for demandMu.
//
// Why: every lookup used to take demandMu to count its segments, and the
// placement round holds demandMu while it folds (a pass over every demanded
// segment, ~1–15 ms by load). A lookup that met the fold, or a lookup
// holder whose thread the kernel descheduled mid-record (the load generator
// shares the two cores), held every other lookup behind one mutex: the
// runtime trace of `swarmcast bench lookup --trace` showed all 32
// connections parked on demandMu at once for 10–12 ms, which is the p99.
//
// How: a lookup that gets demandMu at once (TryLock) records directly,
// after first applying what others queued; one that does not appends its
// record to one of demandShards queues (each behind its own mutex, held for
// an append) and goes on. Whoever next holds demandMu applies the queues
// first (applyQueuedDemandLocked): placement and the admin table before
// they read the tracker, lookups before their own record. Records reach
// the tracker in a different order than the lookups ran, but the tracker
// only counts them (per segment and region, and distinct viewers), so a
// fold sees the same counts as long as the records were applied before it;
// one queued while a fold ran counts in the next fold, as if its lookup had
// come a moment later. A queue holds at most maxQueuedDemand records: a
// lookup that finds its shard full waits for demandMu instead, so memory
// stays bounded however long a holder keeps demandMu.
type demandIntake struct {
	queued atomic.Int64 // records in the shards' queues, for a cheap empty check
	shards [demandShards]demandShard
	// spare is the applier's buffer it swaps with a shard's queue, so
	// applying allocates nothing in the steady state (guarded by demandMu).
	spare []demandRecord
}

// demandShards is how many queues lookups spread over: a lookup whose
// shard is held tries the others before it waits.
const demandShards = 8

// maxQueuedDemand bounds one shard's queue (records of ~80 bytes).
const maxQueuedDemand = 4096

type demandShard struct {
	mu    sync.Mutex
	queue []demandRecord
	_     [40]byte // keep shards' mutexes off one cache line
}

// demandRecord is one lookup's demand: segments [from, to) of a rendition,
// and the playhead at to-1 when the lookup predicts past its window.
type demandRecord struct {
	video     content.VideoID
	rendition int
	from, to  int
	region    string
	viewer    wire.NodeID
	playhead  bool
}

// recordDemand counts rec in the demand tracker, now or (demandMu busy)
// when its holder or the next lookup applies the queues. seq spreads
// lookups over the shards.
func (c *Coordinator) recordDemand(rec demandRecord, seq uint64) {
	in := &c.demandIntake
	if c.demandMu.TryLock() {
		c.applyQueuedDemandLocked()
		c.recordDemandLocked(rec)
		c.demandMu.Unlock()
		return
	}
	if in.enqueue(rec, seq) {
		return
	}
	// Every shard busy or full: wait, as lookups always did before.
	c.demandMu.Lock()
	c.applyQueuedDemandLocked()
	c.recordDemandLocked(rec)
	c.demandMu.Unlock()
}

// enqueue appends rec to the first shard from seq's that is free and not
// full, and reports false if none is.
func (in *demandIntake) enqueue(rec demandRecord, seq uint64) bool {
	first := int(seq % demandShards)
	for i := range demandShards {
		sh := &in.shards[(first+i)%demandShards]
		if !sh.mu.TryLock() {
			continue
		}
		if len(sh.queue) >= maxQueuedDemand {
			sh.mu.Unlock()
			continue
		}
		sh.queue = append(sh.queue, rec)
		in.queued.Add(1)
		sh.mu.Unlock()
		return true
	}
	return false
}

// applyQueuedDemandLocked moves every queued record into the tracker. The
// caller holds demandMu.
func (c *Coordinator) applyQueuedDemandLocked() {
	in := &c.demandIntake
	if in.queued.Load() == 0 {
		return
	}
	for i := range in.shards {
		sh := &in.shards[i]
		sh.mu.Lock()
		batch := sh.queue
		sh.queue = in.spare[:0]
		in.queued.Add(-int64(len(batch)))
		sh.mu.Unlock()
		for _, rec := range batch {
			c.recordDemandLocked(rec)
		}
		clear(batch) // drop the strings so the buffer pins nothing
		in.spare = batch[:0]
	}
}

// recordDemandLocked counts rec. The caller holds demandMu.
func (c *Coordinator) recordDemandLocked(rec demandRecord) {
	c.demand.RecordBy(rec.video, rec.rendition, rec.from, rec.to, rec.region, rec.viewer)
	if rec.playhead {
		c.demand.RecordPlayhead(rec.video, rec.rendition, rec.to-1, rec.region)
	}
}
