package worker

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/btr"
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
	task, rc, source, err := decodeTask(body)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	out, outs, err := s.Worker.Do(task, rc, source)
	<-s.slots
	if err != nil {
		s.Log.Warn("btr task failed", "task", task.String(), "err", err)
		wire.WriteError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	wire.WriteJSON(w, wire.BTRTaskResult{Output: out.Encode(), Renditions: outs})
}

// decodeTask checks a task body: the recipe parses and is the one named,
// the source is non-empty.
func decodeTask(body []byte) (btr.Task, live.Recipe, []byte, error) {
	var req wire.BTRTask
	if err := json.Unmarshal(body, &req); err != nil {
		return btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task body: %v (want a wire.BTRTask as JSON)", err)
	}
	var rc live.Recipe
	if err := json.Unmarshal(req.Recipe, &rc); err != nil || len(rc.Rungs) == 0 {
		return btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task recipe: want an origin/live.Recipe with at least one rung (%v)", err)
	}
	if rc.ID() != req.RecipeID {
		return btr.Task{}, live.Recipe{}, nil, fmt.Errorf("task recipe: its id is %s, the task names %s", rc.ID(), req.RecipeID)
	}
	if len(req.Source) == 0 {
		return btr.Task{}, live.Recipe{}, nil, errors.New("task: empty source segment")
	}
	t := btr.Task{Chain: req.Chain, Segment: req.Segment, Recipe: req.RecipeID, Input: sha256.Sum256(req.Source)}
	return t, rc, req.Source, nil
}
