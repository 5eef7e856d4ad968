package fanout_test

import (
	"context"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/wire"
)

// benchSegments is a 4-rung ladder of 1 s segments (300 KB each, ~2.4
// Mbit/s), one substream (index 0) per push: what a relay takes per segment
// from its parent in each tree it is in.
func benchPushes(b *testing.B, n int) (*fanouttest.Publisher, [][]byte) {
	pub := fanouttest.NewPublisher(4, 41)
	var bodies [][]byte
	for range n {
		_, seg := pub.NextSized(300_000)
		var mine []*content.ShardMessage
		for _, sh := range seg.Shards {
			if sh.Index == 0 {
				mine = append(mine, sh)
			}
		}
		bodies = append(bodies, (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: mine}).Encode())
	}
	return pub, bodies
}

// BenchmarkReceivePush is the receiver's whole cost per push (decode, sender
// check, entry signature and chaining, every shard's Merkle proof, copying
// into the window); BenchmarkVerifyPushShardsOnly is its floor (the
// shards' hashing alone), the reference to read it against.
func BenchmarkReceivePush(b *testing.B) {
	const n = 64
	pub, bodies := benchPushes(b, n)
	parent := wire.NodeID("parent")
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	var recv *fanout.Receiver
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			b.StopTimer()
			recv, _ = fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: pub})
			recv.SetLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Indices: []int{0}, Parent: parent}}})
			b.StartTimer()
		}
		p, err := fanout.DecodePush(bodies[i%n])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := recv.Receive(context.Background(), parent, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPushShardsOnly(b *testing.B) {
	pub, bodies := benchPushes(b, 1)
	p, _ := fanout.DecodePush(bodies[0])
	e, err := content.DecodeLiveEntry(p.Entry, pub.Genesis, pub.Chain)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	for b.Loop() {
		if err := fanout.VerifyPushShards(pub.Genesis, e, p.Shards); err != nil {
			b.Fatal(err)
		}
	}
}
