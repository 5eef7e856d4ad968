package accounting

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// The players' soft state is bounded per account (the oldest announcement
// makes room) and in total (refused until entries expire), and pruning
// forgets only what is older than the max age.
func TestPlayerGatewaysBounded(t *testing.T) {
	p := newPlayerGateways()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(i int) wire.NodeID { return wire.NodeID(fmt.Sprintf("%064x", i)) }
	for i := range maxPlayersPerAccount + 3 {
		if err := p.put(key(i), 1, "http://127.0.0.1:1", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got := p.list(1, t0.Add(time.Minute))
	if len(got) != maxPlayersPerAccount || got[0].ViewerID != key(maxPlayersPerAccount+2) || got[len(got)-1].ViewerID != key(3) {
		t.Fatalf("account 1 lists %d players, newest %s, oldest %s; want %d, %s .. %s", len(got), got[0].ViewerID, got[len(got)-1].ViewerID, maxPlayersPerAccount, key(maxPlayersPerAccount+2), key(3))
	}
	if len(p.accountOf) != maxPlayersPerAccount {
		t.Fatalf("index holds %d keys, want %d", len(p.accountOf), maxPlayersPerAccount)
	}
	// Fill to the global bound with one player per account.
	for i := len(p.accountOf); i < maxPlayers; i++ {
		if err := p.put(key(1_000_000+i), int64(100+i), "http://127.0.0.1:2", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.put(key(5_000_000), 7, "http://127.0.0.1:3", t0.Add(time.Minute)); err != errTooManyPlayers {
		t.Fatalf("past %d players: %v, want errTooManyPlayers", maxPlayers, err)
	}
	// A known key still refreshes when full.
	if err := p.put(key(1_000_100), 200, "http://127.0.0.1:4", t0.Add(time.Minute)); err != nil {
		t.Fatalf("refresh when full: %v", err)
	}
	// Once entries are past the max age, a new one gets room.
	later := t0.Add(time.Minute + wire.PlayerGatewayMaxAge + time.Second)
	if err := p.put(key(5_000_000), 7, "http://127.0.0.1:3", later); err != nil {
		t.Fatalf("after account 1 expired: %v", err)
	}
	if got := p.list(1, later); len(got) != 0 {
		t.Fatalf("account 1 still lists %d expired players", len(got))
	}
	if len(p.accountOf) != 1 {
		t.Fatalf("after making room: %d keys, want only the new one (the rest expired)", len(p.accountOf))
	}
	p.prune(later.Add(wire.PlayerGatewayMaxAge + time.Second))
	if len(p.accountOf) != 0 || len(p.byAccount) != 0 {
		t.Fatalf("after pruning everything: %d keys, %d accounts", len(p.accountOf), len(p.byAccount))
	}
}
