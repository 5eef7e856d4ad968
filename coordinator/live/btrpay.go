package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Proof of transcoding pays (docs/LIVE.md, "BTR: workers, payment,
// metering"). The chain's judge posts a btr.Agreement for each segment
// whose f+1 assigned replicas signed one digest; the coordinator checks it
// (the judge's signature, f+1 distinct replicas' own signatures over the
// same task and digest: what a third party can check without ffmpeg, and a
// cheater cannot produce alone) and credits each bound worker of it once
// per (chain, segment), unsettled. Credits settle into the ledger after
// Config.WorkHold; an exclusion recorded in the channel log first forfeits
// the culprit's unsettled credits, and its owner sees the exclusion's id.
// An accused worker's rebuttal is recorded in the log, and an omission or
// timing exclusion resting on a rebutted accusation is refused.

// Defaults of the payment configuration.
const (
	// DefaultPointsPerAgreedSegment is what each worker of an agreed
	// segment earns: one point per replicated transcode of one source
	// segment (the ladder), against an edge's points per MB served.
	DefaultPointsPerAgreedSegment = 1
	// DefaultWorkHold is how long a credit stays forfeitable: far past the
	// bound R (seconds), so every exclusion for a fault in the credited
	// segments is in the log before the credit settles.
	DefaultWorkHold = 10 * time.Minute
)

// chainJudge returns the judge key of a chain that origin publishes: the
// chain's origin is its judge.
func (s *Service) chainJudge(id content.VideoID, origin wire.NodeID, what string) (btr.NodeKey, error) {
	s.mu.Lock()
	ch := s.chains[id]
	var publisher wire.NodeID
	if ch != nil {
		publisher = ch.rec.Origin
	}
	s.mu.Unlock()
	if ch == nil {
		return btr.NodeKey{}, wire.NotFound("live chain %s is not registered", id)
	}
	if origin != "" && publisher != origin {
		return btr.NodeKey{}, wire.Errorf(http.StatusForbidden, "%s: live chain %s is judged by its origin %s, not %s", what, id, publisher, origin)
	}
	judge, err := btr.ParseNodeKey(string(publisher))
	if err != nil {
		return btr.NodeKey{}, wire.Errorf(http.StatusBadRequest, "%s: %v", what, err)
	}
	return judge, nil
}

// CreditAgreement checks an agreement the chain's origin posts and credits
// its bound, not-excluded workers (see the package comment above). A replay
// credits nobody again; a second, different agreement for a paid segment
// is refused. Nothing is written unless every check passed.
func (s *Service) CreditAgreement(ctx context.Context, origin wire.NodeID, id content.VideoID, raw []byte) (wire.BTRCreditResult, error) {
	const what = "btr agreement"
	judge, err := s.chainJudge(id, origin, what)
	if err != nil {
		return wire.BTRCreditResult{}, err
	}
	g, err := btr.DecodeAgreement(raw)
	if err != nil {
		return wire.BTRCreditResult{}, wire.BadRequest("%s: %v", what, err)
	}
	if g.Chain != id {
		return wire.BTRCreditResult{}, wire.BadRequest("%s: the agreement is for chain %s, posted to %s", what, g.Chain, id)
	}
	// DecodeAgreement ran Check against the statement's own judge; it
	// remains that the judge is this chain's.
	if g.Judge != judge {
		return wire.BTRCreditResult{}, wire.BadRequest("%s refused: signed by %s, not the chain's judge %s", what, g.Judge, judge)
	}
	out := wire.BTRCreditResult{Evidence: g.ID(), Points: s.cfg.PointsPerAgreedSegment, Credited: []wire.NodeID{}, Already: []wire.NodeID{}, Unbound: []wire.NodeID{}, Excluded: []wire.NodeID{}}
	// btr.mu orders credits against exclusions: a worker whose exclusion
	// is recorded earns nothing more, and one credited first is forfeited
	// by it.
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	excluded := map[wire.NodeID]bool{}
	if c := s.btr.chains[id]; c != nil {
		for _, e := range c.excluded {
			excluded[e.Node] = true
		}
	}
	var pay []wire.NodeID
	for _, k := range g.Replicas() {
		n := wire.NodeID(k.String())
		if excluded[n] {
			out.Excluded = append(out.Excluded, n)
			continue
		}
		pay = append(pay, n)
	}
	now := s.cfg.Now()
	res, err := s.db.CreditWork(ctx, coordinatordb.WorkCredit{Chain: id, Segment: g.Segment, Evidence: out.Evidence, Statement: bytes.Clone(raw), Workers: pay, Points: s.cfg.PointsPerAgreedSegment}, now)
	if err != nil {
		return wire.BTRCreditResult{}, wire.Errorf(http.StatusConflict, "%s: %v", what, err)
	}
	out.Credited = append(out.Credited, res.Credited...)
	out.Already = append(out.Already, res.Already...)
	out.Unbound = append(out.Unbound, res.Unbound...)
	s.metrics.workCredits.Add(float64(len(res.Credited)))
	if len(res.Credited) > 0 {
		s.settleWork(ctx, now)
	}
	return out, nil
}

// settleWork settles every credit older than the hold (logged on failure:
// the rows stay unsettled and the next call settles them).
func (s *Service) settleWork(ctx context.Context, now time.Time) {
	if pts, err := s.db.SettleWork(ctx, now.Add(-s.cfg.WorkHold), now); err != nil {
		s.log.Error("btr: settling transcoding credits", "err", err)
	} else if pts > 0 {
		s.metrics.workSettled.Add(float64(pts))
	}
}

// settleInterval is how often SettleDue looks for credits past the hold.
const settleInterval = time.Minute

// SettleDue settles the credits past the hold, at most once a
// settleInterval (the coordinator's sweep calls it), so a worker that
// stopped working is paid too.
func (s *Service) SettleDue(ctx context.Context) {
	if s.db == nil {
		return
	}
	now := s.cfg.Now()
	s.btr.mu.Lock()
	due := now.Sub(s.btr.lastSettle) >= settleInterval
	if due {
		s.btr.lastSettle = now
	}
	s.btr.mu.Unlock()
	if due {
		s.settleWork(ctx, now)
	}
}

// forfeitLocked forfeits an excluded worker's unsettled credits, naming the
// exclusion (s.btr.mu held). Idempotent: loadBTR applies it again to every
// exclusion of the log, so a crash between the log append and this leaves
// nothing unforfeited.
func (s *Service) forfeitLocked(ctx context.Context, x *btr.Exclusion, raw []byte) {
	pts, err := s.db.ForfeitWork(ctx, wire.NodeID(x.Culprit.String()), btr.EvidenceID(raw), x.Kind.String(), s.cfg.Now())
	if err != nil {
		s.log.Error("btr: forfeiting an excluded worker's credits (retried at the next start)", "worker", x.Culprit, "err", err)
		return
	}
	if pts > 0 {
		s.metrics.workForfeited.Add(float64(pts))
		s.log.Warn("btr: excluded worker's unsettled points forfeited", "worker", x.Culprit, "points", pts, "exclusion", btr.EvidenceID(raw))
	}
}

// rebuttedLocked reports whether an omission or timing exclusion rests on
// an accusation the log holds a rebuttal for (s.btr.mu held).
func (c *btrChainLog) rebuttedLocked(x *btr.Exclusion) bool {
	if x.Kind != btr.Omission && x.Kind != btr.Timing {
		return false
	}
	return c.rebutted[btr.EvidenceID(x.Evidence)]
}

// AppendRebuttal records an accused worker's rebuttal: worker (the signer
// of the request) must be the accused, the accusation the chain judge's,
// the rebuttal's output the worker's own signed output for exactly the
// accused task, received by the accusation's answer deadline on this
// coordinator's clock. An accusation not yet in the log (the judge's post
// may still be on its way) is recorded first: its signature is the judge's.
func (s *Service) AppendRebuttal(ctx context.Context, worker wire.NodeID, id content.VideoID, raw []byte) error {
	const what = "btr rebuttal"
	now := s.cfg.Now()
	judge, err := s.chainJudge(id, "", what)
	if err != nil {
		return err
	}
	r, err := btr.DecodeRebuttal(raw)
	if err != nil {
		return wire.BadRequest("%s: %v", what, err)
	}
	a := r.Accusation
	switch {
	case a.Chain != id:
		return wire.BadRequest("%s: the accusation is for chain %s, posted to %s", what, a.Chain, id)
	case a.Accuser != judge:
		return wire.Errorf(http.StatusForbidden, "%s: the accusation is signed by %s, not by the chain's judge %s", what, a.Accuser, judge)
	case wire.NodeID(a.Accused.String()) != worker:
		return wire.Errorf(http.StatusForbidden, "%s: node %s may rebut only its own accusations (this one accuses %s)", what, worker, a.Accused)
	}
	if err := r.CheckInTime(now.UnixMicro()); err != nil {
		return wire.BadRequest("%s refused: %v", what, err)
	}
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	c := s.btr.chainLocked(id)
	accID := btr.EvidenceID(a.Encode())
	if c.rebutted[accID] {
		return nil
	}
	for _, e := range c.excluded {
		if e.Node == worker {
			return wire.Errorf(http.StatusConflict, "%s: worker %s is already excluded from chain %s (exclusion is permanent)", what, worker, id)
		}
	}
	if !c.hasLocked(a.Encode()) {
		if err := s.appendLocked(ctx, c, id, a.Encode(), btrStatement{kind: "accusation", culprit: a.Accused}); err != nil {
			return err
		}
	}
	if err := s.appendLocked(ctx, c, id, bytes.Clone(raw), btrStatement{kind: "rebuttal", culprit: a.Accused, accusation: accID}); err != nil {
		return err
	}
	s.metrics.rebuttals.Inc()
	s.log.Info("btr: rebuttal recorded", "chain", id, "worker", worker, "segment", a.Segment)
	return nil
}

// hasLocked reports whether the log holds exactly raw.
func (c *btrChainLog) hasLocked(raw []byte) bool {
	for _, have := range c.raw {
		if bytes.Equal(have, raw) {
			return true
		}
	}
	return false
}

// appendLocked writes one checked statement at the log's next position and
// adds it in memory (s.btr.mu held).
func (s *Service) appendLocked(ctx context.Context, c *btrChainLog, id content.VideoID, raw []byte, st btrStatement) error {
	rec := coordinatordb.LiveBTRStatement{Chain: id, Seq: uint64(len(c.raw)), Kind: st.kind, Culprit: st.culprit.String(), Statement: raw}
	if s.db != nil {
		if err := s.db.AppendLiveBTR(ctx, rec, s.cfg.Now()); err != nil {
			return fmt.Errorf("btr log: store: %w", err)
		}
	}
	c.add(raw, st)
	return nil
}

func (s *Service) handleBTRAgreed(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	origin, body, ok := s.net.OriginRequest(w, r, "btr agreement", wire.MaxBTRStatementBytes)
	if !ok {
		return
	}
	out, err := s.CreditAgreement(r.Context(), origin, id, body)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

// handleBTRAgreement serves the stored agreement of one segment: the
// evidence its workers' credits rest on, for anyone to check.
func (s *Service) handleBTRAgreement(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	seg, err := strconv.ParseUint(r.URL.Query().Get("segment"), 10, 63)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "btr agreement: segment=N (the segment number) is required: %v", err)
		return
	}
	raw, err := s.db.WorkAgreement(r.Context(), id, seg)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		wire.WriteError(w, http.StatusNotFound, "btr agreement: segment %d of chain %s was not paid (no agreement recorded)", seg, id)
		return
	}
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(raw)
}

func (s *Service) handleBTRRebuttal(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	worker, body, ok := s.net.NodeRequest(w, r, "btr rebuttal", wire.MaxBTRStatementBytes)
	if !ok {
		return
	}
	if err := s.AppendRebuttal(r.Context(), worker, id, body); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}
