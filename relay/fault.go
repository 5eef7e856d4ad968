package relay

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
)

// FaultKind is a misbehaviour a relay can be told to show, for fault-
// injection runs (swarmcast relay --fault, swarmcast demo --live --faults):
// the faults BTR's relay side must detect (docs/LIVE.md, "Relays under BTR").
type FaultKind string

const (
	// FaultNone is an honest relay.
	FaultNone FaultKind = ""
	// FaultStall: the relay keeps accepting pushes (and serving its window)
	// but forwards nothing from the fault's first segment on: an omission
	// its children see from the segment cadence.
	FaultStall FaultKind = "stall"
	// FaultCorrupt: the relay forwards every shard with one data byte
	// flipped: a commission its children refuse (the shard fails its Merkle
	// proof against the signed entry) and can prove with the signed push.
	FaultCorrupt FaultKind = "corrupt"
	// FaultSlow: the relay forwards every segment Fault.Delay late: a
	// timing fault once the delay exceeds its children's detection timeout.
	FaultSlow FaultKind = "slow"
)

// ParseFaultKind parses a --fault value.
func ParseFaultKind(s string) (FaultKind, error) {
	switch k := FaultKind(s); k {
	case FaultNone, FaultStall, FaultCorrupt, FaultSlow:
		return k, nil
	}
	return "", fmt.Errorf("fault %q: want stall, corrupt or slow (or none)", s)
}

// Fault is the misbehaviour injected (Config.Fault); the zero value is an
// honest relay.
type Fault struct {
	Kind FaultKind
	// From is the first segment (entry seq) misbehaved on; earlier
	// segments are relayed honestly.
	From uint64
	// Delay is FaultSlow's hold per segment; ≤ 0 is two segment durations
	// of the chain (its genesis TargetDuration).
	Delay time.Duration
}

func (f Fault) validate() error {
	if _, err := ParseFaultKind(string(f.Kind)); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if f.Delay < 0 {
		return fmt.Errorf("relay: fault delay %v is negative", f.Delay)
	}
	return nil
}

// applies reports whether segment seq is misbehaved on.
func (f Fault) applies(seq uint64) bool { return f.Kind != FaultNone && seq >= f.From }

// forward hands seg to the sender as the fault dictates and reports what
// it did (FaultNone when it relayed honestly) and for how many children it
// queued the segment. target is the chain's target segment duration
// (FaultSlow's default hold).
func (f Fault) forward(s *fanout.Sender, seg fanout.Segment, target time.Duration) (FaultKind, int) {
	if !f.applies(seg.Seq) {
		return FaultNone, s.Send(seg)
	}
	switch f.Kind {
	case FaultStall:
		return FaultStall, 0
	case FaultCorrupt:
		return FaultCorrupt, s.Send(corrupted(seg))
	case FaultSlow:
		hold := f.Delay
		if hold <= 0 {
			hold = 2 * target
		}
		return FaultSlow, s.SendAfter(seg, hold)
	}
	return FaultNone, s.Send(seg)
}

// corrupted is seg with the first data byte of every shard flipped: the
// shards keep their size and proof, so only the Merkle check refuses them.
// The window's shards are not touched (copies).
func corrupted(seg fanout.Segment) fanout.Segment {
	out := seg
	out.Shards = make([]*content.ShardMessage, len(seg.Shards))
	for i, sh := range seg.Shards {
		bad := *sh
		bad.Data = slices.Clone(sh.Data)
		if len(bad.Data) > 0 {
			bad.Data[0] ^= 0xff
		}
		out.Shards[i] = &bad
	}
	return out
}
