package viewer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Low-Latency HLS in the gateway (docs/LIVE.md "Low-Latency HLS"). A
// low-latency chain (genesis PartTarget > 0) is also followed part by
// part from its origin (followParts: blocking part requests, each part
// verified against its signed content.LivePart and chained within its
// segment before it is kept); its media playlists are LL-HLS
// (content.LiveLLMediaPlaylist) and answer blocking reloads; its parts and
// segments are served as verified plaintext. A segment is servable from
// its parts once the last is held, or from its rebuilt shards as in
// standard HLS; when both exist they must agree, else the parts are
// dropped (the entry is the segment's commitment).

const (
	// livePartWait is how long one part request blocks on the origin.
	livePartWait = 2 * time.Second
	// livePartSegments is how many segments' parts a gateway keeps.
	livePartSegments = 6
)

// llState is a low-latency chain's parts; guarded by the liveChannel's mu
// (held verifies and chains parts on its own lock).
type llState struct {
	held    *content.LiveParts
	pieces  map[partKey][][]byte // verified ciphertext of each part, by rendition
	at      map[partKey]time.Time
	checked map[uint64]bool // segments whose parts were compared with the rebuilt segment
}

type partKey struct {
	seq  uint64
	part int
}

func newLLState(g *content.LiveGenesis) *llState {
	return &llState{held: content.NewLiveParts(g, livePartSegments), pieces: map[partKey][][]byte{},
		at: map[partKey]time.Time{}, checked: map[uint64]bool{}}
}

// LivePartServable is reported (Config.OnLivePartServable) once per part
// the gateway verified: glass-to-glass of a low-latency player is At −
// (ProgramTime + End) + HoldBack (PART-HOLD-BACK).
type LivePartServable struct {
	Chain       content.VideoID
	Seq         uint64
	Part        int
	ProgramTime time.Time     // the segment's first frame at the origin
	End         time.Duration // the part's end, from the segment's start
	At          time.Time
	HoldBack    time.Duration
	Bytes       int64 // ciphertext of every rendition's piece, as the origin sent it
}

// Latency is the part's glass-to-glass latency.
func (s LivePartServable) Latency() time.Duration {
	return s.At.Sub(s.ProgramTime.Add(s.End)) + s.HoldBack
}

// followParts asks the chain's origin for each next part, blocking, until
// the viewer closes, the chain ends or nobody asks for it.
func (v *Viewer) followParts(lc *liveChannel) {
	defer v.wg.Done()
	g := lc.chain.Genesis()
	var seq uint64
	part, started := 0, false
	wait := time.Duration(0)
	// Only the origin that ingests the chain holds its parts: on a 404 the
	// next origin of the lookup is asked.
	originIdx := 0
	for !v.idleLive(lc) {
		if wait > 0 && sleepUntil(v.ctx, v.cfg.Now, v.cfg.Now().Add(wait)) != nil {
			return
		}
		lc.mu.Lock()
		ended := lc.ended
		lc.mu.Unlock()
		if ended {
			return
		}
		head := lc.chain.Head()
		if head == nil {
			wait = liveRetryMin
			continue
		}
		if !started || seq+2 < head.Seq+1 {
			// Join (or rejoin after falling behind) at the segment after
			// the newest entry: older ones are whole segments already.
			seq, part, started = head.Seq+1, 0, true
		}
		v.checkParts(lc)
		_, origins, err := v.sources(v.ctx, lc.entry, content.SegmentRef{Video: lc.id, Rendition: 0, Segment: int(head.Seq)}, false)
		if err != nil || len(origins) == 0 {
			wait = min(max(2*wait, liveRetryMin), liveRetryMax)
			continue
		}
		status, err := v.fetchPart(lc, g, origins[originIdx%len(origins)].Addr, seq, part)
		switch {
		case err != nil:
			if v.ctx.Err() != nil {
				return
			}
			v.log.Debug("live part request failed; retrying", "chain", lc.id, "seq", seq, "part", part, "err", err)
			wait = min(max(2*wait, liveRetryMin), liveRetryMax)
		case status == http.StatusOK:
			wait = 0
			if ps := lc.ll.held.Segment(seq); len(ps) > 0 && ps[len(ps)-1].Last {
				seq, part = seq+1, 0
			} else {
				part++
			}
		case status == http.StatusNoContent:
			seq, part, wait = seq+1, 0, 0
		case status == http.StatusServiceUnavailable:
			wait = 0 // not signed within the wait: ask again
		case status == http.StatusNotFound:
			// Not this origin's chain, or behind its parts: the next
			// origin, rejoining at the head.
			originIdx++
			started, wait = false, liveRetryMin
		default:
			// 400: ahead of the origin's parts (or a refused part): rejoin.
			started, wait = false, liveRetryMax
		}
	}
}

// fetchPart asks origin for part (seq, part), verifies and keeps it, and
// returns the answer's status.
func (v *Viewer) fetchPart(lc *liveChannel, g *content.LiveGenesis, origin string, seq uint64, part int) (int, error) {
	ctx, cancel := context.WithTimeout(v.ctx, livePartWait+5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wire.LivePartURL(origin, lc.id, seq, part, int(livePartWait/time.Millisecond)), nil)
	if err != nil {
		return 0, err
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if err := v.acceptPart(lc, g, body, seq, part); err != nil {
		v.met.liveParts.WithLabelValues("refused").Inc()
		v.log.Warn("refused a live part", "chain", lc.id, "seq", seq, "part", part, "err", err)
		return http.StatusBadRequest, nil
	}
	return http.StatusOK, nil
}

// acceptPart verifies a part answer (the signed part at the asked
// position, chained to the held parts, every piece against its digest)
// and keeps it; nothing is kept on an error.
func (v *Viewer) acceptPart(lc *liveChannel, g *content.LiveGenesis, body []byte, seq uint64, index int) error {
	msg, err := wire.DecodeLivePartMessage(body)
	if err != nil {
		return err
	}
	p, err := content.DecodeLivePart(msg.Part, g, lc.id)
	if err != nil {
		return err
	}
	if p.Seq != seq || int(p.Index) != index {
		return fmt.Errorf("asked for part %d.%d, got %d.%d", seq, index, p.Seq, p.Index)
	}
	if len(msg.Pieces) != len(p.Pieces) {
		return fmt.Errorf("part %d.%d: %d pieces for %d renditions", seq, index, len(msg.Pieces), len(p.Pieces))
	}
	for r, ct := range msg.Pieces {
		if err := p.CheckPiece(r, ct); err != nil {
			return err
		}
	}
	if err := lc.ll.held.Add(p); err != nil {
		return err
	}
	now := v.cfg.Now()
	var end time.Duration
	for _, q := range lc.ll.held.Segment(seq) {
		end += time.Duration(q.Duration) * time.Microsecond
	}
	lc.mu.Lock()
	k := partKey{seq, index}
	lc.ll.pieces[k] = msg.Pieces
	lc.ll.at[k] = now
	for old := range lc.ll.pieces {
		if old.seq+livePartSegments <= seq {
			delete(lc.ll.pieces, old)
			delete(lc.ll.at, old)
			delete(lc.ll.checked, old.seq)
		}
	}
	lc.notifyLocked()
	lc.mu.Unlock()
	v.met.liveParts.WithLabelValues("accepted").Inc()
	sv := LivePartServable{Chain: lc.id, Seq: seq, Part: index, ProgramTime: time.UnixMicro(p.ProgramTime), End: end, At: now,
		HoldBack: content.LivePartHoldBack(g.PartTarget), Bytes: int64(len(body))}
	v.met.livePartLatency.Observe(sv.Latency().Seconds())
	if v.cfg.OnLivePartServable != nil {
		v.cfg.OnLivePartServable(sv)
	}
	return nil
}

// partsComplete is segment seq's held parts when the last is among them.
func (lc *liveChannel) partsComplete(seq uint64) []*content.LivePart {
	ps := lc.ll.held.Segment(seq)
	if len(ps) == 0 || !ps[len(ps)-1].Last {
		return nil
	}
	return ps
}

// partPlain decrypts rendition r of a held part; lc.mu is held.
func (lc *liveChannel) partPlainLocked(r int, k partKey) ([]byte, bool) {
	pieces, ok := lc.ll.pieces[k]
	if !ok || r >= len(pieces) {
		return nil, false
	}
	plain, err := content.DecryptSegment(lc.key, lc.key.PartIV(r, int(k.seq), k.part), pieces[r])
	return plain, err == nil
}

// joinedParts is rendition r of segment seq joined from its parts (ok
// false unless every part is held).
func (lc *liveChannel) joinedParts(r int, seq uint64) ([]byte, bool) {
	ps := lc.partsComplete(seq)
	if ps == nil {
		return nil, false
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []byte
	for i := range ps {
		plain, ok := lc.partPlainLocked(r, partKey{seq, i})
		if !ok {
			return nil, false
		}
		out = append(out, plain...)
	}
	return out, true
}

// checkParts compares every segment joined from parts with its rebuilt
// segment once both exist; parts that disagree with the entry's segment
// are dropped (counted as mismatch) so only the entry's bytes are served.
func (v *Viewer) checkParts(lc *liveChannel) {
	lc.mu.Lock()
	var todo []segKey
	for k, s := range lc.segs {
		if s.finished() && s.err == nil && !lc.ll.checked[k.seq] {
			if _, ok := lc.ll.pieces[partKey{k.seq, 0}]; ok {
				todo = append(todo, k)
			}
		}
	}
	lc.mu.Unlock()
	for _, k := range todo {
		joined, ok := lc.joinedParts(k.rendition, k.seq)
		if !ok {
			continue
		}
		lc.mu.Lock()
		ct := lc.segs[k].ct
		lc.mu.Unlock()
		plain, err := content.DecryptSegment(lc.key, lc.key.SegmentIV(k.rendition, int(k.seq)), ct)
		lc.mu.Lock()
		lc.ll.checked[k.seq] = true
		if err != nil || !bytes.Equal(plain, joined) {
			for key := range lc.ll.pieces {
				if key.seq == k.seq {
					delete(lc.ll.pieces, key)
				}
			}
			lc.ll.held.Drop(k.seq)
			v.met.liveParts.WithLabelValues("mismatch").Inc()
			v.log.Warn("a live segment's parts differ from its entry's segment: parts dropped", "chain", lc.id, "seq", k.seq)
		}
		lc.mu.Unlock()
	}
}

// llWindow is what rendition r's low-latency playlist lists now: the
// newest run of consecutive servable segments (from their parts or
// rebuilt), then the segment in progress with the parts held.
func (lc *liveChannel) llWindow(r int) content.LiveLLWindow {
	g := lc.chain.Genesis()
	w := content.LiveLLWindow{Rendition: r, TargetDuration: g.TargetDuration, PartTarget: g.PartTarget}
	std := lc.window(r) // the rebuilt run, its discontinuities and end
	rebuilt := map[uint64]content.LiveWindowSegment{}
	for _, s := range std.Segments {
		rebuilt[s.Seq] = s
	}
	var newest uint64
	if h := lc.chain.Head(); h != nil {
		newest = h.Seq
	}
	for seq := newest + 1; len(lc.ll.held.Segment(seq)) > 0; seq++ {
		newest = seq
	}
	low := uint64(0)
	if newest+1 > liveWindowSegments {
		low = newest + 1 - liveWindowSegments
	}
	var run []content.LiveLLSegment
	for seq := low; seq <= newest; seq++ {
		ps := lc.ll.held.Segment(seq)
		seg, ok := rebuilt[seq]
		complete := ok
		if !complete && len(ps) > 0 && ps[len(ps)-1].Last {
			complete = true
			seg = content.LiveWindowSegment{Seq: seq, ProgramTime: ps[0].ProgramTime}
			if e, ok := lc.chain.Entry(seq); ok {
				seg.Duration, seg.Discontinuity = e.Segments[r].Duration, e.Discontinuity
			} else {
				for _, p := range ps {
					seg.Duration += p.Duration
				}
			}
		}
		if !complete && len(ps) > 0 && seq == newest {
			seg = content.LiveWindowSegment{Seq: seq, ProgramTime: ps[0].ProgramTime}
		} else if !complete {
			run = nil // a gap: a later run replaces the one before it
			continue
		}
		ls := content.LiveLLSegment{LiveWindowSegment: seg, Complete: complete}
		lc.mu.Lock()
		for i, p := range ps {
			if _, ok := lc.ll.pieces[partKey{seq, i}]; !ok {
				break
			}
			ls.Parts = append(ls.Parts, content.LiveLLPart{Duration: p.Duration, Independent: p.Independent})
		}
		lc.mu.Unlock()
		if !complete && len(ls.Parts) == 0 {
			continue
		}
		run = append(run, ls)
	}
	w.Segments = run
	w.DiscontinuitySeq = std.DiscontinuitySeq
	w.Ended = std.Ended && len(run) > 0 && len(std.Segments) > 0 && run[len(run)-1].Seq == std.Segments[len(std.Segments)-1].Seq
	return w
}

// serveLLMedia answers a low-latency media playlist, blocking while a
// _HLS_msn/_HLS_part reload asks for what is not there yet (400 for a
// request too far ahead, 503 after LiveReloadTimeout).
func (v *Viewer) serveLLMedia(w http.ResponseWriter, r *http.Request, lc *liveChannel, rendition int) {
	q := r.URL.Query()
	br, blocking, err := content.ParseBlockingReload(q.Get("_HLS_msn"), q.Get("_HLS_part"))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	g := lc.chain.Genesis()
	timeout := time.NewTimer(content.LiveReloadTimeout(g.TargetDuration))
	defer timeout.Stop()
	for {
		lc.mu.Lock()
		changed := lc.changed
		lc.mu.Unlock()
		win := lc.llWindow(rendition)
		decision := content.ReloadServe
		if blocking {
			decision = content.DecideReload(win, br)
		}
		switch decision {
		case content.ReloadServe:
			pl, err := content.LiveLLMediaPlaylist(win)
			if err != nil {
				wire.WriteError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			w.Header().Set("Content-Type", content.PlaylistContentType)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write([]byte(pl))
			return
		case content.ReloadBadRequest:
			last, part, _ := win.LastPosition()
			wire.WriteError(w, http.StatusBadRequest, "_HLS_msn=%d _HLS_part=%d is too far past the playlist's last segment %d part %d (RFC 8216bis 6.2.5.2)", br.MSN, br.Part, last, part)
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			wire.WriteError(w, http.StatusServiceUnavailable, "segment %d part %d did not appear within %v: reload", br.MSN, br.Part, content.LiveReloadTimeout(g.TargetDuration))
			return
		case <-r.Context().Done():
			return
		}
	}
}

// serveLLPart answers a part: its verified plaintext, waiting (bounded) for
// a part that is the next to come (a preload hint's target).
func (v *Viewer) serveLLPart(w http.ResponseWriter, r *http.Request, lc *liveChannel, rendition int, seq uint64, index int) {
	g := lc.chain.Genesis()
	timeout := time.NewTimer(content.LiveReloadTimeout(g.TargetDuration))
	defer timeout.Stop()
	for {
		lc.mu.Lock()
		changed := lc.changed
		plain, ok := lc.partPlainLocked(rendition, partKey{seq, index})
		lc.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", content.SegmentContentType)
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(plain))
			return
		}
		last, lastPart, any := lc.llWindow(rendition).LastPosition()
		if !any || seq+1 < last || seq > last+1 || (seq == last && index > lastPart+content.LiveAdvancePartLimit) {
			wire.WriteError(w, http.StatusNotFound, "part %d.%d is not held here: reload the playlist", seq, index)
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			wire.WriteError(w, http.StatusServiceUnavailable, "part %d.%d did not appear within %v: reload the playlist", seq, index, content.LiveReloadTimeout(g.TargetDuration))
			return
		case <-r.Context().Done():
			return
		}
	}
}

// serveLLSegment answers a whole segment of a low-latency chain as
// verified plaintext: joined from its parts, or rebuilt as in standard HLS.
func (v *Viewer) serveLLSegment(w http.ResponseWriter, r *http.Request, lc *liveChannel, rendition int, seq uint64) {
	plain, ok := lc.joinedParts(rendition, seq)
	if !ok {
		if _, held := lc.chain.Entry(seq); !held {
			wire.WriteError(w, http.StatusNotFound, "live segment %d is not held here: reload the playlist", seq)
			return
		}
		s := v.startLiveSegment(lc, rendition, seq, LiveFetchRequest, nil)
		select {
		case <-s.done:
		case <-r.Context().Done():
			return
		}
		if s.err != nil {
			wire.WriteError(w, http.StatusBadGateway, "%v", s.err)
			return
		}
		var err error
		if plain, err = content.DecryptSegment(lc.key, lc.key.SegmentIV(rendition, int(seq)), s.ct); err != nil {
			wire.WriteError(w, http.StatusBadGateway, "%v", err)
			return
		}
	}
	w.Header().Set("Content-Type", content.SegmentContentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(plain))
}

// serveLL answers a low-latency chain's media playlists, parts and
// segments (the master playlist and key are served as for any chain).
func (v *Viewer) serveLL(w http.ResponseWriter, r *http.Request, lc *liveChannel, t liveTarget) bool {
	switch t.res.Resource {
	case content.ResourceMedia:
		v.joinLive(r.Context(), lc, t.res.Rendition)
		v.serveLLMedia(w, r, lc, t.res.Rendition)
	case content.ResourcePart:
		v.serveLLPart(w, r, lc, t.res.Rendition, uint64(t.res.Segment), t.part)
	case content.ResourceSegment:
		v.serveLLSegment(w, r, lc, t.res.Rendition, uint64(t.res.Segment))
	default:
		return false
	}
	return true
}
