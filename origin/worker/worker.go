// Package worker is the origin's BTR worker and checker (issue 12): it runs
// origin/live's pinned ladder Recipe on one source segment as a replica
// (signing a btr.Output of the ladder's digest) and, as the judge or any
// third party, re-executes it to decide a dispute or check a commission
// proof (it implements btr.Reexecutor). Re-execution repeats the work
// rather than running a cheap local test a cheater can pass: Livepeer's
// black-frame transcoder passed such a test and was paid.
//
// Workers are a role of the origin, not a role of their own: the origin
// already holds ffmpeg, the recipe and the source segments, and a subsystem
// of the origin may import origin/live (roles never import each other).
package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/origin/live"
)

// Sources returns a source segment's bytes by their SHA-256 (the origin's
// segment store, or fetched from the origin that cut it).
type Sources interface {
	Source(input content.Hash) ([]byte, error)
}

// Reexecutor re-runs ladder recipes with ffmpeg. It implements
// btr.Reexecutor.
type Reexecutor struct {
	FFmpeg  string                 // path of the ffmpeg binary
	Recipes map[string]live.Recipe // by Recipe.ID()
	Sources Sources
	// Timeout bounds one run (0: one minute). The chain's btr.Params.Reexec
	// must be at least what a run takes on the judge.
	Timeout time.Duration
}

// NewReexecutor indexes recipes by their ID.
func NewReexecutor(ffmpeg string, src Sources, recipes ...live.Recipe) *Reexecutor {
	r := &Reexecutor{FFmpeg: ffmpeg, Sources: src, Recipes: map[string]live.Recipe{}}
	for _, rc := range recipes {
		r.Recipes[rc.ID()] = rc
	}
	return r
}

// Run re-executes recipe on the source segment whose SHA-256 is input and
// returns btr.LadderDigest of the outputs. Source bytes that do not hash to
// input are refused: a proof is checked against exactly the input the
// culprit signed it transcoded.
func (r *Reexecutor) Run(recipe string, input content.Hash) (content.Hash, error) {
	rc, ok := r.Recipes[recipe]
	if !ok {
		return content.Hash{}, fmt.Errorf("re-execute: unknown recipe %s (this node knows %d; update it to the chain's ladder)", recipe, len(r.Recipes))
	}
	src, err := r.Sources.Source(input)
	if err != nil {
		return content.Hash{}, fmt.Errorf("re-execute %s: source segment %x: %w", recipe, input[:6], err)
	}
	outs, _, err := transcode(rc, r.FFmpeg, src, input, r.Timeout)
	if err != nil {
		return content.Hash{}, err
	}
	return btr.LadderDigest(outs), nil
}

// Worker is one replica: it transcodes and signs.
type Worker struct {
	Key     ed25519.PrivateKey
	FFmpeg  string
	Timeout time.Duration // one transcode (0: one minute); the chain's ReplicaDeadline bounds it
	// Fault, if set, makes this worker faulty from a segment on (fault
	// injection; see Fault). Zero: honest.
	Fault Fault
	// OnCPU, if set, is told the CPU time (user + system) of each of its
	// ffmpeg runs: the cost per segment is measured from it.
	OnCPU func(time.Duration)
}

// Do runs rc for task on source (whose SHA-256 must be task.Input) and
// returns the signed statement and the ladder's outputs, in ladder order.
// A commission fault signs (and returns) a spoiled ladder instead.
func (w *Worker) Do(task btr.Task, rc live.Recipe, source []byte) (*btr.Output, [][]byte, error) {
	if task.Recipe != rc.ID() {
		return nil, nil, fmt.Errorf("worker: the task names recipe %s, this recipe is %s", task.Recipe, rc.ID())
	}
	outs, cpu, err := transcode(rc, w.FFmpeg, source, task.Input, w.Timeout)
	if w.OnCPU != nil && cpu > 0 {
		w.OnCPU(cpu)
	}
	if err != nil {
		return nil, nil, err
	}
	if w.Fault.Kind == btr.Commission && w.Fault.Active(task.Segment) {
		outs = spoil(outs)
	}
	o := &btr.Output{Task: task, Digest: btr.LadderDigest(outs)}
	o.Sign(w.Key)
	return o, outs, nil
}

// equivocate signs a second output for task with a digest other than the
// one the worker answered (an equivocation fault's statement for another
// party).
func (w *Worker) equivocate(task btr.Task, answered [][]byte) *btr.Output {
	o := &btr.Output{Task: task, Digest: btr.LadderDigest(spoil(answered))}
	o.Sign(w.Key)
	return o
}

func transcode(rc live.Recipe, ffmpeg string, src []byte, input content.Hash, timeout time.Duration) ([][]byte, time.Duration, error) {
	if sha256.Sum256(src) != input {
		return nil, 0, fmt.Errorf("transcode %s: the source bytes do not hash to the task's input %x: refusing to run on them", rc.ID(), input[:6])
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	outs, cpu, err := rc.TranscodeCPU(ctx, ffmpeg, src)
	if err != nil {
		return nil, cpu, fmt.Errorf("transcode %s: %w", rc.ID(), err)
	}
	return outs, cpu, nil
}
