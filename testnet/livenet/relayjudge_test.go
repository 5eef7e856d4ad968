package livenet_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// TestLiveStalledRelayIsExcludedAndBypassed: relays under BTR in running
// nodes. The cheapest relay (relay 0, the first the trees use) is started
// with --fault stall --fault-from stallFrom: its children accuse it to the
// coordinator (the relays' judge), which, unanswered, excludes it in the
// channel log with evidence an independent btr check accepts; its children
// switch to their backups at s* and the trees are rebuilt without it; the
// players see no failed play.
func TestLiveStalledRelayIsExcludedAndBypassed(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	const stallFrom = 12
	n := testnet.StartForTest(t, testnet.Config{Edges: 3, Relays: 3, Seed: 14, AuditInterval: -1, Live: true,
		RelayFaults: []relay.Fault{{Kind: relay.FaultStall, From: stallFrom}}})
	ch, err := n.CreateChannel(t.Context(), "relay stall", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 50 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	info := waitChain(t, n, ch.Channel.ID, 2, pub)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	plays := make([]testnet.LivePlay, 3)
	var wg sync.WaitGroup
	for i := range plays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plays[i] = testnet.PlayLive(ctx, http.DefaultClient, gatewayOf(t, n, i)+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 30*time.Second)
		}()
	}
	victim := n.Relays()[0]
	anon := wire.NewCoordinatorClient(n.CoordinatorURL, http.DefaultClient)
	var log wire.BTRLog
	var excluded *wire.BTRExcludedNode
	deadline := time.Now().Add(60 * time.Second)
	for excluded == nil && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond) // bounded poll of the channel log
		if log, err = anon.BTRLog(ctx, info.Chain); err != nil {
			continue
		}
		for i := range log.Excluded {
			if log.Excluded[i].Node == victim.Identity.ID {
				excluded = &log.Excluded[i]
			}
		}
	}
	wg.Wait()
	if excluded == nil {
		t.Fatalf("the stalled relay %s was never excluded; log %+v", victim.Identity.ID, log)
	}
	for i, p := range plays {
		if p.Err != nil || p.Segments < 10 {
			t.Errorf("player %d across the stall: %+v", i, p)
		}
	}
	if len(log.Excluded) != 1 {
		t.Errorf("honest nodes excluded too: %+v", log.Excluded)
	}
	// An independent check of the logged statement against the judge's key.
	judge, err := btr.ParseNodeKey(string(log.RelayJudge))
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, raw := range log.Statements {
		x, err := btr.DecodeExclusion(raw)
		if err != nil || x.Culprit.String() != string(victim.Identity.ID) {
			continue
		}
		if err := x.Check(judge, nil); err != nil {
			t.Fatalf("the relay's exclusion does not check: %v", err)
		}
		checked = true
	}
	if !checked || excluded.SwitchAt <= stallFrom {
		t.Fatalf("exclusion %+v: no checked statement, or a switch before the stall", excluded)
	}
	// Its children accused it, and nobody's parent is the culprit any more.
	accusers := 0
	for _, r := range n.Relays() {
		for _, a := range r.Relay.Accusations() {
			if a.Parent == victim.Identity.ID {
				accusers++
			}
		}
		for _, route := range r.Relay.Routes() {
			if route.Chain == info.Chain && route.Parent == victim.Identity.ID {
				t.Errorf("relay %s still has the excluded relay as its parent: %+v", r.Identity.ID, route)
			}
		}
	}
	for _, e := range n.AliveEdges() {
		for _, a := range e.Edge.LiveAccusations() {
			if a.Parent == victim.Identity.ID {
				accusers++
			}
		}
		for _, route := range e.Edge.LiveRoutes() {
			if route.Chain == info.Chain && route.Parent == victim.Identity.ID {
				t.Errorf("edge %s still has the excluded relay as its parent: %+v", e.Identity.ID, route)
			}
		}
	}
	if accusers == 0 {
		t.Error("no child accused the stalled relay")
	}
	t.Logf("relay %s stalled from %d: excluded %+v; plays %+v", victim.Identity.ID, stallFrom, *excluded, testnet.SumLivePlays(plays))
}
