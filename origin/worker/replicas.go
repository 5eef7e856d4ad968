package worker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// RemoteWorker is a worker a judge hands tasks to.
type RemoteWorker struct {
	Key btr.NodeKey
	URL string // base URL of its wire.PathBTRTask server
}

// ChannelLog is where the judge's statements go (the coordinator's channel
// log, wire.PathBTRLog). Calls come from the Replicas' own goroutine.
type ChannelLog interface {
	AppendBTRStatement(ctx context.Context, chain content.VideoID, statement []byte) error
}

// Payments is where the judge's agreements go (the coordinator's
// wire.PathBTRAgreed): each pays the agreeing workers. Calls come from the
// Replicas' own goroutine.
type Payments interface {
	PostBTRAgreement(ctx context.Context, chain content.VideoID, agreement []byte) (wire.BTRCreditResult, error)
}

// ReplicasConfig configures the origin's side of BTR.
type ReplicasConfig struct {
	// Workers: the first F+1 are each chain's active replicas, the rest its
	// spares in order (btr.Standby). With Discover set they are only the
	// fallback when discovery fails.
	Workers []RemoteWorker
	// Discover, if set, lists the workers for each new chain's standby plan
	// (the coordinator's registered workers, least loaded first:
	// DiscoverRegistered); the plan is fixed for the chain's life, as its
	// exclusions are.
	Discover func(ctx context.Context) ([]RemoteWorker, error)
	F        int
	Params   btr.Params
	// Signer signs task requests as this origin; Judge signs accusations
	// and exclusions (the same node key: the judge is the origin).
	Signer *wire.NodeSigner
	Judge  ed25519.PrivateKey
	FFmpeg string // the judge's re-execution
	Client *http.Client
	Log    *slog.Logger
	// ChannelLog, if set, gets every accusation and exclusion (encoded).
	ChannelLog ChannelLog
	// Payments, if set, gets every agreement of f+1 replicas (encoded
	// btr.Agreement): the evidence that pays them.
	Payments Payments
	Metrics  *Metrics
}

// Replicas is the origin's live.Replicator: one Judge per chain, tasks sent
// to the chain's assigned workers, the accepted ladder handed back to the
// packager. Close stops every goroutine it started.
type Replicas struct {
	cfg    ReplicasConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    chan logged // statements for the channel log, drained by one goroutine

	mu      sync.Mutex
	chains  map[content.VideoID]*chainJudge
	forward string // SetForward
}

// SetForward sets this origin's base URL (once it listens): tasks name it as
// where any party hands in a statement about them (wire.PathBTRForward,
// HandleForward).
func (r *Replicas) SetForward(base string) {
	r.mu.Lock()
	r.forward = base
	r.mu.Unlock()
}

type logged struct {
	chain     content.VideoID
	statement []byte
	agreement bool // a btr.Agreement for Payments, else a statement for the ChannelLog
}

// NewReplicas checks cfg and starts the channel-log sender.
func NewReplicas(cfg ReplicasConfig) (*Replicas, error) {
	if cfg.F < 1 {
		return nil, fmt.Errorf("btr: f = %d, want ≥ 1 (f = 0 is the local transcode)", cfg.F)
	}
	if len(cfg.Workers) < cfg.F+1 && cfg.Discover == nil {
		return nil, fmt.Errorf("btr: f = %d needs at least %d workers, have %d (add --btr-workers)", cfg.F, cfg.F+1, len(cfg.Workers))
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.Signer == nil || cfg.Judge == nil {
		return nil, errors.New("btr: needs the origin's signer and judge key")
	}
	if cfg.Client == nil {
		cfg.Client = wire.NewHTTPClient()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	cfg.Metrics.bound.Set(cfg.Params.Bound().Seconds())
	r := &Replicas{cfg: cfg, chains: map[content.VideoID]*chainJudge{}, log: make(chan logged, 256)}
	if _, err := plan(cfg.Workers, cfg.F); err != nil && cfg.Discover == nil {
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sendLog()
	}()
	return r, nil
}

// Close stops every judge, task and the log sender, and waits for them.
func (r *Replicas) Close() {
	r.cancel()
	r.wg.Wait()
}

// plan is the standby plan of workers (the first f+1 active, the rest
// spares in order) and their URLs by key.
func plan(workers []RemoteWorker, f int) (btr.Standby, error) {
	var s btr.Standby
	seen := map[btr.NodeKey]bool{}
	for i, w := range workers {
		if seen[w.Key] {
			return s, fmt.Errorf("btr: worker %s listed twice", w.Key)
		}
		seen[w.Key] = true
		if i <= f {
			s.Active = append(s.Active, w.Key)
		} else {
			s.Spares = append(s.Spares, w.Key)
		}
	}
	if len(s.Active) < f+1 {
		return s, fmt.Errorf("btr: f = %d needs at least %d workers, have %d (start more swarmcast workers, registered with the coordinator or listed in --btr-workers)", f, f+1, len(workers))
	}
	return s, nil
}

// chainWorkers is the worker list of a new chain: discovered (falling back
// to the configured list when discovery fails or finds too few).
func (r *Replicas) chainWorkers() []RemoteWorker {
	if r.cfg.Discover == nil {
		return r.cfg.Workers
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	ws, err := r.cfg.Discover(ctx)
	if err == nil && len(ws) >= r.cfg.F+1 {
		return ws
	}
	r.cfg.Log.Warn("btr: worker discovery failed; using the configured workers", "found", len(ws), "err", err, "configured", len(r.cfg.Workers))
	return r.cfg.Workers
}

// chainJudge is one chain's judge and what it waits for.
type chainJudge struct {
	r     *Replicas
	chain content.VideoID
	judge *Judge
	re    *keepingReexecutor
	byKey map[btr.NodeKey]string // the chain's workers' URLs (fixed with its plan)

	openMu  sync.Mutex // held while a segment is numbered and opened (in order)
	mu      sync.Mutex
	next    uint64                                 // the next task segment number
	waiting map[uint64]chan btr.Decision           // Accept (or a failure) per open segment
	outs    map[uint64]map[content.Hash][][]byte   // renditions received, by segment and digest
	signed  map[uint64]map[btr.NodeKey]*btr.Output // signed outputs received, by segment (for agreements)
	arrived map[uint64]chan struct{}               // signalled when renditions of the segment arrive
	failed  map[uint64]error
}

func (r *Replicas) chain(t live.ReplicaTask) (*chainJudge, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cj := r.chains[t.Chain]; cj != nil {
		return cj, nil
	}
	if r.ctx.Err() != nil {
		return nil, errors.New("btr: closed")
	}
	workers := r.chainWorkers()
	standby, err := plan(workers, r.cfg.F)
	if err != nil {
		return nil, err
	}
	cj := &chainJudge{r: r, chain: t.Chain, waiting: map[uint64]chan btr.Decision{}, byKey: map[btr.NodeKey]string{},
		outs: map[uint64]map[content.Hash][][]byte{}, signed: map[uint64]map[btr.NodeKey]*btr.Output{}, arrived: map[uint64]chan struct{}{}, failed: map[uint64]error{}}
	for _, w := range workers {
		cj.byKey[w.Key] = w.URL
	}
	cj.re = &keepingReexecutor{ffmpeg: r.cfg.FFmpeg, recipe: t.Recipe, sources: map[content.Hash][]byte{}, outs: map[content.Hash][][]byte{},
		onCPU: func(d time.Duration) { r.cfg.Metrics.reexecCPU.Add(d.Seconds()) }}
	j, err := NewJudge(btr.Config{Chain: t.Chain, Recipe: t.Recipe.ID(), Standby: standby, Params: r.cfg.Params, Judge: r.cfg.Judge}, cj.re, cj)
	if err != nil {
		return nil, err
	}
	cj.judge = j
	r.chains[t.Chain] = cj
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		j.Run(r.ctx)
	}()
	return cj, nil
}

// Replicate implements live.Replicator: it opens the segment at the judge,
// hands it to the assigned workers and waits for the judge's decision (at
// most the bound R).
func (r *Replicas) Replicate(ctx context.Context, t live.ReplicaTask) ([][]byte, error) {
	cj, err := r.chain(t)
	if err != nil {
		return nil, err
	}
	input := sha256.Sum256(t.Source)
	recipe, err := json.Marshal(t.Recipe)
	if err != nil {
		return nil, err
	}
	// Segments of a chain may be replicated concurrently (the ingest hands
	// each over as it closes); the core opens them in increasing order, so
	// numbering and opening are one step.
	cj.openMu.Lock()
	cj.mu.Lock()
	// A segment that failed keeps its entry seq for the next source segment,
	// so the task numbering is the judge's own: never reused for another
	// input.
	seg := max(t.Segment, cj.next)
	cj.next = seg + 1
	done := make(chan btr.Decision, 1)
	cj.waiting[seg] = done
	cj.outs[seg] = map[content.Hash][][]byte{}
	cj.signed[seg] = map[btr.NodeKey]*btr.Output{}
	cj.arrived[seg] = make(chan struct{}, 1)
	cj.mu.Unlock()
	cj.re.hold(input, t.Source, r.cfg.Params)
	defer cj.forget(seg)

	p := r.cfg.Params
	available := time.Now()
	err = cj.judge.Open(seg, input, available)
	cj.openMu.Unlock()
	if t.Opened != nil {
		t.Opened()
	}
	if err != nil {
		return nil, err
	}
	wt := wire.BTRTask{Chain: t.Chain, Segment: seg, RecipeID: t.Recipe.ID(), Recipe: recipe, Source: t.Source,
		Deadline: available.Add(p.DetectionTimeout()).UnixMicro(), AnswerWindowMS: p.AnswerWindow.Milliseconds()}
	r.mu.Lock()
	wt.Forward = r.forward
	r.mu.Unlock()
	body, err := json.Marshal(wt)
	if err != nil {
		return nil, err
	}
	task := btr.Task{Chain: t.Chain, Segment: seg, Recipe: t.Recipe.ID(), Input: input}
	for _, k := range cj.judge.Assigned(seg) {
		url, ok := cj.byKey[k]
		if !ok {
			continue // not a worker of this origin's plan: the judge will accuse it
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			cj.send(k, url, task, wt, body)
		}()
	}
	timer := time.NewTimer(p.Bound())
	defer timer.Stop()
	select {
	case d := <-done:
		if d.Kind != btr.Accept {
			cj.mu.Lock()
			err := cj.failed[seg]
			cj.mu.Unlock()
			return nil, fmt.Errorf("segment %d undecided: %v", seg, err)
		}
		if d.ByReexecution {
			if outs := cj.re.outputs(input); outs != nil && btr.LadderDigest(outs) == d.Digest {
				return outs, nil
			}
			return nil, fmt.Errorf("segment %d: the judge's re-execution is not held", seg)
		}
		// A rebuttal can decide the segment while the agreed renditions
		// are still on their way (the answer to the task): wait for them,
		// within the same bound.
		for {
			cj.mu.Lock()
			outs, arrived := cj.outs[seg][d.Digest], cj.arrived[seg]
			cj.mu.Unlock()
			if outs != nil {
				return outs, nil
			}
			select {
			case <-arrived:
				continue
			case <-timer.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-r.ctx.Done():
				return nil, errors.New("btr: closed")
			}
			return nil, fmt.Errorf("segment %d: no agreed replica sent its renditions", seg)
		}
	case <-timer.C:
		return nil, fmt.Errorf("segment %d undecided after the bound R = %v", seg, p.Bound())
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.ctx.Done():
		return nil, errors.New("btr: closed")
	}
}

func (cj *chainJudge) forget(seg uint64) {
	cj.mu.Lock()
	delete(cj.waiting, seg)
	delete(cj.outs, seg)
	delete(cj.signed, seg)
	delete(cj.arrived, seg)
	delete(cj.failed, seg)
	cj.mu.Unlock()
}

// send hands one worker the task and feeds its answer to the judge. A
// worker that does not answer is the judge's to accuse (its core ticks); a
// late answer still reaches it (a strike, not an omission).
func (cj *chainJudge) send(k btr.NodeKey, base string, task btr.Task, wt wire.BTRTask, body []byte) {
	r := cj.r
	p := r.cfg.Params
	ctx, cancel := context.WithTimeout(r.ctx, p.DetectionTimeout()+p.AnswerWindow+p.Segment)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.PathBTRTask, bytes.NewReader(body))
	if err != nil {
		r.cfg.Log.Warn("btr task", "worker", k.String(), "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	r.cfg.Signer.SignRequest(req, body)
	r.cfg.Metrics.messages.WithLabelValues("task").Inc()
	resp, err := r.cfg.Client.Do(req)
	// The answer's arrival: the worker writes its headers once the whole
	// answer is ready (Content-Length), so this is when it was sent plus δ.
	arrived := time.Now()
	if err != nil {
		r.cfg.Log.Info("btr worker did not answer", "worker", k.String(), "segment", task.Segment, "err", err)
		return
	}
	defer resp.Body.Close()
	var res wire.BTRTaskResult
	if resp.StatusCode != http.StatusOK {
		r.cfg.Log.Warn("btr worker refused the task", "worker", k.String(), "segment", task.Segment, "status", resp.StatusCode)
		return
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4*wire.MaxBTRTaskBytes)).Decode(&res); err != nil {
		r.cfg.Log.Warn("btr worker's answer", "worker", k.String(), "err", err)
		return
	}
	r.cfg.Metrics.messages.WithLabelValues("output").Inc()
	o, err := btr.DecodeOutput(res.Output)
	if err != nil {
		r.cfg.Log.Warn("btr worker's output", "worker", k.String(), "err", err)
		return
	}
	if o.Replica != k || o.Task != task {
		r.cfg.Log.Warn("btr worker answered another task or key", "worker", k.String(), "signed_by", o.Replica.String(), "task", o.Task.String())
		return
	}
	if late := arrived.Sub(time.UnixMicro(wt.Deadline)); late > 0 {
		// Past the detection deadline: say whose time it was. The worker's
		// own measure (a claim) within D means the lateness was on the way
		// or here; over D, the worker or its machine was slow.
		own := time.Duration(res.OwnUS) * time.Microsecond
		where := "on the way or at this judge (the worker's own time is within D)"
		if own > p.ReplicaDeadline {
			where = "at the worker (its own time is over D)"
		}
		r.cfg.Log.Info("btr: a late output", "worker", k.String(), "segment", task.Segment, "late_by", late.Round(time.Millisecond),
			"worker_own", own.Round(time.Millisecond), "slot_wait", (time.Duration(res.SlotWaitUS) * time.Microsecond).Round(time.Millisecond),
			"deadline_D", p.ReplicaDeadline, "late", where)
	}
	// Only renditions that hash to the signed digest can be packaged: an
	// agreed digest then names exactly these bytes.
	cj.mu.Lock()
	if btr.LadderDigest(res.Renditions) == o.Digest {
		if m := cj.outs[task.Segment]; m != nil {
			m[o.Digest] = res.Renditions
			select {
			case cj.arrived[task.Segment] <- struct{}{}:
			default:
			}
		}
	}
	if m := cj.signed[task.Segment]; m != nil {
		m[o.Replica] = o
	}
	cj.mu.Unlock()
	if err := cj.judge.OutputAt(o, arrived); err != nil {
		r.cfg.Log.Warn("btr judge refused an output", "worker", k.String(), "err", err)
	}
}

// Decide implements Sink (called with the judge's lock held: it must not
// block).
func (cj *chainJudge) Decide(d btr.Decision) {
	r := cj.r
	switch d.Kind {
	case btr.Accept:
		if d.ByReexecution {
			r.cfg.Metrics.segments.WithLabelValues("reexecuted").Inc()
		} else {
			r.cfg.Metrics.segments.WithLabelValues("agreed").Inc()
		}
		cj.mu.Lock()
		if ch := cj.waiting[d.Segment]; ch != nil {
			select {
			case ch <- d:
			default:
			}
		}
		agreement := cj.agreementLocked(d)
		cj.mu.Unlock()
		if agreement != nil {
			r.enqueuePayment(cj.chain, agreement)
		}
	case btr.Accuse:
		r.cfg.Metrics.accusations.Inc()
		r.enqueue(cj.chain, d.Accusation.Encode())
		cj.askRebuttal(d.Accusation)
	case btr.Overdue:
		r.cfg.Log.Warn("btr: more than f replicas missed the deadline at once: the timing bound failed here (a saturated machine or a late network), so none is accused; the segment is re-executed (raise the deadline D if this repeats)",
			"chain", cj.chain.String(), "segment", d.Segment, "silent", len(d.Silent), "deadline", r.cfg.Params.DetectionTimeout())
	case btr.Exclude:
		r.cfg.Metrics.faults.WithLabelValues(d.Exclusion.Kind.String()).Inc()
		r.cfg.Log.Warn("btr: worker excluded", "chain", cj.chain.String(), "worker", d.Exclusion.Culprit.String(),
			"kind", d.Exclusion.Kind.String(), "switch_at", d.SwitchAt)
		r.enqueue(cj.chain, d.Exclusion.Encode())
	}
}

// ReexecFailed implements Sink.
func (cj *chainJudge) ReexecFailed(task btr.Task, err error) {
	cj.r.cfg.Log.Error("btr re-execution failed: the segment stays missing", "task", task.String(), "err", err)
	cj.mu.Lock()
	defer cj.mu.Unlock()
	cj.failed[task.Segment] = err
	if ch := cj.waiting[task.Segment]; ch != nil {
		select {
		case ch <- btr.Decision{Kind: btr.Reexecute, Segment: task.Segment}:
		default:
		}
	}
}

// HandleForward serves wire.PathBTRForward: a signed btr.Output for one of
// this origin's open tasks, handed in by any party. The statement is its
// own authentication (Core.Output verifies the replica's signature, the
// task and the assignment); anything refused changes nothing and gets 400
// (404 for a chain this origin does not judge).
func (r *Replicas) HandleForward(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, wire.MaxBTRStatementBytes))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "reading the statement: %v (one encoded btr.Output of at most %d bytes)", err, wire.MaxBTRStatementBytes)
		return
	}
	o, err := btr.DecodeOutput(body)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v (want one encoded btr.Output)", err)
		return
	}
	r.mu.Lock()
	cj := r.chains[o.Chain]
	r.mu.Unlock()
	if cj == nil {
		wire.WriteError(w, http.StatusNotFound, "this origin judges no chain %s: forward the output to the origin that sent the task", o.Chain)
		return
	}
	if err := cj.judge.Output(o); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	r.cfg.Metrics.messages.WithLabelValues("forwarded").Inc()
	w.WriteHeader(http.StatusNoContent)
}

func (r *Replicas) enqueue(chain content.VideoID, st []byte) {
	if r.cfg.ChannelLog == nil {
		return
	}
	select {
	case r.log <- logged{chain: chain, statement: st}:
	default:
		r.cfg.Log.Error("btr: channel log queue full; statement dropped", "chain", chain.String())
	}
}

func (r *Replicas) enqueuePayment(chain content.VideoID, agreement []byte) {
	if r.cfg.Payments == nil {
		return
	}
	select {
	case r.log <- logged{chain: chain, statement: agreement, agreement: true}:
	default:
		r.cfg.Log.Error("btr: queue full; an agreement was not posted (its workers go unpaid for the segment)", "chain", chain.String())
	}
}

// sendLog posts statements and agreements in decision order, one at a
// time (a fault's exclusion reaches the log before a later agreement).
func (r *Replicas) sendLog() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case l := <-r.log:
			ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
			if l.agreement {
				if res, err := r.cfg.Payments.PostBTRAgreement(ctx, l.chain, l.statement); err != nil {
					r.cfg.Log.Error("btr: the coordinator refused an agreement", "chain", l.chain.String(), "err", err)
				} else {
					r.cfg.Metrics.agreements.Inc()
					if len(res.Unbound) > 0 {
						r.cfg.Log.Info("btr: agreed workers without an account earn nothing (bind them: swarmcast worker --user)", "chain", l.chain.String(), "unbound", res.Unbound)
					}
				}
			} else {
				r.cfg.Metrics.messages.WithLabelValues("log").Inc()
				if err := r.cfg.ChannelLog.AppendBTRStatement(ctx, l.chain, l.statement); err != nil {
					r.cfg.Log.Error("btr: the channel log refused a statement", "chain", l.chain.String(), "err", err)
				}
			}
			cancel()
		}
	}
}

// agreementLocked is the signed agreement of an Accept decided by f+1
// replicas' one digest (nil otherwise: a re-execution decided, or fewer
// agreed after an exclusion, which pays nobody); cj.mu held.
func (cj *chainJudge) agreementLocked(d btr.Decision) []byte {
	f := cj.r.cfg.F
	if d.ByReexecution || len(d.Agreed) < f+1 {
		return nil
	}
	var outs []*btr.Output
	for _, k := range d.Agreed {
		if o := cj.signed[d.Segment][k]; o != nil && o.Digest == d.Digest {
			outs = append(outs, o)
		}
	}
	g, err := btr.NewAgreement(f, outs, cj.r.cfg.Judge)
	if err != nil {
		cj.r.cfg.Log.Warn("btr: no agreement for an accepted segment", "chain", cj.chain.String(), "segment", d.Segment, "err", err)
		return nil
	}
	return g.Encode()
}

// askRebuttal hands the accused worker its accusation (PathBTRAccused,
// signed by this origin) and feeds the rebuttal it answers to the judge
// (PeerReview: an accused node answers with its signed output; it posts the
// rebuttal to the coordinator's log itself). Called with the judge's lock
// held: the request runs on its own goroutine, bounded by the answer
// deadline.
func (cj *chainJudge) askRebuttal(a *btr.Accusation) {
	r := cj.r
	base, ok := cj.byKey[a.Accused]
	if !ok || r.ctx.Err() != nil {
		return
	}
	body, err := json.Marshal(wire.BTRAccusedRequest{Accusation: a.Encode()})
	if err != nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithDeadline(r.ctx, time.UnixMicro(a.AnswerBy))
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.PathBTRAccused, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		r.cfg.Signer.SignRequest(req, body)
		resp, err := r.cfg.Client.Do(req)
		if err != nil {
			r.cfg.Log.Info("btr: accused worker did not answer", "worker", a.Accused.String(), "segment", a.Segment, "err", err)
			return
		}
		defer resp.Body.Close()
		var ans wire.BTRAccusedAnswer
		if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 2*wire.MaxBTRStatementBytes)).Decode(&ans) != nil || len(ans.Rebuttal) == 0 {
			return
		}
		reb, err := btr.DecodeRebuttal(ans.Rebuttal)
		if err != nil || reb.Accusation.Accused != a.Accused || !bytes.Equal(reb.Accusation.Encode(), a.Encode()) {
			r.cfg.Log.Warn("btr: accused worker's rebuttal refused", "worker", a.Accused.String(), "err", err)
			return
		}
		cj.mu.Lock()
		if m := cj.signed[a.Segment]; m != nil {
			m[reb.Output.Replica] = reb.Output // a rebutted output counts in the segment's agreement
		}
		cj.mu.Unlock()
		if err := cj.judge.Rebut(reb); err != nil {
			r.cfg.Log.Warn("btr: the judge refused a rebuttal", "worker", a.Accused.String(), "err", err)
			return
		}
		r.cfg.Metrics.rebuttals.Inc()
	}()
}

// keepingReexecutor is the judge's btr.Reexecutor: it re-runs the chain's
// recipe on a held source segment and keeps the renditions, so a segment
// decided by re-execution is packaged from the judge's own output.
type keepingReexecutor struct {
	ffmpeg string
	recipe live.Recipe
	onCPU  func(time.Duration) // each re-execution's ffmpeg CPU time

	mu      sync.Mutex
	order   []content.Hash // oldest first; bounded by keepSegments
	sources map[content.Hash][]byte
	outs    map[content.Hash][][]byte
}

// keepSegments bounds the source segments a judge holds: the core's window.
const keepSegments = 64

func (k *keepingReexecutor) hold(input content.Hash, src []byte, _ btr.Params) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.sources[input]; ok {
		return
	}
	k.sources[input] = src
	k.order = append(k.order, input)
	for len(k.order) > keepSegments {
		delete(k.sources, k.order[0])
		delete(k.outs, k.order[0])
		k.order = k.order[1:]
	}
}

func (k *keepingReexecutor) outputs(input content.Hash) [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.outs[input]
}

// Source returns a held source segment (Sources, for third parties and
// proofs' checks on this node).
func (k *keepingReexecutor) Source(input content.Hash) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.sources[input]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("source segment %x is no longer held (the judge keeps %d)", input[:6], keepSegments)
}

func (k *keepingReexecutor) Run(recipe string, input content.Hash) (content.Hash, error) {
	if recipe != k.recipe.ID() {
		return content.Hash{}, fmt.Errorf("re-execute: recipe %s is not the chain's %s", recipe, k.recipe.ID())
	}
	src, err := k.Source(input)
	if err != nil {
		return content.Hash{}, err
	}
	outs, cpu, err := transcode(k.recipe, k.ffmpeg, src, input, 0)
	if k.onCPU != nil && cpu > 0 {
		k.onCPU(cpu)
	}
	if err != nil {
		return content.Hash{}, err
	}
	k.mu.Lock()
	if _, ok := k.sources[input]; ok {
		k.outs[input] = outs
	}
	k.mu.Unlock()
	return btr.LadderDigest(outs), nil
}

// Metrics are the origin's BTR families (swarmcast_origin_btr_*).
type Metrics struct {
	bound       prometheus.Gauge
	faults      *prometheus.CounterVec
	accusations prometheus.Counter
	segments    *prometheus.CounterVec
	messages    *prometheus.CounterVec
	reexecCPU   prometheus.Counter
	agreements  prometheus.Counter
	rebuttals   prometheus.Counter
}

// NewMetrics registers the BTR families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := metric.For(reg, "origin")
	m := &Metrics{
		bound: f.Gauge("btr_recovery_bound_seconds",
			"The bound R for the running BTR configuration (btr.Params.Bound): from the first segment a fault spoils to every node running without the culprit."),
		faults:      f.CounterVec("btr_faults_detected_total", "Workers excluded by this origin's judges, by fault kind (commission, equivocation, omission, timing).", "kind"),
		accusations: f.Counter("btr_accusations_total", "Accusations the judges signed (a worker's output missing at the detection deadline)."),
		segments:    f.CounterVec("btr_segments_accepted_total", "Live segments the judges accepted, by how (agreed: every replica signed one digest; reexecuted: the judge's re-execution decided).", "how"),
		agreements:  f.Counter("btr_agreements_posted_total", "Agreements of f+1 workers the coordinator took (each pays its bound workers for the segment)."),
		rebuttals:   f.Counter("btr_rebuttals_total", "Accused workers' rebuttals the judges accepted (the accusation cleared, no exclusion)."),
		messages:    f.CounterVec("btr_messages_total", "BTR messages the judges sent or took, by kind (task: a source segment to a worker; output: a worker's signed answer; forwarded: a statement handed in on the forward route; log: a statement to the coordinator's channel log).", "kind"),
		reexecCPU:   f.Counter("btr_reexec_cpu_seconds_total", "CPU time (user + system) of the judges' ffmpeg re-executions of disputed segments."),
	}
	for _, k := range []string{"task", "output", "forwarded", "log"} {
		m.messages.WithLabelValues(k)
	}
	for _, k := range []btr.FaultKind{btr.Commission, btr.Equivocation, btr.Omission, btr.Timing} {
		m.faults.WithLabelValues(k.String())
	}
	return m
}

// DiscoverRegistered lists the workers registered with the coordinator,
// least loaded first (wire.PathBTRWorkers), for a chain's standby plan.
func DiscoverRegistered(cc *wire.CoordinatorClient) func(ctx context.Context) ([]RemoteWorker, error) {
	return func(ctx context.Context) ([]RemoteWorker, error) {
		list, err := cc.BTRWorkers(ctx)
		if err != nil {
			return nil, err
		}
		var out []RemoteWorker
		for _, w := range list {
			k, err := btr.ParseNodeKey(string(w.NodeID))
			if err != nil {
				return nil, err
			}
			out = append(out, RemoteWorker{Key: k, URL: w.Addr})
		}
		return out, nil
	}
}

// Discover asks each worker base URL for its node id (wire.PathBTRWorker),
// in order: the chain's standby plan names workers by key.
func Discover(ctx context.Context, client *http.Client, urls []string) ([]RemoteWorker, error) {
	var out []RemoteWorker
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+wire.PathBTRWorker, nil)
		if err != nil {
			return nil, fmt.Errorf("btr worker %s: %w", u, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("btr worker %s: %w (is swarmcast worker running there?)", u, err)
		}
		var info wire.BTRWorkerInfo
		err = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&info)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("btr worker %s: status %d, %v: not a swarmcast worker", u, resp.StatusCode, err)
		}
		k, err := btr.ParseNodeKey(string(info.NodeID))
		if err != nil {
			return nil, fmt.Errorf("btr worker %s: %w", u, err)
		}
		out = append(out, RemoteWorker{Key: k, URL: u})
	}
	return out, nil
}
