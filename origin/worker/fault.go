package worker

import (
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/btr"
)

// Fault is a deliberately faulty behaviour a worker adopts for every task
// of segment From on: fault injection for `swarmcast worker --fault`,
// testnet's workers and `demo --live --faults` (docs/LIVE.md, "BTR"). The
// behaviour is real, not simulated at the judge: what the judge receives is
// what a faulty worker on the network sends.
//
//   - Commission: the worker transcodes, spoils the frames of every
//     rendition (spoil) and signs the digest of the spoiled ladder, sending
//     those bytes.
//   - Omission: the worker takes the task and never answers it (the
//     request is held until the judge gives up).
//   - Timing: the worker answers correctly, but after the task's detection
//     deadline (half the answer window past it): late, within the answer
//     window, so each late answer is a strike rather than an omission.
//   - Equivocation: the worker answers the judge correctly and signs a
//     second output with another digest for another party: it forwards it
//     to the task's Forward URL (the judge's wire.PathBTRForward, where any
//     party that holds a statement about a task hands it in).
type Fault struct {
	Kind btr.FaultKind // 0: an honest worker
	From uint64        // the first task segment the worker misbehaves on
}

// ParseFault reads the --fault flag's value ("" is honest).
func ParseFault(kind string, from uint64) (Fault, error) {
	if kind == "" {
		return Fault{}, nil
	}
	for _, k := range []btr.FaultKind{btr.Commission, btr.Omission, btr.Timing, btr.Equivocation} {
		if k.String() == kind {
			return Fault{Kind: k, From: from}, nil
		}
	}
	return Fault{}, fmt.Errorf("--fault %q: want commission, omission, timing or equivocation", kind)
}

// Active reports whether the fault applies to a task of segment seg.
func (f Fault) Active(seg uint64) bool { return f.Kind != 0 && seg >= f.From }

func (f Fault) String() string {
	if f.Kind == 0 {
		return "honest"
	}
	return fmt.Sprintf("%s from segment %d", f.Kind, f.From)
}

// spoil returns copies of the renditions with their frames damaged: in
// every fourth MPEG-TS packet after the first eight (the tables and the
// start of the first picture stay), the payload bytes are inverted. The
// streams keep their structure and sizes, so they pass a cheap local check
// of the container while their pictures are wrong: only re-executing the
// recipe tells them from the correct ladder.
func spoil(outs [][]byte) [][]byte {
	const packet = 188
	spoiled := make([][]byte, len(outs))
	for i, o := range outs {
		b := append([]byte(nil), o...)
		for p := 8 * packet; p+packet <= len(b); p += 4 * packet {
			for j := p + 8; j < p+packet; j++ {
				b[j] ^= 0xff
			}
		}
		if len(b) > 0 && len(b) <= 8*packet {
			b[len(b)-1] ^= 0xff // a tiny rendition still differs
		}
		spoiled[i] = b
	}
	return spoiled
}

// lateBy is how long after the detection deadline a timing fault answers:
// half the task's answer window (so the late output lands inside it: a
// strike, not an omission), or 1 s past the deadline when the task names no
// window.
func lateBy(answerWindowMS int64) time.Duration {
	if answerWindowMS <= 0 {
		return time.Second
	}
	return time.Duration(answerWindowMS) * time.Millisecond / 2
}
