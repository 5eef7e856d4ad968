package accounting

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Running players' gateways (wire.PathPlayers) are soft state, kept here in
// memory and not in the store: a gateway's URL is only true while its
// player runs (its port changes on every start), players re-announce every
// wire.PlayerGatewayRefresh, and an entry unseen for
// wire.PlayerGatewayMaxAge is hidden, so a restarted coordinator knows every
// running player again within a minute, and a durable table would only
// hold stale ports and take a write per player per minute. The cost: with
// several coordinators, a player is known to the one it talks to (its
// --coordinator); a page served by another plays the HTTP fallback.

// Bounds of the players' soft state.
const (
	maxPlayersPerAccount = 16      // an account's oldest announcement makes room
	maxPlayers           = 100_000 // then announcements are refused until entries expire
)

type playerGateway struct {
	gateway string
	seenAt  time.Time
}

// playerGateways holds each account's players' latest announcements,
// indexed by account (a page's GET touches only its own) and by player key
// (a key announces for one account).
type playerGateways struct {
	mu        sync.Mutex
	byAccount map[int64]map[wire.NodeID]playerGateway
	accountOf map[wire.NodeID]int64
	lastPrune time.Time
}

func newPlayerGateways() *playerGateways {
	return &playerGateways{byAccount: map[int64]map[wire.NodeID]playerGateway{}, accountOf: map[wire.NodeID]int64{}}
}

// errTooManyPlayers refuses an announcement when the soft state is full.
var errTooManyPlayers = &wire.StatusError{Status: http.StatusServiceUnavailable, Msg: "the coordinator tracks as many running players as it can; retry in a few minutes (the web page plays through the fallback meanwhile)"}

// put records (or, with an empty gateway, forgets) viewer's gateway for
// account at now. The caller has checked the key is bound to account.
func (p *playerGateways) put(viewer wire.NodeID, account int64, gateway string, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.accountOf[viewer]; ok && prev != account {
		p.deleteLocked(prev, viewer) // a key bound anew cannot happen today; keep the index exact anyway
	}
	if gateway == "" {
		p.deleteLocked(account, viewer)
		return nil
	}
	mine := p.byAccount[account]
	if _, ok := mine[viewer]; !ok {
		if len(p.accountOf) >= maxPlayers {
			p.pruneLocked(now)
		}
		if len(p.accountOf) >= maxPlayers {
			return errTooManyPlayers
		}
		if len(mine) >= maxPlayersPerAccount {
			var oldest wire.NodeID
			for v, e := range mine {
				if oldest == "" || e.seenAt.Before(mine[oldest].seenAt) {
					oldest = v
				}
			}
			p.deleteLocked(account, oldest)
		}
		if mine == nil {
			mine = map[wire.NodeID]playerGateway{}
			p.byAccount[account] = mine
		}
	}
	mine[viewer] = playerGateway{gateway: gateway, seenAt: now}
	p.accountOf[viewer] = account
	return nil
}

func (p *playerGateways) deleteLocked(account int64, viewer wire.NodeID) {
	mine := p.byAccount[account]
	if _, ok := mine[viewer]; !ok {
		return
	}
	delete(mine, viewer)
	delete(p.accountOf, viewer)
	if len(mine) == 0 {
		delete(p.byAccount, account)
	}
}

// list is account's players seen within wire.PlayerGatewayMaxAge of now,
// most recent first (ties by viewer id, so the order is stable).
func (p *playerGateways) list(account int64, now time.Time) []wire.PlayerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []wire.PlayerInfo{}
	for v, e := range p.byAccount[account] {
		if now.Sub(e.seenAt) <= wire.PlayerGatewayMaxAge {
			out = append(out, wire.PlayerInfo{ViewerID: v, Gateway: e.gateway, SeenAt: e.seenAt.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b wire.PlayerInfo) int {
		return cmp.Or(b.SeenAt.Compare(a.SeenAt), cmp.Compare(a.ViewerID, b.ViewerID))
	})
	return out
}

// prune forgets entries older than wire.PlayerGatewayMaxAge, at most once
// a PlayerGatewayRefresh (it is called every liveness sweep).
func (p *playerGateways) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastPrune) < wire.PlayerGatewayRefresh {
		return
	}
	p.pruneLocked(now)
}

func (p *playerGateways) pruneLocked(now time.Time) {
	p.lastPrune = now
	for account, mine := range p.byAccount {
		for v, e := range mine {
			if now.Sub(e.seenAt) > wire.PlayerGatewayMaxAge {
				p.deleteLocked(account, v)
			}
		}
	}
}

// handlePlayers lists the caller's running players (GET wire.PathPlayers).
func (s *Service) handlePlayers(w http.ResponseWriter, _ *http.Request, who *caller) {
	wire.WriteJSON(w, wire.PlayersResponse{Players: s.players.list(who.acct.ID, s.cfg.Now())})
}

// handleAnnouncePlayer records a player's gateway (POST wire.PathPlayers):
// a login session of the account the player key is bound to, the key's
// signature over the announcement, and a loopback gateway URL; checked in
// that order of cheapness, and nothing is recorded unless all hold.
func (s *Service) handleAnnouncePlayer(w http.ResponseWriter, r *http.Request, who *caller) {
	if !requireSession(w, who, "announcing a player's gateway") {
		return
	}
	var req wire.PlayerGatewayRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := wire.CheckNodeID(req.ViewerID); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "announce player: viewer_id: %v", err)
		return
	}
	if req.Gateway != "" {
		if err := wire.CheckPlayerGateway(req.Gateway); err != nil {
			wire.WriteError(w, http.StatusBadRequest, "announce player: %v; a web page may follow it, so nothing but the player's own loopback gateway is accepted", err)
			return
		}
	}
	now := s.cfg.Now()
	if err := wire.VerifyPlayerGateway(&req, who.acct.ID, now); err != nil {
		wire.WriteError(w, http.StatusUnauthorized, "announce player: %v", err)
		return
	}
	owner, err := s.db.ViewerAccount(r.Context(), req.ViewerID)
	switch {
	case errors.Is(err, coordinatordb.ErrNotFound):
		wire.WriteError(w, http.StatusForbidden, "announce player: player key %s is bound to no account; bind it first (POST %s)", req.ViewerID, wire.PathBindViewer)
		return
	case err != nil:
		s.WriteError(w, err)
		return
	case owner.ID != who.acct.ID:
		wire.WriteError(w, http.StatusForbidden, "announce player: player key %s is bound to another account", req.ViewerID)
		return
	}
	if err := s.players.put(req.ViewerID, who.acct.ID, req.Gateway, now); err != nil {
		s.WriteError(w, err)
		return
	}
	outcome := "announced"
	if req.Gateway == "" {
		outcome = "withdrawn"
	}
	s.metrics.playerAnnouncements.WithLabelValues(outcome).Inc()
	wire.WriteEmpty(w)
}
