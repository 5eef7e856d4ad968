package origin

import (
	"context"
	"fmt"
	"slices"
	"sync"
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

// Run registers with every coordinator as wire.RoleOrigin, publishes the
// whole catalogue (manifests and keys) to each and heartbeats until ctx
// ends. When a coordinator answers Unknown, or could not be reached, it
// registers and publishes to it again. Videos ingested into the store
// while running are published at the next heartbeat. Each coordinator has
// its own goroutine, so an unreachable one delays no other. Run returns
// nil when ctx is cancelled, after they have all exited.
func (o *Origin) Run(ctx context.Context) error {
	urls := wire.CoordinatorURLs(o.cfg.Coordinator, o.cfg.Coordinators)
	if len(urls) == 0 {
		return fmt.Errorf("origin: no coordinator URL given")
	}
	if o.cfg.Advertise == "" {
		return fmt.Errorf("origin: no advertised URL: set Config.Advertise to the address viewers reach this origin at")
	}
	var wg sync.WaitGroup
	for _, url := range urls[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.coordinatorLoop(ctx, url)
		}()
	}
	o.coordinatorLoop(ctx, urls[0])
	wg.Wait()
	return nil
}

// coordinatorLoop keeps one coordinator registered and published to until
// ctx ends.
func (o *Origin) coordinatorLoop(ctx context.Context, url string) {
	cc := wire.NewCoordinatorClient(url, o.hc)
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
				o.log.Info("registered with coordinator", "coordinator", url, "advertise", o.cfg.Advertise, "heartbeat", interval)
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
				return
			}
			o.log.Warn("coordinator unreachable; retrying", "coordinator", url, "err", err, "in", retry)
			wait, retry = retry, min(retry*2, maxRetry)
		} else {
			retry = minRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
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
