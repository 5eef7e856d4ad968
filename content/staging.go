package content

import (
	"os"
	"path/filepath"
	"strings"
)

// Staging directories live in tmp/ while an ingest or a put is running.
// OpenStore sweeps what crashed runs left there, but another process may
// be using the store at the same time (an ingest while `swarmcast verify`
// opens the store), so every staging dir tmp/<name> has a lock file
// tmp/<name>.lock that its owner holds locked until it is done. The sweep
// removes only entries whose lock nobody holds.

const lockSuffix = ".lock"

// newStaging creates a locked staging directory tmp/<prefix><random>.
// release removes it and drops the lock.
func (s *Store) newStaging(prefix string) (dir string, release func(), err error) {
	for {
		dir = filepath.Join(s.dir, "tmp", prefix+randomHex(8))
		unlock, err := lockFile(dir + lockSuffix)
		if err != nil {
			return "", nil, err
		}
		if unlock == nil {
			continue // a sweep removed the lock file while we took it: retry
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			os.Remove(dir + lockSuffix)
			unlock()
			return "", nil, err
		}
		return dir, func() {
			removeAllQuiet(dir)
			os.Remove(dir + lockSuffix)
			unlock()
		}, nil
	}
}

// sweepStaging removes staging left by runs that are no longer alive.
func sweepStaging(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		base := strings.TrimSuffix(name, lockSuffix)
		if name != base {
			continue // handled with its directory below
		}
		lock := filepath.Join(tmp, base+lockSuffix)
		unlock, ok := tryLock(lock)
		if !ok {
			continue // its owner is still running
		}
		removeAllQuiet(filepath.Join(tmp, base))
		os.Remove(lock)
		unlock()
	}
	// Lock files whose directory is already gone.
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), lockSuffix); ok {
			if _, err := os.Lstat(filepath.Join(tmp, base)); os.IsNotExist(err) {
				if unlock, ok := tryLock(filepath.Join(tmp, e.Name())); ok {
					os.Remove(filepath.Join(tmp, e.Name()))
					unlock()
				}
			}
		}
	}
}
