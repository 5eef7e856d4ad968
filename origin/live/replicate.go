package live

import (
	"context"

	"github.com/swarmcast/swarmcast/content"
)

// Replicator replicates each source segment's ladder transcode (BTR,
// docs/LIVE.md; origin/worker.Replicas is the implementation). With
// Config.Replicas set, the ingest runs no transcode of its own: it keeps
// every source segment's bytes (sourceOnlyJob) and packages the renditions
// Replicate returns.
type Replicator interface {
	// Replicate returns the ladder the judge accepted for the segment (the
	// replicas' agreed bytes, or the judge's re-execution on a dispute), in
	// ladder order. An error means the segment stays missing, never wrong.
	Replicate(ctx context.Context, task ReplicaTask) ([][]byte, error)
}

// ReplicaTask is one source segment handed to the replicas.
type ReplicaTask struct {
	Chain   content.VideoID
	Segment uint64
	Recipe  Recipe
	Source  []byte // the source segment (MPEG-TS) exactly as the cutter wrote it
	// Opened, if set, is called once the judge has numbered and opened
	// the segment (its detection deadline runs from then): the ingest
	// hands the next segment over only after it, so segments open in
	// order while earlier ones are still being decided.
	Opened func()
}

// PublishObserver is implemented by a Replicator that is told at which
// entry seq each accepted segment was published. The two numberings part
// after a segment stays missing: the judge never reuses a task's number
// for another input, while the chain has no gaps, so the next accepted
// segment takes the missing one's entry seq. Anything that compares what
// players got (by entry seq) with what was replicated (by task) needs
// this map: keyed by one numbering for both, every segment after the first
// missing one is compared with its neighbour's bytes.
type PublishObserver interface {
	// Published is called once per published segment, in entry order,
	// after the entry joined the local chain: task is ReplicaTask.Segment.
	Published(chain content.VideoID, task, entry uint64)
}
