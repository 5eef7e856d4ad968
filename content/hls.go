package content

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// hlsRendition is one media playlist read from an HLS directory.
type hlsRendition struct {
	Name      string
	Bandwidth uint32
	Width     uint16
	Height    uint16
	Codecs    string
	Segments  []hlsSegment
}

type hlsSegment struct {
	Path     string // absolute file path
	Duration uint32 // microseconds
}

// readHLSDir reads an unencrypted MPEG-TS HLS directory: a master playlist
// (master.m3u8, or the only playlist with EXT-X-STREAM-INF) or a single
// media playlist. Every segment file must exist.
func readHLSDir(dir string) ([]hlsRendition, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var playlists []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".m3u8") {
			playlists = append(playlists, e.Name())
		}
	}
	if len(playlists) == 0 {
		return nil, fmt.Errorf("%s: no .m3u8 playlist in this directory; pass a video file or an HLS directory", dir)
	}
	var master string
	for _, p := range playlists {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return nil, err
		}
		if bytes.Contains(b, []byte("#EXT-X-STREAM-INF")) {
			if master != "" && p != "master.m3u8" && master != "master.m3u8" {
				return nil, fmt.Errorf("%s: two master playlists (%s, %s); keep one", dir, master, p)
			}
			if master == "" || p == "master.m3u8" {
				master = p
			}
		}
	}
	if master == "" {
		if len(playlists) != 1 {
			return nil, fmt.Errorf("%s: %d media playlists and no master playlist; add a master.m3u8 listing them", dir, len(playlists))
		}
		r, err := readMediaPlaylist(filepath.Join(dir, playlists[0]))
		if err != nil {
			return nil, err
		}
		r.Name = strings.TrimSuffix(playlists[0], ".m3u8")
		return []hlsRendition{r}, nil
	}
	return readMasterPlaylist(dir, master)
}

func readMasterPlaylist(dir, name string) ([]hlsRendition, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []hlsRendition
	var pending *hlsRendition
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		switch {
		case line == 1 && l != "#EXTM3U":
			return nil, fmt.Errorf("%s: first line is not #EXTM3U; not an HLS playlist", name)
		case strings.HasPrefix(l, "#EXT-X-STREAM-INF:"):
			attrs := parseAttributes(strings.TrimPrefix(l, "#EXT-X-STREAM-INF:"))
			r := hlsRendition{Codecs: attrs["CODECS"]}
			bw, err := strconv.ParseUint(attrs["BANDWIDTH"], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: EXT-X-STREAM-INF without a valid BANDWIDTH", name, line)
			}
			r.Bandwidth = uint32(bw)
			if res := attrs["RESOLUTION"]; res != "" {
				w, h, ok := strings.Cut(res, "x")
				wi, err1 := strconv.ParseUint(w, 10, 16)
				hi, err2 := strconv.ParseUint(h, 10, 16)
				if !ok || err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s:%d: bad RESOLUTION %q", name, line, res)
				}
				r.Width, r.Height = uint16(wi), uint16(hi)
			}
			pending = &r
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			if pending == nil {
				return nil, fmt.Errorf("%s:%d: URI %q without a preceding EXT-X-STREAM-INF", name, line, l)
			}
			p, err := localPath(dir, l)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			media, err := readMediaPlaylist(p)
			if err != nil {
				return nil, err
			}
			media.Bandwidth, media.Width, media.Height, media.Codecs = pending.Bandwidth, pending.Width, pending.Height, pending.Codecs
			media.Name = strings.TrimSuffix(path.Base(l), ".m3u8")
			if media.Height > 0 {
				media.Name = fmt.Sprintf("%dp", media.Height)
			}
			out = append(out, media)
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: master playlist lists no renditions", name)
	}
	if len(out) > maxRenditions {
		return nil, fmt.Errorf("%s: %d renditions, at most %d are supported", name, len(out), maxRenditions)
	}
	return out, nil
}

func readMediaPlaylist(file string) (hlsRendition, error) {
	var r hlsRendition
	name := filepath.Base(file)
	f, err := os.Open(file)
	if err != nil {
		return r, fmt.Errorf("media playlist: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(file)
	sc := bufio.NewScanner(f)
	line := 0
	var dur uint32
	haveInf := false
	ended := false
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		switch {
		case line == 1 && l != "#EXTM3U":
			return r, fmt.Errorf("%s: first line is not #EXTM3U; not an HLS playlist", name)
		case strings.HasPrefix(l, "#EXT-X-MAP"):
			return r, fmt.Errorf("%s: fMP4 (EXT-X-MAP) segments are not supported; package as MPEG-TS (ffmpeg -hls_segment_type mpegts) or pass the source video file", name)
		case strings.HasPrefix(l, "#EXT-X-KEY"):
			if !strings.Contains(l, "METHOD=NONE") {
				return r, fmt.Errorf("%s:%d: input is already encrypted; pass the unencrypted HLS or the source video", name, line)
			}
		case strings.HasPrefix(l, "#EXT-X-BYTERANGE"):
			return r, fmt.Errorf("%s:%d: byte-range segments are not supported; re-segment with one file per segment", name, line)
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			sec, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || sec <= 0 || sec > 60 {
				return r, fmt.Errorf("%s:%d: bad EXTINF duration %q (want 0 < seconds ≤ 60)", name, line, v)
			}
			dur = uint32(sec*1e6 + 0.5)
			haveInf = true
		case l == "#EXT-X-ENDLIST":
			ended = true
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			if !haveInf {
				return r, fmt.Errorf("%s:%d: segment %q without a preceding EXTINF", name, line, l)
			}
			p, err := localPath(dir, l)
			if err != nil {
				return r, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			st, err := os.Stat(p)
			if err != nil {
				return r, fmt.Errorf("%s:%d: segment %s is missing: %w", name, line, l, err)
			}
			if st.Size() == 0 {
				return r, fmt.Errorf("%s:%d: segment %s is empty", name, line, l)
			}
			r.Segments = append(r.Segments, hlsSegment{Path: p, Duration: dur})
			haveInf = false
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	if len(r.Segments) == 0 {
		return r, fmt.Errorf("%s: media playlist has no segments", name)
	}
	if !ended {
		return r, fmt.Errorf("%s: no #EXT-X-ENDLIST: this is a live or unfinished playlist; wait for it to finish", name)
	}
	return r, nil
}

// localPath resolves a playlist URI to a file inside dir, refusing URLs and
// paths that escape the directory.
func localPath(dir, uri string) (string, error) {
	if strings.Contains(uri, "://") {
		return "", fmt.Errorf("URI %q is remote; only local files in the HLS directory are accepted", uri)
	}
	clean := path.Clean("/" + uri)[1:]
	if clean == "" || strings.HasPrefix(uri, "/") || strings.Contains(uri, "..") {
		return "", fmt.Errorf("URI %q points outside the HLS directory", uri)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// parseAttributes parses an HLS attribute list: KEY=value,KEY="quoted, value".
func parseAttributes(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				v, rest = rest[1:], ""
			} else {
				v, rest = rest[1:1+end], rest[2+end:]
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[strings.TrimSpace(k)] = v
		s = rest
	}
	return out
}

var errNoFFmpeg = errors.New("ffmpeg not found on PATH: install it (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg) or pass an already-segmented MPEG-TS HLS directory")
