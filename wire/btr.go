package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/content"
)

// BTR (bounded-time recovery, docs/LIVE.md "BTR"): the judge (the origin
// that cut a live source segment) hands the segment's ladder transcode to
// f+1 workers and accepts it only when every assigned worker signed the
// same digest.

// RoleWorker is a BTR worker: it runs origin/live's pinned ladder recipe on
// source segments it is handed by the origins it allows, and signs what it
// produced (a btr.Output).
const RoleWorker Role = "worker"

const (
	// POST BTRTask → BTRTaskResult (on a worker; signed by the judge's
	// node key, and only from the origins the worker allows): transcode
	// this source segment with this recipe and sign the ladder's digest.
	PathBTRTask = "/v1/btr/task"
	// GET → BTRWorkerInfo (on a worker): its node id, so a judge can name
	// it in the chain's standby plan before it hands it anything.
	PathBTRWorker = "/v1/btr/worker"
	// POST one encoded btr statement (an Accusation or an Exclusion) → {}
	// (on the coordinator; signed by the origin that publishes the chain,
	// which is the chain's judge): the coordinator checks it against the
	// judge's key and the evidence (Exclusion.Check) before it appends it
	// to the chain's channel log. GET → BTRLog (anyone).
	PathBTRLog = "/api/v1/live/chains/{chain}/btr"
	// POST one encoded btr.Output → 204 (on the origin that judges the
	// chain; anyone may post): a signed output someone holds for one of
	// the judge's tasks (BTRTask.Forward names where). The statement
	// authenticates itself (the replica's signature, its task open at the
	// judge, the replica assigned to it): a forged, unassigned or unknown
	// one is refused with 400 and changes nothing. It is how a worker that
	// signed different digests for different parties (equivocation) is
	// caught: the second statement reaches the judge.
	PathBTRForward = "/v1/btr/forward"
	// POST one encoded btr statement → {} (on the coordinator, the relays'
	// judge; a signed node request from a registered relay or edge, see
	// docs/LIVE.md "Relays under BTR"): a btr.Accusation the sender signed
	// of its parent in one substream (a relaying task, btr.RelayTask), or a
	// btr.Rebuttal an accused parent signed, answering the judge's
	// countersigned accusation with its signed push, or a
	// btr.ProofOfMisbehaviour against a parent's signed push (commission:
	// the judge re-digests the substream from the origin's shards; or
	// equivocation), which excludes the culprit at once. A statement not
	// signed by the sender, an accusation of a node that is not the
	// sender's parent for that segment, a proof the judge's own check
	// refutes, or a forged signature is refused (400/403) and changes
	// nothing. GET → RelayJudgeCases (anyone): the judge's open accusations
	// of the chain, which the accused answer, and the answers it took.
	PathRelayJudge = "/api/v1/live/chains/{chain}/relay-judge"
)

// RelayJudgeCases are the relays' judge's open accusations of a chain
// (each an encoded btr.Accusation the judge signed, answerable until its
// AnswerBy) and its key (what relay exclusions in the channel log verify
// against).
type RelayJudgeCases struct {
	Judge       NodeID   `json:"judge"`
	Accusations [][]byte `json:"accusations"`
	// Answered are the rebuttals that cleared cases (newest last, a
	// bounded recent few): the accused's signed push for the accuser, who
	// fetches the substream's shards from the accused (its window) and
	// holds the statement against it if they do not match.
	Answered []RelayJudgeAnswer `json:"answered"`
}

// RelayJudgeAnswer is one cleared case: the child that accused, and the
// encoded btr.Rebuttal (the judge's accusation and the accused's signed
// push) that answered it.
type RelayJudgeAnswer struct {
	Accuser  NodeID `json:"accuser"`
	Rebuttal []byte `json:"rebuttal"`
}

// PostRelayStatement posts a relay's or edge's accusation of its parent,
// or an accused parent's rebuttal, to the relays' judge (signed: a client
// made with AsNode).
func (c *CoordinatorClient) PostRelayStatement(ctx context.Context, chain content.VideoID, statement []byte) error {
	resp, err := c.sendBytes(ctx, http.MethodPost, expandPath(PathRelayJudge, chain.String()), nil, true, "application/octet-stream", statement)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// RelayJudgeCases reads the relays' judge's open accusations of chain.
func (c *CoordinatorClient) RelayJudgeCases(ctx context.Context, chain content.VideoID) (RelayJudgeCases, error) {
	var out RelayJudgeCases
	err := c.do(ctx, http.MethodGet, expandPath(PathRelayJudge, chain.String()), nil, &out)
	return out, err
}

// MaxBTRStatementBytes bounds one statement posted to the channel log.
const MaxBTRStatementBytes = 16 << 10

// BTRLog is a chain's channel log: every statement in the order the
// coordinator recorded it, and the workers excluded so far (node ids, with
// the segment each switches out at and why).
type BTRLog struct {
	Statements [][]byte          `json:"statements"`
	Excluded   []BTRExcludedNode `json:"excluded"`
	// RelayJudge is the coordinator's key as the relays' judge: a relay's
	// exclusion (its Kind's node is a relay or an edge) verifies against
	// it (btr.Exclusion.Check), a worker's against the chain's origin.
	RelayJudge NodeID `json:"relay_judge,omitempty"`
}

// BTRExcludedNode is one exclusion of the log, summarised.
type BTRExcludedNode struct {
	Node    NodeID `json:"node"`
	Kind    string `json:"kind"`    // commission, equivocation, omission, timing
	Current uint64 `json:"current"` // the segment the judge decided it at
	// SwitchAt is the segment from which the node's children take their
	// backup parents (relay exclusions; 0 for workers').
	SwitchAt uint64 `json:"switch_at,omitempty"`
}

// MaxBTRTaskBytes bounds a task body: one source segment (a few seconds of
// a 1080p source is well under 8 MiB) in base64 plus the recipe.
const MaxBTRTaskBytes = 16 << 20

// BTRTask is one replicated transcode: Source (whose SHA-256 is the task's
// input) run through Recipe (origin/live.Recipe as JSON, whose ID must be
// RecipeID) for segment Segment of Chain.
type BTRTask struct {
	Chain    content.VideoID `json:"chain"`
	Segment  uint64          `json:"segment"`
	RecipeID string          `json:"recipe_id"`
	Recipe   json.RawMessage `json:"recipe"`
	Source   []byte          `json:"source"`
	// Deadline is the judge's detection deadline for the task (unix µs, the
	// judge's clock): an output that reaches it later is accused.
	// AnswerWindowMS is how long an accused replica then has to answer.
	// Forward is the judge's base URL for statements about the task
	// (PathBTRForward). All three are informative: the judge decides by its
	// own clock, whatever a worker makes of them.
	Deadline       int64  `json:"deadline_us,omitempty"`
	AnswerWindowMS int64  `json:"answer_window_ms,omitempty"`
	Forward        string `json:"forward,omitempty"`
}

// BTRTaskResult is the worker's answer: Output is its signed btr.Output
// (canonical encoding), Renditions the ladder's outputs in ladder order
// (their btr.LadderDigest is the Output's digest; the judge checks it).
type BTRTaskResult struct {
	Output     []byte   `json:"output"`
	Renditions [][]byte `json:"renditions"`
	// OwnUS is the worker's own measure of its time on the task (µs, its
	// clock): from the task's arrival to the answer ready, slot wait
	// included; SlotWaitUS is the part spent waiting for a free slot. It is
	// an unsigned claim: a checker uses it to tell a worker over its bound
	// D (its own time > D: the worker or its machine was slow) from
	// lateness on the way or at the judge (its own time within D), and
	// says which in its log; it never excuses a missed deadline.
	OwnUS      int64 `json:"own_us,omitempty"`
	SlotWaitUS int64 `json:"slot_wait_us,omitempty"`
}

// BTRWorkerInfo identifies a worker.
type BTRWorkerInfo struct {
	NodeID NodeID `json:"node_id"`
}

// AppendBTRStatement posts a judge's statement to a chain's channel log
// (signed: a client made with AsNode by the chain's origin).
func (c *CoordinatorClient) AppendBTRStatement(ctx context.Context, chain content.VideoID, statement []byte) error {
	resp, err := c.sendBytes(ctx, http.MethodPost, expandPath(PathBTRLog, chain.String()), nil, true, "application/octet-stream", statement)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// BTRLog reads a chain's channel log.
func (c *CoordinatorClient) BTRLog(ctx context.Context, chain content.VideoID) (BTRLog, error) {
	var out BTRLog
	err := c.do(ctx, http.MethodGet, expandPath(PathBTRLog, chain.String()), nil, &out)
	return out, err
}

// ForwardBTROutput posts one encoded btr.Output to the judge at base
// (PathBTRForward).
func ForwardBTROutput(ctx context.Context, hc *http.Client, base string, output []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+PathBTRForward, bytes.NewReader(output))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("forward a btr output to %s: %s: %s", base, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// Workers register with the coordinator as RoleWorker (wire.NodeSession:
// PathRegister with BTRSlots, heartbeats with BTRBusy), bind to the account
// they earn for, and are paid per agreed segment; an origin finds its
// workers here instead of from a list of URLs (docs/LIVE.md, "BTR").
const (
	// GET → []BTRWorkerEntry (anyone): the alive, unbanned workers,
	// least loaded first.
	PathBTRWorkers = "/api/v1/btr/workers"
	// POST one encoded btr.Agreement → BTRCreditResult (on the coordinator;
	// signed by the chain's origin, its judge): the agreement's f+1
	// replicas' signed outputs are the evidence; each bound worker named
	// is credited once per (chain, segment). GET ?segment=N → the stored
	// agreement's bytes (anyone: the evidence a payment rests on).
	PathBTRAgreed = "/api/v1/live/chains/{chain}/btr/agreed"
	// POST one encoded btr.Rebuttal → {} (on the coordinator; signed by
	// the accused worker): the accusation must be in the chain's log and
	// the rebuttal received by its answer deadline; it is recorded in the
	// log, and the coordinator refuses an omission or timing exclusion
	// resting on a rebutted accusation.
	PathBTRRebuttal = "/api/v1/live/chains/{chain}/btr/rebuttals"
	// POST BindWorkerRequest → {} (a login session): bind a worker key
	// the worker signed its consent for to the caller's account. GET →
	// WorkerAccountInfo (the caller's workers, earnings and forfeits).
	PathAccountWorkers = "/api/v1/accounts/workers"
	// POST BTRAccusedRequest → BTRAccusedAnswer (on a worker; signed by
	// the judge): "you were accused"; the worker answers with its rebuttal
	// if it holds its signed output for the task, and posts it to the
	// coordinator first.
	PathBTRAccused = "/v1/btr/accused"
)

// BTRWorkerEntry is one registered worker.
type BTRWorkerEntry struct {
	NodeID NodeID `json:"node_id"`
	Addr   string `json:"addr"`  // base URL of its PathBTRTask server
	Slots  int    `json:"slots"` // concurrent transcodes
	Busy   int    `json:"busy"`  // as of its last heartbeat
}

// BTRCreditResult says whom an agreement paid: Credited got a new
// unsettled credit, Already had one for this segment (a replay changes
// nothing), Unbound have no account (bind with PathAccountWorkers),
// Excluded are out of the chain (they earn nothing more).
type BTRCreditResult struct {
	Evidence string   `json:"evidence"` // hex SHA-256 of the agreement
	Points   int64    `json:"points"`   // per credited worker
	Credited []NodeID `json:"credited"`
	Already  []NodeID `json:"already"`
	Unbound  []NodeID `json:"unbound"`
	Excluded []NodeID `json:"excluded"`
}

// BindWorkerRequest binds a worker to the caller's account: the worker
// consents by signing (Account, UnixMS) with its key (SignBindWorker, a
// domain of its own so an edge's binding consent never binds a worker).
type BindWorkerRequest struct {
	NodeID    NodeID `json:"node_id"`
	Account   int64  `json:"account"`
	UnixMS    int64  `json:"unix_ms"`
	Signature []byte `json:"signature"`
}

// WorkerAccountInfo is an account's transcoding: per worker its points by
// state (unsettled until the chain ends or the hold passes; forfeited when
// an exclusion came first), and each forfeit with the exclusion that caused
// it (Evidence: hex SHA-256 of the exclusion in the chain's channel log).
type WorkerAccountInfo struct {
	Workers  []WorkerEarningInfo `json:"workers"`
	Forfeits []WorkerForfeitInfo `json:"forfeits"`
}

// WorkerEarningInfo is one worker's points.
type WorkerEarningInfo struct {
	NodeID    NodeID `json:"node_id"`
	Unsettled int64  `json:"unsettled"`
	Settled   int64  `json:"settled"`
	Forfeited int64  `json:"forfeited"`
}

// WorkerForfeitInfo is one exclusion's forfeit.
type WorkerForfeitInfo struct {
	NodeID   NodeID          `json:"node_id"`
	Chain    content.VideoID `json:"chain"`
	Kind     string          `json:"kind"`
	Evidence string          `json:"evidence"`
	Points   int64           `json:"points"`
	Segments int64           `json:"segments"`
}

// BTRAccusedRequest hands an accused worker the judge's accusation (it
// posts its rebuttal to the coordinators it registered with).
type BTRAccusedRequest struct {
	Accusation []byte `json:"accusation"` // encoded btr.Accusation
}

// BTRAccusedAnswer is the worker's rebuttal (encoded btr.Rebuttal), or
// empty when it holds no output for the task.
type BTRAccusedAnswer struct {
	Rebuttal []byte `json:"rebuttal,omitempty"`
}

// BTRWorkers lists the registered workers.
func (c *CoordinatorClient) BTRWorkers(ctx context.Context) ([]BTRWorkerEntry, error) {
	var out []BTRWorkerEntry
	err := c.do(ctx, http.MethodGet, PathBTRWorkers, nil, &out)
	return out, err
}

// PostBTRAgreement posts a judge's agreement (signed: a client made with
// AsNode by the chain's origin).
func (c *CoordinatorClient) PostBTRAgreement(ctx context.Context, chain content.VideoID, agreement []byte) (BTRCreditResult, error) {
	var out BTRCreditResult
	resp, err := c.sendBytes(ctx, http.MethodPost, expandPath(PathBTRAgreed, chain.String()), nil, true, "application/octet-stream", agreement)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	return out, err
}

// PostBTRRebuttal posts an accused worker's rebuttal (signed: a client made
// with AsNode by the accused worker).
func (c *CoordinatorClient) PostBTRRebuttal(ctx context.Context, chain content.VideoID, rebuttal []byte) error {
	resp, err := c.sendBytes(ctx, http.MethodPost, expandPath(PathBTRRebuttal, chain.String()), nil, true, "application/octet-stream", rebuttal)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// AccountWorkers is the signed-in account's workers and earnings.
func (c *CoordinatorClient) AccountWorkers(ctx context.Context) (WorkerAccountInfo, error) {
	var out WorkerAccountInfo
	err := c.do(ctx, http.MethodGet, PathAccountWorkers, nil, &out)
	return out, err
}

// BindWorker posts a worker's signed consent to the signed-in account.
func (c *CoordinatorClient) BindWorker(ctx context.Context, req BindWorkerRequest) error {
	return c.do(ctx, http.MethodPost, PathAccountWorkers, req, nil)
}

// BindWorkerAs binds the worker that worker signs for to the token's
// account: it asks for the account's id and has the worker sign its
// consent to exactly that account.
func (c *CoordinatorClient) BindWorkerAs(ctx context.Context, worker *NodeSigner) error {
	var me AccountInfo
	if err := c.do(ctx, http.MethodGet, PathMe, nil, &me); err != nil {
		return err
	}
	return c.BindWorker(ctx, worker.SignBindWorker(me.ID))
}

// bindWorkerDomain separates a worker's binding consent from every other
// signature its key makes (outputs, node requests, an edge's consent).
const bindWorkerDomain = "swarmcast bind worker v1\x00"

// BindWorkerSigningBytes are the bytes a worker signs to consent to earn
// for account, at unixMS.
func BindWorkerSigningBytes(node NodeID, account int64, unixMS int64) []byte {
	b := []byte(bindWorkerDomain)
	b = appendString(b, string(node))
	b = binary.BigEndian.AppendUint64(b, uint64(account))
	return binary.BigEndian.AppendUint64(b, uint64(unixMS))
}

// SignBindWorker is the worker's signed consent to earn for account.
func (s *NodeSigner) SignBindWorker(account int64) BindWorkerRequest {
	ms := s.stamp()
	return BindWorkerRequest{NodeID: s.id, Account: account, UnixMS: ms, Signature: ed25519.Sign(s.key, BindWorkerSigningBytes(s.id, account, ms))}
}

// VerifyBindWorker checks req is the worker's fresh consent
// (NodeRequestMaxSkew) to earn for account.
func VerifyBindWorker(req *BindWorkerRequest, account int64, now time.Time) error {
	if err := CheckNodeID(req.NodeID); err != nil {
		return err
	}
	if len(req.Signature) == 0 {
		return fmt.Errorf("no signature: the worker must sign its consent with its own key (swarmcast worker --bind-account prints it), so nobody binds a worker they do not run")
	}
	if req.Account != account {
		return fmt.Errorf("the worker signed consent for account %d, not this account (%d)", req.Account, account)
	}
	if err := (NodeRequestAuth{Node: req.NodeID, UnixMS: req.UnixMS}).CheckFresh(now); err != nil {
		return err
	}
	pub, _ := hex.DecodeString(string(req.NodeID))
	if !ed25519.Verify(pub, BindWorkerSigningBytes(req.NodeID, req.Account, req.UnixMS), req.Signature) {
		return fmt.Errorf("signature does not verify under worker %s's key; sign with the worker's own key", req.NodeID)
	}
	return nil
}
