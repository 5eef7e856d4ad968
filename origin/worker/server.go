package worker

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmcast/swarmcast/btr"
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
	// Registry, if set, gets the worker's metrics (swarmcast_worker_*),
	// served with /healthz on GET /metrics.
	Registry *prometheus.Registry
	metrics  *WorkerMetrics

	slots chan struct{}
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
	return mux
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	auth, err := wire.ParseNodeRequestAuth(r.Header)
	if err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if err := auth.CheckFresh(s.Now()); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if s.Allowed == nil || !s.Allowed(auth.Node) {
		wire.WriteError(w, http.StatusForbidden, "origin %s may not hand this worker tasks: start the worker with --allow-origin %s", auth.Node, auth.Node)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxBTRTaskBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wire.WriteError(w, http.StatusRequestEntityTooLarge, "task of more than %d bytes: cut shorter source segments", wire.MaxBTRTaskBytes)
			return
		}
		wire.WriteError(w, http.StatusBadRequest, "reading the task: %v", err)
		return
	}
	if err := auth.Verify(r.Method, r.URL.Path, body); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	req, task, rc, source, err := decodeTask(body)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
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
	b, err := json.Marshal(wire.BTRTaskResult{Output: out.Encode(), Renditions: outs})
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
