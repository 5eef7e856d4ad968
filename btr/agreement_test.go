package btr

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleAgreement(t testing.TB, f int) *Agreement {
	t.Helper()
	var outs []*Output
	for i := 0; i <= f; i++ {
		outs = append(outs, signedOutput(testKey(fmt.Sprintf("r%d", i+1)), 7, correctDigest(testRecipe, inputOf(7))))
	}
	g, err := NewAgreement(f, outs, testKey("judge"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAgreementRoundTripAndCheck(t *testing.T) {
	judge := KeyOf(testKey("judge"))
	for _, f := range []int{1, 2} {
		g := sampleAgreement(t, f)
		got, err := DecodeAgreement(g.Encode())
		if err != nil || !bytes.Equal(got.Encode(), g.Encode()) {
			t.Fatalf("f=%d: round trip: %v", f, err)
		}
		if err := got.Check(judge); err != nil {
			t.Fatalf("f=%d: %v", f, err)
		}
		if len(got.Replicas()) != f+1 || got.ID() != g.ID() || len(g.ID()) != 64 {
			t.Fatalf("f=%d: replicas %d, id %q", f, len(got.Replicas()), got.ID())
		}
	}
}

// Every way to fake an agreement a worker or a forger could try is refused:
// a worker that did not agree, too few replicas, one replica twice, another
// task, another judge, a tampered byte.
func TestAgreementRefusesForgeries(t *testing.T) {
	judge := testKey("judge")
	good := correctDigest(testRecipe, inputOf(7))
	r1, r2, r3 := testKey("r1"), testKey("r2"), testKey("r3")
	cases := []struct {
		name string
		f    int
		outs []*Output
		want string
	}{
		{"a replica that signed another digest", 1, []*Output{signedOutput(r1, 7, good), signedOutput(r2, 7, wrongDigest(inputOf(7), "black frames"))}, "did not agree"},
		{"fewer than f+1", 2, []*Output{signedOutput(r1, 7, good), signedOutput(r2, 7, good)}, "want f+1 = 3"},
		{"one replica twice", 1, []*Output{signedOutput(r1, 7, good), signedOutput(r1, 7, good)}, "counted twice"},
		{"another segment's output", 1, []*Output{signedOutput(r1, 7, good), signedOutput(r3, 8, good)}, "is for"},
		{"f = 0", 0, []*Output{signedOutput(r1, 7, good)}, "f = 0"},
		{"the judge as a replica", 1, []*Output{signedOutput(r1, 7, good), signedOutput(judge, 7, good)}, "not a replica"},
	}
	for _, c := range cases {
		g := &Agreement{Task: c.outs[0].Task, Digest: good, F: c.f, Outputs: c.outs}
		g.Sign(judge)
		if err := g.Check(KeyOf(judge)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if _, err := DecodeAgreement(g.Encode()); err == nil {
			t.Errorf("%s: decoded", c.name)
		}
	}
	g := sampleAgreement(t, 1)
	if err := g.Check(KeyOf(r3)); err == nil {
		t.Error("an agreement checked against another judge passed")
	}
	other := &Agreement{Task: g.Task, Digest: g.Digest, F: 1, Outputs: g.Outputs}
	other.Sign(r3)
	if err := other.Check(KeyOf(judge)); err == nil {
		t.Error("an agreement signed by a worker passed as the judge's")
	}
	enc := g.Encode()
	for _, i := range []int{6, 60, len(enc) / 2, len(enc) - 70, len(enc) - 1} {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		if a, err := DecodeAgreement(bad); err == nil && a.Check(KeyOf(judge)) == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
}

// TestWriteAgreementSeed keeps the committed fuzz seed in step with the
// encoding (it fails if the seed on disk is not the current encoding).
func TestWriteAgreementSeed(t *testing.T) {
	path := filepath.Join("testdata", "fuzz", "FuzzDecodeStatement", "agreement")
	want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", sampleAgreement(t, 1).Encode())
	got, err := os.ReadFile(path)
	if os.Getenv("SWARMCAST_REWRITE_SEEDS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil || string(got) != want {
		t.Fatalf("%s is not the current agreement encoding (%v): run with SWARMCAST_REWRITE_SEEDS=1", path, err)
	}
}
