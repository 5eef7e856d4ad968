package worker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/metric"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// Server is a worker's HTTP side (wire.PathBTRTask): it takes a task only
// from an origin it allows, signed by that origin's node key, transcodes it
// with Worker.Do and answers the signed output with the renditions.
type Server struct {
	Worker *Worker
	// Allowed reports whether a judge (an origin's node id) may hand this
	// worker tasks. Nil allows none.
	Allowed func(wire.NodeID) bool
	// Slots bounds concurrent transcodes (0: 2); a task waits for a slot
	// while its request lives.
	Slots int
	Log   *slog.Logger
	// Now is the clock for signature freshness (nil: time.Now).
	Now func() time.Time
	// Client forwards an equivocation fault's second statement (nil:
	// http.DefaultClient).
	Client *http.Client
	// OnFault, if set, is told each task the worker's Fault applies to (the
	// fault injection's record of its onset), before it misbehaves.
	OnFault func(btr.Task)
	// OnTask, if set, is told each task as it arrives (own 0, answered
	// false) and again as its answer is ready (own: the worker's own time,
	// arrival to answer, slot wait included; answered true). An
	// accusation's checker reads them to tell a worker over its bound D
	// from a late network or judge.
	OnTask func(task btr.Task, own time.Duration, answered bool)
	// Registry, if set, gets the worker's metrics (swarmcast_worker_*),
	// served with /healthz on GET /metrics.
	Registry *prometheus.Registry
	metrics  *WorkerMetrics
	// Rebuttals, if set, gets this worker's rebuttals (the coordinators it
	// registered with: wire.PathBTRRebuttal, signed as this worker) before
	// the judge gets them, so the channel log records the answer.
	Rebuttals []RebuttalPoster

	slots chan struct{}

	mu     sync.Mutex
	recent map[btr.Task][]byte // encoded signed outputs of the last keepOutputs tasks
	order  []btr.Task
}

// RebuttalPoster posts a rebuttal to a chain's channel log.
type RebuttalPoster interface {
	PostBTRRebuttal(ctx context.Context, chain content.VideoID, rebuttal []byte) error
}

// keepOutputs bounds the signed outputs a worker keeps to answer
// accusations with: far more than the judge's answer window in segments.
const keepOutputs = 128

// Busy is how many slots are transcoding now (the heartbeat's load).
func (s *Server) Busy() int { return len(s.slots) }

func (s *Server) remember(o *btr.Output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recent == nil {
		s.recent = map[btr.Task][]byte{}
	}
	if _, ok := s.recent[o.Task]; !ok {
		s.order = append(s.order, o.Task)
	}
	s.recent[o.Task] = o.Encode()
	for len(s.order) > keepOutputs {
		delete(s.recent, s.order[0])
		s.order = s.order[1:]
	}
}

// Handler serves the worker routes.
func (s *Server) Handler() http.Handler {
	n := s.Slots
	if n <= 0 {
		n = 2
	}
	s.slots = make(chan struct{}, n)
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	mux := http.NewServeMux()
	if s.Registry != nil {
		mux = httpserve.NewMux(s.Registry)
		s.metrics = NewWorkerMetrics(s.Registry)
		prev := s.Worker.OnCPU
		s.Worker.OnCPU = func(d time.Duration) {
			s.metrics.cpu.Add(d.Seconds())
			if prev != nil {
				prev(d)
			}
		}
	}
	mux.HandleFunc("GET "+wire.PathBTRWorker, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, wire.BTRWorkerInfo{NodeID: wire.NodeID(btr.KeyOf(s.Worker.Key).String())})
	})
	mux.HandleFunc("POST "+wire.PathBTRTask, s.handleTask)
	mux.HandleFunc("POST "+wire.PathBTRAccused, s.handleAccused)
	return mux
}

// judgeRequest authenticates a signed request from an allowed origin and
// returns the signer and the verified body; on failure it has answered.
func (s *Server) judgeRequest(w http.ResponseWriter, r *http.Request, limit int64) (wire.NodeID, []byte, bool) {
	auth, err := wire.ParseNodeRequestAuth(r.Header)
	if err == nil {
		err = auth.CheckFresh(s.Now())
	}
	if err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "%v", err)
		return "", nil, false
	}
	if s.Allowed == nil || !s.Allowed(auth.Node) {
		wire.WriteError(w, http.StatusForbidden, "origin %s may not hand this worker tasks: start the worker with --allow-origin %s", auth.Node, auth.Node)
		return "", nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wire.WriteError(w, http.StatusRequestEntityTooLarge, "request of more than %d bytes", limit)
			return "", nil, false
		}
		wire.WriteError(w, http.StatusBadRequest, "reading the request: %v", err)
		return "", nil, false
	}
	if err := auth.Verify(r.Method, r.URL.Path, body); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "%v", err)
		return "", nil, false
	}
	return auth.Node, body, true
}

// handleAccused answers a judge's accusation with this worker's rebuttal
// when it holds its signed output for the accused task (the answer was
// lost on the way, or is still on it), after posting it to the
// coordinators' channel log; with no output it answers no rebuttal.
func (s *Server) handleAccused(w http.ResponseWriter, r *http.Request) {
	judge, body, ok := s.judgeRequest(w, r, 2*wire.MaxBTRStatementBytes)
	if !ok {
		return
	}
	var req wire.BTRAccusedRequest
	if err := json.Unmarshal(body, &req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "accusation body: %v (want a wire.BTRAccusedRequest)", err)
		return
	}
	a, err := btr.DecodeAccusation(req.Accusation)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if wire.NodeID(a.Accuser.String()) != judge {
		wire.WriteError(w, http.StatusForbidden, "the accusation is signed by %s, not by the origin %s that sent it", a.Accuser, judge)
		return
	}
	if a.Accused != btr.KeyOf(s.Worker.Key) {
		wire.WriteError(w, http.StatusBadRequest, "the accusation is against %s, not this worker", a.Accused)
		return
	}
	s.mu.Lock()
	enc := s.recent[a.Task]
	s.mu.Unlock()
	if f := s.Worker.Fault; f.Kind != 0 && f.Active(a.Segment) {
		enc = nil // an injected fault stays a fault: no rebuttal
	}
	if enc == nil {
		wire.WriteJSON(w, wire.BTRAccusedAnswer{})
		return
	}
	o, err := btr.DecodeOutput(enc)
	if err != nil {
		wire.WriteError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	reb := (&btr.Rebuttal{Accusation: a, Output: o}).Encode()
	for _, p := range s.Rebuttals {
		ctx, cancel := context.WithDeadline(r.Context(), time.UnixMicro(a.AnswerBy))
		if err := p.PostBTRRebuttal(ctx, a.Chain, reb); err != nil {
			s.Log.Warn("btr: the coordinator refused this worker's rebuttal", "task", a.Task.String(), "err", err)
		}
		cancel()
	}
	s.Log.Info("btr: accused; answered with the signed output", "task", a.Task.String())
	wire.WriteJSON(w, wire.BTRAccusedAnswer{Rebuttal: reb})
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	arrived := s.Now()
	_, body, ok := s.judgeRequest(w, r, wire.MaxBTRTaskBytes)
	if !ok {
		return
	}
	req, task, rc, source, err := decodeTask(body)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if s.OnTask != nil {
		s.OnTask(task, 0, false)
	}
	fault := s.Worker.Fault
	if fault.Active(task.Segment) && s.OnFault != nil {
		s.OnFault(task)
	}
	if fault.Kind == btr.Omission && fault.Active(task.Segment) {
		// An omission fault: the task is taken and never answered.
		s.Log.Info("btr fault: no answer", "task", task.String())
		<-r.Context().Done()
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	slotWait := s.Now().Sub(arrived)
	out, outs, err := s.Worker.Do(task, rc, source)
	<-s.slots
	if s.metrics != nil {
		outcome := "answered"
		if err != nil {
			outcome = "failed"
		}
		s.metrics.tasks.WithLabelValues(outcome).Inc()
	}
	if err != nil {
		s.Log.Warn("btr task failed", "task", task.String(), "err", err)
		wire.WriteError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	s.remember(out)
	if fault.Kind == btr.Timing && fault.Active(task.Segment) && req.Deadline > 0 {
		// A timing fault: the right answer, after the judge's deadline.
		late := time.UnixMicro(req.Deadline).Add(lateBy(req.AnswerWindowMS))
		s.Log.Info("btr fault: a late answer", "task", task.String(), "late_by", lateBy(req.AnswerWindowMS))
		t := time.NewTimer(time.Until(late))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	own := s.Now().Sub(arrived)
	if s.OnTask != nil {
		s.OnTask(task, own, true)
	}
	b, err := json.Marshal(wire.BTRTaskResult{Output: out.Encode(), Renditions: outs, OwnUS: own.Microseconds(), SlotWaitUS: slotWait.Microseconds()})
	if err != nil {
		wire.WriteError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	if fault.Kind == btr.Equivocation && fault.Active(task.Segment) && req.Forward != "" {
		// An equivocation fault: the judge got the right output (the whole
		// answer is written: Content-Length); another party gets a second,
		// different one signed by the same key, and hands it in where the
		// task says statements about it go.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		other := s.Worker.equivocate(task, outs)
		s.Log.Info("btr fault: a second, different output forwarded", "task", task.String())
		if err := wire.ForwardBTROutput(r.Context(), s.forwardClient(), req.Forward, other.Encode()); err != nil {
			s.Log.Warn("btr fault: forward", "err", err)
		}
	}
}

func (s *Server) forwardClient() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return http.DefaultClient
}

// decodeTask checks a task body: the recipe parses and is the one named,
// the source is non-empty.
func decodeTask(body []byte) (wire.BTRTask, btr.Task, live.Recipe, []byte, error) {
	var req wire.BTRTask
	if err := json.Unmarshal(body, &req); err != nil {
		return req, btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task body: %v (want a wire.BTRTask as JSON)", err)
	}
	var rc live.Recipe
	if err := json.Unmarshal(req.Recipe, &rc); err != nil || len(rc.Rungs) == 0 {
		return req, btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task recipe: want an origin/live.Recipe with at least one rung (%v)", err)
	}
	if rc.ID() != req.RecipeID {
		return req, btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task recipe: its id is %s, the task names %s", rc.ID(), req.RecipeID)
	}
	if len(req.Source) == 0 {
		return req, btr.Task{}, live.Recipe{}, nil, errors.New("task: empty source segment")
	}
	t := btr.Task{Chain: req.Chain, Segment: req.Segment, Recipe: req.RecipeID, Input: sha256.Sum256(req.Source)}
	return req, t, rc, req.Source, nil
}

// WorkerMetrics are a worker's families (swarmcast_worker_*).
type WorkerMetrics struct {
	tasks *prometheus.CounterVec
	cpu   prometheus.Counter
}

// NewWorkerMetrics registers the worker families on reg.
func NewWorkerMetrics(reg prometheus.Registerer) *WorkerMetrics {
	f := metric.For(reg, "worker")
	m := &WorkerMetrics{
		tasks: f.CounterVec("tasks_total", "Transcode tasks this worker ran, by outcome (answered: a signed output sent; failed: the transcode failed, 422).", "outcome"),
		cpu:   f.Counter("transcode_cpu_seconds_total", "CPU time (user + system) of this worker's ffmpeg runs of the ladder recipe."),
	}
	m.tasks.WithLabelValues("answered")
	m.tasks.WithLabelValues("failed")
	return m
}
