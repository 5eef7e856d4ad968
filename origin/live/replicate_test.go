package live

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// missingOneReplicator is a Replicator that transcodes honestly with the
// recipe, except that one task stays missing (the judge could not decide
// it within R), and records what PublishObserver tells it.
type missingOneReplicator struct {
	ffmpeg  string
	missing uint64 // the task that fails

	mu        sync.Mutex
	ladders   map[uint64][][]byte // task → the ladder returned
	published map[uint64]uint64   // task → entry
}

func (m *missingOneReplicator) Replicate(ctx context.Context, t ReplicaTask) ([][]byte, error) {
	if t.Opened != nil {
		t.Opened()
	}
	if t.Segment == m.missing {
		return nil, errors.New("undecided within R: missing, never wrong")
	}
	outs, err := t.Recipe.Transcode(ctx, m.ffmpeg, t.Source)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.ladders[t.Segment] = outs
	m.mu.Unlock()
	return outs, nil
}

func (m *missingOneReplicator) Published(_ content.VideoID, task, entry uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.published[task] = entry
}

// TestReplicatedEntryNumbersAfterAMissingSegment replays what the BTR demo
// saw under load (B18): a segment stays missing, the next accepted one
// takes its entry seq (the chain has no gaps) while the judge's numbering
// moves on. A player's segment n is then task n+1's ladder: comparing it
// with task n's (the demo's old check) counted every later segment as
// wrong bytes played. The ingest must report the pairing, and each entry
// must hold exactly the ladder of the task it names.
func TestReplicatedEntryNumbersAfterAMissingSegment(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rep := &missingOneReplicator{ffmpeg: ffmpeg, missing: 1, ladders: map[uint64][][]byte{}, published: map[uint64]uint64{}}
	ti := newTestIngest(t, 300*time.Millisecond, func(c *Config) { c.Replicas = rep })
	args := testSource(4.5)
	args = append(args, "-f", "hls", "-hls_time", "1", "-hls_segment_type", "mpegts", "-method", "PUT", ti.http.URL+"/live/"+testKey+"/index.m3u8")
	if out, err := runFFmpeg(t, ti.ffmpeg, args...); err != nil {
		t.Fatalf("ffmpeg HLS push: %v\n%s", err, out)
	}
	waitFor(t, "the broadcast sealed", func() bool {
		b, ok := ti.Broadcast(testChannel)
		return ok && b.State == wire.ChannelEnded
	})
	chain := onlyChain(t, ti)
	ti.coord.mu.Lock()
	key := ti.coord.keyOf[chain.ID()]
	ti.coord.mu.Unlock()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if _, ok := rep.published[1]; ok {
		t.Fatalf("the missing task 1 was reported published: %v", rep.published)
	}
	if got := rep.published[0]; got != 0 {
		t.Fatalf("task 0 published as entry %d, want 0 (%v)", got, rep.published)
	}
	if got, ok := rep.published[2]; !ok || got != 1 {
		t.Fatalf("task 2 published as entry %d (reported %v), want 1: the missing task's entry seq goes to the next accepted one (%v)", got, ok, rep.published)
	}
	entries := chain.Entries(0, 0)
	if len(entries) != len(rep.published) {
		t.Fatalf("%d entries, %d reported published", len(entries), len(rep.published))
	}
	for task, entry := range rep.published {
		ct, err := ti.SegmentCiphertext(chain.ID(), 0, int(entry))
		if err != nil {
			t.Fatalf("entry %d: %v", entry, err)
		}
		plain, err := content.DecryptSegment(key, key.SegmentIV(0, int(entry)), ct)
		if err != nil {
			t.Fatalf("entry %d: %v", entry, err)
		}
		if !bytes.Equal(plain, rep.ladders[task][0]) {
			t.Fatalf("entry %d is not task %d's ladder", entry, task)
		}
		if other, ok := rep.ladders[entry]; entry != task && ok && bytes.Equal(plain, other[0]) {
			t.Fatalf("entry %d holds task %d's ladder, the same number's: the pairing is wrong", entry, entry)
		}
	}
}
