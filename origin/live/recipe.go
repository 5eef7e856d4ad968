package live

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Rung is one rendition of the live ladder, with its exact output size.
type Rung struct {
	Name      string // e.g. "180p"
	Width     int    // even
	Height    int    // even
	VideoKbps int    // H.264 target = peak bitrate
	AudioKbps int    // AAC bitrate (used when the source has audio)
}

// LadderFor is the live ladder of a source of srcW×srcH: content's VoD
// ladder rule (no upscaling; a rung at the source height when it sits
// between rungs), with widths that keep the source's aspect ratio.
func LadderFor(ladder []content.Rung, srcW, srcH int) []Rung {
	var out []Rung
	for _, r := range content.LadderFor(ladder, srcH) {
		w := int(float64(srcW)*float64(r.Height)/float64(srcH)/2+0.5) * 2
		out = append(out, Rung{Name: strconv.Itoa(r.Height) + "p", Width: max(w, 2), Height: r.Height, VideoKbps: r.VideoKbps, AudioKbps: r.AudioKbps})
	}
	return out
}

// Codecs is the RFC 6381 codecs string every rendition of recipe r
// produces: H.264 Main profile level 3.1 (pinned in the args), AAC-LC.
func (r Recipe) Codecs() string {
	if r.Audio {
		return "avc1.4d401f,mp4a.40.2"
	}
	return "avc1.4d401f"
}

// Recipe is the pinned, deterministic transcode of one source segment
// (an MPEG-TS with one H.264 track and at most one AAC track, starting at
// a keyframe) into one MPEG-TS per rung. Every output is a function of the
// source segment's bytes and the recipe only: one encoder thread, no
// scene-cut keyframes, one GOP for the whole segment, bitexact muxing and
// the source's timestamps kept (-copyts, no mux delay), so a replica that
// runs the same ffmpeg build on the same bytes gets the same outputs bit
// for bit (the BTR issue compares their digests).
type Recipe struct {
	Rungs []Rung
	Audio bool // the source has an AAC track: encode one per rendition
	// Parts (a low-latency channel) flushes every output packet at once,
	// so parts can be cut as frames are encoded; the bytes are the same.
	Parts bool
}

// outputPlaceholder stands for output i's path in the args ID hashes.
func outputPlaceholder(i int) string { return "OUT" + strconv.Itoa(i) }

// Args are ffmpeg's arguments: the source segment on stdin, rendition i
// written to outputs[i].
func (r Recipe) Args(outputs []string) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		// Read as the bytes arrive: a small probe, so encoding starts with
		// the first frames and only the tail is left at the cut. Not
		// smaller: with a 32-byte probe and an audio track, ffmpeg set up
		// the video before it had parsed the SPS and encoded uniform grey
		// (seen with RTMP sources, whose first packet is the keyframe with
		// the parameter sets the origin prepends); 8 KB holds the PAT/PMT
		// and the first keyframe's SPS/PPS, ~a frame of media.
		"-probesize", "8192", "-analyzeduration", "0",
		"-f", "mpegts", "-i", "pipe:0",
		"-copyts", "-fflags", "+bitexact"}
	var filter strings.Builder
	fmt.Fprintf(&filter, "[0:v:0]split=%d", len(r.Rungs))
	for i := range r.Rungs {
		fmt.Fprintf(&filter, "[s%d]", i)
	}
	for i, g := range r.Rungs {
		fmt.Fprintf(&filter, ";[s%d]scale=%d:%d,format=yuv420p[v%d]", i, g.Width, g.Height, i)
	}
	args = append(args, "-filter_complex", filter.String())
	for i, g := range r.Rungs {
		kb := strconv.Itoa(g.VideoKbps) + "k"
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		if r.Audio {
			args = append(args, "-map", "0:a:0")
		}
		args = append(args,
			"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
			"-threads", "1", "-x264-params", "threads=1",
			"-profile:v", "main", "-level", "3.1",
			"-b:v", kb, "-maxrate", kb, "-bufsize", strconv.Itoa(2*g.VideoKbps)+"k",
			// One GOP per segment: the only keyframe is the first frame.
			"-g", "100000", "-keyint_min", "100000", "-sc_threshold", "0",
			"-flags:v", "+bitexact")
		if r.Audio {
			args = append(args, "-c:a", "aac", "-b:a", strconv.Itoa(g.AudioKbps)+"k", "-ac", "2", "-ar", "48000", "-flags:a", "+bitexact")
		}
		if r.Parts {
			args = append(args, "-flush_packets", "1")
		}
		args = append(args, "-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", outputs[i])
	}
	return args
}

// ID names the recipe: the hex SHA-256 of its args with placeholder
// outputs. Two origins (or BTR replicas) with equal IDs run the same
// transcode.
func (r Recipe) ID() string {
	outs := make([]string, len(r.Rungs))
	for i := range outs {
		outs[i] = outputPlaceholder(i)
	}
	h := sha256.New()
	for _, a := range r.Args(outs) {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Transcode runs the recipe on a whole source segment and returns one TS
// per rung. BTR replicas call it; the ingest pipeline streams instead
// (startTranscode).
func (r Recipe) Transcode(ctx context.Context, ffmpeg string, source []byte) ([][]byte, error) {
	outs, _, err := r.TranscodeCPU(ctx, ffmpeg, source)
	return outs, err
}

// TranscodeCPU is Transcode that also returns the CPU time (user +
// system) ffmpeg spent: BTR's cost per segment is measured from it.
func (r Recipe) TranscodeCPU(ctx context.Context, ffmpeg string, source []byte) ([][]byte, time.Duration, error) {
	dir, err := os.MkdirTemp("", "swarmcast-live-transcode-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	job, err := startTranscode(ctx, ffmpeg, r, dir)
	if err != nil {
		return nil, 0, err
	}
	if _, err := job.Write(source); err != nil {
		job.abort()
		return nil, 0, err
	}
	outs, err := job.finish()
	var cpu time.Duration
	if ps := job.cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	return outs, cpu, err
}

// transcodeJob is one running ffmpeg of the recipe, fed the source
// segment on stdin as its frames arrive.
type transcodeJob struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  bytes.Buffer
	outputs []string
	werr    error         // first write error (ffmpeg died); reported by finish
	source  *bytes.Buffer // with Config.Replicas: every byte fed (sourceOnlyJob, no ffmpeg)

	// A low-latency job (startPartsTranscode) reads its outputs from pipes.
	asm     *partAssembler
	readers sync.WaitGroup
	readErr atomic.Pointer[error]
	full    [][]byte // every byte each rendition's reader read
	rests   [][]byte // each rendition's bytes after its last cut
}

func startTranscode(ctx context.Context, ffmpeg string, r Recipe, dir string) (*transcodeJob, error) {
	if len(r.Rungs) == 0 {
		return nil, errors.New("live transcode: the recipe has no rungs")
	}
	j := &transcodeJob{}
	for i := range r.Rungs {
		j.outputs = append(j.outputs, filepath.Join(dir, fmt.Sprintf("r%d.ts", i)))
	}
	j.cmd = exec.CommandContext(ctx, ffmpeg, r.Args(j.outputs)...)
	j.cmd.Stderr = &j.stderr
	var err error
	if j.stdin, err = j.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := j.cmd.Start(); err != nil {
		return nil, fmt.Errorf("live transcode: start ffmpeg: %w", err)
	}
	return j, nil
}

// sourceOnlyJob keeps a source segment's bytes and runs no ffmpeg: with BTR
// the replicas transcode and the origin packages the ladder they agree on
// (its judge re-executes only a disputed segment), so a local transcode of
// every segment would be wasted CPU.
func sourceOnlyJob() *transcodeJob { return &transcodeJob{source: &bytes.Buffer{}} }

// Write feeds source bytes. After ffmpeg died it swallows the bytes
// (finish reports why), so the frame reader keeps its pace.
func (j *transcodeJob) Write(p []byte) (int, error) {
	if j.source != nil {
		j.source.Write(p)
	}
	if j.cmd == nil || j.werr != nil {
		return len(p), nil
	}
	if _, err := j.stdin.Write(p); err != nil {
		j.werr = err
	}
	return len(p), nil
}

// finish closes the source and waits for ffmpeg's tail: the outputs (none
// for a source-only job).
func (j *transcodeJob) finish() ([][]byte, error) {
	if j.cmd == nil {
		return nil, nil
	}
	_ = j.stdin.Close()
	j.readers.Wait()
	err := j.cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("live transcode: ffmpeg failed: %v: %s", err, firstLine(j.stderr.String()))
	}
	if j.asm != nil {
		if p := j.readErr.Load(); p != nil {
			return nil, fmt.Errorf("live transcode: reading ffmpeg's output: %w", *p)
		}
		for i, b := range j.full {
			if len(b) == 0 {
				return nil, fmt.Errorf("live transcode: rendition %d is empty: ffmpeg decoded no frame of the segment", i)
			}
		}
		return j.full, nil
	}
	outs := make([][]byte, len(j.outputs))
	for i, p := range j.outputs {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("live transcode: rendition %d: %w", i, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("live transcode: rendition %d is empty: ffmpeg decoded no frame of the segment", i)
		}
		outs[i] = b
		_ = os.Remove(p)
	}
	return outs, nil
}

// abort kills ffmpeg and waits for it.
func (j *transcodeJob) abort() {
	if j.cmd == nil {
		return
	}
	_ = j.stdin.Close()
	if j.cmd.Process != nil {
		_ = j.cmd.Process.Kill()
	}
	j.readers.Wait()
	_ = j.cmd.Wait()
	for _, p := range j.outputs {
		_ = os.Remove(p)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "no message"
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}
