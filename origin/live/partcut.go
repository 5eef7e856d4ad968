package live

import (
	"bytes"
	"sync"
)

// tsPartCutter is sans-IO: fed a rendition's MPEG-TS as ffmpeg writes
// it, it returns the parts completed by each write. Offsets are relative
// to the segment's first video PTS.
type tsPartCutter struct {
	partTicks int64 // part target in 90 kHz ticks
	buf       []byte
	scanned   int   // bytes of buf already scanned (whole packets)
	base      int64 // PTS of the segment's first video frame; -1 before it
	next      int64 // index of the next boundary (1, 2, …)
}

func newTSPartCutter(partTicks int64) *tsPartCutter {
	return &tsPartCutter{partTicks: max(partTicks, 1), base: -1, next: 1}
}

// cutPart is one completed part: its bytes and the PTS offset (ticks from
// the segment start) where it ends.
type cutPart struct {
	data []byte
	end  int64
}

// write appends p and returns the parts it completed.
func (c *tsPartCutter) write(p []byte) []cutPart {
	c.buf = append(c.buf, p...)
	var out []cutPart
	for c.scanned+tsPacket <= len(c.buf) {
		at := c.scanned
		pkt := c.buf[at : at+tsPacket]
		c.scanned += tsPacket
		pts, ok := videoPESStart(pkt)
		if !ok {
			continue
		}
		if c.base < 0 {
			c.base = pts
			continue
		}
		off := pts - c.base
		if off < c.next*c.partTicks {
			continue
		}
		// This frame opens part `next`: everything before it is a part.
		out = append(out, cutPart{data: bytes.Clone(c.buf[:at]), end: off})
		c.buf = append(c.buf[:0], c.buf[at:]...)
		c.scanned = tsPacket
		for off >= c.next*c.partTicks {
			c.next++
		}
	}
	return out
}

// rest is what remains after the last cut: the segment's final part.
func (c *tsPartCutter) rest() []byte { return c.buf }

// videoPESStart reports whether a TS packet starts a video PES (stream id
// 0xE0–0xEF) and its PTS.
func videoPESStart(pkt []byte) (int64, bool) {
	if pkt[0] != 0x47 || pkt[1]&0x40 == 0 {
		return 0, false
	}
	off := 4
	afc := (pkt[3] >> 4) & 3
	if afc&1 == 0 {
		return 0, false // no payload
	}
	if afc&2 != 0 {
		off += 1 + int(pkt[4])
	}
	if off+14 > len(pkt) {
		return 0, false
	}
	pes := pkt[off:]
	if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 || pes[3]&0xF0 != 0xE0 || pes[7]&0x80 == 0 {
		return 0, false
	}
	p := pes[9:14]
	pts := int64(p[0]>>1&7)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1)
	return pts, true
}

// partAssembler gathers one segment's parts from every rendition's reader
// and hands each part on once all renditions cut it.
type partAssembler struct {
	mu      sync.Mutex
	pieces  [][][]byte // [rendition][part]
	ends    [][]int64  // [rendition][part] PTS offset where it ends
	emitted int
	emit    func(index int, durTicks int64, pieces [][]byte, last bool)
	endAt   int64 // offset where the last emitted part ended
}

func newPartAssembler(renditions int, emit func(int, int64, [][]byte, bool)) *partAssembler {
	return &partAssembler{pieces: make([][][]byte, renditions), ends: make([][]int64, renditions), emit: emit}
}

func (a *partAssembler) add(r int, parts []cutPart) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range parts {
		a.pieces[r] = append(a.pieces[r], p.data)
		a.ends[r] = append(a.ends[r], p.end)
	}
	for {
		for r := range a.pieces {
			if len(a.pieces[r]) <= a.emitted {
				return
			}
		}
		i := a.emitted
		var out [][]byte
		for r := range a.pieces {
			out = append(out, a.pieces[r][i])
		}
		end := a.ends[0][i]
		a.emit(i, end-a.endAt, out, false)
		a.endAt = end
		a.emitted++
	}
}

// finish emits the final part: each rendition's cut parts not yet emitted
// (a rendition that cut more than another) and its rest; segTicks is the
// segment's duration.
func (a *partAssembler) finish(rests [][]byte, segTicks int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out [][]byte
	for r := range a.pieces {
		var b []byte
		for _, p := range a.pieces[r][a.emitted:] {
			b = append(b, p...)
		}
		out = append(out, append(b, rests[r]...))
	}
	a.emit(a.emitted, max(segTicks-a.endAt, 1), out, true)
}
