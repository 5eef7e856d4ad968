package btr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

// Reexecutor re-runs a recipe on an input and returns the SHA-256 of the
// output. The input is named by its digest: an implementation finds the
// source segment's bytes (its own store, the origin) and must check they
// hash to input before running, or a proof could be "checked" against the
// wrong bytes. The real one runs the pinned ffmpeg recipe; it is what makes
// a commission proof evidence rather than a claim (Livepeer's black-frame
// transcoder passed a check the verifier could pass cheaply).
type Reexecutor interface {
	Run(recipe string, input content.Hash) (content.Hash, error)
}

// ProofOfMisbehaviour is transferable evidence against one replica: anyone
// can run Check without trusting whoever built it.
//   - Commission: A is the culprit's signed Output; re-executing A's recipe
//     on A's input gives a different digest. Correct is what the judge's
//     re-execution gave (informative: Check recomputes it).
//   - Equivocation: A and B are two outputs signed by one replica for one
//     task with different digests. No re-execution needed.
type ProofOfMisbehaviour struct {
	Kind    FaultKind
	A, B    *Output
	Correct content.Hash
}

// Culprit is the replica the proof names.
func (p *ProofOfMisbehaviour) Culprit() NodeKey { return p.A.Replica }

// Check verifies the proof. re may be nil for an equivocation.
func (p *ProofOfMisbehaviour) Check(re Reexecutor) error {
	if p.A == nil {
		return errors.New("proof of misbehaviour: no signed output")
	}
	if err := p.A.Verify(); err != nil {
		return fmt.Errorf("proof of misbehaviour: %w", err)
	}
	switch p.Kind {
	case Equivocation:
		if p.B == nil {
			return errors.New("equivocation proof: needs two signed outputs")
		}
		if err := p.B.Verify(); err != nil {
			return fmt.Errorf("equivocation proof: %w", err)
		}
		if p.A.Replica != p.B.Replica {
			return fmt.Errorf("equivocation proof: outputs by %s and %s, not one replica", p.A.Replica, p.B.Replica)
		}
		if p.A.Task != p.B.Task {
			return fmt.Errorf("equivocation proof: outputs for different tasks (%s; %s)", p.A.Task, p.B.Task)
		}
		if p.A.Digest == p.B.Digest {
			return errors.New("equivocation proof: the two outputs carry the same digest")
		}
		if p.Correct != (content.Hash{}) {
			return errors.New("equivocation proof: carries a correct digest (only a commission proof does)")
		}
		return nil
	case Commission:
		if p.B != nil {
			return errors.New("commission proof: carries a second output (only an equivocation does)")
		}
		if re == nil {
			return errors.New("commission proof: checking it needs a re-executor (run the recipe on the input)")
		}
		got, err := re.Run(p.A.Recipe, p.A.Input)
		if err != nil {
			return fmt.Errorf("commission proof against %s: cannot re-execute %s: %w", p.A.Replica, p.A.Task, err)
		}
		if got == p.A.Digest {
			return fmt.Errorf("commission proof against %s: false: re-executing %s gives the digest it signed", p.A.Replica, p.A.Task)
		}
		return nil
	}
	return fmt.Errorf("proof of misbehaviour: kind %s is not provable (only commission and equivocation are)", p.Kind)
}

// Encode is the canonical encoding.
func (p *ProofOfMisbehaviour) Encode() []byte {
	b := append([]byte(nil), proofMagic[:]...)
	b = append(b, Version, byte(p.Kind))
	b = append(b, p.Correct[:]...)
	b = appendBlob(b, p.A.Encode())
	if p.B != nil {
		b = appendBlob(b, p.B.Encode())
	}
	return b
}

// DecodeProof parses a proof from untrusted bytes and checks both
// signatures and its shape; Check (with a re-executor) decides it.
func DecodeProof(data []byte) (*ProofOfMisbehaviour, error) {
	d := reader{buf: data}
	d.magic(proofMagic, "proof of misbehaviour")
	p := &ProofOfMisbehaviour{Kind: FaultKind(d.u8())}
	if d.err == nil && p.Kind != Commission && p.Kind != Equivocation {
		d.err = fmt.Errorf("kind %s is not provable", p.Kind)
	}
	d.fixed(p.Correct[:])
	n := 1
	if p.Kind == Equivocation {
		n = 2
	}
	for i := 0; i < n && d.err == nil; i++ {
		sub := d.blob()
		sd := reader{buf: sub}
		o := sd.output()
		if err := sd.finish("proof's output"); err != nil && d.err == nil {
			d.err = err
		}
		if i == 0 {
			p.A = o
		} else {
			p.B = o
		}
	}
	if err := d.finish("proof of misbehaviour"); err != nil {
		return nil, err
	}
	for _, o := range []*Output{p.A, p.B} {
		if o != nil {
			if err := o.Verify(); err != nil {
				return nil, fmt.Errorf("proof of misbehaviour: %w", err)
			}
		}
	}
	if p.Kind == Equivocation {
		// The shape checks that need no re-execution.
		if err := p.Check(nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Exclusion is the judge's signed entry for the channel log: Culprit is out
// of Chain for good. Current is the newest segment the judge had opened when
// it signed; every correct node switches to the configuration without the
// culprit at segment SwitchAt(params) = Current + params.SwitchLead(), a
// function of the log entry and the chain's parameters, so no node
// negotiates. Evidence is the encoded proof (commission, equivocation) or the
// judge's unanswered accusation (omission, timing).
type Exclusion struct {
	Chain     content.VideoID
	Culprit   NodeKey
	Kind      FaultKind
	Current   uint64
	Evidence  []byte
	Judge     NodeKey
	Signature []byte
}

// SwitchAt is s*: the first segment assigned without the culprit.
func (x *Exclusion) SwitchAt(t Params) uint64 { return x.Current + uint64(t.SwitchLead()) }

func (x *Exclusion) appendUnsigned(b []byte) []byte {
	b = append(b, exclusionMagic[:]...)
	b = append(b, Version)
	b = append(b, x.Chain[:]...)
	b = append(b, x.Culprit[:]...)
	b = append(b, byte(x.Kind))
	b = binary.BigEndian.AppendUint64(b, x.Current)
	b = appendBlob(b, x.Evidence)
	return append(b, x.Judge[:]...)
}

// Encode is the canonical signed encoding.
func (x *Exclusion) Encode() []byte { return append(x.appendUnsigned(nil), x.Signature...) }

// Sign sets Judge to the key's public half and signs.
func (x *Exclusion) Sign(key ed25519.PrivateKey) {
	x.Judge = KeyOf(key)
	x.Signature = ed25519.Sign(key, x.appendUnsigned(nil))
}

// Check verifies the judge's signature and that the evidence names the
// culprit: a proof that Check(re) accepts, or an accusation signed by the
// judge against the culprit (the omission and timing cases rest on the
// judge's word, which is why the judge is the coordinator or a designated
// trusted node). With re nil a commission proof is checked except for its
// re-execution, which the judge's signature then vouches for: what nodes
// without ffmpeg do; anyone who wants the proof itself passes a re-executor.
func (x *Exclusion) Check(trustedJudge NodeKey, re Reexecutor) error {
	if x.Judge != trustedJudge {
		return fmt.Errorf("exclusion of %s: signed by %s, not the chain's judge %s", x.Culprit, x.Judge, trustedJudge)
	}
	if len(x.Signature) != ed25519.SignatureSize || !ed25519.Verify(x.Judge[:], x.appendUnsigned(nil), x.Signature) {
		return fmt.Errorf("exclusion of %s: bad signature", x.Culprit)
	}
	switch x.Kind {
	case Commission, Equivocation:
		p, err := DecodeProof(x.Evidence)
		if err != nil {
			return fmt.Errorf("exclusion of %s: evidence: %w", x.Culprit, err)
		}
		if p.Kind != x.Kind || p.Culprit() != x.Culprit || p.A.Chain != x.Chain {
			return fmt.Errorf("exclusion of %s (%s): the proof is a %s against %s", x.Culprit, x.Kind, p.Kind, p.Culprit())
		}
		if re == nil && p.Kind == Commission {
			// A node without the recipe (a relay, an edge) takes the
			// re-execution on the judge's signature; the signed output
			// and its shape were checked by DecodeProof.
			return nil
		}
		return p.Check(re)
	case Omission, Timing:
		a, err := DecodeAccusation(x.Evidence)
		if err != nil {
			return fmt.Errorf("exclusion of %s: evidence: %w", x.Culprit, err)
		}
		if a.Accused != x.Culprit || a.Accuser != x.Judge || a.Chain != x.Chain || a.Kind != x.Kind {
			return fmt.Errorf("exclusion of %s (%s): the accusation is a %s by %s against %s", x.Culprit, x.Kind, a.Kind, a.Accuser, a.Accused)
		}
		return nil
	}
	return fmt.Errorf("exclusion of %s: unknown kind %s", x.Culprit, x.Kind)
}

// DecodeExclusion parses an exclusion from untrusted bytes (Check verifies
// it against the chain's judge).
func DecodeExclusion(data []byte) (*Exclusion, error) {
	d := reader{buf: data}
	d.magic(exclusionMagic, "exclusion")
	x := &Exclusion{}
	d.fixed(x.Chain[:])
	d.fixed(x.Culprit[:])
	x.Kind = FaultKind(d.u8())
	if d.err == nil && !x.Kind.valid() {
		d.err = fmt.Errorf("unknown fault kind %d", x.Kind)
	}
	x.Current = d.u64()
	x.Evidence = append([]byte(nil), d.blob()...)
	d.fixed(x.Judge[:])
	x.Signature = d.signature()
	if err := d.finish("exclusion"); err != nil {
		return nil, err
	}
	return x, nil
}

// LadderDigest is the Output digest of a recipe that writes several
// outputs (one MPEG-TS per rendition of the live ladder, in ladder order):
// SHA-256 over a domain tag, the count and each output's SHA-256, so a
// replica signs one statement per segment and any rendition that differs
// changes it.
func LadderDigest(outputs [][]byte) content.Hash {
	h := sha256.New()
	h.Write([]byte("swarmcast btr ladder v1\x00"))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(outputs))))
	for _, o := range outputs {
		d := sha256.Sum256(o)
		h.Write(d[:])
	}
	var out content.Hash
	h.Sum(out[:0])
	return out
}
