package live

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// The coordinator as the relays' judge (docs/LIVE.md, "Relays under BTR"):
// one btr.RelayJudge per chain with trees, fed the children's signed
// accusations of their parents and the accused's rebuttals
// (wire.PathRelayJudge), the chain's publications (Open) and the clock
// (RunRelayJudges). An exclusion, signed with Config.RelayJudgeKey, is
// appended to the chain's channel log; the culprit's children and their
// backups are handed routes that switch at its s* = Current + Δ
// (LiveRoute.SwitchAt, LiveStandby.From), and once segment s* is published
// the trees are rebuilt without the culprit (treestate.go: excluded nodes
// are left out of every build).

// relayJudgeTick is how often RunRelayJudges settles the cases past their
// answer window (G in the relays' terms of the bound).
const relayJudgeTick = 100 * time.Millisecond

// relayJudges holds the chains' judges. mu is taken alone (never with
// Service.mu, treeMu or btr.mu held): decisions are taken under it and
// acted on after it is released.
type relayJudges struct {
	mu     sync.Mutex
	key    ed25519.PrivateKey
	chains map[content.VideoID]*relayChain
	// heads are the newest published segment of every chain that had a
	// judge: a judge made again for a running chain (its trees came back
	// after a build without them) starts from it, not from segment 0.
	heads map[content.VideoID]uint64
	once  sync.Once
	hc    *http.Client // fetches shards to check commission proofs (http())
}

type relayChain struct {
	judge *btr.RelayJudge
	// parent and backup are the trees the judge's plans were made from: a
	// build that changes them hands the judge the new plans (SetPlans: it
	// keeps exclusions and strikes, drops cases the new trees void).
	parent, backup []map[wire.NodeID]wire.NodeID
	head           uint64
	open           []*btr.Accusation // the judge's accusations still answerable
	// answered are the rebuttals that cleared cases, newest last (at most
	// maxAnswersKept): served to the accusers (RelayJudgeCases.Answered).
	answered []wire.RelayJudgeAnswer
	// originAddr is the chain's origin's base URL (the trees' root): where
	// the judge fetches a substream's shards to check a commission proof.
	originAddr string
}

// maxAnswersKept bounds relayChain.answered (a few segments of cases).
const maxAnswersKept = 64

// relaySwitch is an excluded relay's switch: its children take their
// backups from segment At of Chain on; once At is published the trees are
// rebuilt without it (Done).
type relaySwitch struct {
	Chain content.VideoID
	At    uint64
	Done  bool
}

// relayParams are the judge's timing for a chain of segment duration seg:
// the BTR defaults, with an answer window of one segment (an accused relay
// answers over the network, not inside one process).
func relayParams(seg time.Duration) btr.Params {
	p := btr.DefaultParams()
	p.Segment = seg
	p.AnswerWindow = seg
	return p
}

// setRelayTrees makes the judge of every new chain, hands the new trees
// to the judge of every chain whose trees a build changed, and drops those
// of chains no longer built. published is every live chain's newest entry
// (-1 before the first).
func (s *Service) setRelayTrees(chains []TreeChain, out TreeOutput, published map[content.VideoID]int64) {
	j := &s.relays
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.chains == nil {
		j.chains = map[content.VideoID]*relayChain{}
	}
	built := map[content.VideoID]bool{}
	for _, ch := range chains {
		parent, backup := out.Parent[ch.Chain], out.Backup[ch.Chain]
		if len(parent) == 0 {
			continue
		}
		built[ch.Chain] = true
		if c := j.chains[ch.Chain]; c != nil && reflect.DeepEqual(c.parent, parent) && reflect.DeepEqual(c.backup, backup) {
			continue
		}
		plans := make([]btr.ParentPlan, len(parent))
		ok := true
		for sub := range parent {
			plans[sub] = btr.ParentPlan{Parent: map[btr.NodeKey]btr.NodeKey{}, Backup: map[btr.NodeKey]btr.NodeKey{}}
			ok = ok && keyMap(plans[sub].Parent, parent[sub])
			if sub < len(backup) {
				ok = ok && keyMap(plans[sub].Backup, backup[sub])
			}
		}
		if c := j.chains[ch.Chain]; c != nil && ok {
			// A rebuild: the same judge with the new trees keeps its
			// exclusions and strikes (and the cases that still hold).
			if err := c.judge.SetPlans(plans); err == nil {
				c.parent, c.backup, c.originAddr = parent, backup, rootAddr(out, ch)
				continue
			}
		}
		head := j.heads[ch.Chain]
		if c := j.chains[ch.Chain]; c != nil {
			head = max(head, c.head)
		}
		params := relayParams(time.Duration(ch.SegmentMS * float64(time.Millisecond)))
		var routesFrom uint64
		if head > 0 || published[ch.Chain] < 0 {
			// The chain is running, or has not published its first
			// entry yet (trees at go-live, treestate.go GoLiveSegments:
			// the nodes learn their routes at their next heartbeats,
			// and segment 0 may be out first): these trees hold from
			// head + Δ.
			routesFrom = head + uint64(params.SwitchLead())
		}
		judge, err := btr.NewRelayJudge(btr.RelayConfig{Chain: ch.Chain, Params: params, Plans: plans, Judge: j.key, RoutesFrom: routesFrom})
		if !ok || err != nil {
			s.log.Warn("live: relays' judge: cannot judge the chain's trees", "chain", ch.Chain, "err", err, "node_ids_are_keys", ok)
			delete(j.chains, ch.Chain)
			continue
		}
		judge.Open(head)
		j.chains[ch.Chain] = &relayChain{judge: judge, parent: parent, backup: backup, head: head, originAddr: rootAddr(out, ch)}
	}
	for id := range j.chains {
		if !built[id] {
			delete(j.chains, id)
		}
	}
}

// rootAddr is the chain's origin's address as its top children's routes
// name it ("" if no route does).
func rootAddr(out TreeOutput, ch TreeChain) string {
	for _, rs := range out.Routes {
		for _, r := range rs {
			if r.Chain == ch.Chain && r.Parent == ch.Origin && r.ParentAddr != "" {
				return r.ParentAddr
			}
		}
	}
	return ""
}

// keyMap fills dst with src's node ids as keys (every node id is its
// ed25519 key); false if one is not.
func keyMap(dst map[btr.NodeKey]btr.NodeKey, src map[wire.NodeID]wire.NodeID) bool {
	for c, p := range src {
		ck, err1 := btr.ParseNodeKey(string(c))
		pk, err2 := btr.ParseNodeKey(string(p))
		if err1 != nil || err2 != nil {
			return false
		}
		dst[ck] = pk
	}
	return true
}

// relayOpen tells the chain's judge that segment seq is published, and
// asks for the rebuild without a culprit whose switch segment it is.
func (s *Service) relayOpen(id content.VideoID, seq uint64) {
	s.relays.mu.Lock()
	if c := s.relays.chains[id]; c != nil {
		c.head = max(c.head, seq)
		c.judge.Open(seq)
		if s.relays.heads == nil {
			s.relays.heads = map[content.VideoID]uint64{}
		}
		s.relays.heads[id] = c.head
	}
	s.relays.mu.Unlock()
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	for _, sw := range s.trees.excluded {
		if sw.Chain == id && !sw.Done && seq >= sw.At {
			s.trees.dirty, s.trees.urgent = true, true
			s.trees.poke()
		}
	}
}

// RelayStatement takes a signed statement a relay or edge (sender) posts
// to the chain's relays' judge: its accusation of its parent, or its
// rebuttal of the judge's accusation of it. Anything the sender did not
// sign, or the judge refuses (not the sender's parent, forged, late, no
// such case), is refused with nothing changed.
func (s *Service) RelayStatement(ctx context.Context, sender wire.NodeID, id content.VideoID, raw []byte) error {
	senderKey, err := btr.ParseNodeKey(string(sender))
	if err != nil {
		return wire.BadRequest("relay judge: sender %s: %v", sender, err)
	}
	now := s.cfg.Now()
	var take func(j *btr.RelayJudge) error
	switch {
	case bytes.HasPrefix(raw, []byte("SCBA")):
		a, err := btr.DecodeAccusation(raw)
		if err != nil {
			return wire.BadRequest("relay judge: %v", err)
		}
		if a.Accuser != senderKey {
			return wire.Errorf(http.StatusForbidden, "relay judge: the accusation is signed by %s, not by the sender %s: post your own accusations", a.Accuser, sender)
		}
		take = func(j *btr.RelayJudge) error { return j.Accuse(a, now) }
	case bytes.HasPrefix(raw, []byte("SCBR")):
		r, err := btr.DecodeRebuttal(raw)
		if err != nil {
			return wire.BadRequest("relay judge: %v", err)
		}
		if r.Output.Replica != senderKey {
			return wire.Errorf(http.StatusForbidden, "relay judge: the rebuttal's push is signed by %s, not by the sender %s: answer only accusations of you", r.Output.Replica, sender)
		}
		take = func(j *btr.RelayJudge) error { return j.Rebut(r, now) }
	case bytes.HasPrefix(raw, []byte("SCBP")):
		p, err := btr.DecodeProof(raw)
		if err != nil {
			return wire.BadRequest("relay judge: %v", err)
		}
		re, err := s.relayProofReexecutor(ctx, id, sender, senderKey, p)
		if err != nil {
			return err
		}
		take = func(j *btr.RelayJudge) error { return j.Commission(p, re, now) }
	default:
		return wire.BadRequest("relay judge: want an encoded btr Accusation of your parent, a Rebuttal of an accusation of you, or a ProofOfMisbehaviour against your parent's signed push")
	}
	s.relays.mu.Lock()
	c := s.relays.chains[id]
	if c == nil {
		s.relays.mu.Unlock()
		return wire.NotFound("relay judge: chain %s has no relay trees (not live, or not watched)", id)
	}
	if err := take(c.judge); err != nil {
		s.relays.mu.Unlock()
		return wire.BadRequest("relay judge: %v", err)
	}
	decisions := c.take(now)
	s.relays.mu.Unlock()
	s.actOnRelayDecisions(ctx, id, decisions)
	return nil
}

// take returns the judge's new decisions, keeping its open accusations
// (relays.mu held).
func (c *relayChain) take(now time.Time) []btr.Decision {
	d := c.judge.Decisions()
	for _, x := range d {
		switch x.Kind {
		case btr.Accuse:
			c.open = append(c.open, x.Accusation)
		case btr.Clear:
			if x.Rebuttal != nil {
				c.answered = append(c.answered, wire.RelayJudgeAnswer{Accuser: wire.NodeID(x.Accuser.String()), Rebuttal: x.Rebuttal.Encode()})
				if len(c.answered) > maxAnswersKept {
					c.answered = slices.Delete(c.answered, 0, len(c.answered)-maxAnswersKept)
				}
			}
		}
	}
	c.open = slices.DeleteFunc(c.open, func(a *btr.Accusation) bool { return a.AnswerBy < now.UnixMicro() })
	return d
}

// tickRelayJudges settles every chain's cases past their answer window.
func (s *Service) tickRelayJudges(ctx context.Context, now time.Time) {
	s.relays.mu.Lock()
	all := map[content.VideoID][]btr.Decision{}
	for id, c := range s.relays.chains {
		c.judge.Tick(now)
		if d := c.take(now); len(d) > 0 {
			all[id] = d
		}
	}
	s.relays.mu.Unlock()
	for id, d := range all {
		s.actOnRelayDecisions(ctx, id, d)
	}
}

// RunRelayJudges ticks the relays' judges on the Service's clock until
// ctx is done. The coordinator's Run owns it.
func (s *Service) RunRelayJudges(ctx context.Context) {
	t := time.NewTicker(relayJudgeTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.tickRelayJudges(ctx, s.cfg.Now())
	}
}

// actOnRelayDecisions records every exclusion in the channel log and
// hands the culprit's children and their backups the switch at s*.
// Accusations are served on the judge's route (RelayJudgeCases); a
// cleared case needs nothing more.
func (s *Service) actOnRelayDecisions(ctx context.Context, id content.VideoID, decisions []btr.Decision) {
	for _, d := range decisions {
		switch d.Kind {
		case btr.Accuse:
			s.log.Info("live: relays' judge: accusation upheld, answerable by the accused", "chain", id, "accused", d.Accusation.Accused, "seq", d.Accusation.Segment)
		case btr.Clear:
			s.log.Info("live: relays' judge: the accused answered with its signed push; case cleared", "chain", id, "accused", d.Accusation.Accused, "seq", d.Accusation.Segment, "accuser", d.Accuser)
		case btr.Exclude:
			if err := s.appendRelayExclusion(ctx, id, d.Exclusion, d.SwitchAt); err != nil {
				s.log.Error("live: relays' judge: record exclusion", "chain", id, "culprit", d.Exclusion.Culprit, "err", err)
				continue
			}
			s.excludeRelay(wire.NodeID(d.Exclusion.Culprit.String()), relaySwitch{Chain: id, At: d.SwitchAt})
		}
	}
}

// excludeRelay keeps culprit's switch and asks for a build: until the
// switch segment is published the builds hand its children and their
// backups the switch (applyRelaySwitches), after it they leave it out.
func (s *Service) excludeRelay(culprit wire.NodeID, sw relaySwitch) {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	if _, ok := s.trees.excluded[culprit]; ok {
		return
	}
	s.trees.excluded[culprit] = sw
	s.trees.dirty, s.trees.urgent = true, true
	s.trees.poke()
}

// applyRelaySwitches sets SwitchAt on the routes of every child of a
// culprit whose switch is pending, and From on its backups' standby
// entries for it (treeMu held).
func applyRelaySwitches(routes map[wire.NodeID][]wire.LiveRoute, excluded map[wire.NodeID]relaySwitch) {
	for culprit, sw := range excluded {
		if sw.Done {
			continue
		}
		for _, rs := range routes {
			for i := range rs {
				r := &rs[i]
				if r.Chain != sw.Chain {
					continue
				}
				if r.Parent == culprit && r.BackupParent != "" {
					r.SwitchAt = sw.At
				}
				for k := range r.Standby {
					if r.Standby[k].For == culprit {
						r.Standby[k].From = sw.At
					}
				}
			}
		}
	}
}

// RelayJudgeCases are the chain's relays' judge's open accusations.
func (s *Service) RelayJudgeCases(id content.VideoID) wire.RelayJudgeCases {
	s.relays.mu.Lock()
	defer s.relays.mu.Unlock()
	out := wire.RelayJudgeCases{Judge: wire.NodeID(btr.KeyOf(s.relays.key).String()), Accusations: [][]byte{}, Answered: []wire.RelayJudgeAnswer{}}
	if c := s.relays.chains[id]; c != nil {
		out.Answered = append(out.Answered, c.answered...)
		now := s.cfg.Now().UnixMicro()
		for _, a := range c.open {
			if a.AnswerBy >= now {
				out.Accusations = append(out.Accusations, a.Encode())
			}
		}
	}
	return out
}

func (s *Service) handleRelayStatement(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	sender, body, ok := s.net.RelayNodeRequest(w, r, "relay judge statement", wire.MaxBTRStatementBytes)
	if !ok {
		return
	}
	if err := s.RelayStatement(r.Context(), sender, id, body); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}

func (s *Service) handleRelayJudgeCases(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	wire.WriteJSON(w, s.RelayJudgeCases(id))
}
