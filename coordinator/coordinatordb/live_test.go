package coordinatordb

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/wire"
)

// Channels, broadcasters, chains and entries survive a reopen; a taken
// name, a stored position and an edit of an entry are refused and change
// nothing.
func TestLiveStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		owner, err := db.CreateAccount(ctx, "broadcaster", "correct horse battery", t0)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := db.BroadcasterAllowed(ctx, owner.ID); ok || err != nil {
			t.Fatalf("before: allowed=%v err=%v", ok, err)
		}
		if err := db.AllowBroadcaster(ctx, owner.ID, t0); err != nil {
			t.Fatal(err)
		}
		ch := LiveChannel{ID: "ch_0123456789abcdef", Name: "news", Owner: owner.ID, KeyHash: [32]byte{1}, SegmentMS: 1000, State: wire.ChannelIdle}
		if err := db.CreateLiveChannel(ctx, ch, t0); err != nil {
			t.Fatal(err)
		}
		dup := ch
		dup.ID, dup.KeyHash = "ch_0000000000000001", [32]byte{2}
		if err := db.CreateLiveChannel(ctx, dup, t0); !errors.Is(err, ErrLiveNameTaken) {
			t.Fatalf("same name again: %v, want ErrLiveNameTaken", err)
		}
		chain := videoID(7)
		if err := db.PutLiveChain(ctx, LiveChainRecord{Chain: chain, Channel: ch.ID, Origin: newParty(1).id, Genesis: []byte("genesis"), Key: bytes.Repeat([]byte{9}, 16)}, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.SetLiveChannelState(ctx, ch.ID, wire.ChannelPublishing, "", chain, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.SetLiveChannelState(ctx, "ch_ffffffffffffffff", wire.ChannelPublishing, "", chain, t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown channel: %v", err)
		}
		for seq := range uint64(3) {
			if err := db.AppendLiveEntry(ctx, chain, seq, []byte{byte(seq)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AppendLiveEntry(ctx, chain, 1, []byte("other")); !errors.Is(err, ErrLiveEntryExists) {
			t.Fatalf("second entry at 1: %v", err)
		}
		if _, err := db.sql.ExecContext(ctx, "UPDATE live_entries SET entry = 'x'"); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("editing entries: %v, want the append-only refusal", err)
		}
		if _, err := db.sql.ExecContext(ctx, "DELETE FROM live_entries"); err == nil {
			t.Fatal("deleting entries succeeded")
		}
		if err := db.AddLiveRecording(ctx, ch.ID, videoID(8), t0); err != nil {
			t.Fatal(err)
		}
		if err := db.SealLiveChain(ctx, chain); err != nil {
			t.Fatal(err)
		}
		if err := db.PutLiveFork(ctx, chain, 2, []byte("a"), []byte("b"), t0); err != nil {
			t.Fatal(err)
		}
		db.Close()

		db = openDB(t, be.dsn, testConfig())
		if ok, err := db.BroadcasterAllowed(ctx, owner.ID); !ok || err != nil {
			t.Fatalf("after reopen: allowed=%v err=%v", ok, err)
		}
		chs, err := db.LiveChannels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) != 1 || chs[0].Name != "news" || chs[0].State != wire.ChannelPublishing || chs[0].Chain != chain || chs[0].KeyHash != ch.KeyHash ||
			len(chs[0].Recordings) != 1 || chs[0].Recordings[0] != videoID(8) {
			t.Fatalf("channels after reopen: %+v", chs)
		}
		chains, err := db.LiveChains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(chains) != 1 || chains[0].Chain != chain || !chains[0].Sealed || string(chains[0].Genesis) != "genesis" || len(chains[0].Key) != 16 {
			t.Fatalf("chains after reopen: %+v", chains)
		}
		entries, err := db.LiveEntries(ctx, chain, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0][0] != 1 || entries[1][0] != 2 {
			t.Fatalf("entries from 1: %q", entries)
		}
		if forks, err := db.LiveForks(ctx); err != nil || forks[chain] != 1 {
			t.Fatalf("forks: %v %v", forks, err)
		}
	})
}
