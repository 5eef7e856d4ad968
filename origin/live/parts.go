package live

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Low-Latency HLS parts at the origin (docs/LIVE.md "Low-Latency HLS").
// A low-latency channel's ffmpeg writes each rendition to a pipe, flushed
// per packet; a tsPartCutter per rendition cuts the stream before the
// first video frame at or past each part boundary (segment start + k ×
// part target, media time), so a rendition's parts concatenated are
// byte for byte the segment the standard path packages, and every
// rendition's part k holds the same frames (the renditions share the
// source's timestamps). Part k is signed (content.LivePart: all
// renditions, each piece encrypted with PartIV) as soon as every
// rendition has cut it, and served on wire.PathLivePart.

const (
	tsPacket = 188
	// partsKeptSegments is how many segments' parts the origin serves: a
	// gateway follows the newest and asks for older parts only after a
	// stall, which then fall back to the whole segment.
	partsKeptSegments = 6
)

// partStore holds a low-latency chain's signed parts for the part route.
type partStore struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	segs    map[uint64]*partSegment
	newest  uint64
	closed  bool // the chain is sealed: nothing more comes
}

type partSegment struct {
	parts [][]byte // LivePartMessage encodings, in order
	last  bool     // the final part is held
}

func newPartStore() *partStore {
	return &partStore{changed: make(chan struct{}), segs: map[uint64]*partSegment{}}
}

func (ps *partStore) put(seq uint64, index int, msg []byte, last bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := ps.segs[seq]
	if s == nil {
		s = &partSegment{}
		ps.segs[seq] = s
		ps.newest = max(ps.newest, seq)
		for old := range ps.segs {
			if old+partsKeptSegments <= ps.newest {
				delete(ps.segs, old)
			}
		}
	}
	if index != len(s.parts) {
		return // out of order (cannot happen: one assembler per segment emits in order)
	}
	s.parts = append(s.parts, msg)
	s.last = last
	close(ps.changed)
	ps.changed = make(chan struct{})
}

func (ps *partStore) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.closed {
		ps.closed = true
		close(ps.changed)
		ps.changed = make(chan struct{})
	}
}

// partAnswer is what the part route answers for (seq, index) now.
type partAnswer struct {
	status int // 0: not yet (wait)
	msg    []byte
}

func (ps *partStore) lookup(seq uint64, index int) (partAnswer, <-chan struct{}) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := ps.segs[seq]
	switch {
	case s != nil && index < len(s.parts):
		return partAnswer{status: http.StatusOK, msg: s.parts[index]}, nil
	case s != nil && s.last:
		return partAnswer{status: http.StatusNoContent}, nil
	case len(ps.segs) > 0 && seq+partsKeptSegments <= ps.newest:
		return partAnswer{status: http.StatusNotFound}, nil
	case len(ps.segs) > 0 && seq > ps.newest+1:
		return partAnswer{status: http.StatusBadRequest}, nil
	case ps.closed:
		return partAnswer{status: http.StatusNoContent}, nil
	}
	return partAnswer{}, ps.changed
}

// emitPart signs part index of segment seq and stores it (called by the
// assembler, from a rendition reader or the worker).
func (b *broadcast) emitPart(seq uint64, programTime time.Time, index int, durTicks int64, plains [][]byte, last bool, prev *content.LivePart) *content.LivePart {
	p := &content.LivePart{Chain: b.chain.ID(), Seq: seq, Index: uint16(index), Independent: index == 0, Last: last,
		ProgramTime: programTime.UnixMicro(), Duration: uint32(max(durTicks*1_000_000/ticksPerSecond, 1))}
	if prev != nil {
		p.Prev = prev.Hash()
	}
	p.Duration = min(p.Duration, b.genesis.TargetDuration)
	msg := wire.LivePartMessage{}
	for r, plain := range plains {
		ct := content.EncryptSegment(b.key, b.key.PartIV(r, int(seq), index), plain)
		p.Pieces = append(p.Pieces, content.LivePartPiece{Size: uint32(len(ct)), Digest: sha256.Sum256(ct)})
		msg.Pieces = append(msg.Pieces, ct)
	}
	p.Sign(b.priv)
	msg.Part = p.Encode()
	if index < content.MaxLiveParts {
		b.parts.put(seq, index, msg.Encode(), last)
		b.in.metrics.parts.Inc()
	}
	return p
}

// HandleLivePart serves wire.PathLivePart.
func (in *Ingest) HandleLivePart(w http.ResponseWriter, r *http.Request) {
	chain, err := content.ParseVideoID(r.PathValue("chain"))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	seq, err1 := strconv.ParseUint(r.PathValue("segment"), 10, 64)
	index, err2 := strconv.Atoi(r.PathValue("part"))
	if err1 != nil || err2 != nil || index < 0 || index >= content.MaxLiveParts || seq >= content.MaxLiveSegments {
		wire.WriteError(w, http.StatusBadRequest, "part %q of segment %q: want a segment number and a part index 0..%d", r.PathValue("part"), r.PathValue("segment"), content.MaxLiveParts-1)
		return
	}
	waitMS := 0
	if s := r.URL.Query().Get("wait_ms"); s != "" {
		if waitMS, err = strconv.Atoi(s); err != nil || waitMS < 0 || waitMS > wire.MaxLivePartWaitMS {
			wire.WriteError(w, http.StatusBadRequest, "wait_ms %q: want 0..%d", s, wire.MaxLivePartWaitMS)
			return
		}
	}
	in.mu.Lock()
	b := in.byChain[chain]
	in.mu.Unlock()
	if b == nil || b.parts == nil {
		wire.WriteError(w, http.StatusNotFound, "chain %s is not a low-latency chain of this origin", chain)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(waitMS)*time.Millisecond)
	defer cancel()
	for {
		ans, changed := b.parts.lookup(seq, index)
		switch ans.status {
		case http.StatusOK:
			w.Header().Set("Content-Type", wire.ContentTypeLivePart)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(ans.msg)
			return
		case http.StatusNoContent:
			w.WriteHeader(http.StatusNoContent)
			return
		case http.StatusNotFound:
			wire.WriteError(w, http.StatusNotFound, "part %d.%d is no longer held: fetch the whole segment", seq, index)
			return
		case http.StatusBadRequest:
			wire.WriteError(w, http.StatusBadRequest, "segment %d is more than one past the newest with parts", seq)
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if r.Context().Err() == nil {
				wire.WriteError(w, http.StatusServiceUnavailable, "part %d.%d not signed within %d ms: ask again", seq, index, waitMS)
			}
			return
		}
	}
}

// startPartsTranscode is startTranscode for a low-latency channel: each
// rendition is written to a pipe (flushed per packet by the recipe's
// Parts) and read as it is written, cut into parts that go to emit.
func startPartsTranscode(ctx context.Context, ffmpeg string, r Recipe, partTicks int64, emit func(int, int64, [][]byte, bool)) (*transcodeJob, error) {
	j := &transcodeJob{asm: newPartAssembler(len(r.Rungs), emit)}
	var writers []*os.File
	closeAll := func() {
		for _, w := range writers {
			_ = w.Close()
		}
	}
	var readers []*os.File
	for i := range r.Rungs {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll()
			for _, rd := range readers {
				_ = rd.Close()
			}
			return nil, err
		}
		readers, writers = append(readers, pr), append(writers, pw)
		j.outputs = append(j.outputs, "pipe:"+strconv.Itoa(3+i))
	}
	j.cmd = exec.CommandContext(ctx, ffmpeg, r.Args(j.outputs)...)
	j.cmd.Stderr = &j.stderr
	j.cmd.ExtraFiles = writers
	var err error
	if j.stdin, err = j.cmd.StdinPipe(); err != nil {
		closeAll()
		return nil, err
	}
	if err := j.cmd.Start(); err != nil {
		closeAll()
		for _, rd := range readers {
			_ = rd.Close()
		}
		return nil, fmt.Errorf("live transcode: start ffmpeg: %w", err)
	}
	closeAll() // ffmpeg holds the write ends; EOF when it exits
	j.full = make([][]byte, len(readers))
	j.rests = make([][]byte, len(readers))
	for i, rd := range readers {
		j.readers.Add(1)
		go func() {
			defer j.readers.Done()
			defer rd.Close()
			cut := newTSPartCutter(partTicks)
			buf := make([]byte, 64<<10)
			for {
				n, err := rd.Read(buf)
				if n > 0 {
					j.full[i] = append(j.full[i], buf[:n]...)
					j.asm.add(i, cut.write(buf[:n]))
				}
				if err != nil {
					if err != io.EOF {
						j.readErr.CompareAndSwap(nil, &err)
					}
					j.rests[i] = cut.rest()
					return
				}
			}
		}()
	}
	return j, nil
}

// openPartsSeq is the Seq the segment opening now will be published at:
// the one after the last opened (or, after a restart, after the head). A
// segment whose publish fails leaves its Seq to the next segment, whose
// parts then disagree with its entry: gateways drop them and serve the
// whole segment (docs/LIVE.md).
func (b *broadcast) openPartsSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq := max(b.nextOpen, uint64(b.head+1))
	b.nextOpen = seq + 1
	return seq
}

// partTicks is the chain's part target in 90 kHz ticks (0: no parts).
func (b *broadcast) partTicks() int64 {
	if b.parts == nil {
		return 0
	}
	return int64(b.genesis.PartTarget) * ticksPerSecond / 1_000_000
}

// startSegmentTranscode starts a low-latency segment's transcode: its
// parts are signed and stored as the renditions' readers cut them.
func (b *broadcast) startSegmentTranscode(programTime time.Time) (*transcodeJob, error) {
	seq := b.openPartsSeq()
	var prev *content.LivePart // the assembler emits one part at a time, in order
	emit := func(index int, durTicks int64, plains [][]byte, last bool) {
		prev = b.emitPart(seq, programTime, index, durTicks, plains, last, prev)
	}
	return startPartsTranscode(b.in.ctx, b.in.cfg.FFmpeg, b.recipe, b.partTicks(), emit)
}
