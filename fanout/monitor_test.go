package fanout_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/wire"
)

// The monitor accuses the parent that missed a push, never the origin, and
// a new parent (a rebuilt tree) does not answer for the old one's misses.
func TestParentMonitorAccusesTheParentThatMissed(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 51)
	recv, err := fanout.NewReceiver(fanout.ReceiverConfig{Coordinator: pub})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	_, relayKey, _ := ed25519.GenerateKey(nil)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	relayID, otherID := wire.NodeID(btr.KeyOf(relayKey).String()), wire.NodeID(btr.KeyOf(otherKey).String())
	originID := wire.NodeID(btr.KeyOf(pub.Key).String())
	route := func(parent wire.NodeID) []wire.LiveRoute {
		return []wire.LiveRoute{{Chain: pub.Chain, Substream: 0, Indices: []int{0, 1, 2, 3, 4}, Parent: parent}}
	}
	m := fanout.NewParentMonitor(key, pub, recv.Window(), 0)
	t0 := time.Unix(1_780_000_000, 0)
	feed := func(parent wire.NodeID, at time.Time) {
		t.Helper()
		_, seg := pub.Next()
		recv.SetLive(&wire.LiveSet{Version: at.UnixNano(), Routes: route(parent)})
		got, err := recv.Receive(t.Context(), parent, &fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards})
		if err != nil {
			t.Fatal(err)
		}
		m.Received(route(parent), got, at)
	}
	for s := range 3 {
		feed(relayID, t0.Add(time.Duration(s)*time.Second))
	}
	pub.Next() // segment 3, never pushed
	if got := m.Check(t.Context(), route(relayID), t0.Add(2*time.Second+1900*time.Millisecond)); len(got) != 0 {
		t.Fatalf("named before the deadline: %+v", got)
	}
	// Overdue at 4 s, seen published at 4.1 s: accused once the slack
	// (one segment) passed since, not before.
	if got := m.Check(t.Context(), route(relayID), t0.Add(4*time.Second+100*time.Millisecond)); len(got) != 0 {
		t.Fatalf("accused before the slack after publication: %+v", got)
	}
	got := m.Check(t.Context(), route(relayID), t0.Add(5*time.Second+200*time.Millisecond))
	if len(got) != 1 || got[0].Parent != relayID || got[0].Miss.Seq != 3 || got[0].Accusation == nil || got[0].Accusation.Accused != btr.KeyOf(relayKey) {
		t.Fatalf("accused %+v, want the relay for segment 3", got)
	}
	// The tree is rebuilt: the other relay is the parent now; the old
	// one's misses are not its to answer for.
	pub.Next()
	for _, a := range m.Check(t.Context(), route(otherID), t0.Add(20*time.Second)) {
		if a.Parent == otherID {
			t.Fatalf("the new parent was accused of the old one's misses: %+v", a)
		}
	}
	// The origin is never accused.
	feed(originID, t0.Add(21*time.Second))
	pub.Next()
	for _, a := range m.Check(t.Context(), route(originID), t0.Add(40*time.Second)) {
		if a.Parent != relayID { // the relay's own miss of segment 4 may still come due
			t.Fatalf("%s was accused: %+v", a.Parent, a)
		}
	}
	for _, a := range m.Check(t.Context(), route(originID), t0.Add(60*time.Second)) {
		t.Fatalf("%s was accused: %+v", a.Parent, a)
	}
}
