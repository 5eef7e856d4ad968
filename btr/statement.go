// Package btr is bounded-time recovery for live transcoding: f+1 replicas
// of each deterministic transcode sign what they produced, a judge accepts a
// segment only when every assigned replica agrees (or when its own
// re-execution decides), and every fault it sees becomes a signed,
// transferable statement: a proof of misbehaviour for commission and
// equivocation, a signed accusation (answerable by a rebuttal) for omission
// and timing. An exclusion names the culprit and the segment at which every
// correct node switches to the precomputed standby configuration, so
// recovery is a function of the log, not a negotiation. Bound computes the
// worst-case recovery time R from the parameters (docs/LIVE.md, "BTR").
//
// The package is a sans-IO core: it is fed statements and instants, never
// reads the clock, starts no goroutine and does no I/O. Re-executing a recipe
// is the driver's job (the Reexecutor interface, and the Reexecute decision).
package btr

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/swarmcast/swarmcast/content"
)

// NodeKey is a node's ed25519 public key. Its String is the hex form, which
// is the node's wire.NodeID.
type NodeKey [ed25519.PublicKeySize]byte

func (k NodeKey) String() string { return hex.EncodeToString(k[:]) }

// KeyOf returns the NodeKey of a private key.
func KeyOf(priv ed25519.PrivateKey) NodeKey {
	var k NodeKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

// ParseNodeKey parses the hex form (a wire.NodeID).
func ParseNodeKey(s string) (NodeKey, error) {
	var k NodeKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("node key %q: want %d hex-encoded bytes (a node id)", s, len(k))
	}
	copy(k[:], b)
	return k, nil
}

// Version is the encoding version of every statement.
const Version = 1

// MaxRecipeLen bounds a recipe id (a name such as "ladder-v1/720p" or a
// hex digest of the pinned ffmpeg arguments).
const MaxRecipeLen = 128

// Magics start each encoding, so one kind of statement can never be read
// as another (and a signature over one is never valid for another).
var (
	outputMagic     = [4]byte{'S', 'C', 'B', 'O'}
	accusationMagic = [4]byte{'S', 'C', 'B', 'A'}
	rebuttalMagic   = [4]byte{'S', 'C', 'B', 'R'}
	proofMagic      = [4]byte{'S', 'C', 'B', 'P'}
	exclusionMagic  = [4]byte{'S', 'C', 'B', 'X'}
)

// Task names one replicated computation: the recipe run on one input for
// one segment of one chain. Two Outputs for the same Task by one replica
// must carry the same digest (determinism); two different ones are an
// equivocation.
type Task struct {
	Chain   content.VideoID
	Segment uint64
	Recipe  string
	// Input is SHA-256 of the source segment's bytes: the input is content
	// addressed, so anyone holding the bytes can re-run the recipe on them.
	Input content.Hash
}

func (t Task) String() string {
	return fmt.Sprintf("chain %s segment %d recipe %q input %x", t.Chain, t.Segment, t.Recipe, t.Input[:6])
}

// Output is a replica's signed statement: "running Recipe on Input for
// this segment of Chain gave output whose SHA-256 is Digest".
type Output struct {
	Task
	Digest    content.Hash
	Replica   NodeKey
	Signature []byte
}

func appendTask(b []byte, t Task) []byte {
	b = append(b, t.Chain[:]...)
	b = binary.BigEndian.AppendUint64(b, t.Segment)
	b = append(b, byte(len(t.Recipe)))
	b = append(b, t.Recipe...)
	return append(b, t.Input[:]...)
}

func (o *Output) appendUnsigned(b []byte) []byte {
	b = append(b, outputMagic[:]...)
	b = append(b, Version)
	b = appendTask(b, o.Task)
	b = append(b, o.Digest[:]...)
	return append(b, o.Replica[:]...)
}

// Encode is the canonical signed encoding.
func (o *Output) Encode() []byte { return append(o.appendUnsigned(nil), o.Signature...) }

// Sign sets Replica to the key's public half and signs.
func (o *Output) Sign(key ed25519.PrivateKey) {
	o.Replica = KeyOf(key)
	o.Signature = ed25519.Sign(key, o.appendUnsigned(nil))
}

// Verify checks the shape and the replica's signature.
func (o *Output) Verify() error {
	if err := checkTask(o.Task); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if len(o.Signature) != ed25519.SignatureSize || !ed25519.Verify(o.Replica[:], o.appendUnsigned(nil), o.Signature) {
		return fmt.Errorf("output for %s: bad signature: not signed by replica %s", o.Task, o.Replica)
	}
	return nil
}

func checkTask(t Task) error {
	if t.Recipe == "" || len(t.Recipe) > MaxRecipeLen {
		return fmt.Errorf("recipe id of %d bytes, want 1..%d", len(t.Recipe), MaxRecipeLen)
	}
	return nil
}

// DecodeOutput parses and verifies an Output from untrusted bytes.
func DecodeOutput(data []byte) (*Output, error) {
	d := reader{buf: data}
	o := d.output()
	if err := d.finish("output"); err != nil {
		return nil, err
	}
	if err := o.Verify(); err != nil {
		return nil, err
	}
	return o, nil
}

// FaultKind classifies a fault (and the statement that reports it).
type FaultKind uint8

const (
	// Commission: a replica signed a digest that re-executing its recipe on
	// its input does not give. Provable (ProofOfMisbehaviour).
	Commission FaultKind = 1
	// Equivocation: a replica signed two different digests for one task.
	// Provable from the two statements alone.
	Equivocation FaultKind = 2
	// Omission: no output by the detection deadline and no rebuttal by the
	// accusation's answer deadline. Not provable to a third party: it rests
	// on the judge's signed accusation.
	Omission FaultKind = 3
	// Timing: outputs that arrive after the detection deadline (each answering
	// an omission accusation) StrikeLimit times within StrikeWindow segments.
	Timing FaultKind = 4
)

func (k FaultKind) String() string {
	switch k {
	case Commission:
		return "commission"
	case Equivocation:
		return "equivocation"
	case Omission:
		return "omission"
	case Timing:
		return "timing"
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

func (k FaultKind) valid() bool { return k >= Commission && k <= Timing }

// Accusation is an accuser's signed claim that Accused did not deliver its
// output for Task in time. AnswerBy (unix µs, the accuser's clock) is when
// the accused's rebuttal must have reached whoever judges the accusation.
type Accusation struct {
	Task
	Accuser   NodeKey
	Accused   NodeKey
	Kind      FaultKind // Omission or Timing
	AnswerBy  int64
	Signature []byte
}

func (a *Accusation) appendUnsigned(b []byte) []byte {
	b = append(b, accusationMagic[:]...)
	b = append(b, Version)
	b = appendTask(b, a.Task)
	b = append(b, a.Accuser[:]...)
	b = append(b, a.Accused[:]...)
	b = append(b, byte(a.Kind))
	return binary.BigEndian.AppendUint64(b, uint64(a.AnswerBy))
}

// Encode is the canonical signed encoding.
func (a *Accusation) Encode() []byte { return append(a.appendUnsigned(nil), a.Signature...) }

// Sign sets Accuser to the key's public half and signs.
func (a *Accusation) Sign(key ed25519.PrivateKey) {
	a.Accuser = KeyOf(key)
	a.Signature = ed25519.Sign(key, a.appendUnsigned(nil))
}

// Check verifies the shape and the accuser's signature. An accusation is
// the accuser's word, not a proof: what it establishes is that the accused
// must answer by AnswerBy (Rebuttal).
func (a *Accusation) Check() error {
	if err := checkTask(a.Task); err != nil {
		return fmt.Errorf("accusation: %w", err)
	}
	if a.Kind != Omission && a.Kind != Timing {
		return fmt.Errorf("accusation against %s: kind %s, want omission or timing", a.Accused, a.Kind)
	}
	if a.Accuser == a.Accused {
		return fmt.Errorf("accusation: %s accuses itself", a.Accused)
	}
	if len(a.Signature) != ed25519.SignatureSize || !ed25519.Verify(a.Accuser[:], a.appendUnsigned(nil), a.Signature) {
		return fmt.Errorf("accusation against %s for %s: bad signature: not signed by accuser %s", a.Accused, a.Task, a.Accuser)
	}
	return nil
}

// DecodeAccusation parses and checks an Accusation from untrusted bytes.
func DecodeAccusation(data []byte) (*Accusation, error) {
	d := reader{buf: data}
	a := d.accusation()
	if err := d.finish("accusation"); err != nil {
		return nil, err
	}
	if err := a.Check(); err != nil {
		return nil, err
	}
	return a, nil
}

// Rebuttal answers an accusation with the accused's signed Output for the
// accused task (PeerReview's response to a challenge). Whether it came in
// time is judged by whoever receives it, on its own clock, against the
// accusation's AnswerBy (CheckInTime); the statements themselves cannot
// carry a trustworthy time.
type Rebuttal struct {
	Accusation *Accusation
	Output     *Output
}

// Encode is the canonical encoding (the two signed statements, each
// length-prefixed).
func (r *Rebuttal) Encode() []byte {
	b := append([]byte(nil), rebuttalMagic[:]...)
	b = append(b, Version)
	b = appendBlob(b, r.Accusation.Encode())
	return appendBlob(b, r.Output.Encode())
}

// Check verifies that the output is the accused's own signed statement for
// exactly the accused task. A wrong digest still answers the omission (the
// output exists); the judge compares it like any output, and a wrong one is
// a commission.
func (r *Rebuttal) Check() error {
	if r.Accusation == nil || r.Output == nil {
		return errors.New("rebuttal: needs the accusation and the accused's output")
	}
	if err := r.Accusation.Check(); err != nil {
		return fmt.Errorf("rebuttal: %w", err)
	}
	if err := r.Output.Verify(); err != nil {
		return fmt.Errorf("rebuttal: %w", err)
	}
	if r.Output.Replica != r.Accusation.Accused {
		return fmt.Errorf("rebuttal: output signed by %s, the accused is %s", r.Output.Replica, r.Accusation.Accused)
	}
	if r.Output.Task != r.Accusation.Task {
		return fmt.Errorf("rebuttal: output is for %s, the accusation for %s", r.Output.Task, r.Accusation.Task)
	}
	return nil
}

// CheckInTime is Check plus the deadline: receivedAt (unix µs, the
// receiver's clock) must not be after the accusation's AnswerBy.
func (r *Rebuttal) CheckInTime(receivedAt int64) error {
	if err := r.Check(); err != nil {
		return err
	}
	if receivedAt > r.Accusation.AnswerBy {
		return fmt.Errorf("rebuttal by %s for %s: received %dµs after the answer deadline", r.Output.Replica, r.Output.Task, receivedAt-r.Accusation.AnswerBy)
	}
	return nil
}

// DecodeRebuttal parses and checks a Rebuttal from untrusted bytes (not
// its timeliness: see CheckInTime).
func DecodeRebuttal(data []byte) (*Rebuttal, error) {
	d := reader{buf: data}
	d.magic(rebuttalMagic, "rebuttal")
	r := &Rebuttal{}
	if sub := d.blob(); d.err == nil {
		sd := reader{buf: sub}
		r.Accusation = sd.accusation()
		d.err = sd.finish("rebuttal's accusation")
	}
	if sub := d.blob(); d.err == nil {
		sd := reader{buf: sub}
		r.Output = sd.output()
		d.err = sd.finish("rebuttal's output")
	}
	if err := d.finish("rebuttal"); err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return r, nil
}

// appendBlob appends a u32 length and the bytes.
func appendBlob(b, blob []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(blob)))
	return append(b, blob...)
}

// maxStatementBytes bounds any encoded statement (an exclusion carrying a
// rebuttal-sized evidence is the largest, well under 4 KiB).
const maxStatementBytes = 16 << 10

// reader reads the big-endian fields of the encodings; the first error
// sticks and every later read returns zero values.
type reader struct {
	buf []byte
	off int
	err error
}

var errTruncated = errors.New("truncated: input ends in the middle of a field")

func (d *reader) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.err = errTruncated
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *reader) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *reader) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *reader) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *reader) fixed(dst []byte) { copy(dst, d.take(len(dst))) }

func (d *reader) magic(want [4]byte, what string) {
	if len(d.buf) > maxStatementBytes && d.err == nil {
		d.err = fmt.Errorf("%d bytes exceeds the %d byte limit", len(d.buf), maxStatementBytes)
		return
	}
	if m := d.take(4); d.err == nil && !bytes.Equal(m, want[:]) {
		d.err = fmt.Errorf("not a Swarmcast BTR %s (bad magic)", what)
		return
	}
	if v := d.u8(); d.err == nil && v != Version {
		d.err = fmt.Errorf("%s version %d not supported (this build reads %d); upgrade swarmcast", what, v, Version)
	}
}

func (d *reader) task() Task {
	var t Task
	d.fixed(t.Chain[:])
	t.Segment = d.u64()
	n := int(d.u8())
	if d.err == nil && (n == 0 || n > MaxRecipeLen) {
		d.err = fmt.Errorf("recipe id of %d bytes, want 1..%d", n, MaxRecipeLen)
	}
	t.Recipe = string(d.take(n))
	d.fixed(t.Input[:])
	return t
}

func (d *reader) signature() []byte { return bytes.Clone(d.take(ed25519.SignatureSize)) }

func (d *reader) blob() []byte {
	n := d.u32()
	if d.err == nil && n > maxStatementBytes {
		d.err = fmt.Errorf("embedded statement of %d bytes exceeds the %d byte limit", n, maxStatementBytes)
		return nil
	}
	return d.take(int(n))
}

func (d *reader) output() *Output {
	d.magic(outputMagic, "output")
	o := &Output{Task: d.task()}
	d.fixed(o.Digest[:])
	d.fixed(o.Replica[:])
	o.Signature = d.signature()
	return o
}

func (d *reader) accusation() *Accusation {
	d.magic(accusationMagic, "accusation")
	a := &Accusation{Task: d.task()}
	d.fixed(a.Accuser[:])
	d.fixed(a.Accused[:])
	a.Kind = FaultKind(d.u8())
	a.AnswerBy = int64(d.u64())
	a.Signature = d.signature()
	return a
}

// finish reports the sticky error, or trailing bytes, wrapped with what.
func (d *reader) finish(what string) error {
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	if r := len(d.buf) - d.off; r != 0 {
		return fmt.Errorf("%s: %d unexpected trailing bytes", what, r)
	}
	return nil
}
