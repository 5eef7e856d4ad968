package accounting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Proof of storage. Each round the chore picks random alive edges and, for
// each, a random shard the edge claims to hold (its heartbeat inventory) and
// a random byte range of that shard's data. The challenge is stored first
// (coordinatordb.CreateAudit: an edge in containment gets its open challenge
// again, so timing out never buys a fresh, easier question); then the
// coordinator fetches the WHOLE shard with the same plain GET on
// wire.ShardURL a viewer uses. Nothing marks the request as an audit (no
// header, no special route, a whole shard rather than a range), so an edge
// cannot serve audits differently from viewers: to pass audits it must
// answer every request for shards it claims. The answer passes if it
// decodes as the named shard, verifies against the signed manifest
// (content.VerifyShard), and its challenged byte range equals the origin's
// bytes of the same shard. A 4xx or wrong bytes is a failure; no answer
// within AuditTimeout (or a 5xx) is a timeout, which puts the edge in
// containment and re-asks the same challenge, up to
// coordinatordb.MaxAuditAttempts times before it counts as a failure. The
// store's beta reputation disqualifies below 0.96.
//
// How fast is a dropper caught? With the default reputation seed
// (InitialAlpha 1000 = 1/(1-λ), λ 0.999, Storj's values) alpha+beta stays
// 1000, so the score after n audits is 0.999^n·1 + Σ decayed outcomes and
// an edge failing every audit is disqualified after exactly 41 failures
// (0.999^41 < 0.96 < 0.999^40). An edge that dropped a fraction p of the
// shards it claims fails each audit with probability p: its first failure
// comes after 1/p audits on average (10 for p = 10%), and its expected
// score after n audits is (1-p) + p·0.999^n, which crosses 0.96 when
// 0.999^n < 1 - 0.04/p: n ≈ 511 audits for p = 10% (about 4 h of rounds
// at 30 s if it is audited every round), and never for p < 4% (such an
// edge keeps serving most requests; viewers route around its misses).
//
// An edge that keeps nothing and fetches each requested shard from the
// origin on demand passes audits (it returns the right bytes), but gains
// nothing: since audits are indistinguishable from viewer requests it must
// do the same for every viewer request, so every byte it serves first
// costs the origin a byte. Such an edge offloads nothing, and it pays for
// the origin's egress with its own download. It is also slower. Its
// first-byte latency includes an origin round trip, so ranking by measured
// speed moves demand away from it. Settlement pays only bytes that viewers
// signed for, which never exceed what it fetched from the origin. An edge
// would gain only if origin fetches were free and unaccounted. The next
// step is to meter origin egress per edge: an edge whose origin pulls
// track its served bytes is a proxy, and it should lose its placement
// weight.
type AuditChore struct {
	s *Service

	roundMu sync.Mutex // one round at a time
	rng     *rand.Rand // guarded by roundMu

	cacheMu sync.Mutex
	origin  map[content.ShardRef]originBytes

	// Bytes fetched for audits, for AuditBytes (the metric has the same).
	edgeBytes, originBytes atomic.Int64

	// passed holds the edges seen passing an audit since start (in memory:
	// after a restart every edge is asked once more before the others,
	// which costs one audit each). Edges the sweep drops leave it.
	passedMu sync.Mutex
	passed   map[wire.NodeID]bool
}

// audited reports whether edge passed an audit since start.
func (a *AuditChore) audited(edge wire.NodeID) bool {
	a.passedMu.Lock()
	defer a.passedMu.Unlock()
	return a.passed[edge]
}

// forget drops edges that left the registry from the passed set.
func (a *AuditChore) forget(edges []wire.NodeID) {
	a.passedMu.Lock()
	defer a.passedMu.Unlock()
	for _, e := range edges {
		delete(a.passed, e)
	}
}

// originCacheTTL is how long the origin's bytes of an audited shard are
// kept (the same shard is re-asked while an edge is contained).
const originCacheTTL = 2 * time.Minute

// maxOriginCache bounds the origin-bytes cache (entries, one shard each).
const maxOriginCache = 256

type originBytes struct {
	data  []byte
	until time.Time
}

func newAuditChore(s *Service, seed int64) *AuditChore {
	return &AuditChore{s: s, rng: rand.New(rand.NewSource(seed)), origin: make(map[content.ShardRef]originBytes), passed: make(map[wire.NodeID]bool)}
}

// Run runs a round every interval until ctx is done.
func (a *AuditChore) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Round(ctx)
		}
	}
}

// AuditResult is one audit asked in a round.
type AuditResult struct {
	Edge    wire.NodeID
	AuditID int64
	Outcome coordinatordb.AuditOutcome
	Detail  string
	State   coordinatordb.AuditState
	Status  coordinatordb.EdgeStatus
}

// Round asks one challenge of up to AuditEdgesPerRound edges, in parallel,
// and records the outcomes. It returns when every fetch has finished.
func (a *AuditChore) Round(ctx context.Context) []AuditResult {
	a.roundMu.Lock()
	defer a.roundMu.Unlock()
	s := a.s
	targets := s.net.PickAudits(s.cfg.Now(), a.rng, s.cfg.AuditEdgesPerRound, a.audited)
	results := make([]AuditResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = a.audit(ctx, t)
		}()
	}
	wg.Wait()
	out := results[:0]
	for _, r := range results {
		if r.AuditID != 0 {
			out = append(out, r)
		}
	}
	return out
}

// audit asks one challenge and records the outcome; a zero AuditID means
// nothing was recorded (store error, or the round was cancelled).
func (a *AuditChore) audit(ctx context.Context, t AuditTarget) AuditResult {
	s := a.s
	res := AuditResult{Edge: t.Challenge.Edge}
	au, err := s.db.CreateAudit(ctx, t.Challenge, s.cfg.Now())
	if err != nil {
		s.log.Warn("audit: create challenge", "edge", t.Challenge.Edge, "err", err)
		return res
	}
	m, ok := s.net.Manifest(au.Ref.Video)
	if !ok {
		return res // a contained challenge of a video no longer listed
	}
	outcome, detail := a.ask(ctx, t.Addr, au, m)
	if ctx.Err() != nil {
		return res // we were stopped; the edge did nothing wrong
	}
	au, st, err := s.db.RecordAuditOutcome(ctx, au.ID, outcome, s.cfg.Now())
	if err != nil {
		s.log.Warn("audit: record outcome", "edge", t.Challenge.Edge, "audit", au.ID, "err", err)
		return res
	}
	s.metrics.audits.WithLabelValues(string(outcome)).Inc()
	log := s.log.With("edge", t.Challenge.Edge, "audit", au.ID, "outcome", outcome, "state", au.State, "attempts", au.Attempts,
		"video", au.Ref.Video, "rendition", au.Ref.Rendition, "segment", au.Ref.Segment, "shard", au.Ref.Shard, "score", st.Audit.Score())
	if outcome == coordinatordb.OutcomePassed {
		log.Debug("audit")
		a.passedMu.Lock()
		a.passed[t.Challenge.Edge] = true
		a.passedMu.Unlock()
	} else {
		log.Warn("audit", "detail", detail)
	}
	if st.Disqualified {
		if !s.net.Banned(t.Challenge.Edge) {
			s.metrics.disqualified.WithLabelValues("audit").Inc()
			s.log.Warn("edge disqualified", "edge", t.Challenge.Edge, "reason", st.DisqualifyReason, "score", st.Audit.Score())
			if err := s.net.Ban(ctx, t.Challenge.Edge, "disqualified: "+st.DisqualifyReason); err != nil {
				s.log.Warn("audit: ban", "edge", t.Challenge.Edge, "err", err)
			}
		}
	}
	return AuditResult{Edge: t.Challenge.Edge, AuditID: au.ID, Outcome: outcome, Detail: detail, State: au.State, Status: st}
}

// ask fetches the challenged shard from the edge and judges it.
func (a *AuditChore) ask(ctx context.Context, addr string, au coordinatordb.Audit, m *content.Manifest) (coordinatordb.AuditOutcome, string) {
	seg, err := m.CheckSegment(au.Ref.SegmentRef)
	if err != nil {
		return coordinatordb.OutcomeFailed, err.Error()
	}
	maxBytes := 2*int64(m.Params.ShardSize(int(seg.Size))) + 64<<10 // shard data plus its proof and header
	fctx, cancel := context.WithTimeout(ctx, a.s.cfg.AuditTimeout)
	defer cancel()
	// A plain viewer GET: see the AuditChore doc.
	resp, err := wire.GetShard(fctx, a.s.cfg.HTTPClient, wire.ShardRequest{Base: addr, Ref: au.Ref, MaxBytes: maxBytes})
	body := resp.Body
	a.s.metrics.auditBytes.WithLabelValues("edge").Add(float64(len(body)))
	a.edgeBytes.Add(int64(len(body)))
	if err != nil {
		// A 4xx is an answer ("not held", "bad request"): failed. A 5xx,
		// a refused connection or no answer in time means offline or
		// overloaded: timeout, so containment re-asks the same question.
		var ae *wire.APIError
		if errors.As(err, &ae) && ae.Status < 500 {
			return coordinatordb.OutcomeFailed, fmt.Sprintf("edge answered %d: %s", ae.Status, ae.Message)
		}
		return coordinatordb.OutcomeTimeout, err.Error()
	}
	msg, err := content.DecodeShardMessage(body)
	if err != nil {
		return coordinatordb.OutcomeFailed, "answer is not a shard message: " + err.Error()
	}
	if msg.Ref() != au.Ref {
		return coordinatordb.OutcomeFailed, "answer is another shard than the one asked"
	}
	if err := content.VerifyShard(m, au.Ref.Rendition, au.Ref.Segment, msg.Shard); err != nil {
		return coordinatordb.OutcomeFailed, "shard fails verification: " + err.Error()
	}
	end := au.Offset + au.Length
	if int64(len(msg.Data)) < end {
		return coordinatordb.OutcomeFailed, fmt.Sprintf("shard data is %d bytes, challenge reads [%d,%d)", len(msg.Data), au.Offset, end)
	}
	if ref, ok := a.originShard(ctx, au); ok {
		if int64(len(ref)) < end || !bytes.Equal(ref[au.Offset:end], msg.Data[au.Offset:end]) {
			return coordinatordb.OutcomeFailed, fmt.Sprintf("bytes [%d,%d) differ from the origin's", au.Offset, end)
		}
	}
	return coordinatordb.OutcomePassed, ""
}

// originShard returns the origin's data of the audited shard, from a
// short-lived cache or an alive origin; ok is false when no origin answers
// (the verdict then rests on content.VerifyShard alone, which is already
// conclusive: the manifest is signed).
func (a *AuditChore) originShard(ctx context.Context, au coordinatordb.Audit) ([]byte, bool) {
	key := au.Ref
	now := a.s.cfg.Now()
	a.cacheMu.Lock()
	ob, ok := a.origin[key]
	a.cacheMu.Unlock()
	if ok && now.Before(ob.until) {
		return ob.data, true
	}
	for _, addr := range a.s.net.AliveOrigins(now) {
		fctx, cancel := context.WithTimeout(ctx, a.s.cfg.AuditTimeout)
		resp, err := wire.GetShard(fctx, a.s.cfg.HTTPClient, wire.ShardRequest{Base: addr, Ref: au.Ref, MaxBytes: 64 << 20})
		cancel()
		body := resp.Body
		a.s.metrics.auditBytes.WithLabelValues("origin").Add(float64(len(body)))
		a.originBytes.Add(int64(len(body)))
		if err != nil {
			a.s.log.Debug("audit: origin shard", "origin", addr, "err", err)
			continue
		}
		msg, err := content.DecodeShardMessage(body)
		if err != nil || msg.Index != au.Ref.Shard {
			continue
		}
		a.cacheMu.Lock()
		if len(a.origin) >= maxOriginCache {
			for k, v := range a.origin {
				if !now.Before(v.until) || len(a.origin) >= maxOriginCache {
					delete(a.origin, k)
				}
			}
		}
		a.origin[key] = originBytes{data: msg.Data, until: now.Add(originCacheTTL)}
		a.cacheMu.Unlock()
		return msg.Data, true
	}
	return nil, false
}
