package livenet_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
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

// liveRelayChild finds a child (edge or relay) whose parent in some
// substream of chain is a relay: the child's key, its route and the
// parent relay.
func liveRelayChild(n *testnet.Network, chain content.VideoID) (key ed25519.PrivateKey, child wire.NodeID, route wire.LiveRoute, ok bool) {
	relays := map[wire.NodeID]bool{}
	for _, r := range n.Relays() {
		relays[r.Identity.ID] = true
	}
	for _, e := range n.AliveEdges() {
		for _, rt := range e.Edge.LiveRoutes() {
			if rt.Chain == chain && relays[rt.Parent] {
				return e.Identity.Key, e.Identity.ID, rt, true
			}
		}
	}
	for _, r := range n.Relays() {
		for _, rt := range r.Relay.Routes() {
			if rt.Chain == chain && relays[rt.Parent] {
				return r.Identity.Key, r.Identity.ID, rt, true
			}
		}
	}
	return nil, "", wire.LiveRoute{}, false
}

// TestLiveLyingChildCannotGetAnHonestRelayExcluded: PeerReview's rebuttal
// in running nodes. A child (a real edge's or relay's key) accuses its
// honest relay parent of a push it did receive; the judge upholds the
// accusation, the relay reads it on the judge's route and answers with the
// signed push it kept; the case clears, the answer is served to the
// accuser, and the relay is never excluded: the channel log stays empty.
func TestLiveLyingChildCannotGetAnHonestRelayExcluded(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	n := testnet.StartForTest(t, testnet.Config{Edges: 3, Relays: 3, Seed: 15, AuditInterval: -1, Live: true})
	ch, err := n.CreateChannel(t.Context(), "lying child", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	info := waitChain(t, n, ch.Channel.ID, 2, pub)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	plays := make([]testnet.LivePlay, 3)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range plays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plays[i] = testnet.PlayLive(ctx, http.DefaultClient, gatewayOf(t, n, i)+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 25*time.Second)
		}()
	}
	anon := wire.NewCoordinatorClient(n.CoordinatorURL, http.DefaultClient)
	// Wait (bounded) for a child under a relay, then for two more segments
	// past the head seen then: the relay had its route (and forwarded) by
	// the segment accused, head+2, so the accusation is a lie.
	var key ed25519.PrivateKey
	var child wire.NodeID
	var route wire.LiveRoute
	var seq uint64
	var entry []byte
	seen := -1
	for deadline := time.Now().Add(40 * time.Second); entry == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no child under a relay held two more pushed segments within 40 s")
		}
		time.Sleep(250 * time.Millisecond) // bounded poll of the trees and the chain
		entries, err := anon.LiveEntries(ctx, info.Chain, 0, 0)
		if err != nil {
			continue
		}
		if seen < 0 {
			var ok bool
			if key, child, route, ok = liveRelayChild(n, info.Chain); ok {
				seen = len(entries)
			}
			continue
		}
		if len(entries) >= seen+4 {
			seq = uint64(seen + 2)
			entry = entries[seq]
		}
	}
	parent, err := btr.ParseNodeKey(string(route.Parent))
	if err != nil {
		t.Fatal(err)
	}
	lie := &btr.Accusation{Task: btr.RelayTask(info.Chain, seq, route.Substream, entry), Accused: parent, Kind: btr.Omission}
	lie.Sign(key)
	liar := wire.NewCoordinatorClient(n.CoordinatorURL, http.DefaultClient).AsNode(wire.NewNodeSigner(key, nil))
	if err := liar.PostRelayStatement(ctx, info.Chain, lie.Encode()); err != nil {
		t.Fatalf("the child's accusation of its parent %s was refused: %v", route.Parent, err)
	}
	var answer *wire.RelayJudgeAnswer
	for deadline := time.Now().Add(10 * time.Second); answer == nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // bounded poll of the judge's answers
		cases, err := anon.RelayJudgeCases(ctx, info.Chain)
		if err != nil {
			continue
		}
		for i := range cases.Answered {
			if cases.Answered[i].Accuser == child {
				answer = &cases.Answered[i]
			}
		}
	}
	if answer == nil {
		t.Fatalf("the honest relay %s never answered the accusation", route.Parent)
	}
	r, err := btr.DecodeRebuttal(answer.Rebuttal)
	if err != nil || r.Output.Replica != parent || r.Output.Task != lie.Task {
		t.Fatalf("the answer served to the accuser: %+v, %v; want the relay's signed push of the accused task", r, err)
	}
	// Past the answer window (one segment) and the judge's ticks, the log
	// stays unchanged at every look.
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); {
		time.Sleep(250 * time.Millisecond) // bounded poll of the channel log
		log, err := anon.BTRLog(ctx, info.Chain)
		if err != nil {
			t.Fatal(err)
		}
		if len(log.Statements) != 0 || len(log.Excluded) != 0 {
			t.Fatalf("the channel log after a rebutted lie: %+v, want it unchanged (empty)", log)
		}
	}
}

// TestLiveCorruptRelayIsProvenAndExcluded: a relay that flips a byte of
// every shard it forwards (--fault corrupt) signs pushes over bad bytes;
// its children refuse them and post their proofs (its own signed push) to
// the coordinator, which re-executes the relaying from the origin's shards
// itself and excludes it at once for commission. The channel log's
// evidence is accepted by an independent checker that re-digests the
// substream from the origin's shards; no play fails.
func TestLiveCorruptRelayIsProvenAndExcluded(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	const corruptFrom = 10
	n := testnet.StartForTest(t, testnet.Config{Edges: 3, Relays: 3, Seed: 16, AuditInterval: -1, Live: true,
		RelayFaults: []relay.Fault{{Kind: relay.FaultCorrupt, From: corruptFrom}}})
	ch, err := n.CreateChannel(t.Context(), "relay corrupt", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n.Publish(n.RTMPIngestURL(0, ch.StreamKey), testnet.PublishOptions{Duration: 40 * time.Second})
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
			plays[i] = testnet.PlayLive(ctx, http.DefaultClient, gatewayOf(t, n, i)+"/live/"+string(ch.Channel.ID)+"/0/index.m3u8", 25*time.Second)
		}()
	}
	victim := n.Relays()[0]
	anon := wire.NewCoordinatorClient(n.CoordinatorURL, http.DefaultClient)
	var log wire.BTRLog
	var excluded *wire.BTRExcludedNode
	for deadline := time.Now().Add(60 * time.Second); excluded == nil && time.Now().Before(deadline); {
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
		t.Fatalf("the corrupting relay %s was never excluded; log %+v", victim.Identity.ID, log)
	}
	if excluded.Kind != "commission" || len(log.Excluded) != 1 {
		t.Fatalf("exclusions %+v, want only the corrupting relay, for commission", log.Excluded)
	}
	for i, p := range plays {
		if p.Err != nil || p.Segments < 5 {
			t.Errorf("player %d across the corruption: %+v", i, p)
		}
	}
	judge, err := btr.ParseNodeKey(string(log.RelayJudge))
	if err != nil {
		t.Fatal(err)
	}
	rawG, err := anon.LiveGenesis(ctx, info.Chain)
	if err != nil {
		t.Fatal(err)
	}
	g, err := content.DecodeLiveGenesis(rawG)
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, raw := range log.Statements {
		x, err := btr.DecodeExclusion(raw)
		if err != nil || x.Culprit.String() != string(victim.Identity.ID) {
			continue
		}
		p, err := btr.DecodeProof(x.Evidence)
		if err != nil {
			t.Fatalf("the exclusion's evidence is not a proof: %v", err)
		}
		sub, _ := btr.RelaySubstream(p.A.Task)
		entries, err := anon.LiveEntries(ctx, info.Chain, p.A.Segment, 0)
		if err != nil || len(entries) == 0 {
			t.Fatalf("entry %d: %v", p.A.Segment, err)
		}
		e, err := content.DecodeLiveEntry(entries[0], g, info.Chain)
		if err != nil {
			t.Fatal(err)
		}
		// The checker's own re-execution: every pushed index of every
		// rendition from the origin, verified, digested for the substream.
		var shards []*content.ShardMessage
		for r := range e.Segments {
			for i := range content.DefaultLivePushShards {
				res, err := wire.GetShard(ctx, http.DefaultClient, wire.ShardRequest{Base: n.Origins[0].Server.Advertise,
					Ref: content.SegmentRef{Video: info.Chain, Rendition: r, Segment: int(e.Seq)}.Shard(i), MaxBytes: 1 << 22})
				if err != nil {
					t.Fatal(err)
				}
				sh, err := content.DecodeShardMessage(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				shards = append(shards, sh)
			}
		}
		var indices []int
		for _, rs := range [][]wire.LiveRoute{victim.Relay.Routes()} {
			for _, rt := range rs {
				if rt.Chain == info.Chain && rt.Substream == sub {
					indices = rt.Indices
				}
			}
		}
		if indices == nil {
			indices = content.SubstreamIndices(sub, content.DefaultLivePushShards, content.DefaultLivePushShards)
		}
		re := fanout.NewRelayReexecutor()
		if err := re.Add(g, entries[0], sub, indices, shards); err != nil {
			t.Fatal(err)
		}
		if err := x.Check(judge, re); err != nil {
			t.Fatalf("an independent checker refuses the commission exclusion: %v", err)
		}
		checked = true
	}
	if !checked || excluded.SwitchAt <= corruptFrom {
		t.Fatalf("exclusion %+v: no checked statement, or a switch before the corruption", excluded)
	}
	t.Logf("relay %s corrupt from %d: excluded %+v; plays %+v", victim.Identity.ID, corruptFrom, *excluded, testnet.SumLivePlays(plays))
}
