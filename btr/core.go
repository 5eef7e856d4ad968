package btr

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Config configures a judge's Core for one chain and one recipe (one
// rendition of the ladder: each rendition is its own replicated task).
type Config struct {
	Chain   content.VideoID
	Recipe  string
	Standby Standby
	Params  Params
	// Judge signs accusations and exclusions: the coordinator's or a
	// designated trusted node's key. Exclusion.Check trusts exactly it.
	Judge ed25519.PrivateKey
	// Keep is how many segments of state the core holds (0: 64). It must
	// cover the answer window and re-execution in segments.
	Keep int
}

// DecisionKind says what a Decision asks the driver to do or record.
type DecisionKind int

const (
	// Accept: the segment's output is Digest (all not-excluded assigned
	// replicas agreed, or the judge's re-execution decided). Agreed earn
	// the transcoding points. Package and publish it.
	Accept DecisionKind = iota + 1
	// Reexecute: run Task's recipe on its input and feed Core.Reexecuted.
	Reexecute
	// Accuse: publish Accusation to the accused (and the log); the accused
	// may answer with a Rebuttal by its AnswerBy.
	Accuse
	// Clear: Rebuttal answered Accusation in time; the accused stays.
	Clear
	// Exclude: append Exclusion to the channel log; every node switches at
	// SwitchAt; the ledger forfeits the culprit's unsettled points. Proof is
	// set for commission and equivocation.
	Exclude
	// Overdue: more than f assigned replicas had no output at the segment's
	// detection deadline (Silent). At most f replicas are faulty, so one of
	// them is correct and was late: the timing bound failed for this
	// segment (the machine, the network or this judge was slower than the
	// parameters say), not a replica. Nobody is accused; the segment is
	// re-executed, and the late outputs, when they come, are no strikes.
	// The operator must look: the parameters do not hold here and now.
	Overdue
)

func (k DecisionKind) String() string {
	switch k {
	case Accept:
		return "accept"
	case Reexecute:
		return "reexecute"
	case Accuse:
		return "accuse"
	case Clear:
		return "clear"
	case Exclude:
		return "exclude"
	case Overdue:
		return "overdue"
	}
	return fmt.Sprintf("decision(%d)", int(k))
}

// Decision is one output of the core, in the order it was taken.
type Decision struct {
	Kind    DecisionKind
	Segment uint64
	At      time.Time

	Digest        content.Hash // Accept
	Agreed        []NodeKey    // Accept: replicas whose signed digest is Digest
	ByReexecution bool         // Accept: the judge's re-execution decided
	Task          Task         // Reexecute

	Accusation *Accusation // Accuse, Clear
	Rebuttal   *Rebuttal   // Clear
	// Accuser is who accused (RelayJudge's Clear: the child the judge
	// hands the rebuttal's push to; the zero key for workers' cases).
	Accuser   NodeKey
	Silent    []NodeKey            // Overdue: the replicas without an output at the deadline
	Exclusion *Exclusion           // Exclude
	Proof     *ProofOfMisbehaviour // Exclude (commission, equivocation)
	SwitchAt  uint64               // Exclude: s* (Segment is then the exclusion's Current)
}

// Core is the judge's agreement state for one chain and recipe. It is not
// safe for concurrent use: its driver feeds it from one goroutine.
type Core struct {
	cfg      Config
	judge    NodeKey
	keep     int
	opened   bool
	current  uint64 // newest opened segment
	segs     map[uint64]*segment
	order    []uint64           // held segments, ascending (Open's order)
	settled  int                // order[:settled] are past their deadline with no accusation open
	excluded map[NodeKey]uint64 // culprit → switch segment
	proven   map[NodeKey]bool   // culprits excluded with a proof (commission, equivocation)
	strikes  map[NodeKey][]uint64
	out      []Decision
}

type segment struct {
	task      Task
	deadline  time.Time
	assigned  []NodeKey
	outputs   map[NodeKey]*Output
	accused   map[NodeKey]*Accusation // outstanding, unanswered
	timedOut  bool                    // the detection deadline was handled
	reexecing bool
	correct   *content.Hash // the judge's re-execution result
	accepted  bool
	byReexec  bool         // accepted on the judge's re-execution
	digest    content.Hash // accepted output
}

// NewCore checks the configuration and returns a core with no segment open.
func NewCore(cfg Config) (*Core, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Standby.Active) < 1 {
		return nil, errors.New("btr: the standby plan has no active replica (want f+1)")
	}
	seen := map[NodeKey]bool{}
	for _, k := range slices.Concat(cfg.Standby.Active, cfg.Standby.Spares) {
		if seen[k] {
			return nil, fmt.Errorf("btr: replica %s appears twice in the standby plan", k)
		}
		seen[k] = true
	}
	if cfg.Recipe == "" || len(cfg.Recipe) > MaxRecipeLen {
		return nil, fmt.Errorf("btr: recipe id of %d bytes, want 1..%d", len(cfg.Recipe), MaxRecipeLen)
	}
	if len(cfg.Judge) != ed25519.PrivateKeySize {
		return nil, errors.New("btr: the judge needs an ed25519 private key")
	}
	judge := KeyOf(cfg.Judge)
	if seen[judge] {
		return nil, errors.New("btr: the judge is also a replica; it must be a separate, trusted node")
	}
	keep := cfg.Keep
	if keep <= 0 {
		keep = 64
	}
	return &Core{
		cfg: cfg, judge: judge, keep: keep,
		segs:     map[uint64]*segment{},
		excluded: map[NodeKey]uint64{},
		proven:   map[NodeKey]bool{},
		strikes:  map[NodeKey][]uint64{},
	}, nil
}

// Decisions returns and clears the decisions taken since the last call.
func (c *Core) Decisions() []Decision {
	d := c.out
	c.out = nil
	return d
}

// Excluded reports whether a node is excluded, and its switch segment.
func (c *Core) Excluded(k NodeKey) (switchAt uint64, ok bool) {
	s, ok := c.excluded[k]
	return s, ok
}

// Assigned is the replica set for a segment under the exclusions whose
// switch segment is at or before it (the same function every node runs).
func (c *Core) Assigned(seg uint64) []NodeKey {
	return c.cfg.Standby.Assign(func(k NodeKey) bool {
		s, ok := c.excluded[k]
		return ok && s <= seg
	})
}

// Open starts segment seg, whose input (SHA-256 of the source segment) was
// available at the origin at available (the origin's clock). Segments open
// in increasing order, each at most once; gaps are allowed (a publisher
// pause).
func (c *Core) Open(seg uint64, input content.Hash, available time.Time) error {
	if c.opened && seg <= c.current {
		return fmt.Errorf("btr: segment %d opened after segment %d: segments open in increasing order", seg, c.current)
	}
	c.opened, c.current = true, seg
	c.segs[seg] = &segment{
		task:     Task{Chain: c.cfg.Chain, Segment: seg, Recipe: c.cfg.Recipe, Input: input},
		deadline: available.Add(c.cfg.Params.DetectionTimeout()),
		assigned: c.Assigned(seg),
		outputs:  map[NodeKey]*Output{},
		accused:  map[NodeKey]*Accusation{},
	}
	c.order = append(c.order, seg)
	for len(c.order) > 0 && c.order[0]+uint64(c.keep) <= seg {
		delete(c.segs, c.order[0])
		c.order = c.order[1:]
		c.settled = max(0, c.settled-1)
	}
	return nil
}

// Output feeds a signed output received at now, directly from the replica
// or forwarded by any other party (that is how equivocation is seen). now
// is its arrival on the judge's clock, which may be before a tick the core
// already took (the driver stamps arrivals before it gets the core): an
// output that arrived by the deadline is then no strike. An error means
// the statement was refused and nothing changed.
func (c *Core) Output(o *Output, now time.Time) error {
	if err := o.Verify(); err != nil {
		return err
	}
	if o.Chain != c.cfg.Chain || o.Recipe != c.cfg.Recipe {
		return fmt.Errorf("btr: output for %s is not for this chain and recipe (%q)", o.Task, c.cfg.Recipe)
	}
	s, ok := c.segs[o.Segment]
	if !ok {
		if c.opened && o.Segment <= c.current {
			return fmt.Errorf("btr: output for segment %d: no longer held (older than %d segments)", o.Segment, c.keep)
		}
		return fmt.Errorf("btr: output for segment %d: not opened yet (open it when its input is known)", o.Segment)
	}
	if o.Input != s.task.Input {
		return fmt.Errorf("btr: output by %s for segment %d names input %x, the segment's input is %x", o.Replica, o.Segment, o.Input[:6], s.task.Input[:6])
	}
	if !slices.Contains(s.assigned, o.Replica) {
		return fmt.Errorf("btr: %s is not assigned to segment %d", o.Replica, o.Segment)
	}
	c.Tick(now) // deadlines that passed before this arrival come first
	if _, gone := c.excluded[o.Replica]; gone {
		return nil
	}
	if prev, ok := s.outputs[o.Replica]; ok {
		if prev.Digest != o.Digest {
			c.exclude(o.Replica, Equivocation, &ProofOfMisbehaviour{Kind: Equivocation, A: prev, B: o}, nil, now)
		}
		return nil
	}
	s.outputs[o.Replica] = o
	if a, ok := s.accused[o.Replica]; ok {
		// Past the detection deadline, within the answer window (later ones
		// found the replica excluded above): it answers the accusation.
		delete(s.accused, o.Replica)
		c.emit(Decision{Kind: Clear, Segment: o.Segment, At: now, Accusation: a, Rebuttal: &Rebuttal{Accusation: a, Output: o}})
		if now.After(s.deadline) {
			c.strike(o.Replica, o.Segment, now)
		}
		// else it reached the judge by the deadline (now is its arrival,
		// stamped by the judge's driver) and the judge handled it after its
		// own tick: the judge's lateness, not the replica's, so no strike.
		if _, gone := c.excluded[o.Replica]; gone {
			return nil
		}
	}
	if s.accepted {
		if o.Digest != s.digest {
			c.exclude(o.Replica, Commission, &ProofOfMisbehaviour{Kind: Commission, A: o, Correct: s.digest}, nil, now)
		}
		return nil
	}
	c.evaluate(s, now)
	return nil
}

// Rebut feeds a rebuttal that reached the judge at now by another path than
// the output itself (the accused re-sending around a lossy link).
func (c *Core) Rebut(r *Rebuttal, now time.Time) error {
	if err := r.Check(); err != nil {
		return err
	}
	if r.Accusation.Accuser != c.judge {
		return fmt.Errorf("btr: rebuttal answers an accusation by %s, not by this judge", r.Accusation.Accuser)
	}
	return c.Output(r.Output, now)
}

// Reexecuted feeds the judge's re-execution of segment seg: digest is the
// correct output.
func (c *Core) Reexecuted(seg uint64, digest content.Hash, now time.Time) error {
	s, ok := c.segs[seg]
	if !ok {
		return fmt.Errorf("btr: re-execution of segment %d: not held", seg)
	}
	if !s.reexecing {
		return fmt.Errorf("btr: re-execution of segment %d was not requested", seg)
	}
	if s.accepted && !s.byReexec && digest != s.digest {
		// The replicas' agreement includes a correct one, so a different
		// re-execution means this judge's recipe run is not the replicas'
		// (another ffmpeg build, a non-deterministic argument): it must not
		// produce proofs. Nothing changes.
		return fmt.Errorf("btr: re-execution of segment %d gave %x, the replicas agreed on %x: the judge's transcode is not the recipe's (check its ffmpeg build)", seg, digest[:6], s.digest[:6])
	}
	c.Tick(now)
	s.correct = &digest
	c.evaluate(s, now)
	return nil
}

// Tick handles the deadlines that passed by now: missing outputs are
// accused (and the segment re-executed), unanswered accusations excluded.
func (c *Core) Tick(now time.Time) {
	for c.settled < len(c.order) {
		s := c.segs[c.order[c.settled]]
		if !s.timedOut || len(s.accused) > 0 {
			break
		}
		c.settled++
	}
	for _, seg := range c.order[c.settled:] {
		s := c.segs[seg]
		if s.timedOut && len(s.accused) == 0 {
			continue
		}
		if !s.timedOut && !now.Before(s.deadline) {
			s.timedOut = true
			var silent []NodeKey
			for _, r := range s.assigned {
				if _, has := s.outputs[r]; !has && !c.isExcluded(r) {
					silent = append(silent, r)
				}
			}
			if len(silent) > c.cfg.Standby.F() {
				// A correct replica is among them: an accusation would name
				// an honest node for the bound's failure (B18: the whole
				// machine saturated, every replica late at once).
				c.emit(Decision{Kind: Overdue, Segment: seg, At: now, Silent: silent})
				silent = nil
			}
			for _, r := range silent {
				a := &Accusation{Task: s.task, Accused: r, Kind: Omission, AnswerBy: now.Add(c.cfg.Params.AnswerWindow).UnixMicro()}
				a.Sign(c.cfg.Judge)
				s.accused[r] = a
				c.emit(Decision{Kind: Accuse, Segment: seg, At: now, Accusation: a})
			}
			if !s.accepted {
				c.reexec(s, now)
			}
		}
		for _, r := range slices.SortedFunc(maps.Keys(s.accused), compareKeys) {
			a := s.accused[r]
			if now.UnixMicro() > a.AnswerBy {
				delete(s.accused, r)
				c.exclude(r, Omission, nil, a, now)
			}
		}
	}
}

func (c *Core) isExcluded(k NodeKey) bool { _, ok := c.excluded[k]; return ok }

// evaluate decides a segment if it can: by the re-execution, or by the
// agreement of every assigned replica not excluded; a disagreement asks
// for re-execution.
func (c *Core) evaluate(s *segment, now time.Time) {
	if s.accepted {
		return
	}
	if s.correct != nil {
		c.accept(s, *s.correct, true, now)
		for _, r := range s.assigned {
			if o, ok := s.outputs[r]; ok && o.Digest != *s.correct {
				c.exclude(r, Commission, &ProofOfMisbehaviour{Kind: Commission, A: o, Correct: *s.correct}, nil, now)
			}
		}
		return
	}
	// Agreement decides only when f+1−p distinct replicas signed one
	// digest, p being the assigned replicas proven faulty (excluded with a
	// commission or equivocation proof, whose votes never count): at most
	// f−p of the others are faulty, so one signer is correct. An omission
	// or timing exclusion lowers nothing: it may name an honest replica
	// that was only slow (its machine saturated past D), and the replicas
	// left could then all be faulty (B18: a lone liar was accepted so). A
	// segment that cannot reach the count (such a replica excluded without
	// an output, the spares exhausted, a disagreement) is the
	// re-execution's to decide: missing until then, never wrong. An
	// unproven excluded replica's signed output still counts.
	need := len(c.cfg.Standby.Active)
	votes := map[content.Hash]int{}
	waiting := false
	for _, r := range s.assigned {
		if c.proven[r] {
			need--
			continue
		}
		o, ok := s.outputs[r]
		if !ok {
			waiting = waiting || !c.isExcluded(r)
			continue
		}
		votes[o.Digest]++
	}
	need = max(need, 1)
	for d, n := range votes {
		if n >= need {
			c.accept(s, d, false, now)
			return
		}
	}
	if len(votes) > 1 || !waiting {
		c.reexec(s, now)
	}
}

func (c *Core) accept(s *segment, digest content.Hash, byReexec bool, now time.Time) {
	s.accepted, s.digest, s.byReexec = true, digest, byReexec
	var agreed []NodeKey
	for _, r := range s.assigned {
		if o, ok := s.outputs[r]; ok && o.Digest == digest && !c.isExcluded(r) {
			agreed = append(agreed, r)
		}
	}
	c.emit(Decision{Kind: Accept, Segment: s.task.Segment, At: now, Digest: digest, Agreed: agreed, ByReexecution: byReexec})
}

func (c *Core) reexec(s *segment, now time.Time) {
	if s.reexecing {
		return
	}
	s.reexecing = true
	c.emit(Decision{Kind: Reexecute, Segment: s.task.Segment, At: now, Task: s.task})
}

// strike records a late output; StrikeLimit of them within StrikeWindow
// segments exclude the replica for timing.
func (c *Core) strike(r NodeKey, seg uint64, now time.Time) {
	t := c.cfg.Params
	kept := c.strikes[r][:0]
	for _, s := range c.strikes[r] {
		if s+uint64(t.StrikeWindow) > seg {
			kept = append(kept, s)
		}
	}
	kept = append(kept, seg)
	c.strikes[r] = kept
	if len(kept) >= t.StrikeLimit {
		a := &Accusation{Task: c.segs[seg].task, Accused: r, Kind: Timing, AnswerBy: now.UnixMicro()}
		a.Sign(c.cfg.Judge)
		c.exclude(r, Timing, nil, a, now)
	}
}

// exclude signs the culprit's exclusion (once), drops its outstanding
// accusations and re-decides the segments waiting on it.
func (c *Core) exclude(r NodeKey, kind FaultKind, proof *ProofOfMisbehaviour, acc *Accusation, now time.Time) {
	if c.isExcluded(r) {
		return
	}
	x := &Exclusion{Chain: c.cfg.Chain, Culprit: r, Kind: kind, Current: c.current}
	if proof != nil {
		x.Evidence = proof.Encode()
	} else {
		x.Evidence = acc.Encode()
	}
	x.Sign(c.cfg.Judge)
	switchAt := x.SwitchAt(c.cfg.Params)
	c.excluded[r] = switchAt
	c.proven[r] = proof != nil
	delete(c.strikes, r)
	c.emit(Decision{Kind: Exclude, Segment: c.current, At: now, Exclusion: x, Proof: proof, SwitchAt: switchAt})
	for _, seg := range c.order {
		s := c.segs[seg]
		delete(s.accused, r)
		if slices.Contains(s.assigned, r) {
			c.evaluate(s, now)
		}
	}
}

func (c *Core) emit(d Decision) { c.out = append(c.out, d) }

func compareKeys(a, b NodeKey) int { return bytes.Compare(a[:], b[:]) }
