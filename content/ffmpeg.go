package content

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Rung is one rendition of the ABR ladder to transcode.
type Rung struct {
	Height    int // output height in pixels; width keeps the aspect ratio
	VideoKbps int // H.264 peak bitrate
	AudioKbps int // AAC bitrate
}

// DefaultLadder is 240p/480p/720p H.264 + AAC.
var DefaultLadder = []Rung{
	{Height: 240, VideoKbps: 400, AudioKbps: 64},
	{Height: 480, VideoKbps: 1000, AudioKbps: 96},
	{Height: 720, VideoKbps: 2500, AudioKbps: 128},
}

// SegmentSeconds is the fixed, keyframe-aligned segment duration.
const SegmentSeconds = 2

// LadderFor is the ladder for a source sourceHeight pixels high (see
// ladderFor); origin/live builds its live ladder with it.
func LadderFor(ladder []Rung, sourceHeight int) []Rung { return ladderFor(ladder, sourceHeight) }

// ladderFor drops rungs above the source (never upscale) and, when the
// source sits between rungs, adds a rung at the source height so the best
// quality available is not thrown away.
func ladderFor(ladder []Rung, sourceHeight int) []Rung {
	var out []Rung
	for _, r := range ladder {
		if r.Height <= sourceHeight {
			out = append(out, r)
		}
	}
	top := 0
	if len(out) > 0 {
		top = out[len(out)-1].Height
	}
	if top < sourceHeight {
		h := sourceHeight &^ 1
		// Take the bitrate of the next rung up (or the top rung), scaled by height.
		ref := ladder[len(ladder)-1]
		for _, r := range ladder {
			if r.Height > sourceHeight {
				ref = r
				break
			}
		}
		if h < ref.Height || len(out) == 0 {
			out = append(out, Rung{Height: h, VideoKbps: max(100, ref.VideoKbps*h/ref.Height), AudioKbps: ref.AudioKbps})
		}
	}
	return out
}

type probeResult struct {
	Width, Height int
	Duration      float64 // seconds
	HasAudio      bool
}

func probe(ctx context.Context, file string) (probeResult, error) {
	var pr probeResult
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		return pr, errNoFFmpeg
	}
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries",
		"stream=codec_type,width,height:format=duration", "-of", "json", file).Output()
	if err != nil {
		msg := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return pr, fmt.Errorf("%s is not a readable video (truncated, corrupt, or not a video at all): ffprobe: %s", file, firstLine(msg))
	}
	var doc struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return pr, fmt.Errorf("ffprobe output for %s: %w", file, err)
	}
	for _, s := range doc.Streams {
		switch s.CodecType {
		case "video":
			if pr.Height == 0 {
				pr.Width, pr.Height = s.Width, s.Height
			}
		case "audio":
			pr.HasAudio = true
		}
	}
	if pr.Height == 0 {
		return pr, fmt.Errorf("%s is not a video: it has no video stream", file)
	}
	pr.Duration, _ = strconv.ParseFloat(doc.Format.Duration, 64)
	if pr.Duration <= 0 {
		return pr, fmt.Errorf("%s: ffprobe reports no duration; the file is truncated or not a video", file)
	}
	return pr, nil
}

func firstLine(s string) string {
	if s == "" {
		return "unknown error"
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// transcode runs ffmpeg to produce an MPEG-TS HLS ladder in outDir
// (outDir/master.m3u8 and one subdirectory per rung), reporting progress in
// seconds of source processed.
func transcode(ctx context.Context, file, outDir string, ladder []Rung, progress func(done, total float64)) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return errNoFFmpeg
	}
	pr, err := probe(ctx, file)
	if err != nil {
		return err
	}
	rungs := ladderFor(ladder, pr.Height)
	var filter strings.Builder
	fmt.Fprintf(&filter, "[0:v:0]split=%d", len(rungs))
	for i := range rungs {
		fmt.Fprintf(&filter, "[s%d]", i)
	}
	for i, r := range rungs {
		fmt.Fprintf(&filter, ";[s%d]scale=-2:%d,format=yuv420p[v%d]", i, r.Height, i)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-y",
		"-i", file, "-filter_complex", filter.String()}
	var streamMap []string
	for i, r := range rungs {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		kb := strconv.Itoa(r.VideoKbps) + "k"
		args = append(args,
			fmt.Sprintf("-c:v:%d", i), "libx264",
			fmt.Sprintf("-b:v:%d", i), kb,
			fmt.Sprintf("-maxrate:v:%d", i), kb,
			fmt.Sprintf("-bufsize:v:%d", i), strconv.Itoa(2*r.VideoKbps)+"k")
		entry := fmt.Sprintf("v:%d", i)
		if pr.HasAudio {
			args = append(args, "-map", "0:a:0",
				fmt.Sprintf("-c:a:%d", i), "aac",
				fmt.Sprintf("-b:a:%d", i), strconv.Itoa(r.AudioKbps)+"k")
			entry += fmt.Sprintf(",a:%d", i)
		}
		streamMap = append(streamMap, entry+fmt.Sprintf(",name:%dp", r.Height))
	}
	args = append(args,
		"-preset", "veryfast", "-profile:v", "main",
		// Keyframe exactly every SegmentSeconds, no scene-cut keyframes, so
		// every rendition's segments start at the same instants.
		"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", SegmentSeconds), "-sc_threshold", "0",
		"-ac", "2", "-ar", "48000",
		"-f", "hls", "-hls_time", strconv.Itoa(SegmentSeconds), "-hls_playlist_type", "vod",
		"-hls_segment_type", "mpegts", "-hls_flags", "independent_segments",
		"-hls_segment_filename", filepath.Join(outDir, "%v", "seg%05d.ts"),
		"-master_pl_name", "master.m3u8",
		"-var_stream_map", strings.Join(streamMap, " "),
		filepath.Join(outDir, "%v", "index.m3u8"))
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "out_time_us="); ok && progress != nil {
			if us, err := strconv.ParseFloat(v, 64); err == nil && us >= 0 {
				progress(min(us/1e6, pr.Duration), pr.Duration)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("ffmpeg failed on %s (the file may be truncated or corrupt): %s", file, firstLine(strings.TrimSpace(stderr.String())))
	}
	if progress != nil {
		progress(pr.Duration, pr.Duration)
	}
	// A truncated file often decodes "successfully" up to the cut: compare
	// what came out with what the container promised.
	renditions, err := readHLSDir(outDir)
	if err != nil {
		return fmt.Errorf("reading ffmpeg output: %w", err)
	}
	var got float64
	for _, s := range renditions[0].Segments {
		got += float64(s.Duration) / 1e6
	}
	if got < pr.Duration-float64(SegmentSeconds) {
		return fmt.Errorf("%s is truncated: its header promises %.1f s but only %.1f s could be decoded", file, pr.Duration, got)
	}
	return nil
}

// removeAllQuiet removes a scratch directory; errors are irrelevant because
// scratch space lives under the store's tmp/ and is swept on open.
func removeAllQuiet(dir string) { _ = os.RemoveAll(dir) }
