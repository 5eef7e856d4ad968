package content

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Store is a directory of packaged videos:
//
//	publisher.key            ed25519 seed of this store's publisher (0600)
//	videos/<id>/manifest     signed manifest; SHA-256 of it is <id>
//	videos/<id>/content.key  AES-128 key, only in the publisher's store (0600)
//	videos/<id>/r<R>/<S>.seg ciphertext of segment S of rendition R
//	sources/<digest>         id of the video ingested from that source
//	tmp/                     staging; a video appears by one rename
//
// A video directory is complete or absent: it is built in tmp/ and renamed
// into videos/ in one step, so a crash or full disk leaves no partial video.
type Store struct {
	dir string
	fs  fileWriter
}

// fileWriter is the one write path of the store, so tests can inject a
// full disk.
type fileWriter interface {
	WriteFile(name string, data []byte, perm os.FileMode) error
}

type osWriter struct{}

// WriteFile writes and fsyncs, so a rename that publishes the file cannot
// expose unwritten data after a crash.
func (osWriter) WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// OpenStore opens (creating if needed) a store directory and sweeps staging
// left by an interrupted ingest (never that of one still running).
func OpenStore(dir string) (*Store, error) {
	for _, sub := range []string{"videos", "sources", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	sweepStaging(filepath.Join(dir, "tmp"))
	return &Store{dir: dir, fs: osWriter{}}, nil
}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

// writeAtomic writes a file next to its final name and renames it over.
func (s *Store) writeAtomic(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp-" + randomHex(4)
	if err := s.fs.WriteFile(tmp, data, perm); err != nil {
		_ = os.Remove(tmp)
		return explainWriteError(name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func explainWriteError(name string, err error) error {
	if errors.Is(err, errNoSpace) || strings.Contains(err.Error(), "no space left") {
		return fmt.Errorf("write %s: disk full: free some space (or move the store to a bigger disk) and retry; nothing was saved: %w", name, err)
	}
	return fmt.Errorf("write %s: %w", name, err)
}

// errNoSpace is matched alongside ENOSPC's text so injected writers can use it.
var errNoSpace = errors.New("no space left on device")

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PublisherKey loads the store's ed25519 key, creating it on first use.
func (s *Store) PublisherKey() (ed25519.PrivateKey, error) {
	path := filepath.Join(s.dir, "publisher.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := s.writeAtomic(path, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
			return nil, err
		}
		return priv, nil
	}
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s is corrupted: want %d hex-encoded bytes; restore it from backup (videos signed with it cannot be re-signed otherwise)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func (s *Store) videoDir(id VideoID) string { return filepath.Join(s.dir, "videos", id.String()) }

func segmentFile(dir string, r, seg int) string {
	return filepath.Join(dir, fmt.Sprintf("r%d", r), fmt.Sprintf("%06d.seg", seg))
}

// ErrUnknownVideo is returned for ids the store does not hold.
var ErrUnknownVideo = errors.New("unknown video id")

// Has reports whether the store holds the video.
func (s *Store) Has(id VideoID) bool {
	_, err := os.Stat(filepath.Join(s.videoDir(id), "manifest"))
	return err == nil
}

// Manifest loads and verifies a video's manifest, including that its hash
// is the id it is stored under.
func (s *Store) Manifest(id VideoID) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(s.videoDir(id), "manifest"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s in store %s", ErrUnknownVideo, id, s.dir)
	}
	if err != nil {
		return nil, err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("videos/%s/manifest: %w", id, err)
	}
	if m.ID() != id {
		return nil, fmt.Errorf("videos/%s/manifest: hashes to %s, not to its id; the file was replaced or corrupted", id, m.ID())
	}
	return m, nil
}

// SegmentCiphertext reads the stored ciphertext of one segment. The caller
// verifies it (EncodeShards + root) if it came from an untrusted disk.
func (s *Store) SegmentCiphertext(id VideoID, r, seg int) ([]byte, error) {
	b, err := os.ReadFile(segmentFile(s.videoDir(id), r, seg))
	if errors.Is(err, fs.ErrNotExist) {
		if !s.Has(id) {
			return nil, fmt.Errorf("%w %s", ErrUnknownVideo, id)
		}
		return nil, fmt.Errorf("video %s rendition %d segment %d: not in this store", id, r, seg)
	}
	return b, err
}

// ContentKey returns the video's key if this store is its publisher's.
func (s *Store) ContentKey(id VideoID) (ContentKey, error) {
	var k ContentKey
	b, err := os.ReadFile(filepath.Join(s.videoDir(id), "content.key"))
	if errors.Is(err, fs.ErrNotExist) {
		return k, fmt.Errorf("video %s: no content key in this store (only the publisher's store holds it)", id)
	}
	if err != nil {
		return k, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != len(k) {
		return k, fmt.Errorf("videos/%s/content.key is corrupted", id)
	}
	copy(k[:], raw)
	return k, nil
}

// Videos lists the ids of the stored videos in lexical order.
func (s *Store) Videos() ([]VideoID, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "videos"))
	if err != nil {
		return nil, err
	}
	var ids []VideoID
	for _, e := range entries {
		if id, err := ParseVideoID(e.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids, nil
}

// PutVideo stores a whole video atomically: manifest, every segment's
// ciphertext (segments[r][s]) and, for a publisher, the content key. The
// segments must match the manifest's roots; nothing is stored otherwise.
func (s *Store) PutVideo(m *Manifest, segments [][][]byte, key *ContentKey) (VideoID, error) {
	if err := m.Verify(nil); err != nil {
		return VideoID{}, err
	}
	if len(segments) != len(m.Renditions) {
		return VideoID{}, fmt.Errorf("put video: %d renditions of segments for %d in the manifest", len(segments), len(m.Renditions))
	}
	if key != nil && key.ID() != m.KeyID {
		return VideoID{}, errors.New("put video: content key does not match the manifest's key id")
	}
	for r, segs := range segments {
		if len(segs) != len(m.Renditions[r].Segments) {
			return VideoID{}, fmt.Errorf("put video: rendition %d has %d segments, manifest lists %d", r, len(segs), len(m.Renditions[r].Segments))
		}
		for i, ct := range segs {
			if err := checkSegment(m, r, i, ct); err != nil {
				return VideoID{}, err
			}
		}
	}
	id := m.ID()
	if s.Has(id) {
		return id, nil
	}
	stage, release, err := s.newStaging("put-")
	if err != nil {
		return VideoID{}, explainWriteError(filepath.Join(s.dir, "tmp"), err)
	}
	defer release()
	for r := range segments {
		if err := os.MkdirAll(filepath.Join(stage, fmt.Sprintf("r%d", r)), 0o755); err != nil {
			return VideoID{}, err
		}
	}
	for r, segs := range segments {
		for i, ct := range segs {
			if err := s.fs.WriteFile(segmentFile(stage, r, i), ct, 0o644); err != nil {
				return VideoID{}, explainWriteError(segmentFile(stage, r, i), err)
			}
		}
	}
	if key != nil {
		if err := s.fs.WriteFile(filepath.Join(stage, "content.key"), []byte(hex.EncodeToString(key[:])+"\n"), 0o600); err != nil {
			return VideoID{}, explainWriteError("content.key", err)
		}
	}
	if err := s.fs.WriteFile(filepath.Join(stage, "manifest"), m.Encode(), 0o644); err != nil {
		return VideoID{}, explainWriteError("manifest", err)
	}
	if err := os.Rename(stage, s.videoDir(id)); err != nil {
		if s.Has(id) { // a concurrent put of the same video won
			return id, nil
		}
		return VideoID{}, fmt.Errorf("publish video %s: %w", id, err)
	}
	return id, nil
}

// checkSegment verifies ciphertext against the manifest's segment root.
func checkSegment(m *Manifest, r, i int, ct []byte) error {
	seg, err := m.segment(r, i)
	if err != nil {
		return err
	}
	if len(ct) != int(seg.Size) {
		return fmt.Errorf("rendition %d segment %d: %d bytes, manifest says %d", r, i, len(ct), seg.Size)
	}
	root, err := segmentRoot(m.Params, ct)
	if err != nil {
		return err
	}
	if root != seg.Root {
		return fmt.Errorf("rendition %d segment %d: content does not match the manifest's root", r, i)
	}
	return nil
}

// VerifyVideo checks everything stored for a video, like git fsck: the
// manifest decodes, is signed, hashes to its id; the key matches; every
// segment file exists and matches its root. The error names the first bad
// object. progress (may be nil) is called after each segment.
func (s *Store) VerifyVideo(id VideoID, progress func(done, total int)) error {
	m, err := s.Manifest(id)
	if err != nil {
		return err
	}
	dir := s.videoDir(id)
	if _, err := os.Stat(filepath.Join(dir, "content.key")); err == nil {
		k, err := s.ContentKey(id)
		if err != nil {
			return err
		}
		if k.ID() != m.KeyID {
			return fmt.Errorf("videos/%s/content.key: does not match the manifest's key id", id)
		}
	}
	total := 0
	for _, r := range m.Renditions {
		total += len(r.Segments)
	}
	done := 0
	for r, rend := range m.Renditions {
		for i := range rend.Segments {
			rel := fmt.Sprintf("videos/%s/r%d/%06d.seg", id, r, i)
			ct, err := os.ReadFile(segmentFile(dir, r, i))
			if err != nil {
				return fmt.Errorf("%s: missing or unreadable: %w", rel, err)
			}
			if err := checkSegment(m, r, i, ct); err != nil {
				return fmt.Errorf("%s: corrupted: %w", rel, err)
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return nil
}
