package live

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/secretfile"
	"github.com/swarmcast/swarmcast/wire"
)

// A restarted origin reloads its unsealed chains (docs/LIVE.md, "Origin
// restart"). Each started chain keeps, under live/<chain>/, what only the
// origin holds: the signed genesis, the content key (0600: it decrypts
// the broadcast), the recipe, and the packaged segments; a sealed one
// also a "sealed" marker. The entries are the coordinator's: it holds every
// one, signed by this origin's key, and the reload verifies each again
// (LiveChain.Append) and checks each segment's ciphertext against its
// entry's size and Merkle root. A reloaded chain waits for its publisher
// as a dropped one does: the publisher's next connection is offered the
// chain (IngestAuthResponse.Resume) and continues it (next Seq,
// Discontinuity); the resume window seals it otherwise. A chain whose
// channel ended, or moved on to another chain, while the origin was down
// is sealed at once.
const (
	keyFile    = "key"
	recipeFile = "recipe.json"
	sealedFile = "sealed"
)

// restoreRetry is how long the reload waits between attempts to reach the
// coordinator.
const restoreRetry = time.Second

// restoreWait bounds how long a publisher connecting while the reload runs
// waits for it before being told to try again.
const restoreWait = 10 * time.Second

// persistStarted writes what a restarted origin needs to continue the
// chain; called once the coordinator took the chain, before any entry.
func (b *broadcast) persistStarted() error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	rec, err := json.Marshal(b.recipe)
	if err != nil {
		return err
	}
	if err := secretfile.Write(filepath.Join(b.dir, keyFile), b.key[:]); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(b.dir, recipeFile), rec); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(b.dir, "genesis"), b.genesis.Encode())
}

// restore reloads every unsealed chain of the store (spawned by New);
// in.restored closes when it is done.
func (in *Ingest) restore() {
	defer close(in.restored)
	root := filepath.Join(in.cfg.Store.Dir(), "live")
	dirs, err := os.ReadDir(root)
	if err != nil {
		in.log.Error("live: cannot list the chains to reload", "err", err)
		return
	}
	for _, d := range dirs {
		id, err := content.ParseVideoID(d.Name())
		if !d.IsDir() || err != nil {
			continue
		}
		dir := filepath.Join(root, d.Name())
		if _, err := os.Stat(filepath.Join(dir, sealedFile)); err == nil {
			continue
		}
		if err := in.restoreChain(id, dir); err != nil {
			if in.ctx.Err() != nil {
				return
			}
			in.log.Error("live: unsealed chain not reloaded (its segments stay on disk)", "chain", id, "err", err)
			continue
		}
	}
}

// restoreChain reloads one chain from dir and the coordinator's entries.
func (in *Ingest) restoreChain(id content.VideoID, dir string) error {
	gb, err := os.ReadFile(filepath.Join(dir, "genesis"))
	if err != nil {
		return fmt.Errorf("no genesis: the chain never started on the coordinator")
	}
	g, err := content.DecodeLiveGenesis(gb)
	if err != nil || g.ID() != id {
		return fmt.Errorf("genesis: not the chain's (%v)", err)
	}
	priv := in.cfg.Publisher
	if priv == nil {
		if priv, err = in.cfg.Store.PublisherKey(); err != nil {
			return err
		}
	}
	if err := g.Verify(priv.Public().(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("genesis not signed by this origin's key (%v): another origin's chain", err)
	}
	kb, err := secretfile.Read(filepath.Join(dir, keyFile))
	if err != nil || len(kb) != len(content.ContentKey{}) {
		return fmt.Errorf("content key: %v (%d bytes)", err, len(kb))
	}
	var key content.ContentKey
	copy(key[:], kb)
	if key.ID() != g.KeyID {
		return errors.New("content key does not match the genesis's key id")
	}
	var rec Recipe
	rb, err := os.ReadFile(filepath.Join(dir, recipeFile))
	if err == nil {
		err = json.Unmarshal(rb, &rec)
	}
	if err != nil || len(rec.Rungs) != len(g.Renditions) {
		return fmt.Errorf("recipe: %v (%d rungs for %d renditions)", err, len(rec.Rungs), len(g.Renditions))
	}

	info, err := retryCoordinator(in, func(ctx context.Context) (wire.ChannelInfo, error) {
		return in.cfg.Coordinator.Channel(ctx, wire.ChannelID(g.Channel))
	})
	if err != nil {
		return fmt.Errorf("channel %s: %w", g.Channel, err)
	}
	lc := content.NewLiveChain(g)
	for {
		from := uint64(0)
		if h := lc.Head(); h != nil {
			from = h.Seq + 1
		}
		raw, err := retryCoordinator(in, func(ctx context.Context) ([][]byte, error) {
			return in.cfg.Coordinator.LiveEntries(ctx, id, from, 0)
		})
		if err != nil {
			return fmt.Errorf("entries from %d: %w", from, err)
		}
		if len(raw) == 0 {
			break
		}
		for _, eb := range raw {
			e, err := content.DecodeLiveEntry(eb, g, id)
			if err == nil {
				err = lc.Append(e)
			}
			if err != nil {
				return fmt.Errorf("the coordinator's entry after %d: %w", from, err)
			}
		}
	}
	b := &broadcast{
		in: in, channel: info, params: g.Params, pushShards: min(content.DefaultLivePushShards, g.Params.NMax),
		key: key, priv: priv, genesis: g, chain: lc, recipe: rec, dir: dir,
		queue: make(chan *closedSegment, 8), done: make(chan struct{}),
		state: wire.ChannelWaiting, head: -1, started: true, nextDisc: true, restored: true,
	}
	if g.PartTarget > 0 && rec.Parts && in.cfg.Replicas == nil {
		b.parts = newPartStore() // resumed with parts from the next segment
	}
	// The output timeline runs on from the last entry's end (first sets a
	// source's offset from it), as after a drop.
	end := int64(ticksPerSecond)
	for _, e := range lc.Entries(0, 0) {
		if err := b.checkSegments(e); err != nil {
			return err
		}
		end += int64(e.Segments[0].Duration) * ticksPerSecond / 1_000_000
		b.head = int64(e.Seq)
	}
	b.end = end
	if !in.spawn(b.work) {
		return context.Canceled
	}
	in.mu.Lock()
	in.byChain[id] = b
	if info.Chain == id || in.byChannel[info.ID] == nil {
		in.byChannel[info.ID] = b
	}
	in.mu.Unlock()
	switch {
	case info.Chain != id:
		// The channel moved on to another chain (not this origin's
		// current one): the recording is sealed and published, and the
		// channel's state, which is the other chain's, left alone.
		in.log.Info("live: reloaded chain is no longer its channel's: sealing", "channel", info.ID, "chain", id, "segments", b.head+1)
		b.mu.Lock()
		b.ending, b.quietSeal = true, true
		b.mu.Unlock()
		b.closeQueue()
	case info.State == wire.ChannelEnded:
		in.log.Info("live: reloaded chain's channel was ended: sealing", "channel", info.ID, "chain", id, "segments", b.head+1)
		b.requestEnd()
	default:
		in.log.Info("live: unsealed chain reloaded, waiting for its publisher", "channel", info.ID, "chain", id, "head", b.head, "resume_window", in.cfg.Resume)
		b.mu.Lock()
		b.startWaitingLocked()
		b.mu.Unlock()
		b.enqueue(&closedSegment{report: &wire.ChannelStateReport{State: wire.ChannelWaiting}})
	}
	return nil
}

// checkSegments checks that every rendition's packaged segment of e is on
// disk as e signed it (size and Merkle root), so the chain's segments
// serve and its recording seals.
func (b *broadcast) checkSegments(e *content.LiveEntry) error {
	for r, seg := range e.Segments {
		ct, err := os.ReadFile(b.segmentPath(r, e.Seq))
		if err != nil {
			return fmt.Errorf("segment %d rendition %d: %w", e.Seq, r, err)
		}
		shards, err := content.EncodeShards(b.params, ct)
		if err != nil {
			return fmt.Errorf("segment %d rendition %d: %w", e.Seq, r, err)
		}
		if root := content.MerkleRoot(content.ShardLeaves(shards)); len(ct) != int(seg.Size) || !bytes.Equal(root[:], seg.Root[:]) {
			return fmt.Errorf("segment %d rendition %d on disk is not the one its entry signed (%d bytes, want %d)", e.Seq, r, len(ct), seg.Size)
		}
	}
	return nil
}

// retryCoordinator calls f until it succeeds, the coordinator refuses
// (4xx: final), or the ingest closes; network errors and 5xx are retried
// every restoreRetry (the coordinator may be starting too).
func retryCoordinator[T any](in *Ingest, f func(context.Context) (T, error)) (T, error) {
	for {
		ctx, cancel := context.WithTimeout(in.ctx, 5*time.Second)
		v, err := f(ctx)
		cancel()
		var ae *wire.APIError
		if err == nil || (errors.As(err, &ae) && ae.Status/100 == 4 && ae.Status != http.StatusTooManyRequests) {
			return v, err
		}
		in.log.Warn("live: reload: coordinator not reachable, retrying", "err", err)
		select {
		case <-in.ctx.Done():
			return v, in.ctx.Err()
		case <-time.After(restoreRetry):
		}
	}
}

// awaitRestored waits (at most restoreWait) for the reload of unsealed
// chains, so a publisher returning to a restarted origin resumes its chain
// rather than starting a new one.
func (in *Ingest) awaitRestored() error {
	select {
	case <-in.restored:
		return nil
	case <-in.ctx.Done():
		return refuse("busy", "the origin is shutting down")
	case <-time.After(restoreWait):
		return refuse("busy", "the origin is still reloading its broadcasts after a restart (the coordinator is not reachable); publish again in a moment")
	}
}
