package btr

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSegment measures the CPU BTR spends per segment outside the
// transcode itself, for f = 1 and f = 2: "replicas+judge" is the f+1
// replicas signing their outputs and the judge verifying them and deciding
// (one op = one segment, all nodes' CPU summed); "judge" is the judge alone
// (outputs signed beforehand). BenchmarkEd25519 gives the per-signature
// costs the PBFT column of docs/LIVE.md's table is computed from.
func BenchmarkSegment(b *testing.B) {
	for _, f := range []int{1, 2} {
		people, sb := newCast(f, 1)
		keys := make([]ed25519.PrivateKey, len(sb.Active))
		for i, k := range sb.Active {
			keys[i] = people.keys[people.names[k]]
		}
		newCore := func(b *testing.B) *Core {
			c, err := NewCore(Config{Chain: testChain(), Recipe: testRecipe, Standby: sb, Params: DefaultParams(), Judge: testKey("judge")})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		run := func(b *testing.B, c *Core, seg uint64, outs []*Output) {
			now := t0.Add(time.Duration(seg) * time.Second)
			if err := c.Open(seg, outs[0].Input, now); err != nil {
				b.Fatal(err)
			}
			for _, o := range outs {
				if err := c.Output(o, now.Add(300*time.Millisecond)); err != nil {
					b.Fatal(err)
				}
			}
			if d := c.Decisions(); len(d) != 1 || d[0].Kind != Accept {
				b.Fatalf("segment %d: %d decisions", seg, len(d))
			}
		}
		b.Run(fmt.Sprintf("f=%d/replicas+judge", f), func(b *testing.B) {
			c := newCore(b)
			outs := make([]*Output, len(keys))
			for i := range b.N {
				seg := uint64(i)
				for j, k := range keys {
					outs[j] = signedOutput(k, seg, correctDigest(testRecipe, inputOf(seg)))
				}
				run(b, c, seg, outs)
			}
		})
		b.Run(fmt.Sprintf("f=%d/judge", f), func(b *testing.B) {
			c := newCore(b)
			const batch = 256
			var signed [][]*Output
			for i := range b.N {
				seg := uint64(i)
				if i%batch == 0 {
					b.StopTimer()
					signed = signed[:0]
					for s := seg; s < seg+batch; s++ {
						var outs []*Output
						for _, k := range keys {
							outs = append(outs, signedOutput(k, s, correctDigest(testRecipe, inputOf(s))))
						}
						signed = append(signed, outs)
					}
					b.StartTimer()
				}
				run(b, c, seg, signed[i%batch])
			}
		})
	}
}

func BenchmarkEd25519(b *testing.B) {
	key := testKey("r0")
	o := signedOutput(key, 1, correctDigest(testRecipe, inputOf(1)))
	msg := o.appendUnsigned(nil)
	b.Run("sign", func(b *testing.B) {
		for range b.N {
			ed25519.Sign(key, msg)
		}
	})
	b.Run("verify", func(b *testing.B) {
		pub := key.Public().(ed25519.PublicKey)
		for range b.N {
			if !ed25519.Verify(pub, msg, o.Signature) {
				b.Fatal("bad signature")
			}
		}
	})
}

// BenchmarkAgreementCheck is the coordinator's CPU to check one agreed
// segment's evidence before paying its workers (decode, the judge's and
// f+1 replicas' signatures: f+2 verifies), for f = 1 and f = 2; compare it with
// BenchmarkEd25519/verify of the same run.
func BenchmarkAgreementCheck(b *testing.B) {
	for _, f := range []int{1, 2} {
		enc := sampleAgreement(b, f).Encode()
		judge := KeyOf(testKey("judge"))
		b.Run(fmt.Sprintf("f=%d", f), func(b *testing.B) {
			for range b.N {
				g, err := DecodeAgreement(enc) // checks every signature
				if err != nil || g.Judge != judge {
					b.Fatal(err)
				}
			}
		})
	}
}
