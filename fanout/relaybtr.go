package fanout

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
)

// Relays under BTR, the fan-out's side (docs/LIVE.md, "Relays under BTR"):
// a parent's push is its signed btr.Output for the relaying task
// (btr.RelayTask, btr.PushDigest), so a push whose shards fail
// verification, or that lacks shards its substream carries, is a
// commission anyone holding the verified shards proves: RelayReexecutor
// "re-executes" relaying by digesting them.

// CheckRelayPush is what a child checks of a push before it keeps it: every
// shard verifies against the entry (VerifyPushShards) and, when want is
// given, the push carries exactly the substream's shards: every rendition
// of every index in want. A parent that pushes fewer shards than its
// children's substream (its signed digest is then not the correct one)
// fails here like one that alters them.
func CheckRelayPush(g *content.LiveGenesis, e *content.LiveEntry, shards []*content.ShardMessage, want []int) error {
	if err := VerifyPushShards(g, e, shards); err != nil {
		return err
	}
	if want == nil {
		return nil
	}
	have := map[[2]int]bool{}
	for _, sh := range shards {
		have[[2]int{sh.Rendition, sh.Index}] = true
	}
	for r := range e.Segments {
		for _, i := range want {
			if !have[[2]int{r, i}] {
				return fmt.Errorf("%w: segment %d: rendition %d shard %d of the substream is missing from the push", ErrRejected, e.Seq, r, i)
			}
		}
	}
	if len(have) != len(e.Segments)*len(want) {
		return fmt.Errorf("%w: segment %d: the push carries shards outside the substream's indices %v", ErrRejected, e.Seq, want)
	}
	return nil
}

// RelayReexecutor is a btr.Reexecutor for relaying tasks: it holds the
// correct push digest of each (entry, substream) it was given verified
// shards of, and answers Run(recipe, input) with it. Safe for concurrent
// use.
type RelayReexecutor struct {
	mu      sync.Mutex
	digests map[relayKey]content.Hash
}

type relayKey struct {
	input     content.Hash
	substream int
}

// NewRelayReexecutor makes an empty one.
func NewRelayReexecutor() *RelayReexecutor {
	return &RelayReexecutor{digests: map[relayKey]content.Hash{}}
}

// Add verifies shards against the entry (entryBytes, which g signed) and
// keeps the correct digest of substream's indices; shards may hold more
// than the substream (the origin's whole segment).
func (x *RelayReexecutor) Add(g *content.LiveGenesis, entryBytes []byte, substream int, indices []int, shards []*content.ShardMessage) error {
	e, err := content.DecodeLiveEntry(entryBytes, g, g.ID())
	if err != nil {
		return fmt.Errorf("relay re-execution: entry: %w", err)
	}
	var mine []*content.ShardMessage
	for _, sh := range shards {
		if slices.Contains(indices, sh.Index) {
			mine = append(mine, sh)
		}
	}
	if err := CheckRelayPush(g, e, mine, indices); err != nil {
		return fmt.Errorf("relay re-execution: %w", err)
	}
	x.mu.Lock()
	x.digests[relayKey{sha256.Sum256(entryBytes), substream}] = btr.PushDigest(mine)
	x.mu.Unlock()
	return nil
}

// Run is the correct push digest of the relaying task.
func (x *RelayReexecutor) Run(recipe string, input content.Hash) (content.Hash, error) {
	j, ok := btr.RelaySubstream(btr.Task{Recipe: recipe})
	if !ok {
		return content.Hash{}, fmt.Errorf("relay re-execution: %q is not a relaying task", recipe)
	}
	x.mu.Lock()
	d, ok := x.digests[relayKey{input, j}]
	x.mu.Unlock()
	if !ok {
		return content.Hash{}, fmt.Errorf("relay re-execution: no verified shards of substream %d of entry %x held", j, input[:6])
	}
	return d, nil
}
