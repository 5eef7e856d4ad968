package btr

import (
	"errors"
	"fmt"
	"time"
)

// Params holds the parameters of a chain's BTR configuration. Every node of
// the chain must use the same values (they are part of the chain's plan):
// the switch segment is derived from them.
type Params struct {
	// Segment is the segment duration T: segment s+1's input becomes
	// available T after segment s's.
	Segment time.Duration
	// ReplicaDeadline is D: the longest a correct replica takes from holding
	// a segment's input to having sent its signed output (transcode + sign).
	// A replica slower than this is not correct under the model; one within
	// it is never accused.
	ReplicaDeadline time.Duration
	// NetworkDelay is δ: the longest one message takes between two correct
	// nodes (input to a replica, an output or a rebuttal to the judge).
	NetworkDelay time.Duration
	// ClockSkew is ε: the largest difference between the origin's clock
	// (which stamps when an input is available) and the judge's.
	ClockSkew time.Duration
	// TickPeriod is G: the judge's driver calls Core.Tick at least this often.
	TickPeriod time.Duration
	// AnswerWindow is W: an accused replica's time to rebut, from the
	// accusation to the rebuttal reaching the judge; at least 2δ.
	AnswerWindow time.Duration
	// Reexec is X: the longest the judge's re-execution of one segment takes.
	Reexec time.Duration
	// TreeDepth and HopDelay bound evidence propagation: a signed exclusion
	// (and a statement forwarded to the judge) crosses at most TreeDepth hops
	// of the chain's overlay, each within HopDelay (receive, verify, send).
	TreeDepth int
	HopDelay  time.Duration
	// SwitchDelay is S: the longest a node takes to activate a precomputed
	// configuration once it holds the exclusion (a standby replica starting
	// its ffmpeg, a child connecting to its backup parent).
	SwitchDelay time.Duration
	// StrikeLimit late outputs (each received after the detection deadline,
	// answering an omission accusation) within StrikeWindow consecutive
	// segments exclude a replica for timing. One late answer is forgiven: the
	// accusation is cleared and the segment decided by re-execution.
	StrikeLimit  int
	StrikeWindow int
}

// DefaultParams is a configuration for 1 s segments on one machine or a
// LAN: a replica gets 600 ms to transcode a 1 s segment, messages 50 ms.
func DefaultParams() Params {
	return Params{
		Segment:         time.Second,
		ReplicaDeadline: 600 * time.Millisecond,
		NetworkDelay:    50 * time.Millisecond,
		ClockSkew:       20 * time.Millisecond,
		TickPeriod:      10 * time.Millisecond,
		AnswerWindow:    150 * time.Millisecond,
		Reexec:          600 * time.Millisecond,
		TreeDepth:       3,
		HopDelay:        30 * time.Millisecond,
		SwitchDelay:     200 * time.Millisecond,
		StrikeLimit:     2,
		StrikeWindow:    3,
	}
}

// Validate reports a parameter set the bound does not hold for.
func (t Params) Validate() error {
	switch {
	case t.Segment <= 0:
		return errors.New("btr timing: the segment duration must be positive")
	case t.ReplicaDeadline <= 0 || t.NetworkDelay < 0 || t.ClockSkew < 0 || t.Reexec < 0 || t.HopDelay < 0 || t.SwitchDelay < 0:
		return errors.New("btr timing: the replica deadline must be positive and no delay negative")
	case t.TickPeriod <= 0:
		return errors.New("btr timing: the tick period must be positive")
	case t.AnswerWindow < 2*t.NetworkDelay:
		return fmt.Errorf("btr timing: the answer window %v is shorter than a round trip (2 × %v): a correct replica could not rebut", t.AnswerWindow, t.NetworkDelay)
	case t.TreeDepth < 1:
		return errors.New("btr timing: the tree depth must be at least 1 (the judge to its children)")
	case t.StrikeLimit < 1 || t.StrikeWindow < t.StrikeLimit:
		return fmt.Errorf("btr timing: strike limit %d within %d segments: want 1 ≤ limit ≤ window", t.StrikeLimit, t.StrikeWindow)
	}
	return nil
}

// DetectionTimeout is how long after segment s's input is available (on
// the origin's clock) the judge waits for the replicas' outputs:
// δ (input to the replica) + D (transcode) + δ (output to the judge) + ε
// (the judge's clock against the origin's). A correct replica's output is
// always in by then.
func (t Params) DetectionTimeout() time.Duration {
	return 2*t.NetworkDelay + t.ReplicaDeadline + t.ClockSkew
}

// Propagation is P = TreeDepth × HopDelay: a signed statement reaches every
// node of the overlay from the judge (or the judge from any node) within it.
func (t Params) Propagation() time.Duration { return time.Duration(t.TreeDepth) * t.HopDelay }

// SwitchLead is Δ, the number of segments between the newest segment the
// judge had opened when it signed an exclusion (Current) and the switch
// segment s* = Current + Δ.
//
// Let t_e be the signing instant and A_c the availability of segment
// Current. The judge opens a segment within δ + ε of its availability and
// Current is the newest it opened, so A_c > t_e − T − (δ + ε). Every node
// must hold the exclusion and have switched before segment s*'s input
// exists: t_e + P + S ≤ A_{s*} = A_c + Δ·T, which holds when
// Δ·T ≥ T + P + S + δ + ε, i.e. Δ = 1 + ⌈(P + S + δ + ε) / T⌉.
func (t Params) SwitchLead() int {
	need := t.Propagation() + t.SwitchDelay + t.NetworkDelay + t.ClockSkew
	return 1 + int((need+t.Segment-1)/t.Segment)
}

// Detection returns, per fault kind, the longest time from the
// availability A_s of the first segment s the fault touches to the judge
// signing the culprit's exclusion (t_e − A_s). With τ = DetectionTimeout:
//
//   - commission: every output is in by τ; a mismatch starts the judge's
//     re-execution on arrival, a missing output at the first tick after τ:
//     τ + G + X.
//   - equivocation: the conflicting statement, sent to another party by τ,
//     is forwarded to the judge through at most TreeDepth hops: τ + P.
//     (If the judge's own copy is wrong it is a commission as well.)
//   - omission: accused at the first tick after τ, answer deadline W later,
//     excluded at the first tick after that: τ + G + W + G.
//   - timing: the StrikeLimit-th late output falls at most StrikeWindow − 1
//     segments after the first; it is excluded on arrival or, if it never
//     arrives, as an omission: (StrikeWindow − 1)·T + τ + 2G + W.
func (t Params) Detection() map[FaultKind]time.Duration {
	tau := t.DetectionTimeout()
	g := t.TickPeriod
	return map[FaultKind]time.Duration{
		Commission:   tau + g + t.Reexec,
		Equivocation: tau + t.Propagation(),
		Omission:     tau + 2*g + t.AnswerWindow,
		Timing:       time.Duration(t.StrikeWindow-1)*t.Segment + tau + 2*g + t.AnswerWindow,
	}
}

// RelayTimeout is a child's slack over the segment cadence at depth hops
// below the origin (fanout.ParentWatch): each hop within HopDelay, and
// each relay's watch ticking within TickPeriod, so a starved relay's
// excuse (its own accusation of its parent) reaches its children before
// their deadline: depth · (HopDelay + TickPeriod).
func (t Params) RelayTimeout(depth int) time.Duration {
	return time.Duration(depth) * (t.HopDelay + t.TickPeriod)
}

// RelayDetection is Detection for relays (the relays' judge, btr.RelayJudge),
// from the availability A_s of the first segment s a faulty relay spoils to
// the judge signing its exclusion. With L = RelayTimeout(TreeDepth):
//
//   - omission: the parent's previous push arrived by A_{s−1} + L ≤ A_s + L,
//     so its child names s by A_s + T + 2L (+ G, its tick); the accusation
//     reaches the judge within δ, the accused has W to answer the judge's
//     countersigned accusation, and the judge's next tick excludes:
//     T + 2L + 2G + δ + W;
//   - timing: StrikeWindow − 1 segments of late answers more:
//     (StrikeWindow − 1)·T + the omission time;
//   - commission and equivocation (two different signed pushes for one
//     segment and substream: at most one has the correct digest, so at
//     least one child holds a push that is a commission): the push reaches
//     the child by A_s + L, its proof the judge within δ, checked on
//     arrival within HopDelay: L + δ + HopDelay.
func (t Params) RelayDetection() map[FaultKind]time.Duration {
	l := t.RelayTimeout(t.TreeDepth)
	g := t.TickPeriod
	omission := t.Segment + 2*l + 2*g + t.NetworkDelay + t.AnswerWindow
	commission := l + t.NetworkDelay + t.HopDelay
	return map[FaultKind]time.Duration{
		Commission:   commission,
		Equivocation: commission,
		Omission:     omission,
		Timing:       time.Duration(t.StrikeWindow-1)*t.Segment + omission,
	}
}

// Bound is R: the longest time from the availability of the first segment
// a fault touches to the switch segment's availability, after which the
// culprit has no part in the chain. R = max over kinds of Detection + Δ·T:
// the switch segment s* = Current + Δ is available at A_c + Δ·T, and
// A_c ≤ t_e (the judge had opened it). Before s*, segments are decided by
// the agreement of the replicas not yet excluded, or by re-execution: an
// output may be missing for at most the detection time, never wrong. R does
// not depend on how long a faulty node waits before misbehaving: it is
// measured from the first segment it spoils. The maximum is over the
// workers' detection times and the relays' (RelayDetection): one R for
// the chain, whichever kind of node fails.
func (t Params) Bound() time.Duration {
	var worst time.Duration
	for _, d := range t.Detection() {
		worst = max(worst, d)
	}
	for _, d := range t.RelayDetection() {
		worst = max(worst, d)
	}
	return worst + time.Duration(t.SwitchLead())*t.Segment
}
