package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
)

// Sink receives a Judge's results. The judge calls it with its lock held,
// in decision order, so it must not call back into the judge; it hands the
// decision on (publish the accepted segment, send the accusation, append
// the exclusion to the channel log, credit or forfeit points).
type Sink interface {
	Decide(btr.Decision)
	// ReexecFailed reports a re-execution that could not run: the segment
	// stays undecided (missing, never wrong) and the operator must look.
	ReexecFailed(task btr.Task, err error)
}

// Judge drives one btr.Core on the real clock: it feeds it what arrives,
// ticks it every Params.TickPeriod and runs the re-executions it asks for,
// one at a time, on its own goroutine. Run owns both goroutines' lifetime.
type Judge struct {
	mu   sync.Mutex
	core *btr.Core
	sink Sink
	tick time.Duration
	re   btr.Reexecutor
	// work carries re-executions to Run's worker; it holds Keep tasks so a
	// burst of disputes never blocks the caller feeding an output.
	work chan btr.Task
}

// NewJudge checks cfg and returns a judge; call Run to start it.
func NewJudge(cfg btr.Config, re btr.Reexecutor, sink Sink) (*Judge, error) {
	core, err := btr.NewCore(cfg)
	if err != nil {
		return nil, err
	}
	keep := cfg.Keep
	if keep <= 0 {
		keep = 64
	}
	return &Judge{core: core, sink: sink, tick: cfg.Params.TickPeriod, re: re, work: make(chan btr.Task, keep)}, nil
}

// Open starts a segment (see btr.Core.Open).
func (j *Judge) Open(seg uint64, input content.Hash, available time.Time) error {
	return j.do(func(now time.Time) error { return j.core.Open(seg, input, available) })
}

// Output feeds a replica's signed output as it arrives.
func (j *Judge) Output(o *btr.Output) error {
	return j.do(func(now time.Time) error { return j.core.Output(o, now) })
}

// OutputAt feeds a replica's signed output that arrived at arrived (this
// judge's clock, stamped as the answer came in: decoding it and waiting
// for the judge's lock are the judge's time, not the replica's).
func (j *Judge) OutputAt(o *btr.Output, arrived time.Time) error {
	return j.do(func(now time.Time) error {
		if arrived.After(now) {
			arrived = now
		}
		return j.core.Output(o, arrived)
	})
}

// Rebut feeds a rebuttal as it arrives.
func (j *Judge) Rebut(r *btr.Rebuttal) error {
	return j.do(func(now time.Time) error { return j.core.Rebut(r, now) })
}

// Assigned is the replica set of a segment.
func (j *Judge) Assigned(seg uint64) []btr.NodeKey {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.core.Assigned(seg)
}

func (j *Judge) do(fn func(now time.Time) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := fn(time.Now())
	j.deliver()
	return err
}

// deliver hands the core's decisions to the sink and queues the
// re-executions; j.mu is held.
func (j *Judge) deliver() {
	for _, d := range j.core.Decisions() {
		if d.Kind == btr.Reexecute {
			select {
			case j.work <- d.Task:
			default:
				j.sink.ReexecFailed(d.Task, fmt.Errorf("re-execution queue full (%d waiting): the judge is slower than the disputes", cap(j.work)))
			}
		}
		j.sink.Decide(d)
	}
}

// Run ticks the core and runs re-executions until ctx is done, then waits
// for a re-execution in progress to return.
func (j *Judge) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case task := <-j.work:
				digest, err := j.re.Run(task.Recipe, task.Input)
				j.mu.Lock()
				if err != nil {
					j.sink.ReexecFailed(task, err)
				} else if err := j.core.Reexecuted(task.Segment, digest, time.Now()); err != nil {
					j.sink.ReexecFailed(task, err)
				}
				j.deliver()
				j.mu.Unlock()
			}
		}
	}()
	t := time.NewTicker(j.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case now := <-t.C:
			j.mu.Lock()
			j.core.Tick(now)
			j.deliver()
			j.mu.Unlock()
		}
	}
}
