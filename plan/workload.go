package plan

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Catalogue is a video library cut into fixed-size blocks, each with the
// probability that a request asks for it.
type Catalogue struct {
	// Popularity[m] is the probability that a request is for block m; the
	// slice sums to 1 and every entry is > 0.
	Popularity []float64
	// Video[m] is the index of the video that block m belongs to.
	Video []int32
	// Videos is the number of videos.
	Videos int
}

// Blocks returns the number of blocks in the catalogue.
func (c *Catalogue) Blocks() int { return len(c.Popularity) }

// CatalogueSpec describes a synthetic catalogue: videos with Zipf popularity
// over their rank, each cut into blocks in proportion to a random length.
type CatalogueSpec struct {
	Blocks int     // total number of blocks, ≥ Videos
	Videos int     // number of videos, ≥ 1
	Zipf   float64 // Zipf exponent over video rank, ≥ 0
	Seed   uint64  // seeds video lengths and the rank of each video id
}

// SyntheticCatalogue builds the catalogue that spec describes. Video lengths
// are uniform in [0.5, 1.5) of the mean, every video has at least one block,
// and the popularity rank of video ids is a seeded permutation, so block ids
// carry no popularity order. The blocks of a video share its popularity
// equally, so smaller blocks mean less popular blocks.
func SyntheticCatalogue(spec CatalogueSpec) (*Catalogue, error) {
	switch {
	case spec.Videos < 1:
		return nil, fmt.Errorf("plan: catalogue needs at least 1 video, got %d", spec.Videos)
	case spec.Blocks < spec.Videos:
		return nil, fmt.Errorf("plan: %d blocks cannot hold %d videos (every video needs at least one block)", spec.Blocks, spec.Videos)
	case spec.Zipf < 0 || math.IsNaN(spec.Zipf) || math.IsInf(spec.Zipf, 0):
		return nil, fmt.Errorf("plan: Zipf exponent must be a finite number ≥ 0, got %v", spec.Zipf)
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed_b10c))
	lengths := make([]float64, spec.Videos)
	for v := range lengths {
		lengths[v] = 0.5 + rng.Float64()
	}
	counts := apportion(lengths, spec.Blocks)
	rank := rng.Perm(spec.Videos) // rank[v] = popularity rank of video v, 0 = most popular
	weights := make([]float64, spec.Videos)
	for v := range weights {
		weights[v] = math.Pow(float64(rank[v]+1), -spec.Zipf)
	}
	return catalogueFrom(weights, counts), nil
}

// apportion splits total into len(weights) positive integers proportional to
// weights by the largest-remainder method; total ≥ len(weights).
func apportion(weights []float64, total int) []int {
	n := len(weights)
	counts := make([]int, n)
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	spare := total - n // every entry gets 1, the rest by weight
	rem := make([]float64, n)
	used := 0
	for i, w := range weights {
		exact := float64(spare) * w / sum
		counts[i] = 1 + int(exact)
		rem[i] = exact - math.Floor(exact)
		used += counts[i]
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rem[idx[a]] > rem[idx[b]] })
	for k := 0; used < total; k++ {
		counts[idx[k%n]]++
		used++
	}
	return counts
}

// catalogueFrom spreads each video's weight evenly over its blocks and
// normalises the result.
func catalogueFrom(videoWeight []float64, blocksPerVideo []int) *Catalogue {
	total := 0
	for _, b := range blocksPerVideo {
		total += b
	}
	c := &Catalogue{Popularity: make([]float64, 0, total), Video: make([]int32, 0, total), Videos: len(videoWeight)}
	sum := 0.0
	for _, w := range videoWeight {
		sum += w
	}
	for v, w := range videoWeight {
		per := w / sum / float64(blocksPerVideo[v])
		for range blocksPerVideo[v] {
			c.Popularity = append(c.Popularity, per)
			c.Video = append(c.Video, int32(v))
		}
	}
	return c
}

// TraceVideo is one row of a request trace: how often a video was requested
// and how large it is.
type TraceVideo struct {
	ID       string
	Requests float64 // requests in the trace window, ≥ 0
	SizeMB   float64 // video size in megabytes, > 0
}

// ErrEmptyTrace is returned for a trace with no video rows.
var ErrEmptyTrace = errors.New("plan: trace has no video rows; expected lines of video,requests,size_mb")

// ParseTrace reads a CSV request trace with the columns video,requests,size_mb
// (a header line with those names is optional; blank lines and lines starting
// with # are skipped). Errors name the line and the column that is wrong.
func ParseTrace(r io.Reader) ([]TraceVideo, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []TraceVideo
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("plan: trace: malformed CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 3 {
			return nil, fmt.Errorf("plan: trace line %d: want 3 columns video,requests,size_mb, got %d", line, len(rec))
		}
		if len(out) == 0 && len(seen) == 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "video") {
			continue // header
		}
		id := strings.TrimSpace(rec[0])
		if id == "" {
			return nil, fmt.Errorf("plan: trace line %d: empty video id", line)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("plan: trace line %d: video %q already listed on line %d", line, id, prev)
		}
		reqs, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil || reqs < 0 || math.IsNaN(reqs) || math.IsInf(reqs, 0) {
			return nil, fmt.Errorf("plan: trace line %d: requests %q must be a finite number ≥ 0", line, rec[1])
		}
		size, err := strconv.ParseFloat(strings.TrimSpace(rec[2]), 64)
		if err != nil || !(size > 0) || math.IsInf(size, 0) {
			return nil, fmt.Errorf("plan: trace line %d: size_mb %q must be a finite number > 0", line, rec[2])
		}
		seen[id] = line
		out = append(out, TraceVideo{ID: id, Requests: reqs, SizeMB: size})
	}
	if len(out) == 0 {
		return nil, ErrEmptyTrace
	}
	return out, nil
}

// maxTraceBlocks bounds the catalogue a trace may expand to (about 1 GB of
// planner state).
const maxTraceBlocks = 1 << 26

// TraceCatalogue cuts the videos of a trace into blocks of blockMB megabytes
// (a partial last block counts as one block) and gives each block its video's
// request share divided by the video's block count.
func TraceCatalogue(videos []TraceVideo, blockMB float64) (*Catalogue, error) {
	if len(videos) == 0 {
		return nil, ErrEmptyTrace
	}
	if !(blockMB > 0) || math.IsInf(blockMB, 0) {
		return nil, fmt.Errorf("plan: block size must be > 0 MB, got %v", blockMB)
	}
	weights := make([]float64, len(videos))
	counts := make([]int, len(videos))
	total, blocks := 0.0, 0
	for i, v := range videos {
		weights[i] = v.Requests
		total += v.Requests
		n := math.Ceil(v.SizeMB / blockMB)
		if n > 1<<30 {
			return nil, fmt.Errorf("plan: video %q of %v MB needs more than 2^30 blocks of %v MB", v.ID, v.SizeMB, blockMB)
		}
		counts[i] = int(n)
		if blocks += counts[i]; blocks > maxTraceBlocks {
			return nil, fmt.Errorf("plan: trace needs more than %d blocks of %v MB; use larger blocks", maxTraceBlocks, blockMB)
		}
	}
	if !(total > 0) {
		return nil, errors.New("plan: trace has no requests at all; at least one video needs requests > 0")
	}
	// Videos nobody asked for still need storage; give them a tiny share so
	// every block has positive popularity.
	floor := total * 1e-12
	for i := range weights {
		if weights[i] == 0 {
			weights[i] = floor
		}
	}
	return catalogueFrom(weights, counts), nil
}
