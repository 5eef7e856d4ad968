package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

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
)

// MaxBTRStatementBytes bounds one statement posted to the channel log.
const MaxBTRStatementBytes = 16 << 10

// BTRLog is a chain's channel log: every statement in the order the
// coordinator recorded it, and the workers excluded so far (node ids, with
// the segment each switches out at and why).
type BTRLog struct {
	Statements [][]byte          `json:"statements"`
	Excluded   []BTRExcludedNode `json:"excluded"`
}

// BTRExcludedNode is one exclusion of the log, summarised.
type BTRExcludedNode struct {
	Node    NodeID `json:"node"`
	Kind    string `json:"kind"`    // commission, equivocation, omission, timing
	Current uint64 `json:"current"` // the segment the judge decided it at
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
