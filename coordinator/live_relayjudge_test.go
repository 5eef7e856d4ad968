package coordinator

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// The relays' judge's route authenticates its callers: unsigned requests,
// unregistered nodes and origins are refused before the statement is read;
// a registered edge reaches the judge (here: a chain without relay trees,
// 404); anyone reads the open cases and the judge's key, which the channel
// log names too.
func TestRelayJudgeRouteIsNodeSigned(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+filepath.Join(t.TempDir(), "coordinator.db"), "", nil)
	ctx := context.Background()
	chain := content.VideoID{7}
	a := &btr.Accusation{Task: btr.RelayTask(chain, 1, 0, []byte("entry")), Accused: btr.KeyOf(btrKey("parent")), Kind: btr.Omission}
	a.Sign(btrKey("child"))
	raw := a.Encode()

	anon := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
	requireAPIError(t, anon.PostRelayStatement(ctx, chain, raw), http.StatusUnauthorized)
	stranger := newTestNode()
	unregistered := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(stranger.Key, h.clock.Now))
	requireAPIError(t, unregistered.PostRelayStatement(ctx, chain, raw), http.StatusNotFound, "not registered")
	origin := h.newLiveOrigin()
	requireAPIError(t, origin.client.PostRelayStatement(ctx, chain, raw), http.StatusForbidden, "only relays and edges")
	e, _ := h.boundEdge("owner", "")
	edge := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client()).AsNode(wire.NewNodeSigner(e.Key, h.clock.Now))
	requireAPIError(t, edge.PostRelayStatement(ctx, chain, raw), http.StatusForbidden, "not by the sender")

	cases, err := anon.RelayJudgeCases(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := btr.ParseNodeKey(string(cases.Judge)); err != nil || len(cases.Accusations) != 0 {
		t.Fatalf("cases %+v: want the judge's key and none open (%v)", cases, err)
	}
}
