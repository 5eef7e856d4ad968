package edge

import (
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

// The disk cap an edge advertises is a promise to the placer: shards it is
// directed to fetch must fit. A cap above what the cache's filesystem can
// still take would draw directives the edge can only skip, so the
// advertised cap is min(configured cap, held bytes + free space - reserve),
// checked at start and before every heartbeat (a statfs, cheap), and sent
// with each heartbeat. If the filesystem fills up under the cache, the
// cache shrinks: least valuable shards first, as for any eviction.

// diskReserveBytes is free space the cache leaves for what is not shards:
// manifests, orders.json and temporary files.
const diskReserveBytes = 64 << 20

// capFor is the disk cap an edge can honour: at most configured, at least
// 1 byte (a coordinator reads 0 as "the default cap").
func capFor(configured, used, free int64) int64 {
	if free < 0 { // unknown: trust the configuration
		return configured
	}
	return max(min(configured, used+free-diskReserveBytes), 1)
}

// refreshDiskCap re-reads the cache filesystem's free space, applies the cap
// it allows to the inventory (evicting if the cache no longer fits) and
// returns it.
func (e *Edge) refreshDiskCap() int64 {
	free, err := e.cfg.FreeSpace()
	if err != nil {
		e.log.Debug("cannot read the cache filesystem's free space; keeping the configured disk cap", "err", err)
		free = -1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	limit := capFor(e.cfg.DiskCapBytes, e.inv.used, free)
	// Log when the cap starts or stops being short of the configured one,
	// not on every change: free space moves with every write.
	if wasShort, short := e.inv.capBytes < e.cfg.DiskCapBytes, limit < e.cfg.DiskCapBytes; short != wasShort {
		if short {
			e.log.Warn("the cache filesystem is short of space: advertising a smaller disk cap than configured (free space or lower --disk)",
				"configured_bytes", e.cfg.DiskCapBytes, "advertised_bytes", limit, "free_bytes", free)
		} else {
			e.log.Info("the cache filesystem has room again: advertising the configured disk cap", "bytes", limit)
		}
	}
	e.inv.capBytes = limit
	if victims, _ := e.inv.victims(0, content.ShardRef{}); len(victims) > 0 {
		for _, v := range victims {
			e.removeLocked(v, "disk_full")
		}
	}
	return limit
}

// advertisedDiskCap is the disk cap last computed by refreshDiskCap.
func (e *Edge) advertisedDiskCap() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inv.capBytes
}

func errFreeSpace(dir string, err error) error {
	return fmt.Errorf("free space of the edge cache %s: %w", dir, err)
}
