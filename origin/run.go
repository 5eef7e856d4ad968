package origin

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Coordinator timing when the coordinator gives none or is unreachable.
const (
	defaultHeartbeat = 2 * time.Second
	minRetry         = 250 * time.Millisecond
	maxRetry         = 5 * time.Second
	// maxPublishBatch keeps one publish body well under wire.MaxJSONBody
	// (manifests are base64 in JSON, 4/3 of their size).
	maxPublishBatch = wire.MaxJSONBody / 2
)

// Run registers with the coordinator as wire.RoleOrigin, publishes the
// whole catalogue (manifests and keys) and heartbeats until ctx ends. When
// the coordinator answers Unknown, or could not be reached, it registers
// and publishes again. Videos ingested into the store while running are
// published at the next heartbeat. Run returns nil when ctx is cancelled.
func (o *Origin) Run(ctx context.Context) error {
	if o.cfg.Coordinator == "" {
		return fmt.Errorf("origin: no coordinator URL (give --coordinator)")
	}
	if o.cfg.Advertise == "" {
		return fmt.Errorf("origin: no advertised URL: set Config.Advertise to the address viewers reach this origin at")
	}
	cc := wire.NewCoordinatorClient(o.cfg.Coordinator, o.hc)
	var (
		registered bool
		published  []content.VideoID // catalogue as last published, sorted
		interval   = defaultHeartbeat
		retry      = minRetry
		reported   int64 // BytesServed at the last successful heartbeat
	)
	for {
		wait := interval
		if err := func() error {
			if !registered {
				resp, err := cc.Register(ctx, wire.RegisterRequest{NodeID: o.cfg.Identity.ID, Role: wire.RoleOrigin, Addr: o.cfg.Advertise})
				if err != nil {
					return fmt.Errorf("register: %w", err)
				}
				o.metrics.registrations.Inc()
				if d := resp.HeartbeatInterval(); d > 0 {
					interval, wait = d, d
				}
				published = nil
				registered = true
				o.log.Info("registered with coordinator", "coordinator", o.cfg.Coordinator, "advertise", o.cfg.Advertise, "heartbeat", interval)
			} else {
				served := o.BytesServed()
				resp, err := cc.Heartbeat(ctx, wire.HeartbeatRequest{NodeID: o.cfg.Identity.ID, ServedBytes: served - reported})
				if err != nil {
					registered = false
					return fmt.Errorf("heartbeat: %w", err)
				}
				reported = served
				if resp.Unknown {
					o.log.Info("coordinator forgot this origin; registering again")
					registered = false
					wait = 0
					return nil
				}
			}
			ids, err := o.cfg.Store.Videos()
			if err != nil {
				return fmt.Errorf("list store: %w", err)
			}
			if !slices.Equal(ids, published) {
				if err := o.publish(ctx, cc, ids); err != nil {
					registered = false // publish again from scratch once it works
					return err
				}
				published = ids
			}
			return nil
		}(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			o.log.Warn("coordinator unreachable; retrying", "err", err, "in", retry)
			wait, retry = retry, min(retry*2, maxRetry)
		} else {
			retry = minRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
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
