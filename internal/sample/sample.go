// Package sample embeds the bundled 30 s test clip (see make-sample.sh) so the demo and tests need no ffmpeg.
package sample

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed testdata/hls
var files embed.FS

// Title is the sample's title in the catalogue.
const Title = "Swarmcast sample (testsrc2 + 440 Hz)"

// FS is the sample HLS directory: master.m3u8, 240p/, 360p/.
func FS() fs.FS {
	sub, _ := fs.Sub(files, "testdata/hls")
	return sub
}

// WriteHLS copies the sample HLS directory into dir, which is created.
func WriteHLS(dir string) error {
	return fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(FS(), path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
