package content

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// IngestOptions control packaging.
type IngestOptions struct {
	Params Params
	Title  string // defaults to the input's base name
	Ladder []Rung // defaults to DefaultLadder; only used for video files
	// Progress, if set, is told what stage is running and how far along it
	// is (done ≤ total, units depend on the stage).
	Progress func(stage string, done, total float64)
}

// Ingest packages a video file (via ffmpeg) or an unencrypted MPEG-TS HLS
// directory into the store and returns its id. Re-ingesting the same input
// with the same options returns the same id without repackaging. On any
// error the store is left as it was.
func (s *Store) Ingest(ctx context.Context, input string, opt IngestOptions) (VideoID, error) {
	var none VideoID
	if opt.Params == (Params{}) {
		opt.Params = DefaultParams()
	}
	if err := opt.Params.Validate(); err != nil {
		return none, err
	}
	if opt.Ladder == nil {
		opt.Ladder = DefaultLadder
	}
	if opt.Title == "" {
		opt.Title = strings.TrimSuffix(filepath.Base(filepath.Clean(input)), filepath.Ext(input))
	}
	if len(opt.Title) > 1024 {
		return none, errors.New("title longer than 1024 bytes")
	}
	progress := func(stage string, done, total float64) {
		if opt.Progress != nil {
			opt.Progress(stage, done, total)
		}
	}
	st, err := os.Stat(input)
	if errors.Is(err, fs.ErrNotExist) {
		return none, fmt.Errorf("%s does not exist: give a video file or an MPEG-TS HLS directory", input)
	}
	if err != nil {
		return none, fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() && st.Size() == 0 {
		return none, fmt.Errorf("%s is an empty file, not a video", input)
	}

	digest, err := sourceDigest(input, st.IsDir(), opt)
	if err != nil {
		return none, err
	}
	indexPath := filepath.Join(s.dir, "sources", digest)
	if b, err := os.ReadFile(indexPath); err == nil {
		if id, err := ParseVideoID(strings.TrimSpace(string(b))); err == nil && s.Has(id) {
			if _, err := s.Manifest(id); err == nil {
				return id, nil
			}
		}
	}

	hlsDir := input
	if !st.IsDir() {
		scratch, release, err := s.newStaging("transcode-")
		if err != nil {
			return none, explainWriteError(filepath.Join(s.dir, "tmp"), err)
		}
		defer release()
		err = transcode(ctx, input, scratch, opt.Ladder, func(done, total float64) { progress("transcode", done, total) })
		if err != nil {
			return none, err
		}
		hlsDir = scratch
	}
	renditions, err := readHLSDir(hlsDir)
	if err != nil {
		return none, err
	}

	key, err := NewContentKey()
	if err != nil {
		return none, err
	}
	priv, err := s.PublisherKey()
	if err != nil {
		return none, err
	}
	m := &Manifest{Title: opt.Title, Params: opt.Params, KeyID: key.ID(), TargetDuration: SegmentSeconds * 1_000_000}
	segments := make([][][]byte, len(renditions))
	total, done := 0, 0
	for _, r := range renditions {
		total += len(r.Segments)
	}
	for ri, r := range renditions {
		rend := Rendition{Name: r.Name, Bandwidth: r.Bandwidth, Width: r.Width, Height: r.Height, Codecs: r.Codecs}
		if rend.Bandwidth == 0 {
			rend.Bandwidth = estimateBandwidth(r)
		}
		for si, seg := range r.Segments {
			if err := ctx.Err(); err != nil {
				return none, err
			}
			plain, err := os.ReadFile(seg.Path)
			if err != nil {
				return none, fmt.Errorf("read segment: %w", err)
			}
			if len(plain) > maxSegmentBytes-16 {
				return none, fmt.Errorf("%s: %d bytes is over the %d byte segment limit; use shorter segments or a lower bitrate", seg.Path, len(plain), maxSegmentBytes)
			}
			ct, root, err := PackageSegment(opt.Params, key, ri, si, plain)
			if err != nil {
				return none, err
			}
			rend.Segments = append(rend.Segments, Segment{Duration: seg.Duration, Size: uint32(len(ct)), Root: root})
			segments[ri] = append(segments[ri], ct)
			done++
			progress("package", float64(done), float64(total))
		}
		m.Renditions = append(m.Renditions, rend)
	}
	m.Sign(priv)
	existed := s.Has(m.ID())
	id, err := s.PutVideo(m, segments, &key)
	if err != nil {
		return none, err
	}
	if err := s.writeAtomic(indexPath, []byte(id.String()+"\n"), 0o644); err != nil {
		// On error the store must be left as it was: take back the video
		// this call published (but never one that was already there).
		if !existed {
			s.unpublish(id)
		}
		return none, fmt.Errorf("recording the source of video %s: %w", id, err)
	}
	return id, nil
}

// unpublish removes a video this process just published: one rename takes
// it out of videos/ (so it disappears atomically), then the staging copy
// is deleted.
func (s *Store) unpublish(id VideoID) {
	trash := filepath.Join(s.dir, "tmp", "unpublish-"+randomHex(8))
	if err := os.Rename(s.videoDir(id), trash); err != nil {
		removeAllQuiet(s.videoDir(id))
		return
	}
	removeAllQuiet(trash)
}

// PackageSegment encrypts one plaintext segment and computes its Merkle root
// over all NMax shards. It is the whole per-segment packaging cost.
func PackageSegment(p Params, key ContentKey, rendition, segment int, plain []byte) (ciphertext []byte, root Hash, err error) {
	ct := EncryptSegment(key, key.SegmentIV(rendition, segment), plain)
	root, err = segmentRoot(p, ct)
	if err != nil {
		return nil, Hash{}, err
	}
	return ct, root, nil
}

func estimateBandwidth(r hlsRendition) uint32 {
	var peak float64
	for _, s := range r.Segments {
		if st, err := os.Stat(s.Path); err == nil && s.Duration > 0 {
			peak = max(peak, float64(st.Size())*8/(float64(s.Duration)/1e6))
		}
	}
	return uint32(peak)
}

// sourceDigest identifies an ingest: the input bytes (every file of an HLS
// directory, in order) plus the options that shape the output.
func sourceDigest(input string, isDir bool, opt IngestOptions) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "swarmcast ingest v1\x00k=%d n=%d title=%q ladder=%v\x00", opt.Params.K, opt.Params.NMax, opt.Title, opt.Ladder)
	addFile := func(path, rel string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		n, err := io.Copy(h, f)
		_ = binary.Write(h, binary.BigEndian, n)
		return err
	}
	if !isDir {
		if err := addFile(input, ""); err != nil {
			return "", err
		}
		return hexDigest(h), nil
	}
	err := filepath.WalkDir(input, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(input, path)
		return addFile(path, filepath.ToSlash(rel))
	})
	if err != nil {
		return "", err
	}
	return hexDigest(h), nil
}

func hexDigest(h interface{ Sum([]byte) []byte }) string {
	return fmt.Sprintf("%x", h.Sum(nil))
}
