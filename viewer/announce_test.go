package viewer

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// A signed-in player binds its key and announces its gateway at once,
// re-announces every wire.PlayerGatewayRefresh (in fake time) with the
// key's signature, and withdraws it on Close; a non-loopback gateway is
// refused before anything is sent.
func TestAnnounceGatewayRefreshesAndWithdraws(t *testing.T) {
	n := newTestNetwork(t, nil)
	n.coord.token = "session-1"
	synctest.Test(t, func(t *testing.T) {
		id := identity.New()
		v, err := New(Config{Coordinator: n.coordURL, Identity: id, Token: "session-1", Seed: 1, HTTPClient: memClient(t, n, 10*time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://192.168.1.5:8080", "http://localhost:8080", "https://127.0.0.1:8080", "http://127.0.0.1:8080/x", "http://127.0.0.1"} {
			if err := v.AnnounceGateway(bad); err == nil {
				t.Errorf("AnnounceGateway(%q) accepted", bad)
			}
		}
		const gw = "http://127.0.0.1:43117"
		if err := v.AnnounceGateway(gw); err != nil {
			t.Fatal(err)
		}
		count := func() []wire.PlayerGatewayRequest {
			synctest.Wait()
			n.coord.mu.Lock()
			defer n.coord.mu.Unlock()
			return slices.Clone(n.coord.announces)
		}
		time.Sleep(time.Second) // three round trips of 10 ms: me, bind, announce
		if got := count(); len(got) != 1 || got[0].Gateway != gw || got[0].ViewerID != id.ID {
			t.Fatalf("after start: announcements %+v, want one of %s by %s", got, gw, id.ID)
		}
		n.coord.mu.Lock()
		binds := slices.Clone(n.coord.binds)
		n.coord.mu.Unlock()
		if !slices.Contains(binds, id.ID) {
			t.Fatalf("player key not bound before announcing (binds %v)", binds)
		}
		time.Sleep(3 * wire.PlayerGatewayRefresh)
		if got := count(); len(got) != 4 {
			t.Fatalf("after three refresh periods: %d announcements, want 4", len(got))
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		got := count()
		if len(got) != 5 || got[4].Gateway != "" {
			t.Fatalf("after Close: %+v, want a fifth announcement withdrawing the gateway", got)
		}
		time.Sleep(3 * wire.PlayerGatewayRefresh)
		if after := count(); len(after) != 5 {
			t.Fatalf("announcements went on after Close: %d", len(after))
		}
	})
}
