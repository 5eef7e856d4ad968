package viewer

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// announceWithdrawTimeout bounds the withdrawal Close sends.
const announceWithdrawTimeout = 2 * time.Second

// AnnounceGateway has the coordinator list this player's gateway for the
// token's account (wire.PathPlayers), so the account's web pages play
// through it: in the background it binds the player key, announces gateway
// at once and again every wire.PlayerGatewayRefresh (a port changes on
// every start; an entry not refreshed disappears), and Close withdraws it.
// Without a Token it does nothing: the gateway belongs to no account.
// gateway is the URL a page on this machine opens, and must pass
// wire.CheckPlayerGateway (http://127.0.0.1:PORT or http://[::1]:PORT).
// Call it before Close.
func (v *Viewer) AnnounceGateway(gateway string) error {
	if err := wire.CheckPlayerGateway(gateway); err != nil {
		return fmt.Errorf("announce the player's gateway: %w", err)
	}
	if v.cfg.Token == "" || v.ctx.Err() != nil {
		return nil
	}
	v.wg.Add(1)
	go v.announceLoop(gateway)
	return nil
}

// announceLoop is AnnounceGateway's background work, owned by the viewer
// (v.wg) and stopped by Close (v.ctx).
func (v *Viewer) announceLoop(gateway string) {
	defer v.wg.Done()
	tick := time.NewTicker(wire.PlayerGatewayRefresh)
	defer tick.Stop()
	var account int64 // the token's account id, once known
	announced := false
	for {
		err := v.announce(v.ctx, &account, gateway)
		switch {
		case err == nil:
			announced = true
		case v.ctx.Err() == nil:
			v.log.Warn("could not tell the coordinator where this player's gateway listens; web pages will play through the coordinator's fallback", "gateway", gateway, "err", err)
		}
		select {
		case <-tick.C:
		case <-v.ctx.Done():
			if announced {
				ctx, cancel := context.WithTimeout(context.Background(), announceWithdrawTimeout)
				if err := v.coord.AnnouncePlayerGateway(ctx, v.cfg.Identity.Key, account, ""); err != nil {
					v.log.Debug("could not withdraw the gateway; the coordinator forgets it within its max age", "err", err)
				}
				cancel()
			}
			return
		}
	}
}

// announce binds the player key (idempotent; the coordinator lists only a
// bound key's gateway) and announces gateway.
func (v *Viewer) announce(ctx context.Context, account *int64, gateway string) error {
	if *account == 0 {
		me, err := v.coord.Me(ctx)
		if err != nil {
			return err
		}
		if err := v.coord.BindViewer(ctx, v.cfg.Identity.Key); err != nil {
			return err
		}
		*account = me.ID
	}
	return v.coord.AnnouncePlayerGateway(ctx, v.cfg.Identity.Key, *account, gateway)
}
