package btr

import (
	"bytes"
	"testing"
)

// FuzzDecodeStatement feeds untrusted bytes to every statement decoder: none
// may panic, and whatever one accepts re-encodes to the same bytes (the
// encodings are canonical, so a signature covers exactly one statement).
func FuzzDecodeStatement(f *testing.F) {
	o, a, r, pc, pe, x := sampleStatements()
	for _, b := range [][]byte{o.Encode(), a.Encode(), r.Encode(), pc.Encode(), pe.Encode(), x.Encode()} {
		f.Add(b)
	}
	f.Add(sampleAgreement(f, 1).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		if o, err := DecodeOutput(data); err == nil && !bytes.Equal(o.Encode(), data) {
			t.Errorf("output re-encodes differently")
		}
		if a, err := DecodeAccusation(data); err == nil && !bytes.Equal(a.Encode(), data) {
			t.Errorf("accusation re-encodes differently")
		}
		if r, err := DecodeRebuttal(data); err == nil && !bytes.Equal(r.Encode(), data) {
			t.Errorf("rebuttal re-encodes differently")
		}
		if p, err := DecodeProof(data); err == nil {
			if !bytes.Equal(p.Encode(), data) {
				t.Errorf("proof re-encodes differently")
			}
			_ = p.Check(&digestReexecutor{})
		}
		if g, err := DecodeAgreement(data); err == nil {
			if !bytes.Equal(g.Encode(), data) {
				t.Errorf("agreement re-encodes differently")
			}
			_ = g.Check(g.Judge)
		}
		if x, err := DecodeExclusion(data); err == nil {
			if !bytes.Equal(x.Encode(), data) {
				t.Errorf("exclusion re-encodes differently")
			}
			_ = x.Check(x.Judge, &digestReexecutor{})
		}
	})
}
