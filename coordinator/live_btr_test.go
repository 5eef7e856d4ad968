package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"testing"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

func btrKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("coordinator btr test " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

// The channel log on both stores, with real signatures: the chain's judge
// (its origin) posts an accusation and an equivocation exclusion; outsiders,
// unsigned, forged, tampered and misdirected statements are refused with
// the log unchanged; a re-post changes nothing; anyone reads the log, and a
// restart keeps it (checked again on load).
func TestBTRChannelLog(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		h := newStoreHarness(t, dsn, "", nil)
		ctx := context.Background()
		anon := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
		alice := h.user("alice")
		admin := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
		admin.Token = h.admin
		if err := admin.AllowBroadcaster(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		owner := wire.NewCoordinatorClient(h.srv.URL, h.srv.Client())
		owner.Token = alice
		created, err := owner.CreateChannel(ctx, wire.CreateChannelRequest{Name: "btr"})
		if err != nil {
			t.Fatal(err)
		}
		origin, other := h.newLiveOrigin(), h.newLiveOrigin()
		if _, err := origin.client.AuthorizeIngest(ctx, created.StreamKey); err != nil {
			t.Fatal(err)
		}
		tc := newTestChain(t, origin, created.Channel.ID)
		chain := tc.g.ID()
		if err := origin.client.StartChain(ctx, tc.g.Encode(), tc.key); err != nil {
			t.Fatal(err)
		}

		// The worker "w" signs two digests for one task: equivocation.
		task := btr.Task{Chain: chain, Segment: 3, Recipe: "ladder", Input: content.Hash{1}}
		a := &btr.Output{Task: task, Digest: content.Hash{2}}
		a.Sign(btrKey("w"))
		b := &btr.Output{Task: task, Digest: content.Hash{3}}
		b.Sign(btrKey("w"))
		proof := &btr.ProofOfMisbehaviour{Kind: btr.Equivocation, A: a, B: b}
		exclusion := func(signer ed25519.PrivateKey, culprit btr.NodeKey, ch content.VideoID) *btr.Exclusion {
			x := &btr.Exclusion{Chain: ch, Culprit: culprit, Kind: btr.Equivocation, Current: 3, Evidence: proof.Encode()}
			x.Sign(signer)
			return x
		}
		good := exclusion(origin.id.Key, btr.KeyOf(btrKey("w")), chain).Encode()
		acc := &btr.Accusation{Task: task, Accused: btr.KeyOf(btrKey("silent")), Kind: btr.Omission, AnswerBy: 1}
		acc.Sign(origin.id.Key)
		outsiderAcc := &btr.Accusation{Task: task, Accused: btr.KeyOf(btrKey("silent")), Kind: btr.Omission, AnswerBy: 1}
		outsiderAcc.Sign(other.id.Key)
		tampered := bytes.Clone(good)
		tampered[len(tampered)-70] ^= 1 // inside the evidence, after signing
		otherChain := content.VideoID{9}

		requireAPIError(t, anon.AppendBTRStatement(ctx, chain, good), http.StatusUnauthorized)
		requireAPIError(t, other.client.AppendBTRStatement(ctx, chain, exclusion(other.id.Key, btr.KeyOf(btrKey("w")), chain).Encode()), http.StatusForbidden, "judged by its origin")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, exclusion(other.id.Key, btr.KeyOf(btrKey("w")), chain).Encode()), http.StatusBadRequest, "exclusion refused")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, exclusion(origin.id.Key, btr.KeyOf(btrKey("honest")), chain).Encode()), http.StatusBadRequest, "exclusion refused")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, tampered), http.StatusBadRequest)
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, exclusion(origin.id.Key, btr.KeyOf(btrKey("w")), otherChain).Encode()), http.StatusBadRequest, "posted to")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, outsiderAcc.Encode()), http.StatusForbidden, "not by the chain's judge")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, chain, []byte("not a statement")), http.StatusBadRequest, "want an encoded btr")
		requireAPIError(t, origin.client.AppendBTRStatement(ctx, otherChain, good), http.StatusNotFound)
		if log, err := anon.BTRLog(ctx, chain); err != nil || len(log.Statements) != 0 || len(log.Excluded) != 0 {
			t.Fatalf("refused statements changed the log: %+v %v", log, err)
		}

		for _, st := range [][]byte{acc.Encode(), good, good} {
			if err := origin.client.AppendBTRStatement(ctx, chain, st); err != nil {
				t.Fatal(err)
			}
		}
		check := func(c *wire.CoordinatorClient) {
			t.Helper()
			log, err := c.BTRLog(ctx, chain)
			if err != nil {
				t.Fatal(err)
			}
			if len(log.Statements) != 2 || !bytes.Equal(log.Statements[0], acc.Encode()) || !bytes.Equal(log.Statements[1], good) {
				t.Fatalf("log has %d statements, want the accusation and the exclusion once", len(log.Statements))
			}
			want := wire.BTRExcludedNode{Node: wire.NodeID(btr.KeyOf(btrKey("w")).String()), Kind: "equivocation", Current: 3}
			if len(log.Excluded) != 1 || log.Excluded[0] != want {
				t.Fatalf("excluded %+v, want %+v", log.Excluded, want)
			}
			// A reader derives the chain's configuration from the log's bytes.
			x, err := btr.DecodeExclusion(log.Statements[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Check(btr.KeyOf(origin.id.Key), nil); err != nil {
				t.Fatalf("the logged exclusion does not check: %v", err)
			}
		}
		check(anon)

		c2, err := New(Config{Seed: 2, Now: h.clock.Now, Log: quietLog(), Store: h.store, Accounting: h.c.cfg.Accounting})
		if err != nil {
			t.Fatal(err)
		}
		if log, err := c2.Live().BTRLog(chain); err != nil || len(log.Statements) != 2 || len(log.Excluded) != 1 {
			t.Fatalf("after restart: %+v %v", log, err)
		}
	})
}
