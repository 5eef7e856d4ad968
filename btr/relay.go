package btr

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// Relays under BTR (docs/LIVE.md, "Relays under BTR"). Relaying is treated
// as one more replicated, deterministic computation, so it reuses the
// workers' statements unchanged:
//
//   - a parent's signed push is an Output for the task RelayTask(chain,
//     segment, substream, entry) whose Digest is PushDigest of the shards it
//     pushed: relaying substream j of a segment has exactly one correct
//     result (the entry's Merkle roots fix every shard), so a push whose
//     digest is not it is a Commission the ProofOfMisbehaviour proves
//     (re-executing relaying = digesting the verified shards of the
//     substream: any holder of them checks it, RelayReexecutor in fanout),
//     and two different signed pushes for one task are an Equivocation
//     (Check(nil), the two statements alone);
//   - a child's Accusation (Accuser = the child, Kind Omission) says its
//     parent's push of a segment did not arrive by the cadence deadline;
//     the judge (the coordinator, the relays' judge) checks the child is the
//     accused's child in that substream, countersigns its own Accusation
//     (so the Exclusion's evidence is the judge's, exactly as for workers)
//     and the accused answers with a Rebuttal carrying its signed push (the
//     workers' rebuttal form: an in-time answer clears it and is a strike),
//     or with its own accusation of its parent for the same segment and
//     substream (it was starved: the case moves up the tree);
//   - the Exclusion and its switch segment are the workers' (SwitchAt), and
//     every child takes its backup parent from it (ParentPlan.ParentOf).

// relayRecipePrefix starts the Recipe of a relaying task.
const relayRecipePrefix = "relay/substream/"

// RelayTask is the task "relay substream j of segment seq of chain": Input
// is SHA-256 of the segment's signed entry bytes (what the shards verify
// against).
func RelayTask(chain content.VideoID, seq uint64, substream int, entry []byte) Task {
	return Task{Chain: chain, Segment: seq, Recipe: relayRecipePrefix + strconv.Itoa(substream), Input: sha256.Sum256(entry)}
}

// WithRecipe is t with another recipe (to compare tasks up to the
// substream).
func (t Task) WithRecipe(recipe string) Task { t.Recipe = recipe; return t }

// RelaySubstream is the substream of a relaying task (ok false for a
// transcoding task).
func RelaySubstream(t Task) (int, bool) {
	s, found := strings.CutPrefix(t.Recipe, relayRecipePrefix)
	if !found {
		return 0, false
	}
	j, err := strconv.Atoi(s)
	if err != nil || j < 0 || strconv.Itoa(j) != s {
		return 0, false
	}
	return j, true
}

// PushDigest is a push's Output digest: SHA-256 over a domain tag, the
// count and, in (rendition, index) order, each shard's rendition, index
// and the SHA-256 of its message encoding. Every shard is fixed by the
// entry, so the correct push of a substream has one digest.
func PushDigest(shards []*content.ShardMessage) content.Hash {
	type leaf struct {
		r, i int
		h    [32]byte
	}
	leaves := make([]leaf, len(shards))
	for n, sh := range shards {
		leaves[n] = leaf{sh.Rendition, sh.Index, sha256.Sum256(sh.Encode())}
	}
	slices.SortFunc(leaves, func(a, b leaf) int {
		if c := cmp.Compare(a.r, b.r); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	h := sha256.New()
	h.Write([]byte("swarmcast btr push v1\x00"))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(leaves))))
	for _, l := range leaves {
		h.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(l.r)), uint32(l.i)))
		h.Write(l.h[:])
	}
	var out content.Hash
	h.Sum(out[:0])
	return out
}

// SignPush is the parent's signed statement of a push of shards for task.
func SignPush(key ed25519.PrivateKey, task Task, shards []*content.ShardMessage) *Output {
	o := &Output{Task: task, Digest: PushDigest(shards)}
	o.Sign(key)
	return o
}

// RelayConfig configures a RelayJudge for one chain.
type RelayConfig struct {
	Chain  content.VideoID
	Params Params
	// Plans are the chain's substream trees (index = substream) with their
	// backup parents, as the coordinator built them.
	Plans []ParentPlan
	// Judge signs the accusations it upholds and the exclusions.
	Judge ed25519.PrivateKey
	// Keep is how many segments of cases the judge holds (0: 64).
	Keep int
}

// RelayJudge is the relays' judge for one chain (sans-IO: fed statements
// and instants). Decisions: Accuse (send the countersigned accusation to
// the accused), Clear (answered in time), Exclude (append to the channel
// log; every node switches at SwitchAt). Not safe for concurrent use.
type RelayJudge struct {
	cfg      RelayConfig
	judge    NodeKey
	keep     int
	current  uint64
	cases    map[relayCase]*openCase
	excluded map[NodeKey]uint64
	strikes  map[NodeKey][]uint64
	out      []Decision
}

// relayCase is one accused push: the accused did not deliver (seg, sub).
type relayCase struct {
	accused NodeKey
	seg     uint64
	sub     int
}

type openCase struct {
	task    Task
	accuser NodeKey     // the child that accused
	also    []NodeKey   // other children that accused the same push since
	judged  *Accusation // the judge's countersigned accusation
	// upstream is set when the accused answered with its own accusation of
	// its parent: the case waits on the parent's.
	upstream *relayCase
	// reopened: the upstream parent answered late, so this accused got the
	// push late through no fault of its own: its answer is no strike.
	reopened bool
	settled  bool
}

// NewRelayJudge checks the configuration.
func NewRelayJudge(cfg RelayConfig) (*RelayJudge, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Judge) != ed25519.PrivateKeySize {
		return nil, errors.New("btr relay judge: needs the judge's signing key")
	}
	if len(cfg.Plans) == 0 {
		return nil, errors.New("btr relay judge: needs the chain's substream trees")
	}
	keep := cfg.Keep
	if keep <= 0 {
		keep = 64
	}
	return &RelayJudge{cfg: cfg, judge: KeyOf(cfg.Judge), keep: keep, cases: map[relayCase]*openCase{},
		excluded: map[NodeKey]uint64{}, strikes: map[NodeKey][]uint64{}}, nil
}

// SetPlans replaces the chain's substream trees (a rebuild) and keeps what
// the judge learned of the relays: exclusions and strikes (a slow relay's
// late answers count across rebuilds, so its timing exclusion is not
// postponed by every rebuild). Open cases whose accused is no longer the
// accuser's parent there are dropped (the new trees route around them).
func (j *RelayJudge) SetPlans(plans []ParentPlan) error {
	if len(plans) == 0 {
		return errors.New("btr relay judge: needs the chain's substream trees")
	}
	j.cfg.Plans = plans
	for k, c := range j.cases {
		if c.settled {
			continue
		}
		if p, ok := j.ParentOf(c.accuser, k.sub, k.seg); !ok || p != k.accused {
			delete(j.cases, k)
		}
	}
	return nil
}

// Judge is the judge's public key (what Exclusion.Check trusts).
func (j *RelayJudge) Judge() NodeKey { return j.judge }

// Decisions returns and clears the decisions taken since the last call.
func (j *RelayJudge) Decisions() []Decision {
	out := j.out
	j.out = nil
	return out
}

// Excluded reports a node's switch segment if it is excluded.
func (j *RelayJudge) Excluded(k NodeKey) (uint64, bool) { s, ok := j.excluded[k]; return s, ok }

// Open records that segment seq is published (the newest one is an
// exclusion's Current) and forgets cases Keep segments old.
func (j *RelayJudge) Open(seq uint64) {
	j.current = max(j.current, seq)
	for c := range j.cases {
		if c.seg+uint64(j.keep) < j.current {
			delete(j.cases, c)
		}
	}
}

// excludedAt is the configuration of segment seg.
func (j *RelayJudge) excludedAt(seg uint64) func(NodeKey) bool {
	return func(k NodeKey) bool { s, ok := j.excluded[k]; return ok && s <= seg }
}

// ParentOf is child's parent in substream sub for segment seg, as the log
// makes it.
func (j *RelayJudge) ParentOf(child NodeKey, sub int, seg uint64) (NodeKey, bool) {
	if sub < 0 || sub >= len(j.cfg.Plans) {
		return NodeKey{}, false
	}
	return j.cfg.Plans[sub].ParentOf(child, j.excludedAt(seg))
}

// Accuse takes a child's signed omission accusation of its parent. It is
// refused (nothing changes) unless it is a relaying task of this chain and
// the accused is the accuser's parent in that substream for that segment.
// A new case gets the judge's countersigned accusation (Decision Accuse)
// answerable until now + AnswerWindow. Re-accusing an open case is a no-op.
func (j *RelayJudge) Accuse(a *Accusation, now time.Time) error {
	sub, err := j.checkAccusation(a)
	if err != nil {
		return err
	}
	key := relayCase{a.Accused, a.Segment, sub}
	if _, out := j.excluded[a.Accused]; out {
		// Already out: its children switch at its switch segment, and
		// the accuser, starved by it, is excused for this push.
		j.waitOnUpstream(a.Accuser, key)
		return nil
	}
	if c, open := j.cases[key]; open {
		// Another child of the same parent (or the same one again): its
		// own case, if its children accused it, waits on this one too.
		if c.accuser != a.Accuser && !slices.Contains(c.also, a.Accuser) {
			c.also = append(c.also, a.Accuser)
		}
		j.waitOnUpstream(a.Accuser, key)
		return nil
	}
	judged := &Accusation{Task: a.Task, Accused: a.Accused, Kind: Omission, AnswerBy: now.Add(j.cfg.Params.AnswerWindow).UnixMicro()}
	judged.Sign(j.cfg.Judge)
	c := &openCase{task: a.Task, accuser: a.Accuser, judged: judged}
	// The accused may have accused its own parent of this push before
	// its child accused it (the upstream child notices first), or that
	// parent may be out already: then it was starved, and its case waits
	// on the parent's from the start.
	if p, ok := j.ParentOf(a.Accused, sub, a.Segment); ok {
		upKey := relayCase{p, a.Segment, sub}
		_, parentOut := j.excluded[p]
		if up, ok := j.cases[upKey]; parentOut || (ok && (up.accuser == a.Accused || slices.Contains(up.also, a.Accused))) {
			c.upstream = &upKey
		}
	}
	j.cases[key] = c
	j.emit(Decision{Kind: Accuse, Segment: a.Segment, At: now, Accusation: judged})
	j.waitOnUpstream(a.Accuser, key)
	return nil
}

// waitOnUpstream makes accuser's own case for the push of upKey (its
// children accused it of the same segment and substream) wait on upKey's:
// it answered by accusing upstream. In whichever order the two
// accusations arrive, and whichever of the parent's children accused it
// first, a starved relay is not excluded for its parent's omission.
func (j *RelayJudge) waitOnUpstream(accuser NodeKey, upKey relayCase) {
	if down, ok := j.cases[relayCase{accuser, upKey.seg, upKey.sub}]; ok && !down.settled && down.upstream == nil {
		down.upstream = &upKey
	}
}

func (j *RelayJudge) checkAccusation(a *Accusation) (int, error) {
	if err := a.Check(); err != nil {
		return 0, err
	}
	if a.Chain != j.cfg.Chain {
		return 0, fmt.Errorf("relay accusation for chain %s, this judge is %s's", a.Chain, j.cfg.Chain)
	}
	sub, ok := RelaySubstream(a.Task)
	if !ok || sub >= len(j.cfg.Plans) {
		return 0, fmt.Errorf("relay accusation: %q is not a relaying task of one of the chain's %d substreams", a.Recipe, len(j.cfg.Plans))
	}
	if a.Kind != Omission {
		return 0, fmt.Errorf("relay accusation: kind %s; a child accuses omission (timing is the judge's count of late answers)", a.Kind)
	}
	if p, ok := j.ParentOf(a.Accuser, sub, a.Segment); !ok || p != a.Accused {
		return 0, fmt.Errorf("relay accusation: %s is not %s's parent in substream %d at segment %d", a.Accused, a.Accuser, sub, a.Segment)
	}
	return sub, nil
}

// Rebut takes the accused's answer: the judge's accusation and the
// accused's signed push for the task (the driver delivers the push to the
// accuser). In time (now ≤ AnswerBy) it clears the case and is a strike:
// StrikeLimit within StrikeWindow segments exclude for timing. A push
// whose digest is not the correct one is still an answer; the accuser's
// commission proof deals with it.
func (j *RelayJudge) Rebut(r *Rebuttal, now time.Time) error {
	if err := r.CheckInTime(now.UnixMicro()); err != nil {
		return err
	}
	if r.Accusation.Accuser != j.judge {
		return errors.New("relay rebuttal: answers an accusation this judge did not sign")
	}
	sub, ok := RelaySubstream(r.Accusation.Task)
	if !ok {
		return errors.New("relay rebuttal: not a relaying task")
	}
	c, ok := j.cases[relayCase{r.Output.Replica, r.Output.Segment, sub}]
	if !ok || c.settled || !bytes.Equal(c.judged.Signature, r.Accusation.Signature) {
		return errors.New("relay rebuttal: no open case for this accusation")
	}
	c.settled = true
	j.emit(Decision{Kind: Clear, Segment: r.Output.Segment, At: now, Accusation: r.Accusation, Rebuttal: r, Accuser: c.accuser})
	if !c.reopened {
		j.strike(r.Output.Replica, c, now)
	}
	return nil
}

// Commission takes a proof against a parent's signed push (checked with
// re, which re-digests the substream's verified shards) and excludes it.
func (j *RelayJudge) Commission(p *ProofOfMisbehaviour, re Reexecutor, now time.Time) error {
	if p.A == nil || p.A.Chain != j.cfg.Chain {
		return errors.New("relay proof: not about this chain")
	}
	if _, ok := RelaySubstream(p.A.Task); !ok {
		return errors.New("relay proof: not a relaying task")
	}
	if err := p.Check(re); err != nil {
		return err
	}
	j.exclude(p.Culprit(), p.Kind, p, nil, now)
	return nil
}

// Tick settles the cases past their answer deadline: one whose accused
// answered by accusing upstream follows the upstream case (dismissed when
// the parent is excluded; when the parent answered, the accused holds the
// push and gets a fresh window); an unanswered one excludes the accused for
// omission.
func (j *RelayJudge) Tick(now time.Time) {
	keys := make([]relayCase, 0, len(j.cases))
	for k := range j.cases {
		keys = append(keys, k)
	}
	// Upstream cases first (a parent's settles before its child's).
	slices.SortFunc(keys, func(a, b relayCase) int {
		if c := cmp.Compare(a.seg, b.seg); c != 0 {
			return c
		}
		if c := cmp.Compare(a.sub, b.sub); c != 0 {
			return c
		}
		return compareKeys(a.accused, b.accused)
	})
	for changed := true; changed; {
		changed = false
		for _, k := range keys {
			c := j.cases[k]
			if c == nil || c.settled {
				continue
			}
			if _, out := j.excluded[k.accused]; out {
				c.settled, changed = true, true
				continue
			}
			if c.upstream != nil {
				up := j.cases[*c.upstream]
				_, upOut := j.excluded[c.upstream.accused]
				switch {
				case upOut:
					c.settled, changed = true, true // starved by an excluded parent
				case up != nil && up.settled:
					// The parent answered: the accused holds the push now
					// and must pass it on within a fresh window.
					c.upstream, c.reopened = nil, true
					c.judged = &Accusation{Task: c.task, Accused: k.accused, Kind: Omission, AnswerBy: now.Add(j.cfg.Params.AnswerWindow).UnixMicro()}
					c.judged.Sign(j.cfg.Judge)
					j.emit(Decision{Kind: Accuse, Segment: k.seg, At: now, Accusation: c.judged})
					changed = true
				}
				continue
			}
			if now.UnixMicro() > c.judged.AnswerBy {
				c.settled, changed = true, true
				j.exclude(k.accused, Omission, nil, c.judged, now)
			}
		}
	}
}

func (j *RelayJudge) strike(r NodeKey, c *openCase, now time.Time) {
	t := j.cfg.Params
	seg := c.task.Segment
	kept := j.strikes[r][:0]
	for _, s := range j.strikes[r] {
		if s+uint64(t.StrikeWindow) > seg {
			kept = append(kept, s)
		}
	}
	kept = append(kept, seg)
	j.strikes[r] = kept
	if len(kept) >= t.StrikeLimit {
		a := &Accusation{Task: c.task, Accused: r, Kind: Timing, AnswerBy: now.UnixMicro()}
		a.Sign(j.cfg.Judge)
		j.exclude(r, Timing, nil, a, now)
	}
}

func (j *RelayJudge) exclude(r NodeKey, kind FaultKind, proof *ProofOfMisbehaviour, acc *Accusation, now time.Time) {
	if _, out := j.excluded[r]; out {
		return
	}
	x := &Exclusion{Chain: j.cfg.Chain, Culprit: r, Kind: kind, Current: j.current}
	if proof != nil {
		x.Evidence = proof.Encode()
	} else {
		x.Evidence = acc.Encode()
	}
	x.Sign(j.cfg.Judge)
	s := x.SwitchAt(j.cfg.Params)
	j.excluded[r] = s
	delete(j.strikes, r)
	j.emit(Decision{Kind: Exclude, Segment: j.current, At: now, Exclusion: x, Proof: proof, SwitchAt: s})
}

func (j *RelayJudge) emit(d Decision) { j.out = append(j.out, d) }
