package relay

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
)

// A relay before the relays' judge (docs/LIVE.md, "Relays under BTR"):
//   - accused: it reads the judge's open cases of the chains it forwards
//     (GET wire.PathRelayJudge) and answers each accusation of itself with
//     the signed push it kept for that segment and substream (the Sender
//     keeps what it signed) — PeerReview's rebuttal. The judge clears the
//     case and lists the answer for the accuser, who can fetch the shards
//     from this relay's window: a real loss is repaired, and a child's lie
//     gains nothing. A relay that never sent the push (it stalled) kept no
//     statement and cannot answer; its case runs out and excludes it.
//   - a child: it posts each commission proof its receiver built (a
//     parent's own signed push over shards that failed verification); the
//     judge re-executes relaying on its own and excludes at once.

// judgeInterval is how often the relay reads its judge's open cases: well
// inside the answer window W (one segment), so an honest relay's answer
// costs at most this much of it.
const judgeInterval = 200 * time.Millisecond

// answeredKept is how long an answered accusation is remembered (it is
// past its answer window long before).
const answeredKept = time.Minute

// judgeLoop answers the judge until ctx ends. It has its own goroutine
// (Run owns it): an answer must not wait behind the watch loop's pings.
func (r *Relay) judgeLoop(ctx context.Context) {
	t := time.NewTicker(judgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.answerJudge(ctx)
	}
}

// answerJudge answers the judge's open accusations of this relay and posts
// the receiver's new commission proofs.
func (r *Relay) answerJudge(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := r.cfg.Now()
	me := btr.KeyOf(r.cfg.Identity.Key)
	chains := map[content.VideoID]bool{}
	for _, route := range r.recv.Routes() {
		if len(route.Children) > 0 || len(route.Standby) > 0 {
			chains[route.Chain] = true
		}
	}
	for chain := range chains {
		cases, err := r.coord.RelayJudgeCases(ctx, chain)
		if err != nil {
			r.log.Debug("relays' judge: cannot read the open cases", "chain", chain, "err", err)
			continue
		}
		for _, raw := range cases.Accusations {
			a, err := btr.DecodeAccusation(raw)
			if err != nil || a.Accused != me || a.Chain != chain || string(cases.Judge) != a.Accuser.String() {
				continue
			}
			k := string(a.Signature)
			r.mu.Lock()
			_, done := r.answered[k]
			r.mu.Unlock()
			if done {
				continue
			}
			r.answer(ctx, a, now)
			r.mu.Lock()
			r.answered[k] = now
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	for k, at := range r.answered {
		if now.Sub(at) > answeredKept {
			delete(r.answered, k)
		}
	}
	r.mu.Unlock()
	for _, p := range r.recv.NewProofs() {
		r.m.proofsPosted.Inc()
		if err := r.coord.PostRelayStatement(ctx, p.A.Chain, p.Encode()); err != nil {
			r.log.Warn("relays' judge: the commission proof against a parent was refused or missed", "chain", p.A.Chain, "parent", p.Culprit(), "seq", p.A.Segment, "err", err)
			continue
		}
		r.log.Warn("relays' judge: posted the proof of a parent's commission (its signed push over shards that fail verification)", "chain", p.A.Chain, "parent", p.Culprit(), "seq", p.A.Segment)
	}
}

// answer posts the rebuttal of one accusation of this relay, if it kept
// the signed push of that task.
func (r *Relay) answer(ctx context.Context, a *btr.Accusation, now time.Time) {
	sub, ok := btr.RelaySubstream(a.Task)
	if !ok {
		return
	}
	o, ok := r.sender.SignedPush(a.Chain, a.Segment, sub)
	if !ok || o.Task != a.Task {
		r.m.rebuttals.WithLabelValues("no_push").Inc()
		r.log.Warn("relays' judge: accused of a push this relay never sent; no signed push to answer with", "chain", a.Chain, "seq", a.Segment, "substream", sub)
		return
	}
	if err := r.coord.PostRelayStatement(ctx, a.Chain, (&btr.Rebuttal{Accusation: a, Output: o}).Encode()); err != nil {
		r.m.rebuttals.WithLabelValues("refused").Inc()
		r.log.Warn("relays' judge: the rebuttal was refused", "chain", a.Chain, "seq", a.Segment, "substream", sub, "answer_by", time.UnixMicro(a.AnswerBy), "now", now, "err", err)
		return
	}
	r.m.rebuttals.WithLabelValues("ok").Inc()
	r.log.Info("relays' judge: answered an accusation with the signed push", "chain", a.Chain, "seq", a.Segment, "substream", sub)
}
