package fanout_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/wire"
)

// The agreed switch, over real HTTP: once a parent is excluded with switch
// segment s*, the child takes segments before s* only from the parent and
// from s* on only from its backup, and the backup's Sender pushes to its
// standby child exactly from s*. No message between them is needed.
func TestStandbySwitchAtTheAgreedSegment(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 61)
	excluded, backup := newSigner(t), newSigner(t)
	const switchAt = 3
	indices := content.SubstreamIndices(0, 1, pub.Pushed)
	child := newNode(t, pub, []wire.LiveRoute{{Chain: pub.Chain, Indices: indices, Parent: excluded.ID(), BackupParent: backup.ID(), SwitchAt: switchAt}})
	sender, err := fanout.NewSender(fanout.SenderConfig{Signer: backup})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	sender.SetRoutes([]wire.LiveRoute{{Chain: pub.Chain, Indices: indices, Parent: "origin",
		Standby: []wire.LiveStandby{{Child: wire.Source{NodeID: "child", Addr: child.url, Shards: indices}, For: excluded.ID(), From: switchAt}}}})
	var segs []fanout.Segment
	for range 5 {
		_, seg := pub.Next()
		segs = append(segs, seg)
	}
	// The excluded parent: accepted before s*, refused from s* on.
	for _, seg := range segs {
		err := fanout.PushTo(t.Context(), http.DefaultClient, excluded, child.url, encode(seg))
		var pe *fanout.PushError
		switch {
		case seg.Seq < switchAt && err != nil:
			t.Fatalf("segment %d from the parent before the switch: %v", seg.Seq, err)
		case seg.Seq >= switchAt && (!errors.As(err, &pe) || pe.Status != http.StatusForbidden):
			t.Fatalf("segment %d from the excluded parent at or after the switch %d: %v, want 403", seg.Seq, switchAt, err)
		}
	}
	got := waitReceived(t, child, switchAt)
	// The backup: queued for the standby child only from s*.
	for _, seg := range segs {
		if n := sender.Send(seg); (n == 1) != (seg.Seq >= switchAt) {
			t.Fatalf("the backup queued segment %d for %d children (switch at %d)", seg.Seq, n, switchAt)
		}
	}
	got = append(got, waitReceived(t, child, len(segs)-switchAt)...)
	for i, r := range got {
		want := excluded.ID()
		if r.Segment.Seq >= switchAt {
			want = backup.ID()
		}
		if r.Segment.Seq != uint64(i) || r.Sender != want {
			t.Fatalf("push %d: segment %d from %s, want segment %d from %s", i, r.Segment.Seq, r.Sender, i, want)
		}
	}
}
