package testnet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/wire"
)

// BTR in the testnet (docs/LIVE.md, "BTR"): with Config.BTR, real workers
// (origin/worker servers on 127.0.0.1, as `swarmcast worker` runs them,
// each with its own key and optionally an injected fault) take every live
// origin's transcodes, and the origins judge them (origin/worker.Replicas,
// with the forward route mounted). The network records, per segment, when
// the judge opened it and when it decided, and the source it was cut from,
// so the demo can measure recovery and re-run the honest ladder.

// BTRConfig replicates the live origins' transcodes.
type BTRConfig struct {
	F int
	// Workers are the workers to start, in standby order (the first F+1
	// active, the rest spares), each with its fault (zero: honest).
	Workers []worker.Fault
	// Params are the chains' BTR parameters (zero: BTRDemoParams(0)).
	Params btr.Params
}

// BTRDemoParams are the testnet's BTR parameters: 1 s segments, the replica
// deadline and re-execution time D = X = deadline (0: 3 s; a 240p rung
// takes a fraction of that on a quiet machine, but an honest worker within
// D must never be accused, so set it from MeasureLiveTranscode on a loaded
// one), an answer window of 500 ms (a late answer is told from a missing
// one on a loaded machine).
func BTRDemoParams(deadline time.Duration) btr.Params {
	if deadline <= 0 {
		deadline = 3 * time.Second
	}
	p := btr.DefaultParams()
	p.Segment = content.DefaultLiveSegment
	p.ReplicaDeadline, p.Reexec = deadline, deadline
	p.AnswerWindow = 500 * time.Millisecond
	return p
}

// MeasureLiveTranscode is the wall time of the slowest of replicas
// concurrent runs of the live ladder's recipe (ladder nil: DefaultLiveLadder)
// on one 1 s segment of the publisher's source format: what a replica's
// deadline D must cover on this machine now.
func MeasureLiveTranscode(ctx context.Context, ladder []content.Rung, replicas int) (time.Duration, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return 0, fmt.Errorf("testnet: measuring the transcode needs ffmpeg on PATH (apt install ffmpeg)")
	}
	if ladder == nil {
		ladder = DefaultLiveLadder
	}
	src, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", ClockSourceWidth, ClockSourceHeight),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "1",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "25",
		"-c:a", "aac", "-b:a", "64k", "-f", "mpegts", "pipe:1").Output()
	if err != nil {
		return 0, fmt.Errorf("testnet: a test source segment: %w", err)
	}
	rc := live.Recipe{Rungs: live.LadderFor(ladder, ClockSourceWidth, ClockSourceHeight), Audio: true}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var firstErr error
	for range max(1, replicas) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := rc.Transcode(ctx, ffmpeg, src)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return slowest, firstErr
}

// WorkerNode is one running BTR worker.
type WorkerNode struct {
	Key    btr.NodeKey
	URL    string
	Fault  worker.Fault
	Server *httpserve.Server
	reg    *prometheus.Registry

	mu      sync.Mutex
	faulted []uint64 // task segments its fault applied to, in arrival order
	// own is the worker's own time per task segment it received (0 while
	// unanswered): BTRFaults tells an honest worker over its bound D from
	// one the network or the judge made late. One entry per segment of a
	// run's chain.
	own map[uint64]ownTime
}

type ownTime struct {
	answered bool
	took     time.Duration
}

// ownTime reports whether the worker received segment seg's task, and its
// own time on it if it answered.
func (w *WorkerNode) ownTime(seg uint64) (ownTime, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.own[seg]
	return t, ok
}

// Faulted returns the task segments the worker's fault applied to.
func (w *WorkerNode) Faulted() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.faulted)
}

// Workers lists the BTR workers (Config.BTR), in standby order.
func (n *Network) Workers() []*WorkerNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.workers)
}

// startWorkers starts Config.BTR's workers, each allowing every origin.
func (n *Network) startWorkers() error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("testnet: BTR workers need ffmpeg on PATH (apt install ffmpeg)")
	}
	allowed := map[wire.NodeID]bool{}
	for _, id := range n.originIDs {
		allowed[id.ID] = true
	}
	for i, f := range n.cfg.BTR.Workers {
		id := identity.New()
		node := &WorkerNode{Key: btr.KeyOf(id.Key), Fault: f, reg: httpserve.NewRegistry()}
		srv := &worker.Server{Worker: &worker.Worker{Key: id.Key, FFmpeg: ffmpeg, Fault: f}, Allowed: func(o wire.NodeID) bool { return allowed[o] },
			Slots: 2, Client: wire.NewHTTPClient(), Registry: node.reg, Log: n.cfg.Log.With("node", fmt.Sprintf("worker-%d", i)),
			OnFault: func(t btr.Task) {
				node.mu.Lock()
				node.faulted = append(node.faulted, t.Segment)
				node.mu.Unlock()
			},
			OnTask: func(t btr.Task, own time.Duration, answered bool) {
				node.mu.Lock()
				if node.own == nil {
					node.own = map[uint64]ownTime{}
				}
				node.own[t.Segment] = ownTime{answered: answered, took: own}
				node.mu.Unlock()
			}}
		hs, err := httpserve.Listen(n.ctx, "127.0.0.1:0", "", srv.Handler(), n.cfg.Log)
		if err != nil {
			return err
		}
		node.URL, node.Server = hs.Advertise, hs
		n.goRun(func() { <-n.ctx.Done() }, hs)
		n.mu.Lock()
		n.workers = append(n.workers, node)
		n.mu.Unlock()
	}
	return nil
}

// startJudge makes origin idx's BTR judges (its live.Replicator), recorded.
func (n *Network) startJudge(idx int) (*worker.Replicas, *BTRRecord, error) {
	if len(n.workers) == 0 {
		if err := n.startWorkers(); err != nil {
			return nil, nil, err
		}
	}
	ffmpeg, _ := exec.LookPath("ffmpeg")
	var ws []worker.RemoteWorker
	for _, w := range n.Workers() {
		ws = append(ws, worker.RemoteWorker{Key: w.Key, URL: w.URL})
	}
	p := n.btrParams()
	id := n.originIDs[idx]
	signer := wire.NewNodeSigner(id.Key, nil)
	cc := wire.NewCoordinatorClient(n.CoordinatorURL, wire.NewHTTPClient()).AsNode(signer)
	reg := prometheus.NewRegistry()
	reps, err := worker.NewReplicas(worker.ReplicasConfig{Workers: ws, F: n.cfg.BTR.F, Params: p, Signer: signer, Judge: id.Key, FFmpeg: ffmpeg,
		Log: n.cfg.Log.With("node", "origin-btr"), ChannelLog: cc, Metrics: worker.NewMetrics(reg)})
	if err != nil {
		return nil, nil, err
	}
	return reps, &BTRRecord{inner: reps, reg: reg, segs: map[uint64]*BTRSegment{}}, nil
}

func (n *Network) btrParams() btr.Params {
	if n.cfg.BTR.Params == (btr.Params{}) {
		return BTRDemoParams(0)
	}
	return n.cfg.BTR.Params
}

// BTRParams are the running BTR parameters (Config.BTR.Params or
// BTRDemoParams).
func (n *Network) BTRParams() btr.Params { return n.btrParams() }

// BTRSegment is what the network saw of one segment's replication.
type BTRSegment struct {
	Opened  time.Time // Replicate called: the judge opens it (its input is available)
	Decided time.Time // Replicate returned
	Err     error     // the segment stayed missing
	Source  []byte
	Recipe  live.Recipe
	Outputs [][]byte // the ladder the packager got
	// Published: the ladder joined the chain, as entry Entry. Players
	// number segments by entry seq, the judge by task; the two part after
	// the first segment that stays missing.
	Published bool
	Entry     uint64
}

// BTRRecord is an origin's live.Replicator, recorded: it hands every
// segment to the judges and keeps, per entry seq, when it was opened and
// decided and its source (the demo's honest re-run).
type BTRRecord struct {
	inner live.Replicator
	reg   *prometheus.Registry

	mu       sync.Mutex
	segs     map[uint64]*BTRSegment
	inFlight int
	last     time.Time // the last Replicate call or return
}

// Replicate implements live.Replicator.
func (r *BTRRecord) Replicate(ctx context.Context, t live.ReplicaTask) ([][]byte, error) {
	s := &BTRSegment{Opened: time.Now(), Source: t.Source, Recipe: t.Recipe}
	r.mu.Lock()
	r.inFlight++
	r.last = s.Opened
	r.mu.Unlock()
	outs, err := r.inner.Replicate(ctx, t)
	s.Decided, s.Err, s.Outputs = time.Now(), err, outs
	r.mu.Lock()
	r.inFlight--
	r.last = s.Decided
	if prev := r.segs[t.Segment]; prev == nil || err == nil {
		// A segment that failed (here or when it was packaged and appended)
		// leaves its seq to the next source segment: the published one is
		// the last decided.
		r.segs[t.Segment] = s
	}
	r.mu.Unlock()
	return outs, err
}

// Published implements live.PublishObserver: the segment handed over as
// task was published as entry.
func (r *BTRRecord) Published(_ content.VideoID, task, entry uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.segs[task]; s != nil && s.Err == nil {
		s.Published, s.Entry = true, entry
	}
}

// WaitIdle waits (at most limit) until no segment is being replicated and
// none started or finished for quiet: the origin's queue is drained, the
// last decisions (and the exclusions they sign) are out.
func (r *BTRRecord) WaitIdle(ctx context.Context, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		r.mu.Lock()
		idle := r.inFlight == 0 && time.Since(r.last) >= quiet
		r.mu.Unlock()
		if idle {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Segment returns what was recorded for entry seq.
func (r *BTRRecord) Segment(seq uint64) (*BTRSegment, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.segs[seq]
	return s, ok
}

// Segments returns the recorded entry seqs, ascending.
func (r *BTRRecord) Segments() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for k := range r.segs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Metric sums the judge's family name (swarmcast_origin_btr_*) whose
// labels include want (nil: every series).
func (r *BTRRecord) Metric(name string, want map[string]string) float64 {
	return sumMetric(r.reg, name, want)
}

// WorkerMetric sums family name over every worker's /metrics registry.
func (n *Network) WorkerMetric(name string) float64 {
	var sum float64
	for _, w := range n.Workers() {
		sum += sumMetric(w.reg, name, nil)
	}
	return sum
}

func sumMetric(g prometheus.Gatherer, name string, want map[string]string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// PlanBTRFaults lays out perKind faults of every kind over a broadcast for
// f: the workers to start (standby order: f+1 active, then the spares), the
// faulty ones with their fault. Fault k hits the worker in active slot
// k mod (f+1) at its onset (the spares replace culprits in order, as
// btr.Standby.Assign does), so each fault lands on an active replica; the
// kinds come in a seeded order; onsets start at segment first and are gap
// segments apart plus a seeded jitter of up to gap/4, so faults never
// overlap (gap ≥ R/T + 2: the previous culprit is out before the next
// fault starts, and at most one replica is faulty at a time). One honest
// spare is left over.
func PlanBTRFaults(f, perKind int, first, gap uint64, seed uint64) []worker.Fault {
	kinds := make([]btr.FaultKind, 0, 4*perKind)
	for range perKind {
		kinds = append(kinds, btr.Commission, btr.Omission, btr.Timing, btr.Equivocation)
	}
	rng := rand.New(rand.NewPCG(seed, 0x0b7f))
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	workers := make([]worker.Fault, f+1+len(kinds)+1)
	slots := make([]int, f+1)
	for i := range slots {
		slots[i] = i
	}
	onset := first
	for k, kind := range kinds {
		slot := k % (f + 1)
		workers[slots[slot]] = worker.Fault{Kind: kind, From: onset}
		slots[slot] = f + 1 + k
		onset += gap + rng.Uint64N(gap/4+1)
	}
	return workers
}

// FaultPlanSegments is how many segments a plan needs: its last onset plus
// gap (the last fault's recovery).
func FaultPlanSegments(plan []worker.Fault, gap uint64) uint64 {
	var last uint64
	for _, f := range plan {
		if f.Kind != 0 {
			last = max(last, f.From)
		}
	}
	return last + gap
}

// RelayFaultDetectedAs is the kind the relays' judge must exclude a relay
// with an injected fault for: a stall is an omission (its children's
// accusations go unanswered), a corruption a commission (its children's
// proofs: its signed push over bad bytes), a slow relay a timing fault
// (it answers each accusation with its push, late: strikes).
func RelayFaultDetectedAs(k relay.FaultKind) btr.FaultKind {
	switch k {
	case relay.FaultStall:
		return btr.Omission
	case relay.FaultCorrupt:
		return btr.Commission
	case relay.FaultSlow:
		return btr.Timing
	}
	return 0
}

// PlanRelayFaults gives perKind relays each of the relay faults (stall,
// corrupt, slow), in a seeded order, the k-th starting at onsets[k mod
// len(onsets)] (the worker faults' onsets: each relay fault runs beside a
// worker fault, and each culprit is out before the next onset). Relays
// beyond the plan are honest.
func PlanRelayFaults(perKind int, onsets []uint64, seed uint64) []relay.Fault {
	kinds := make([]relay.FaultKind, 0, 3*perKind)
	for range perKind {
		kinds = append(kinds, relay.FaultStall, relay.FaultCorrupt, relay.FaultSlow)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7e1a))
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	out := make([]relay.Fault, len(kinds))
	for k, kind := range kinds {
		out[k] = relay.Fault{Kind: kind, From: onsets[k%len(onsets)]}
	}
	return out
}

// FaultOnsets are the onsets of a worker plan's faults, in order.
func FaultOnsets(plan []worker.Fault) []uint64 {
	var out []uint64
	for _, f := range plan {
		if f.Kind != 0 {
			out = append(out, f.From)
		}
	}
	slices.Sort(out)
	return out
}

// BTRFaultReport is what the demo reports of BTR under injected faults,
// detection counted from the coordinator's channel log.
type BTRFaultReport struct {
	F                int `json:"btr_f"`
	Workers          int `json:"btr_workers"`
	FaultsInjected   int `json:"faults_injected"`
	FaultsDetected   int `json:"faults_detected"`
	FalseAccusations int `json:"false_accusations"`
	// FalselyAccused describes each false accusation (node, kind, segment).
	FalselyAccused []string `json:"falsely_accused,omitempty"`
	// HonestOverBound counts accusations and exclusions of honest workers
	// that did miss the stated bound themselves: the task reached them and
	// their own time on it was over D, or they had not answered within it
	// (a saturated machine). Not false accusations: the model's bound was
	// broken, and the report says so (BoundMissed) instead of hiding it.
	// An honest worker accused with its own time within D, or whose task
	// never reached it, is a false accusation: the lateness was the
	// network's or the judge's.
	HonestOverBound    int      `json:"honest_over_bound"`
	BoundMissed        []string `json:"bound_missed,omitempty"`
	RecoveryBoundMS    float64  `json:"recovery_bound_ms"`
	RecoveryMaxMS      float64  `json:"recovery_max_ms"`
	WrongBytesPlayed   int64    `json:"wrong_bytes_played"`
	SegmentsChecked    int      `json:"segments_rechecked"`
	SegmentsFailed     int      `json:"btr_segments_failed"`
	SegmentsAgreed     float64  `json:"btr_segments_agreed"`
	SegmentsReexecuted float64  `json:"btr_segments_reexecuted"`
	// Per decided segment, from the judge's and the workers' /metrics.
	MessagesPerSegment float64           `json:"btr_messages_per_segment"`
	WorkerCPUMSPerSeg  float64           `json:"btr_worker_cpu_ms_per_segment"`
	ReexecCPUMSPerSeg  float64           `json:"btr_judge_reexec_cpu_ms_per_segment"`
	ReplicasPerSegment float64           `json:"btr_replicas_per_segment"`
	Faults             []BTRFaultOutcome `json:"faults,omitempty"`
}

// BTRFaultOutcome is one injected fault's outcome.
type BTRFaultOutcome struct {
	Role       string  `json:"role"`   // worker or relay
	Worker     string  `json:"worker"` // the faulty node's key
	Kind       string  `json:"kind"`
	Want       string  `json:"want_detected_as"` // the kind its exclusion must name
	From       uint64  `json:"from_segment"`
	Onset      uint64  `json:"onset_segment"` // the first segment the fault applied to (-: never)
	DetectedAs string  `json:"detected_as,omitempty"`
	SwitchAt   uint64  `json:"switch_at,omitempty"`
	RecoveryMS float64 `json:"recovery_ms,omitempty"`
}

// startBTRJudge, with Config.BTR, starts origin idx's judges and sets them
// as lc's Replicas (recorded). The result's Close is safe on nil.
func (n *Network) startBTRJudge(idx int, lc *live.Config) (*judgeCloser, error) {
	if n.cfg.BTR == nil {
		return nil, nil
	}
	reps, rec, err := n.startJudge(idx)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.judges == nil {
		n.judges, n.records = map[int]*worker.Replicas{}, map[int]*BTRRecord{}
	}
	n.judges[idx], n.records[idx] = reps, rec
	n.mu.Unlock()
	lc.Replicas = rec
	return &judgeCloser{reps}, nil
}

type judgeCloser struct{ r *worker.Replicas }

// Close stops the judges (nil: nothing to stop).
func (j *judgeCloser) Close() {
	if j != nil {
		j.r.Close()
	}
}

// BTRFaults reports BTR on origin 0's chain after a run: detection and
// false accusations from the coordinator's channel log (anyone's GET, not
// the injector's intent), recovery from the recorded segments (fault
// onset: the judge opening the first segment the fault applied to; the end:
// the first segment at or after the exclusion's switch segment decided),
// and wrong bytes from the plays' segments compared with an honest re-run
// of the recipe on the recorded sources (every segment a fault touched,
// plus up to extra others picked by seed).
func (n *Network) BTRFaults(ctx context.Context, chain content.VideoID, plays []LivePlay, extra int, seed uint64) (BTRFaultReport, error) {
	var rep BTRFaultReport
	rec := n.Origins[0].BTR
	if rec == nil {
		return rep, fmt.Errorf("testnet: BTRFaults needs Config.BTR")
	}
	p := n.btrParams()
	// The origin may still be deciding segments the publisher sent last (a
	// dispute takes up to R); the channel log is read once it is idle and
	// the log sender had a moment (the statements go out asynchronously).
	rec.WaitIdle(ctx, 2*time.Second, 2*p.Bound())
	rep.F, rep.RecoveryBoundMS = n.cfg.BTR.F, float64(p.Bound().Microseconds())/1000
	log, err := wire.NewCoordinatorClient(n.CoordinatorURL, wire.NewHTTPClient()).BTRLog(ctx, chain)
	if err != nil {
		return rep, fmt.Errorf("read the channel log: %w", err)
	}
	judge := btr.KeyOf(n.originIDs[0].Key)
	workers := n.Workers()
	rep.Workers = len(workers)
	byKey := map[btr.NodeKey]*WorkerNode{}
	for _, w := range workers {
		byKey[w.Key] = w
	}
	// A statement names a faulty worker rightly only for a segment its
	// fault applied to (or later: the switch takes Δ segments).
	rightly := func(k btr.NodeKey, seg uint64) bool {
		w := byKey[k]
		if w == nil || w.Fault.Kind == 0 {
			return false
		}
		f := w.Faulted()
		return len(f) > 0 && seg >= f[0]
	}
	relayJudge, _ := btr.ParseNodeKey(string(log.RelayJudge))
	relays := map[btr.NodeKey]*RelayNode{}
	for _, r := range n.Relays() {
		if k, err := btr.ParseNodeKey(string(r.Identity.ID)); err == nil {
			relays[k] = r
		}
	}
	// A relay is named rightly only from the first segment its fault
	// spoiled while it had children.
	relayRightly := func(k btr.NodeKey, seg uint64) bool {
		r := relays[k]
		if r == nil || r.Fault.Kind == relay.FaultNone {
			return false
		}
		f := r.Faulted()
		return len(f) > 0 && seg >= f[0]
	}
	// overBound: an honest worker accused for segment seg missed D by its
	// own measure (received the task; answered after D or not within it).
	overBound := func(k btr.NodeKey, seg uint64) (string, bool) {
		w := byKey[k]
		if w == nil {
			return "", false
		}
		t, got := w.ownTime(seg)
		switch {
		case !got:
			return "", false // the task never reached it: not its lateness
		case t.answered && t.took > p.ReplicaDeadline:
			return fmt.Sprintf("its own time %v > D %v", t.took.Round(time.Millisecond), p.ReplicaDeadline), true
		case !t.answered:
			return fmt.Sprintf("no answer ready (D %v)", p.ReplicaDeadline), true
		}
		return "", false
	}
	// honestly counts one statement against an honest worker or relay.
	honestly := func(isRelay bool, k btr.NodeKey, seg uint64, what string) {
		desc := fmt.Sprintf("%s %s…: %s", map[bool]string{true: "relay", false: "worker"}[isRelay], k.String()[:12], what)
		if !isRelay {
			if why, ok := overBound(k, seg); ok {
				rep.HonestOverBound++
				rep.BoundMissed = append(rep.BoundMissed, desc+" ("+why+")")
				return
			}
		}
		rep.FalseAccusations++
		rep.FalselyAccused = append(rep.FalselyAccused, desc)
	}
	excluded := map[btr.NodeKey]*btr.Exclusion{}
	for _, st := range log.Statements {
		if x, err := btr.DecodeExclusion(st); err == nil {
			_, isRelay := relays[x.Culprit]
			key, ok := judge, rightly
			if isRelay {
				key, ok = relayJudge, relayRightly
			}
			// A commission's evidence checks only with a re-executor (the
			// recipe's, or the origin's shards for a relay): the signature
			// over it is checked here, the demo's re-run checks the bytes.
			if err := x.Check(key, nil); err != nil && x.Kind != btr.Commission {
				return rep, fmt.Errorf("the channel log holds an exclusion that does not check: %w", err)
			}
			if !ok(x.Culprit, x.Current) {
				seg := x.Current
				if a, err := btr.DecodeAccusation(x.Evidence); err == nil {
					seg = a.Segment // an omission's or timing's evidence names the task
				}
				honestly(isRelay, x.Culprit, seg, fmt.Sprintf("%s exclusion at segment %d", x.Kind, x.Current))
			}
			if excluded[x.Culprit] == nil {
				excluded[x.Culprit] = x
			}
			continue
		}
		if a, err := btr.DecodeAccusation(st); err == nil && !rightly(a.Accused, a.Segment) {
			honestly(false, a.Accused, a.Segment, fmt.Sprintf("%s accusation at segment %d", a.Kind, a.Segment))
		}
	}
	touched := map[uint64]bool{}
	// outcome measures one fault: onset is the first segment it applied
	// to, want the kind its exclusion must name.
	outcome := func(o BTRFaultOutcome, key btr.NodeKey, faulted []uint64, want btr.FaultKind) BTRFaultOutcome {
		o.Want = want.String()
		if len(faulted) == 0 {
			return o // never active: not injected
		}
		rep.FaultsInjected++
		o.Onset = faulted[0]
		x := excluded[key]
		if x == nil {
			return o
		}
		o.DetectedAs, o.SwitchAt = x.Kind.String(), x.SwitchAt(p)
		if x.Kind == want {
			rep.FaultsDetected++
		}
		for s := o.Onset; s <= o.SwitchAt; s++ {
			touched[s] = true
		}
		if start, ok := rec.Segment(o.Onset); ok {
			for _, s := range rec.Segments() {
				if seg, _ := rec.Segment(s); s >= o.SwitchAt && seg.Err == nil {
					o.RecoveryMS = float64(seg.Decided.Sub(start.Opened).Microseconds()) / 1000
					break
				}
			}
		}
		if o.RecoveryMS == 0 {
			// Never recovered within the run: report it as beyond any bound.
			o.RecoveryMS = float64(time.Hour.Milliseconds())
		}
		rep.RecoveryMaxMS = max(rep.RecoveryMaxMS, o.RecoveryMS)
		return o
	}
	for _, w := range workers {
		if w.Fault.Kind == 0 {
			continue
		}
		o := BTRFaultOutcome{Role: "worker", Worker: w.Key.String(), Kind: w.Fault.Kind.String(), From: w.Fault.From}
		rep.Faults = append(rep.Faults, outcome(o, w.Key, w.Faulted(), w.Fault.Kind))
	}
	for _, r := range n.Relays() {
		if r.Fault.Kind == relay.FaultNone {
			continue
		}
		k, _ := btr.ParseNodeKey(string(r.Identity.ID))
		o := BTRFaultOutcome{Role: "relay", Worker: string(r.Identity.ID), Kind: "relay-" + string(r.Fault.Kind), From: r.Fault.From}
		rep.Faults = append(rep.Faults, outcome(o, k, r.Faulted(), RelayFaultDetectedAs(r.Fault.Kind)))
	}

	// Wrong bytes: what the players got of each checked segment against the
	// recipe run again, honestly, on the segment's source. Segments are
	// checked by task (the judge's numbering, the faults' onsets), played
	// by entry seq: each checked task is compared with the entry it was
	// published as (the IV is the entry's too), never with the entry of
	// the same number, which after a missing segment is its neighbour.
	segs := rec.Segments()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, i := range rng.Perm(len(segs))[:min(extra, len(segs))] {
		touched[segs[i]] = true
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return rep, err
	}
	// Players get HLS AES-128 ciphertext (the key is the playlist's): the
	// honest ladder is encrypted the same way (the IV is derived from the
	// rendition and segment), so equal digests mean equal plaintext.
	raw, err := n.Admin.LiveKey(ctx, chain)
	if err != nil || len(raw) != len(content.ContentKey{}) {
		return rep, fmt.Errorf("the chain's key (%d bytes): %v", len(raw), err)
	}
	key := content.ContentKey(raw)
	for _, seq := range segs {
		s, _ := rec.Segment(seq)
		if s.Err != nil {
			rep.SegmentsFailed++
			continue
		}
		if !touched[seq] || !s.Published {
			continue // an accepted ladder never published reached no player
		}
		honest, err := s.Recipe.Transcode(ctx, ffmpeg, s.Source)
		if err != nil {
			return rep, fmt.Errorf("honest re-run of segment %d: %w", seq, err)
		}
		want := sha256.Sum256(content.EncryptSegment(key, key.SegmentIV(0, int(s.Entry)), honest[0]))
		rep.SegmentsChecked++
		for _, pl := range plays {
			if got, ok := pl.Digests[s.Entry]; ok && got.SHA256 != want {
				rep.WrongBytesPlayed += int64(got.Size)
			}
		}
	}

	rep.SegmentsAgreed = rec.Metric("swarmcast_origin_btr_segments_accepted_total", map[string]string{"how": "agreed"})
	rep.SegmentsReexecuted = rec.Metric("swarmcast_origin_btr_segments_accepted_total", map[string]string{"how": "reexecuted"})
	if decided := rep.SegmentsAgreed + rep.SegmentsReexecuted; decided > 0 {
		tasks := rec.Metric("swarmcast_origin_btr_messages_total", map[string]string{"kind": "task"})
		rep.ReplicasPerSegment = tasks / decided
		rep.MessagesPerSegment = rec.Metric("swarmcast_origin_btr_messages_total", nil) / decided
		rep.WorkerCPUMSPerSeg = 1000 * n.WorkerMetric("swarmcast_worker_transcode_cpu_seconds_total") / decided
		rep.ReexecCPUMSPerSeg = 1000 * rec.Metric("swarmcast_origin_btr_reexec_cpu_seconds_total", nil) / decided
	}
	return rep, nil
}
