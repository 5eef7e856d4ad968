package btr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

var agreementMagic = [4]byte{'S', 'C', 'B', 'G'}

// MaxAgreementOutputs bounds the outputs one agreement carries (f+1 for
// f ≤ 15; Standby plans are far smaller).
const MaxAgreementOutputs = 16

// Agreement is the judge's signed statement that a segment was accepted
// because F+1 distinct replicas signed one digest for one task: the
// evidence that pays them for the transcode (proof of transcoding).
//
// What makes it evidence rather than a claim: the outputs are the
// replicas' own signatures, so a third party checks without trusting the
// judge that F+1 distinct keys committed to the same digest of the same
// input under the same recipe. With at most F of them faulty, one is
// correct, so the digest is what the recipe gives; a replica that signed a
// cheap wrong output (Livepeer's black frames) cannot be in an agreement
// without F others signing the same wrong digest, and any one of those
// outputs is then a commission proof (ProofOfMisbehaviour) against all of
// them. The judge's signature binds F (the fault bound it ran the chain
// at) and vouches the replicas were the segment's assigned ones. Check needs
// no re-execution: an agreement is cheap to verify and expensive to forge.
type Agreement struct {
	Task
	Digest    content.Hash
	F         int
	Outputs   []*Output // F+1 or more, one per replica, in the judge's order
	Judge     NodeKey
	Signature []byte
}

func (g *Agreement) appendUnsigned(b []byte) []byte {
	b = append(b, agreementMagic[:]...)
	b = append(b, Version)
	b = appendTask(b, g.Task)
	b = append(b, g.Digest[:]...)
	b = append(b, byte(g.F), byte(len(g.Outputs)))
	for _, o := range g.Outputs {
		b = appendBlob(b, o.Encode())
	}
	return append(b, g.Judge[:]...)
}

// Encode is the canonical signed encoding.
func (g *Agreement) Encode() []byte { return append(g.appendUnsigned(nil), g.Signature...) }

// ID is the agreement's evidence id: hex SHA-256 of its encoding (how the
// ledger names the statement a credit rests on).
func (g *Agreement) ID() string { return EvidenceID(g.Encode()) }

// EvidenceID is the hex SHA-256 of an encoded statement: the id the ledger
// and an account's view use for an agreement or an exclusion.
func EvidenceID(statement []byte) string {
	h := sha256.Sum256(statement)
	return fmt.Sprintf("%x", h[:])
}

// Sign sets Judge to the key's public half and signs.
func (g *Agreement) Sign(key ed25519.PrivateKey) {
	g.Judge = KeyOf(key)
	g.Signature = ed25519.Sign(key, g.appendUnsigned(nil))
}

// Replicas are the agreeing replicas, in the statement's order.
func (g *Agreement) Replicas() []NodeKey {
	out := make([]NodeKey, len(g.Outputs))
	for i, o := range g.Outputs {
		out[i] = o.Replica
	}
	return out
}

// Check verifies the agreement against the chain's judge: its signature,
// F ≥ 1, at least F+1 outputs, each signed by a distinct replica other
// than the judge for exactly the agreement's task with exactly its digest.
func (g *Agreement) Check(trustedJudge NodeKey) error {
	if g.Judge != trustedJudge {
		return fmt.Errorf("agreement for %s: signed by %s, not the chain's judge %s", g.Task, g.Judge, trustedJudge)
	}
	if len(g.Signature) != ed25519.SignatureSize || !ed25519.Verify(g.Judge[:], g.appendUnsigned(nil), g.Signature) {
		return fmt.Errorf("agreement for %s: bad signature", g.Task)
	}
	if err := checkTask(g.Task); err != nil {
		return fmt.Errorf("agreement: %w", err)
	}
	if g.F < 1 {
		return fmt.Errorf("agreement for %s: f = %d; agreement means f+1 ≥ 2 replicas (f = 0 is no replication)", g.Task, g.F)
	}
	if len(g.Outputs) < g.F+1 || len(g.Outputs) > MaxAgreementOutputs {
		return fmt.Errorf("agreement for %s: %d outputs, want f+1 = %d (at most %d)", g.Task, len(g.Outputs), g.F+1, MaxAgreementOutputs)
	}
	seen := map[NodeKey]bool{}
	for i, o := range g.Outputs {
		if o == nil {
			return fmt.Errorf("agreement for %s: output %d missing", g.Task, i)
		}
		if err := o.Verify(); err != nil {
			return fmt.Errorf("agreement: output %d: %w", i, err)
		}
		if o.Task != g.Task {
			return fmt.Errorf("agreement for %s: output %d by %s is for %s", g.Task, i, o.Replica, o.Task)
		}
		if o.Digest != g.Digest {
			return fmt.Errorf("agreement for %s: replica %s signed digest %x, the agreement says %x: it did not agree", g.Task, o.Replica, o.Digest[:6], g.Digest[:6])
		}
		if o.Replica == g.Judge {
			return fmt.Errorf("agreement for %s: the judge %s is not a replica", g.Task, g.Judge)
		}
		if seen[o.Replica] {
			return fmt.Errorf("agreement for %s: replica %s counted twice", g.Task, o.Replica)
		}
		seen[o.Replica] = true
	}
	return nil
}

// NewAgreement builds the agreement for outputs (all for one task with one
// digest) and signs it as the judge; Check is what it must pass.
func NewAgreement(f int, outputs []*Output, judge ed25519.PrivateKey) (*Agreement, error) {
	if len(outputs) == 0 {
		return nil, errors.New("agreement: no outputs")
	}
	g := &Agreement{Task: outputs[0].Task, Digest: outputs[0].Digest, F: f, Outputs: outputs}
	g.Sign(judge)
	if err := g.Check(g.Judge); err != nil {
		return nil, err
	}
	return g, nil
}

// DecodeAgreement parses an agreement from untrusted bytes and checks its
// shape and every output's signature (Check against the chain's judge
// decides it).
func DecodeAgreement(data []byte) (*Agreement, error) {
	d := reader{buf: data}
	d.magic(agreementMagic, "agreement")
	g := &Agreement{Task: d.task()}
	d.fixed(g.Digest[:])
	g.F = int(d.u8())
	n := int(d.u8())
	if d.err == nil && (n == 0 || n > MaxAgreementOutputs) {
		d.err = fmt.Errorf("%d outputs, want 1..%d", n, MaxAgreementOutputs)
	}
	for i := 0; i < n && d.err == nil; i++ {
		sub := d.blob()
		sd := reader{buf: sub}
		o := sd.output()
		if err := sd.finish("agreement's output"); err != nil && d.err == nil {
			d.err = err
		}
		g.Outputs = append(g.Outputs, o)
	}
	d.fixed(g.Judge[:])
	g.Signature = d.signature()
	if err := d.finish("agreement"); err != nil {
		return nil, err
	}
	if err := g.Check(g.Judge); err != nil {
		return nil, err
	}
	return g, nil
}
