package live

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// The BTR channel log (docs/LIVE.md, "BTR"): each chain's judge (the
// origin that publishes it) posts its accusations and exclusions; the
// coordinator records one only after it checked it against the judge's key
// and its evidence, and anyone reads the log to derive the chain's
// configuration (btr.View). Durable (migration 009, append-only).

// btrLogs holds every chain's log. mu serialises appends around their
// store write (appends are rare: one per fault) and is never taken with
// Service.mu held.
type btrLogs struct {
	mu         sync.Mutex
	chains     map[content.VideoID]*btrChainLog
	lastSettle time.Time // SettleDue's last run (btrpay.go)
}

type btrChainLog struct {
	raw      [][]byte
	excluded []wire.BTRExcludedNode
	rebutted map[string]bool // accusations (btr.EvidenceID) answered by a recorded rebuttal (btrpay.go)
}

func (l *btrLogs) chainLocked(id content.VideoID) *btrChainLog {
	if l.chains == nil {
		l.chains = map[content.VideoID]*btrChainLog{}
	}
	c := l.chains[id]
	if c == nil {
		c = &btrChainLog{}
		l.chains[id] = c
	}
	return c
}

// btrStatement is a checked statement: its kind and culprit.
type btrStatement struct {
	kind       string // "accusation", "exclusion" or "rebuttal"
	culprit    btr.NodeKey
	x          *btr.Exclusion
	accusation string // a rebuttal's accusation (btr.EvidenceID)
	// switchAt is a relay exclusion's s* (0 for a worker's).
	switchAt uint64
}

// checkBTRStatement decodes raw and checks it is the judge's statement
// about this chain: an exclusion whose Check passes against the judge's
// key (its evidence names the culprit and verifies), or an accusation
// signed by the judge.
func checkBTRStatement(raw []byte, chain content.VideoID, judge btr.NodeKey) (btrStatement, error) {
	switch {
	case bytes.HasPrefix(raw, []byte("SCBX")):
		x, err := btr.DecodeExclusion(raw)
		if err != nil {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: %v", err)
		}
		if x.Chain != chain {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: the exclusion is for chain %s, posted to %s", x.Chain, chain)
		}
		if err := x.Check(judge, nil); err != nil {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: exclusion refused: %v", err)
		}
		return btrStatement{kind: "exclusion", culprit: x.Culprit, x: x}, nil
	case bytes.HasPrefix(raw, []byte("SCBA")):
		a, err := btr.DecodeAccusation(raw)
		if err != nil {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: %v", err)
		}
		if a.Chain != chain {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: the accusation is for chain %s, posted to %s", a.Chain, chain)
		}
		if a.Accuser != judge {
			return btrStatement{}, wire.Errorf(http.StatusForbidden, "btr log: the accusation is signed by %s, not by the chain's judge %s", a.Accuser, judge)
		}
		return btrStatement{kind: "accusation", culprit: a.Accused}, nil
	case bytes.HasPrefix(raw, []byte("SCBR")):
		// Only loadBTR meets one here: rebuttals arrive from the accused
		// (AppendRebuttal, which also checked their timeliness).
		r, err := btr.DecodeRebuttal(raw)
		if err != nil {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: %v", err)
		}
		if r.Accusation.Chain != chain || r.Accusation.Accuser != judge {
			return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: the rebuttal answers an accusation of chain %s by %s", r.Accusation.Chain, r.Accusation.Accuser)
		}
		return btrStatement{kind: "rebuttal", culprit: r.Accusation.Accused, accusation: btr.EvidenceID(r.Accusation.Encode())}, nil
	}
	return btrStatement{}, wire.Errorf(http.StatusBadRequest, "btr log: want an encoded btr Accusation or Exclusion (origin/worker posts them)")
}

// AppendBTR checks a statement the chain's origin posts and appends it to
// the chain's log. Re-posting a recorded statement, or another exclusion
// of an excluded worker (the first one stands: exclusion is permanent),
// changes nothing and succeeds.
func (s *Service) AppendBTR(ctx context.Context, origin wire.NodeID, id content.VideoID, raw []byte) error {
	s.mu.Lock()
	ch := s.chains[id]
	var publisher wire.NodeID
	if ch != nil {
		publisher = ch.rec.Origin
	}
	s.mu.Unlock()
	if ch == nil {
		return wire.NotFound("live chain %s is not registered", id)
	}
	if publisher != origin {
		return wire.Errorf(http.StatusForbidden, "btr log: live chain %s is judged by its origin %s, not %s", id, publisher, origin)
	}
	judge, err := btr.ParseNodeKey(string(origin))
	if err != nil {
		return wire.Errorf(http.StatusBadRequest, "btr log: %v", err)
	}
	st, err := checkBTRStatement(raw, id, judge)
	if err != nil {
		return err
	}
	if st.kind == "rebuttal" {
		return wire.BadRequest("btr log: a rebuttal is the accused worker's to post (POST %s)", wire.PathBTRRebuttal)
	}
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	c := s.btr.chainLocked(id)
	for _, have := range c.raw {
		if bytes.Equal(have, raw) {
			return nil
		}
	}
	if st.x != nil {
		for _, e := range c.excluded {
			if e.Node == wire.NodeID(st.culprit.String()) {
				return nil
			}
		}
	}
	if st.x != nil && c.rebuttedLocked(st.x) {
		return wire.Errorf(http.StatusConflict, "btr log: worker %s rebutted the accusation this %s exclusion rests on (its signed output came in time): not excluded", st.culprit, st.x.Kind)
	}
	rec := coordinatordb.LiveBTRStatement{Chain: id, Seq: uint64(len(c.raw)), Kind: st.kind, Culprit: st.culprit.String(), Statement: bytes.Clone(raw)}
	if s.db != nil {
		if err := s.db.AppendLiveBTR(ctx, rec, s.cfg.Now()); err != nil {
			return fmt.Errorf("btr log: store: %w", err)
		}
	}
	c.add(rec.Statement, st)
	if st.x != nil {
		s.forfeitLocked(ctx, st.x, rec.Statement)
		s.log.Warn("btr: worker excluded", "chain", id, "worker", st.culprit, "kind", st.x.Kind, "current", st.x.Current)
	}
	return nil
}

// btrRelayExclusion is the stored kind of the relays' judge's exclusions:
// checked against the judge key stored with them (Judge, migration 013),
// not against the chain's origin.
const btrRelayExclusion = "relay-exclusion"

// appendRelayExclusion appends the relays' judge's exclusion (signed with
// the coordinator's key, checked like any other before it is written) to
// the chain's log. The first exclusion of a node stands.
func (s *Service) appendRelayExclusion(ctx context.Context, id content.VideoID, x *btr.Exclusion, switchAt uint64) error {
	judge := btr.KeyOf(s.relays.key)
	raw := x.Encode()
	st, err := checkBTRStatement(raw, id, judge)
	if err != nil {
		return err
	}
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	c := s.btr.chainLocked(id)
	for _, e := range c.excluded {
		if e.Node == wire.NodeID(st.culprit.String()) {
			return nil
		}
	}
	rec := coordinatordb.LiveBTRStatement{Chain: id, Seq: uint64(len(c.raw)), Kind: btrRelayExclusion, Culprit: st.culprit.String(), Statement: raw, Judge: judge.String()}
	if s.db != nil {
		if err := s.db.AppendLiveBTR(ctx, rec, s.cfg.Now()); err != nil {
			return fmt.Errorf("btr log: store: %w", err)
		}
	}
	st.switchAt = switchAt
	c.add(raw, st)
	s.log.Warn("btr: relay excluded by the relays' judge", "chain", id, "relay", st.culprit, "kind", x.Kind, "current", x.Current, "switch_at", switchAt)
	return nil
}

func (c *btrChainLog) add(raw []byte, st btrStatement) {
	c.raw = append(c.raw, raw)
	if st.kind == "rebuttal" {
		if c.rebutted == nil {
			c.rebutted = map[string]bool{}
		}
		c.rebutted[st.accusation] = true
	}
	if st.x != nil {
		c.excluded = append(c.excluded, wire.BTRExcludedNode{Node: wire.NodeID(st.culprit.String()), Kind: st.x.Kind.String(), Current: st.x.Current, SwitchAt: st.switchAt})
	}
}

// BTRLog is a chain's log (empty for a chain without faults).
func (s *Service) BTRLog(id content.VideoID) (wire.BTRLog, error) {
	s.mu.Lock()
	known := s.chains[id] != nil
	s.mu.Unlock()
	if !known {
		return wire.BTRLog{}, wire.NotFound("live chain %s is not registered", id)
	}
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	out := wire.BTRLog{Statements: [][]byte{}, Excluded: []wire.BTRExcludedNode{}, RelayJudge: wire.NodeID(btr.KeyOf(s.relays.key).String())}
	if c := s.btr.chains[id]; c != nil {
		out.Statements = append(out.Statements, c.raw...)
		out.Excluded = append(out.Excluded, c.excluded...)
	}
	return out, nil
}

// loadBTR reads the logs back, checking each statement again against its
// chain's judge.
func (s *Service) loadBTR(ctx context.Context) error {
	recs, err := s.db.LiveBTRLog(ctx)
	if err != nil {
		return fmt.Errorf("live: load btr log: %w", err)
	}
	// A relay the relays' judge excluded stays out of every build after a
	// restart (its switch segment is long past).
	relaysOut := map[wire.NodeID]relaySwitch{}
	defer func() {
		s.treeMu.Lock()
		maps.Copy(s.trees.excluded, relaysOut)
		s.treeMu.Unlock()
	}()
	s.btr.mu.Lock()
	defer s.btr.mu.Unlock()
	for _, rec := range recs {
		s.mu.Lock()
		ch := s.chains[rec.Chain]
		s.mu.Unlock()
		if ch == nil {
			return fmt.Errorf("live: btr log of unknown chain %s", rec.Chain)
		}
		judgeID := string(ch.rec.Origin)
		if rec.Kind == btrRelayExclusion {
			judgeID = rec.Judge
		}
		judge, err := btr.ParseNodeKey(judgeID)
		if err != nil {
			return fmt.Errorf("live: chain %s: stored btr statement %d: judge: %w", rec.Chain, rec.Seq, err)
		}
		st, err := checkBTRStatement(rec.Statement, rec.Chain, judge)
		if err != nil {
			return fmt.Errorf("live: chain %s: stored btr statement %d: %w", rec.Chain, rec.Seq, err)
		}
		if rec.Kind == btrRelayExclusion && st.x != nil {
			st.switchAt = st.x.SwitchAt(relayParams(time.Duration(ch.genesis.TargetDuration) * time.Microsecond))
			relaysOut[wire.NodeID(st.culprit.String())] = relaySwitch{Chain: rec.Chain, At: st.switchAt, Done: true}
		}
		s.btr.chainLocked(rec.Chain).add(rec.Statement, st)
		if st.x != nil {
			s.forfeitLocked(ctx, st.x, rec.Statement)
		}
	}
	return nil
}

func (s *Service) handleBTRAppend(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	origin, body, ok := s.net.OriginRequest(w, r, "btr statement", wire.MaxBTRStatementBytes)
	if !ok {
		return
	}
	if err := s.AppendBTR(r.Context(), origin, id, body); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}

func (s *Service) handleBTRLog(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	log, err := s.BTRLog(id)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, log)
}
