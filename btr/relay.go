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
	// F is the most Byzantine nodes the chain's trees hold (relays and
	// lying children together; 0: 1). A timing exclusion needs late
	// answers to the accusations of min(F+1, children) distinct children
	// of the accused: at most F of them lie, so an honest relay with one
	// honest child is never excluded by lying children, and a slow relay
	// is late to all of its children at once.
	F int
	// RouteLead is how many segments after the judge's newest (Current) a
	// rebuild's new routes take effect (0: Params.SwitchLead, the Δ every
	// node needs to hold a signed statement and switch): a relay rerouted
	// by SetPlans is excused for the segments before it, and a child may
	// accuse its new parent only from it on.
	RouteLead int
	// RoutesFrom is the first segment the Plans' routes hold for (0: every
	// segment): a judge made while a chain is already running (its
	// predecessor dropped when a build had no trees for the chain) judges
	// no push from before its trees.
	RoutesFrom uint64
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
	strikes  map[NodeKey][]*openCase // the answered cases that struck, oldest first
	// routeFrom is the first segment of each child's route in a substream
	// since the last rebuild that changed it (absent: the trees the judge
	// started with). Before it the child's parent was another (or none):
	// the new parent is not accused of those segments, and the child and
	// every relay below it are excused for them (it was starved, its old
	// parent gone).
	routeFrom map[routeKey]uint64
	out       []Decision
}

type routeKey struct {
	child NodeKey
	sub   int
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
	struck   bool      // its in-time answer counted as a strike
	answer   *Rebuttal // the in-time answer that settled it
	// excused: settled without a decision, the accused was starved by a
	// rebuild (its route, or an ancestor's, started after the segment) or
	// by a parent whose case a rebuild dropped. Cases waiting on it are
	// excused too.
	excused bool
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
	if cfg.F <= 0 {
		cfg.F = 1
	}
	if cfg.RouteLead <= 0 {
		cfg.RouteLead = cfg.Params.SwitchLead()
	}
	j := &RelayJudge{cfg: cfg, judge: KeyOf(cfg.Judge), keep: keep, cases: map[relayCase]*openCase{},
		excluded: map[NodeKey]uint64{}, strikes: map[NodeKey][]*openCase{}, routeFrom: map[routeKey]uint64{}}
	if cfg.RoutesFrom > 0 {
		for sub, p := range cfg.Plans {
			for child := range p.Parent {
				j.routeFrom[routeKey{child, sub}] = cfg.RoutesFrom
			}
		}
	}
	return j, nil
}

// SetPlans replaces the chain's substream trees (a rebuild) and keeps what
// the judge learned of the relays: exclusions and strikes (a slow relay's
// late answers count across rebuilds, so its timing exclusion is not
// postponed by every rebuild). Open cases whose accused is no longer the
// accuser's parent there are dropped (the new trees route around them),
// and the cases waiting on a dropped one are excused (their accused was
// starved by it). Every child whose parent the new trees change gets a
// route from Current + RouteLead (RouteFrom): the rebuild takes effect at
// that agreed segment, as an exclusion's switch does.
func (j *RelayJudge) SetPlans(plans []ParentPlan) error {
	if len(plans) == 0 {
		return errors.New("btr relay judge: needs the chain's substream trees")
	}
	from := j.current + uint64(j.cfg.RouteLead)
	// A route is compared at the newest segment and at every pending
	// switch: a rebuild that removes a culprit's backup changes the routes
	// from its switch on.
	at := []uint64{j.current}
	for _, s := range j.excluded {
		if s > j.current {
			at = append(at, s)
		}
	}
	for sub, np := range plans {
		for child := range np.Parent {
			for _, seg := range at {
				out := j.excludedAt(seg)
				newP, _ := np.ParentOf(child, out)
				var oldP NodeKey
				ok := false
				if sub < len(j.cfg.Plans) {
					oldP, ok = j.cfg.Plans[sub].ParentOf(child, out)
				}
				if !ok || oldP != newP {
					rk := routeKey{child, sub}
					j.routeFrom[rk] = max(j.routeFrom[rk], from)
					break
				}
			}
		}
	}
	j.cfg.Plans = plans
	dropped := map[relayCase]bool{}
	for k, c := range j.cases {
		if c.settled {
			continue
		}
		if p, ok := j.ParentOf(c.accuser, k.sub, k.seg); !ok || p != k.accused {
			// Kept as excused: a case linked to it later is excused too.
			c.settled, c.excused = true, true
			dropped[k] = true
		}
	}
	for _, c := range j.cases {
		if !c.settled && c.upstream != nil && dropped[*c.upstream] {
			c.settled, c.excused = true, true
		}
	}
	return nil
}

// RouteFrom is the first segment of child's route in substream sub since
// the last rebuild that changed its parent (0: its route is the first
// trees').
func (j *RelayJudge) RouteFrom(child NodeKey, sub int) uint64 {
	return j.routeFrom[routeKey{child, sub}]
}

// starvedByRebuild reports whether node, or an ancestor of it in sub for
// seg, had its route start after seg: a rebuild moved it, and until its new
// route took effect nothing reached it or the relays below it.
func (j *RelayJudge) starvedByRebuild(node NodeKey, sub int, seg uint64) bool {
	n := node
	for range len(j.cfg.Plans[sub].Parent) + 1 {
		if seg < j.routeFrom[routeKey{n, sub}] {
			return true
		}
		p, ok := j.ParentOf(n, sub, seg)
		if !ok {
			return false
		}
		n = p
	}
	return false
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
	if from := j.routeFrom[routeKey{a.Accuser, sub}]; a.Segment < from {
		return fmt.Errorf("relay accusation: %s's route under %s in substream %d starts at segment %d (a rebuild), not %d: a parent is accused only of segments of its route", a.Accuser, a.Accused, sub, from, a.Segment)
	}
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
			if c.answer != nil {
				// Answered already: this child is handed the push too.
				j.emit(Decision{Kind: Clear, Segment: a.Segment, At: now, Accusation: c.answer.Accusation, Rebuttal: c.answer, Accuser: a.Accuser})
			}
			if c.struck {
				// A later accuser of a push answered late: one more
				// child saw it late.
				j.checkStrikes(a.Accused, c, now)
			}
		}
		j.waitOnUpstream(a.Accuser, key)
		return nil
	}
	if j.starvedByRebuild(a.Accused, sub, a.Segment) {
		// A rebuild moved the accused (or a relay above it) and its new
		// route starts after this segment: it had nothing to pass on.
		j.cases[key] = &openCase{task: a.Task, accuser: a.Accuser, settled: true, excused: true}
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
			if !parentOut && up.excused {
				c.settled, c.excused = true, true // starved by a starved parent
			}
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
		if up := j.cases[upKey]; up != nil && up.excused {
			down.settled, down.excused = true, true
		}
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
	if !ok || c.settled || c.judged == nil || !bytes.Equal(c.judged.Signature, r.Accusation.Signature) {
		return errors.New("relay rebuttal: no open case for this accusation")
	}
	c.settled, c.answer = true, r
	// One Clear per child that accused this push: each is handed the
	// push (a starved relay among them must pass it on in its fresh
	// window, so the first accuser alone is not enough).
	for _, by := range append([]NodeKey{c.accuser}, c.also...) {
		j.emit(Decision{Kind: Clear, Segment: r.Output.Segment, At: now, Accusation: r.Accusation, Rebuttal: r, Accuser: by})
	}
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
// the parent is excluded or its case excused; when the parent answered, the
// accused holds the push and gets a fresh window); an unanswered one
// excludes the accused for omission unless its parent is out or accused of
// the same push (then it waits on the parent's case as above).
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
				case up == nil || up.excused:
					// The parent's case was dropped by a rebuild (or
					// forgotten): the accused was starved by a parent the
					// trees no longer have; it is not timed out for it.
					c.settled, c.excused, changed = true, true, true
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
				// Before excluding: was the accused starved? Its parent for
				// the push is out, or is accused of the same push by
				// another child (the accused's own accusation of it may
				// not have reached the judge: a killed parent's
				// connection can hold a relay's watch past the window).
				// Then the case waits on the parent's, as if the accused
				// had accused it: answered there, it gets a fresh window.
				if p, ok := j.ParentOf(k.accused, k.sub, k.seg); ok && !c.reopened {
					upKey := relayCase{p, k.seg, k.sub}
					_, parentOut := j.excluded[p]
					if up := j.cases[upKey]; parentOut || (up != nil && (!up.settled || up.excused)) {
						c.upstream, changed = &upKey, true
						continue
					}
				}
				c.settled, changed = true, true
				j.exclude(k.accused, Omission, nil, c.judged, now)
			}
		}
	}
}

// strike records an answered (late) push of r's and excludes r for timing
// when StrikeLimit of them fall within StrikeWindow segments and were
// accused by min(F+1, r's children) distinct children: at most F children
// lie, so lies alone never add up against a relay with an honest child.
func (j *RelayJudge) strike(r NodeKey, c *openCase, now time.Time) {
	t := j.cfg.Params
	seg := c.task.Segment
	kept := j.strikes[r][:0]
	for _, s := range j.strikes[r] {
		if s.task.Segment+uint64(t.StrikeWindow) > seg {
			kept = append(kept, s)
		}
	}
	c.struck = true
	j.strikes[r] = append(kept, c)
	j.checkStrikes(r, c, now)
}

func (j *RelayJudge) checkStrikes(r NodeKey, c *openCase, now time.Time) {
	t := j.cfg.Params
	kept := j.strikes[r]
	if len(kept) < t.StrikeLimit {
		return
	}
	accusers := map[NodeKey]bool{}
	for _, s := range kept {
		accusers[s.accuser] = true
		for _, a := range s.also {
			accusers[a] = true
		}
	}
	if len(accusers) < min(j.cfg.F+1, j.children(r)) {
		return
	}
	a := &Accusation{Task: c.task, Accused: r, Kind: Timing, AnswerBy: now.UnixMicro()}
	a.Sign(j.cfg.Judge)
	j.exclude(r, Timing, nil, a, now)
}

// children is the number of distinct children r has in the chain's trees
// at the newest segment (at least 1: it was accused by one).
func (j *RelayJudge) children(r NodeKey) int {
	out := j.excludedAt(j.current)
	kids := map[NodeKey]bool{}
	for _, p := range j.cfg.Plans {
		for child := range p.Parent {
			if parent, ok := p.ParentOf(child, out); ok && parent == r && !out(child) {
				kids[child] = true
			}
		}
	}
	return max(1, len(kids))
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
