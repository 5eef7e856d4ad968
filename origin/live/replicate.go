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
