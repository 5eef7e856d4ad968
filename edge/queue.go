package edge

import (
	"sync"

	"github.com/swarmcast/swarmcast/content"
)

type jobKind int

const (
	jobFetch jobKind = iota // prefetch directed shards of one segment
	jobKeep                 // store shards the local player watched
)

type job struct {
	kind   jobKind
	seg    content.SegmentRef
	shards []int    // jobFetch: indices to fetch
	msgs   [][]byte // jobKeep: encoded ShardMessages
}

// workQueue is a bounded FIFO of jobs with a set of shards still wanted by
// fetch jobs, so a drop directive can cancel a fetch not yet done.
type workQueue struct {
	mu      sync.Mutex
	jobs    []job
	limit   int
	pending map[content.ShardRef]struct{} // shards queued for fetching
	wake    chan struct{}                 // signalled (non-blocking) on push
}

func newWorkQueue(limit int) *workQueue {
	return &workQueue{limit: limit, pending: make(map[content.ShardRef]struct{}), wake: make(chan struct{}, 1)}
}

// push queues a job; false if the queue is full. Fetches of shards
// already queued are not queued twice.
func (q *workQueue) push(j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) >= q.limit {
		return false
	}
	if j.kind == jobFetch {
		fresh := j.shards[:0:0]
		for _, i := range j.shards {
			k := j.seg.Shard(i)
			if _, dup := q.pending[k]; !dup {
				q.pending[k] = struct{}{}
				fresh = append(fresh, i)
			}
		}
		if len(fresh) == 0 {
			return true
		}
		j.shards = fresh
	}
	q.jobs = append(q.jobs, j)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *workQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) == 0 {
		return job{}, false
	}
	j := q.jobs[0]
	q.jobs[0] = job{}
	q.jobs = q.jobs[1:]
	return j, true
}

// claim reports whether k is still wanted and marks it no longer pending.
func (q *workQueue) claim(k content.ShardRef) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.pending[k]
	delete(q.pending, k)
	return ok
}

// cancel forgets queued fetches of keys.
func (q *workQueue) cancel(keys []content.ShardRef) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range keys {
		delete(q.pending, k)
	}
}
