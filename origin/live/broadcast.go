package live

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/wire"
)

// broadcast is one chain: created when a channel's publisher connects
// without a broadcast to resume, it lives through drops and resumes until
// it is sealed. One worker goroutine publishes its closed segments in
// order; sources (one at a time) feed it.
type broadcast struct {
	in      *Ingest
	channel wire.ChannelInfo
	params  content.Params
	// pushShards is how many shard indices per rendition go into the trees.
	pushShards int
	key        content.ContentKey
	priv       ed25519.PrivateKey

	// Set once under mu, by the first source's first keyframe (before any
	// segment is queued); the worker reads them after it receives a
	// segment, sources through begun.
	genesis *content.LiveGenesis
	chain   *content.LiveChain
	recipe  Recipe
	dir     string // store/live/<chain>
	// parts is a low-latency chain's signed parts (parts.go); nil for a
	// standard chain. Set with genesis.
	parts *partStore

	queue chan *closedSegment // closed by seal once no source is attached
	done  chan struct{}       // closed when sealed (or Close)
	// qmu serialises sends on queue with its close (a source's last
	// segment and report can race End or the resume timer); the worker
	// never takes it, so a sender blocked on a full queue cannot deadlock.
	qmu     sync.Mutex
	qclosed bool

	mu        sync.Mutex
	state     string        // wire.ChannelPublishing, ChannelWaiting, ChannelEnded
	source    *source       // attached source, nil when waiting
	resume    *time.Timer   // running while waiting
	stopWatch chan struct{} // closed when waiting ends (watchEnded stops)
	end       int64         // output-timeline PTS (ticks) where the last closed segment ended
	nextDisc  bool          // the next segment opens after a resume
	ending    bool          // seal requested (owner ended it, End, or resume window over)
	quietSeal bool          // seal without reporting the channel's state (a reloaded chain its channel moved on from)
	restored  bool          // reloaded after a restart (restore.go): started before this process; set at construction
	recording content.VideoID
	started   bool // StartChain accepted (worker only)
	queued    int  // segments handed to the worker, by every source
	head      int64
	nextOpen  uint64 // low-latency: Seq of the next segment to open (openPartsSeq)
}

// closedSegment is a source segment whose transcode is finishing, or (job
// nil) a channel state to report once the segments queued before it are
// published (so the coordinator knows the chain it names).
type closedSegment struct {
	report      *wire.ChannelStateReport
	job         *transcodeJob
	dir         string
	duration    uint32 // µs
	programTime time.Time
	disc        bool
	closedAt    time.Time // arrival of the frame (or drop) that closed it
	// replicated, with Config.Replicas, is closed once outs and rerr hold
	// the replicas' decision (replicateAhead started it as the segment
	// arrived).
	replicated chan struct{}
	outs       [][]byte
	rerr       error
	task       uint64 // the ReplicaTask.Segment it was handed over as
}

func (in *Ingest) newBroadcast(ch wire.ChannelInfo, auth wire.IngestAuthResponse) (*broadcast, error) {
	params := content.DefaultLiveParams()
	if auth.K > 0 && auth.NMax > 0 {
		params = content.Params{K: auth.K, NMax: auth.NMax}
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("the coordinator's coding parameters: %w", err)
	}
	key, err := content.NewContentKey()
	if err != nil {
		return nil, err
	}
	priv := in.cfg.Publisher
	if priv == nil {
		if priv, err = in.cfg.Store.PublisherKey(); err != nil {
			return nil, err
		}
	}
	push := auth.PushShards
	if push <= 0 || push > params.NMax {
		push = min(content.DefaultLivePushShards, params.NMax)
	}
	b := &broadcast{
		in: in, channel: ch, params: params, pushShards: push, key: key, priv: priv,
		queue: make(chan *closedSegment, 8), done: make(chan struct{}),
		state: wire.ChannelPublishing, head: -1,
	}
	if !in.spawn(b.work) {
		return nil, refuse("busy", "the origin is shutting down")
	}
	return b, nil
}

// targetTicks is the channel's segment duration in 90 kHz ticks.
func (b *broadcast) targetTicks() int64 {
	ms := int64(b.channel.SegmentMS)
	if ms <= 0 {
		ms = content.DefaultLiveSegment.Milliseconds()
	}
	return ms * ticksPerSecond / 1000
}

// begin fixes the chain at the first keyframe of the first source: the
// ladder from the source's size, the genesis. Nothing leaves the origin
// until the first segment is published (StartChain comes then), so a
// source refused before that publishes nothing.
func (b *broadcast) begin(width, height int, audio bool) error {
	rungs := LadderFor(b.in.cfg.Ladder, width, height)
	if len(rungs) == 0 {
		return fmt.Errorf("no ladder rung fits a %dx%d source", width, height)
	}
	rec := Recipe{Rungs: rungs, Audio: audio}
	g := &content.LiveGenesis{
		Channel: string(b.channel.ID), Title: b.channel.Name, Params: b.params, KeyID: b.key.ID(),
		TargetDuration: uint32(b.targetTicks() * 1_000_000 / ticksPerSecond), Started: time.Now().UnixMicro(),
	}
	var parts *partStore
	if b.channel.PartMS > 0 {
		if b.in.cfg.Replicas != nil {
			// Parts are cut from the local transcode as it runs; BTR
			// replicas answer whole segments only.
			b.in.log.Warn("low-latency channel under BTR replicas: published as standard HLS (no parts)", "channel", b.channel.ID)
		} else {
			g.PartTarget, rec.Parts, parts = uint32(b.channel.PartMS)*1000, true, newPartStore()
		}
	}
	for _, r := range rungs {
		g.Renditions = append(g.Renditions, content.LiveRendition{
			Name: r.Name, Bandwidth: uint32(r.VideoKbps+r.AudioKbps) * 1000, Width: uint16(r.Width), Height: uint16(r.Height), Codecs: rec.Codecs(),
		})
	}
	if _, err := rand.Read(g.Nonce[:]); err != nil {
		return err
	}
	g.Sign(b.priv)
	if err := g.Verify(b.priv.Public().(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("live genesis: %w", err)
	}
	b.mu.Lock()
	b.genesis, b.chain, b.recipe, b.parts = g, content.NewLiveChain(g), rec, parts
	b.dir = filepath.Join(b.in.cfg.Store.Dir(), "live", g.ID().String())
	b.mu.Unlock()
	b.in.mu.Lock()
	b.in.byChain[g.ID()] = b
	b.in.mu.Unlock()
	return nil
}

func (b *broadcast) segmentPath(r int, seq uint64) string {
	return filepath.Join(b.dir, strconv.Itoa(r), strconv.FormatUint(seq, 10)+".ts.enc")
}

func (b *broadcast) describe() Broadcast {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := Broadcast{Channel: b.channel.ID, State: b.state, Head: b.head, Recording: b.recording}
	// genesis and recipe are read under mu here (held above).
	if b.genesis != nil {
		d.Chain = b.genesis.ID()
		d.RecipeID = b.recipe.ID()
	}
	return d
}

// replicasInFlight bounds the segments being decided by the replicas at
// once (Config.Replicas): a segment whose decision takes longer than T (a
// dispute, a late or missing replica) lets the next one open on time, but
// no worker is handed more tasks than its slots (2) can run at once, so no
// honest worker waits behind the origin's own backlog.
const replicasInFlight = 2

// work publishes closed segments in order until the queue closes, then
// seals. With Config.Replicas each segment is handed to the replicas as
// soon as it closes (replicateAhead, at most replicasInFlight undecided),
// in order, and published in order once decided: a slow decision does not
// hold back the opening of the next segment, whose input is available T
// after the previous one's, as the bound R assumes.
func (b *broadcast) work() {
	defer close(b.done)
	if b.in.cfg.Replicas == nil {
		b.publishLoop(b.queue)
		return
	}
	ordered := make(chan *closedSegment, cap(b.queue))
	inFlight := make(chan struct{}, replicasInFlight)
	var wg sync.WaitGroup
	wg.Go(func() { b.publishLoop(ordered) })
	defer wg.Wait()
	defer close(ordered)
	var next uint64 // the entry seq the next segment is predicted to take
	first := true
	for {
		var cs *closedSegment
		select {
		case <-b.in.ctx.Done():
			return
		case c, ok := <-b.queue:
			if !ok {
				return // publishLoop seals once ordered is drained
			}
			cs = c
		}
		if cs.report == nil {
			if first {
				if h := b.chain.Head(); h != nil {
					next = h.Seq + 1
				}
				first = false
			}
			select {
			case inFlight <- struct{}{}:
			case <-b.in.ctx.Done():
				return
			}
			b.replicateAhead(&wg, cs, next, func() { <-inFlight })
			next++
		}
		select {
		case ordered <- cs:
		case <-b.in.ctx.Done():
			return
		}
	}
}

// replicateAhead starts the replicas' decision of cs (predicted entry seq
// seq; the judge numbers failed segments its own way; done is called once
// decided) and returns once the judge has opened it, so segments open in
// order.
func (b *broadcast) replicateAhead(wg *sync.WaitGroup, cs *closedSegment, seq uint64, done func()) {
	cs.replicated, cs.task = make(chan struct{}), seq
	opened := make(chan struct{})
	task := ReplicaTask{Chain: b.chain.ID(), Segment: seq, Recipe: b.recipe, Source: cs.job.source.Bytes(), Opened: sync.OnceFunc(func() { close(opened) })}
	wg.Go(func() {
		defer close(cs.replicated)
		defer done()
		cs.outs, cs.rerr = b.in.cfg.Replicas.Replicate(b.in.ctx, task)
	})
	select {
	case <-opened:
	case <-cs.replicated:
	case <-b.in.ctx.Done():
	}
}

// publishLoop publishes the segments (and reports) from queue in order;
// it seals once queue closes.
func (b *broadcast) publishLoop(queue <-chan *closedSegment) {
	for {
		var cs *closedSegment
		select {
		case <-b.in.ctx.Done():
			return // origin shutting down: leave the chain unsealed on disk
		case c, ok := <-queue:
			if !ok {
				b.seal()
				return
			}
			cs = c
		}
		if cs.report != nil {
			rep := *cs.report
			if b.started {
				rep.Chain = b.chain.ID()
			}
			b.in.report(b.channel.ID, rep)
			continue
		}
		if err := b.publish(cs); err != nil {
			if errors.Is(err, wire.ErrChannelEnded) {
				b.in.log.Info("the channel's owner ended the broadcast", "channel", b.channel.ID)
				b.requestEnd()
				continue
			}
			b.in.log.Error("live segment not published", "channel", b.channel.ID, "err", err)
		}
	}
}

// publish finishes one segment's transcode, packages, stores and signs it,
// and appends it on the coordinator.
func (b *broadcast) publish(cs *closedSegment) error {
	defer os.RemoveAll(cs.dir)
	ctx := b.in.ctx
	var outs [][]byte
	var err error
	if cs.replicated != nil {
		// No local transcode ran (sourceOnlyJob): the ladder is the
		// replicas' agreed one, or the judge's re-execution of a dispute
		// (started as the segment closed: work).
		select {
		case <-cs.replicated:
		case <-ctx.Done():
			return ctx.Err()
		}
		outs, err = cs.outs, cs.rerr
		b.in.metrics.transcode.Observe(time.Since(cs.closedAt).Seconds())
		if err != nil {
			return fmt.Errorf("segment closed at %s: btr replicas: %w", cs.closedAt.Format(time.TimeOnly), err)
		}
	} else {
		outs, err = cs.job.finish()
		b.in.metrics.transcode.Observe(time.Since(cs.closedAt).Seconds())
		if err != nil {
			return err
		}
		if cs.job.asm != nil {
			// The final part goes out before the entry: a gateway then
			// holds the whole segment as parts when the entry arrives.
			cs.job.asm.finish(cs.job.rests, int64(cs.duration)*ticksPerSecond/1_000_000)
		}
	}
	if !b.started {
		if err := b.in.cfg.Coordinator.StartChain(ctx, b.genesis.Encode(), b.key); err != nil {
			return fmt.Errorf("start chain on the coordinator: %w", err)
		}
		b.started = true
		if err := b.persistStarted(); err != nil {
			return err
		}
	}
	var seq uint64
	prev := content.Hash(b.chain.ID())
	if h := b.chain.Head(); h != nil {
		seq, prev = h.Seq+1, h.Hash()
	}
	e := &content.LiveEntry{Chain: b.chain.ID(), Seq: seq, Prev: prev, ProgramTime: cs.programTime.UnixMicro(), Discontinuity: cs.disc}
	for r, plain := range outs {
		ct, root, err := content.PackageSegment(b.params, b.key, r, int(seq), plain)
		if err != nil {
			return fmt.Errorf("package rendition %d of segment %d: %w", r, seq, err)
		}
		p := b.segmentPath(r, seq)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeAtomic(p, ct); err != nil {
			return err
		}
		e.Segments = append(e.Segments, content.Segment{Duration: cs.duration, Size: uint32(len(ct)), Root: root})
	}
	e.Sign(b.priv)
	if err := b.chain.Append(e); err != nil {
		return fmt.Errorf("own entry %d refused by the chain: %w", seq, err)
	}
	if o, ok := b.in.cfg.Replicas.(PublishObserver); ok && cs.replicated != nil {
		o.Published(e.Chain, cs.task, seq)
	}
	b.mu.Lock()
	b.head = int64(seq)
	b.mu.Unlock()
	if err := b.appendRemote(ctx, e.Encode()); err != nil {
		return fmt.Errorf("append entry %d on the coordinator: %w", seq, err)
	}
	b.in.metrics.segments.Inc()
	delay := time.Since(cs.closedAt)
	b.in.metrics.publishDelay.Observe(delay.Seconds())
	if b.in.cfg.OnPublished != nil {
		b.in.cfg.OnPublished(e.Chain, seq, delay)
	}
	if b.in.sender != nil {
		if err := b.push(e, outs); err != nil {
			b.in.log.Warn("live segment not pushed", "channel", b.channel.ID, "seq", seq, "err", err)
		}
	}
	return nil
}

// push hands a published segment to the trees: shard indices
// 0..pushShards-1 of every rendition, each with its Merkle proof.
func (b *broadcast) push(e *content.LiveEntry, plains [][]byte) error {
	seg := fanout.Segment{Chain: e.Chain, Seq: e.Seq, Entry: e.Encode()}
	for r := range plains {
		ct, err := os.ReadFile(b.segmentPath(r, e.Seq))
		if err != nil {
			return err
		}
		shards, err := content.EncodeShards(b.params, ct)
		if err != nil {
			return err
		}
		leaves := content.ShardLeaves(shards)
		for i := range min(b.pushShards, len(shards)) {
			seg.Shards = append(seg.Shards, &content.ShardMessage{Video: e.Chain, Rendition: r, Segment: int(e.Seq),
				Shard: content.Shard{Index: i, Data: shards[i], Proof: content.InclusionProof(leaves, i)}})
		}
	}
	b.in.sender.Send(seg)
	return nil
}

// appendRemote appends an entry, retrying briefly (the next entries chain
// on it, so a lost one would stall the channel's viewers).
func (b *broadcast) appendRemote(ctx context.Context, entry []byte) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = b.in.cfg.Coordinator.AppendEntry(actx, b.chain.ID(), entry)
		cancel()
		if err == nil || errors.Is(err, wire.ErrChannelEnded) {
			return err
		}
	}
	return err
}

// attach makes s the broadcast's source; a broadcast that was waiting
// resumes (next segment marked Discontinuity).
func (b *broadcast) attach(s *source) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.ending || b.state == wire.ChannelEnded:
		return errors.New("the broadcast is ending; publish again in a moment to start a new one")
	case b.source != nil:
		return errors.New("another publisher is already live on this channel: stop it first")
	}
	if b.resume != nil {
		b.resume.Stop()
		b.resume = nil
		close(b.stopWatch)
		b.nextDisc = true
	}
	b.source, b.state = s, wire.ChannelPublishing
	return nil
}

// detach is the source's end. The broadcast then waits Resume for its
// publisher to return; one that never queued a segment (the source was
// refused or left before its first keyframe closed a segment) is
// discarded: nothing of it was published.
func (b *broadcast) detach(s *source, discard bool) {
	b.mu.Lock()
	if b.source != s {
		b.mu.Unlock()
		return
	}
	b.source = nil
	if discard && !b.ending {
		b.ending = true
		g := b.genesis
		b.mu.Unlock()
		b.in.mu.Lock()
		if b.in.byChannel[b.channel.ID] == b {
			delete(b.in.byChannel, b.channel.ID)
		}
		if g != nil {
			delete(b.in.byChain, g.ID())
		}
		b.in.mu.Unlock()
		b.closeQueue()
		return
	}
	if b.ending {
		b.mu.Unlock()
		b.closeQueue()
		return
	}
	b.startWaitingLocked()
	b.mu.Unlock()
	// Reported by the worker after the segments queued before the drop.
	b.enqueue(&closedSegment{report: &wire.ChannelStateReport{State: wire.ChannelWaiting}})
}

// startWaitingLocked makes the broadcast wait Resume for its publisher
// (b.mu held): then it seals, or sooner if the owner ends the channel.
func (b *broadcast) startWaitingLocked() {
	b.state = wire.ChannelWaiting
	b.resume = time.AfterFunc(b.in.cfg.Resume, func() {
		b.in.log.Info("publisher did not return: sealing", "channel", b.channel.ID, "resume_window", b.in.cfg.Resume)
		b.requestEnd()
	})
	b.stopWatch = make(chan struct{})
	stop := b.stopWatch
	// Owned: ends at resume, at the seal, or at Close (not started once
	// Close began: it stops everything then).
	b.in.spawn(func() { b.watchEnded(stop) })
}

// watchEnded asks the coordinator, while the broadcast waits for its
// publisher, whether the owner ended the channel (no entry is appended
// then to learn it), and seals at once if so.
func (b *broadcast) watchEnded(stop <-chan struct{}) {
	t := time.NewTicker(b.in.cfg.Reauth / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-b.in.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(b.in.ctx, 5*time.Second)
			info, err := b.in.cfg.Coordinator.Channel(ctx, b.channel.ID)
			cancel()
			if err == nil && info.State == wire.ChannelEnded {
				b.in.log.Info("the channel's owner ended the broadcast while it waited", "channel", b.channel.ID)
				b.requestEnd() // closes stop too
				return
			}
		}
	}
}

// fresh reports whether no source ever queued a segment of b (a reloaded
// chain is never fresh: it started before the restart).
func (b *broadcast) fresh() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queued == 0 && !b.restored
}

// requestEnd seals the broadcast: now if no source is attached, else when
// the attached one stops (it is told to).
func (b *broadcast) requestEnd() {
	b.mu.Lock()
	if b.ending {
		b.mu.Unlock()
		return
	}
	b.ending = true
	if b.resume != nil {
		b.resume.Stop()
		b.resume = nil
		close(b.stopWatch)
	}
	s := b.source
	b.mu.Unlock()
	if s != nil {
		s.stop()
		return
	}
	b.closeQueue()
}

func (b *broadcast) closeQueue() {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if !b.qclosed {
		b.qclosed = true
		close(b.queue)
	}
}

// enqueue hands an item to the worker; false once the queue is closed
// (the broadcast is being sealed), when the caller owns the item still.
func (b *broadcast) enqueue(cs *closedSegment) bool {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if b.qclosed {
		return false
	}
	b.queue <- cs
	return true
}

// seal turns the chain into a video of the store, publishes it and
// reports the channel ended.
func (b *broadcast) seal() {
	ctx := b.in.ctx
	if b.parts != nil {
		b.parts.close() // blocked part requests answer 204: nothing more comes
	}
	rep := wire.ChannelStateReport{State: wire.ChannelEnded}
	b.mu.Lock()
	quiet := b.quietSeal
	b.mu.Unlock()
	if b.chain == nil || b.chain.Head() == nil {
		b.mu.Lock()
		b.state = wire.ChannelEnded
		b.mu.Unlock()
		if b.started && !quiet {
			// Started on the coordinator, no entry: end it there.
			b.in.report(b.channel.ID, wire.ChannelStateReport{State: wire.ChannelEnded, Chain: b.chain.ID()})
		}
		return // nothing was published: nothing to seal
	}
	defer func() {
		b.mu.Lock()
		b.state = wire.ChannelEnded
		b.mu.Unlock()
		if !quiet {
			b.in.report(b.channel.ID, rep)
		}
	}()
	rep.Chain = b.chain.ID()
	b.chain.Seal()
	m, err := b.chain.SealManifest(b.priv)
	if err != nil {
		b.in.log.Error("seal", "channel", b.channel.ID, "err", err)
		return
	}
	segs := make([][][]byte, len(m.Renditions))
	for r, rend := range m.Renditions {
		for s := range rend.Segments {
			ct, err := os.ReadFile(b.segmentPath(r, uint64(s)))
			if err != nil {
				b.in.log.Error("seal: a live segment is missing", "channel", b.channel.ID, "err", err)
				return
			}
			segs[r] = append(segs[r], ct)
		}
	}
	id, err := b.in.cfg.Store.PutVideo(m, segs, &b.key)
	if err != nil {
		b.in.log.Error("seal: store the recording", "channel", b.channel.ID, "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.in.cfg.Coordinator.Publish(pctx, wire.PublishRequest{OriginID: b.in.cfg.Origin, Videos: []wire.PublishedVideo{{Manifest: m.Encode(), Key: b.key[:]}}})
	cancel()
	if err != nil {
		// The origin's heartbeat publishes the store's catalogue again.
		b.in.log.Warn("seal: publish the recording (the next heartbeat retries)", "video", id, "err", err)
	}
	b.mu.Lock()
	b.recording = id
	b.mu.Unlock()
	rep.Recording = id
	// A restarted origin does not reload a sealed chain.
	if err := writeAtomic(filepath.Join(b.dir, sealedFile), []byte(id.String()+"\n")); err != nil {
		b.in.log.Warn("seal: marker not written (a restart would reload the chain and seal it again)", "chain", b.chain.ID(), "err", err)
	}
	b.in.log.Info("broadcast sealed", "channel", b.channel.ID, "chain", b.chain.ID(), "recording", id, "segments", len(segs[0]))
}

// report tells the coordinator a channel's state (logged on failure: the
// state is advisory, the entries are what viewers follow).
func (in *Ingest) report(ch wire.ChannelID, rep wire.ChannelStateReport) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.cfg.Coordinator.ReportChannelState(ctx, ch, rep); err != nil {
		in.log.Warn("channel state not reported", "channel", ch, "state", rep.State, "err", err)
	}
}

// writeAtomic writes a file next to its final name and renames it over,
// so a reader sees the whole file or none.
func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return errors.Join(werr, cerr)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}
