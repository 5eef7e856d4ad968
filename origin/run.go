package origin

import (
	"context"
	"fmt"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// maxPublishBatch keeps one publish body well under wire.MaxJSONBody
// (manifests are base64 in JSON, 4/3 of their size).
const maxPublishBatch = wire.MaxJSONBody / 2

// Run registers with every coordinator as wire.RoleOrigin, publishes the
// whole catalogue (manifests and keys) to each and heartbeats until ctx
// ends. When a coordinator answers Unknown, or could not be reached, it
// registers and publishes to it again. Videos ingested into the store
// while running are published at the next heartbeat. Each coordinator has
// its own wire.NodeSession and goroutine, so an unreachable one delays no
// other. Run returns nil when ctx is cancelled, after they have all exited.
func (o *Origin) Run(ctx context.Context) error {
	urls := wire.CoordinatorURLs(o.cfg.Coordinator, o.cfg.Coordinators)
	if len(urls) == 0 {
		return fmt.Errorf("origin: no coordinator URL given")
	}
	if o.cfg.Advertise == "" {
		return fmt.Errorf("origin: no advertised URL: set Config.Advertise to the address viewers reach this origin at")
	}
	// Registrations, heartbeats and publishes are signed with the
	// origin's identity; the coordinator takes them only from origin keys
	// its operator allowed.
	signer := wire.NewNodeSigner(o.cfg.Identity.Key, nil)
	sessions := make([]*wire.NodeSession, len(urls))
	for i, url := range urls {
		sessions[i] = o.session(wire.NewCoordinatorClient(url, o.hc).AsNode(signer))
	}
	wire.RunNodeSessions(ctx, sessions)
	return nil
}

// session keeps one coordinator registered and published to. The origin
// has no inventory (it holds every shard of its catalogue): its heartbeats
// carry served bytes, and any failure makes it register and publish the
// whole catalogue again, since the coordinator may have lost it.
func (o *Origin) session(cc *wire.CoordinatorClient) *wire.NodeSession {
	var (
		published []content.VideoID // catalogue as last published to cc, sorted
		reported  int64             // BytesServed at the last acknowledged heartbeat
	)
	// publishChanges publishes the catalogue if it differs from what cc has.
	publishChanges := func(ctx context.Context) error {
		ids, err := o.cfg.Store.Videos()
		if err != nil {
			return fmt.Errorf("list store: %w", err)
		}
		if !slices.Equal(ids, published) {
			if err := o.publish(ctx, cc, ids); err != nil {
				return err
			}
			published = ids
		}
		return nil
	}
	return &wire.NodeSession{
		Client:   cc,
		Register: wire.RegisterRequest{NodeID: o.cfg.Identity.ID, Role: wire.RoleOrigin, Addr: o.cfg.Advertise, RTMPAddr: o.rtmpAddr()},
		Log:      o.log,
		OnRegistered: func(ctx context.Context, _ wire.RegisterResponse) error {
			o.metrics.registrations.Inc()
			published = nil // a coordinator that (re)learnt the origin gets everything
			return publishChanges(ctx)
		},
		NextHeartbeat: func(bool) wire.HeartbeatRequest {
			return wire.HeartbeatRequest{ServedBytes: o.BytesServed() - reported}
		},
		OnHeartbeat: func(ctx context.Context, res wire.HeartbeatResult) error {
			if res.Err != nil {
				return fmt.Errorf("heartbeat: %w", res.Err)
			}
			if !res.Acknowledged() {
				return nil // Unknown: the session registers again
			}
			reported += res.Request.ServedBytes
			if o.cfg.Live != nil && res.Response.Live != nil {
				o.cfg.Live.SetLive(res.Response.Live)
			}
			return publishChanges(ctx)
		},
	}
}

// publish sends every listed video's manifest and content key, in batches
// that fit the coordinator's body limit. A video whose stored manifest is
// unreadable is logged and skipped, not fatal to the rest.
func (o *Origin) publish(ctx context.Context, cc *wire.CoordinatorClient, ids []content.VideoID) error {
	var batch []wire.PublishedVideo
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := cc.Publish(ctx, wire.PublishRequest{OriginID: o.cfg.Identity.ID, Videos: batch}); err != nil {
			return fmt.Errorf("publish %d videos: %w", len(batch), err)
		}
		o.metrics.publishes.Inc()
		batch, size = nil, 0
		return nil
	}
	for _, id := range ids {
		m, err := o.manifest(id)
		if err != nil {
			o.log.Error("not publishing a video with an unreadable manifest", "video", id, "err", err)
			continue
		}
		v := wire.PublishedVideo{Manifest: m.Encode()}
		if key, err := o.cfg.Store.ContentKey(id); err == nil {
			v.Key = key[:]
		} else {
			o.log.Warn("publishing without a content key", "video", id, "err", err)
		}
		if size+len(v.Manifest) > maxPublishBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, v)
		size += len(v.Manifest)
	}
	if err := flush(); err != nil {
		return err
	}
	o.log.Info("published catalogue", "videos", len(ids))
	return nil
}
