package edge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// load sweeps tmp/, loads manifests and re-verifies every stored shard.
// A file that fails is removed and logged, never served.
func (e *Edge) load() error {
	for _, d := range []string{"tmp", "manifests", "shards"} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			return fmt.Errorf("open edge cache %s: %w", e.cfg.Dir, err)
		}
	}
	if entries, err := os.ReadDir(e.path("tmp")); err == nil {
		for _, ent := range entries {
			_ = os.RemoveAll(e.path("tmp", ent.Name()))
		}
	}
	entries, err := os.ReadDir(e.path("manifests"))
	if err != nil {
		return err
	}
	for _, ent := range entries {
		name := e.path("manifests", ent.Name())
		id, err := content.ParseVideoID(ent.Name())
		if err == nil {
			var b []byte
			if b, err = os.ReadFile(name); err == nil {
				err = e.addManifest(id, b)
			}
		}
		if err != nil {
			e.log.Warn("dropping a bad cached manifest", "file", name, "err", err)
			e.metrics.verifyFailures.WithLabelValues("load").Inc()
			_ = os.Remove(name)
		}
	}
	videos, err := os.ReadDir(e.path("shards"))
	if err != nil {
		return err
	}
	type loaded struct {
		k     content.ShardRef
		h     *heldShard
		mtime time.Time
	}
	var all []loaded
	for _, vd := range videos {
		id, err := content.ParseVideoID(vd.Name())
		m := e.manifests[id]
		if err != nil || m == nil {
			e.log.Warn("dropping shards without a verified manifest", "dir", vd.Name())
			_ = os.RemoveAll(e.path("shards", vd.Name()))
			continue
		}
		files, err := os.ReadDir(e.path("shards", vd.Name()))
		if err != nil {
			return err
		}
		for _, f := range files {
			name := e.path("shards", vd.Name(), f.Name())
			k, assigned, err := parseShardFile(id, f.Name())
			var info fs.FileInfo
			if err == nil {
				info, err = f.Info()
			}
			if err == nil {
				err = e.verifyFile(m, k, name)
			}
			if err != nil {
				e.log.Warn("dropping a corrupted cached shard", "file", name, "err", err)
				e.metrics.verifyFailures.WithLabelValues("load").Inc()
				_ = os.Remove(name)
				continue
			}
			h := &heldShard{size: info.Size(), assigned: assigned}
			if !assigned {
				h.watchedUntil = info.ModTime().Add(e.cfg.WatchedTTL)
			}
			all = append(all, loaded{k, h, info.ModTime()})
		}
	}
	// Oldest first, so recency survives a restart approximately.
	slices.SortFunc(all, func(a, b loaded) int { return a.mtime.Compare(b.mtime) })
	for _, l := range all {
		if l.h.size > e.inv.capBytes-e.inv.used {
			// The cap shrank since the last run: keep the newest that fit.
			victims, ok := e.inv.victims(l.h.size, l.k)
			if !ok {
				_ = os.Remove(e.path(shardFile(l.k, l.h.assigned)))
				continue
			}
			for _, v := range victims {
				e.removeLocked(v, "cap")
			}
		}
		e.inv.add(l.k, l.h)
	}
	for c := range e.inv.pending {
		e.inv.takeDelta(c, false) // nothing to report yet: the first heartbeat is full
	}
	if n := len(all); n > 0 {
		e.log.Info("cache loaded and verified", "shards", len(e.inv.held), "bytes", e.inv.used)
	}
	return nil
}

// parseShardFile reads "<r>-<s>-<i>.shard" or ".watched".
func parseShardFile(video content.VideoID, name string) (content.ShardRef, bool, error) {
	base, assigned := strings.CutSuffix(name, ".shard")
	if !assigned {
		var ok bool
		if base, ok = strings.CutSuffix(name, ".watched"); !ok {
			return content.ShardRef{}, false, fmt.Errorf("%q is not a shard file", name)
		}
	}
	parts := strings.Split(base, "-")
	if len(parts) != 3 {
		return content.ShardRef{}, false, fmt.Errorf("%q is not a shard file", name)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || strconv.Itoa(v) != p {
			return content.ShardRef{}, false, fmt.Errorf("%q is not a shard file", name)
		}
		n[i] = v
	}
	return content.SegmentRef{Video: video, Rendition: n[0], Segment: n[1]}.Shard(n[2]), assigned, nil
}

// verifyFile checks a stored ShardMessage: framing, labels and proof.
func (e *Edge) verifyFile(m *content.Manifest, k content.ShardRef, name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	_, err = verifyMessage(m, k, b)
	return err
}

// verifyMessage checks that b is shard k and verifies against the manifest.
func verifyMessage(m *content.Manifest, k content.ShardRef, b []byte) (*content.ShardMessage, error) {
	msg, err := content.DecodeShardMessage(b)
	if err != nil {
		return nil, err
	}
	if got := msg.Ref(); got != k {
		return nil, fmt.Errorf("labelled %s, expected %s", got, k)
	}
	if err := content.VerifyShard(m, k.Rendition, k.Segment, msg.Shard); err != nil {
		return nil, err
	}
	return msg, nil
}

// addManifest verifies raw manifest bytes against the id and keeps them in
// memory (the caller has them on disk or writes them).
func (e *Edge) addManifest(id content.VideoID, raw []byte) error {
	m, err := content.DecodeManifest(raw)
	if err != nil {
		return err
	}
	if m.ID() != id {
		return fmt.Errorf("manifest hashes to %s, not to the requested video %s", m.ID(), id)
	}
	e.mu.Lock()
	e.manifests[id] = m
	e.mu.Unlock()
	return nil
}

// saveManifest verifies and stores a manifest on disk.
func (e *Edge) saveManifest(id content.VideoID, raw []byte) (*content.Manifest, error) {
	if err := e.addManifest(id, raw); err != nil {
		return nil, err
	}
	tmp, err := e.writeTemp(raw)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, e.path("manifests", id.String())); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.manifests[id], nil
}

func (e *Edge) manifest(id content.VideoID) *content.Manifest {
	e.mu.Lock()
	m := e.manifests[id]
	e.mu.Unlock()
	if m == nil {
		m = e.liveManifest(id) // a live chain's view (live.go)
	}
	return m
}

// errNoRoom says a shard is larger than the whole disk cap.
var errNoRoom = errors.New("shard does not fit within the disk cap")

// storeShard puts verified ShardMessage bytes into the cache, evicting to
// stay within the cap. watched marks a shard kept from local watching;
// otherwise it is assigned. A shard already held is not rewritten, only
// re-marked.
func (e *Edge) storeShard(k content.ShardRef, msg []byte, watched bool) error {
	now := e.cfg.Now()
	e.mu.Lock()
	if h, ok := e.inv.held[k]; ok {
		err := e.markLocked(k, h, watched, now)
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()

	tmp, err := e.writeTemp(msg)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if h, ok := e.inv.held[k]; ok { // stored concurrently
		os.Remove(tmp)
		return e.markLocked(k, h, watched, now)
	}
	size := int64(len(msg))
	victims, ok := e.inv.victims(size, k)
	if !ok {
		os.Remove(tmp)
		return errNoRoom
	}
	for _, v := range victims {
		reason := "lru"
		if e.inv.held[v].dropped {
			reason = "dropped"
		}
		e.removeLocked(v, reason)
	}
	final := e.path(shardFile(k, !watched))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		os.Remove(tmp)
		return err
	}
	if watched {
		_ = os.Chtimes(tmp, now, now) // the expiry clock survives restarts
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	h := &heldShard{size: size, assigned: !watched}
	if watched {
		h.watchedUntil = now.Add(e.cfg.WatchedTTL)
	}
	e.inv.add(k, h)
	return nil
}

// markLocked updates a held shard: watching extends its expiry, a fetch
// directive makes it assigned (renaming .watched to .shard).
func (e *Edge) markLocked(k content.ShardRef, h *heldShard, watched bool, now time.Time) error {
	e.inv.touch(k)
	if watched {
		h.watchedUntil = now.Add(e.cfg.WatchedTTL)
		if !h.assigned {
			_ = os.Chtimes(e.path(shardFile(k, false)), now, now)
		}
		return nil
	}
	h.dropped = false
	if !h.assigned {
		if err := os.Rename(e.path(shardFile(k, false)), e.path(shardFile(k, true))); err != nil {
			return err
		}
		h.assigned = true
	}
	return nil
}

// removeLocked deletes a shard from disk and the index.
func (e *Edge) removeLocked(k content.ShardRef, reason string) {
	h, ok := e.inv.held[k]
	if !ok {
		return
	}
	if err := os.Remove(e.path(shardFile(k, h.assigned))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.log.Warn("cannot delete an evicted shard", "err", err)
	}
	e.dropHotLocked(h)
	e.inv.remove(k)
	e.metrics.evictions.WithLabelValues(reason).Inc()
}

// dropShards applies a drop directive: the shards stay servable but are
// no longer assigned. They are evicted first when space is needed, and
// otherwise expire like watched shards (the file becomes .watched, so this
// survives a restart).
func (e *Edge) dropShards(keys []content.ShardRef) {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range keys {
		h, ok := e.inv.held[k]
		if !ok {
			continue
		}
		h.dropped = true
		if !h.assigned {
			continue
		}
		if err := os.Rename(e.path(shardFile(k, true)), e.path(shardFile(k, false))); err != nil {
			e.log.Warn("cannot mark a dropped shard", "err", err)
			continue
		}
		h.assigned = false
		if h.watchedUntil.IsZero() {
			h.watchedUntil = now.Add(e.cfg.WatchedTTL)
			_ = os.Chtimes(e.path(shardFile(k, false)), now, now)
		}
	}
}

// expire removes watched shards past WatchedTTL.
func (e *Edge) expire() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.inv.expired(e.cfg.Now()) {
		e.removeLocked(k, "expired")
	}
}
