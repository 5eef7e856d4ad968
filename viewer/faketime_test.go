package viewer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/internal/identity"
)

// memTransport delivers requests to in-process handlers after a fixed
// latency, so a whole play runs in synctest's fake time: a 30 s video takes
// 30 fake seconds and no real ones, and timeouts fire exactly.
type memTransport struct {
	hosts   map[string]http.Handler // host:port → handler
	latency time.Duration
}

func (m *memTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	h, ok := m.hosts[req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("dial %s: connection refused", req.URL.Host)
	}
	select {
	case <-time.After(m.latency):
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	rec := httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			resp, err = nil, errors.New("connection reset by peer")
		}
	}()
	h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	res := rec.Result()
	res.Request = req
	return res, nil
}

// memClient routes the test network's URLs to its handlers in memory.
func memClient(t *testing.T, n *testNetwork, latency time.Duration) *http.Client {
	t.Helper()
	tr := &memTransport{hosts: map[string]http.Handler{}, latency: latency}
	host := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Host
	}
	for _, s := range n.servers {
		tr.hosts[host(s.srv.URL)] = s.srv.Config.Handler
	}
	tr.hosts[host(n.coordURL)] = n.coord.handler()
	return &http.Client{Transport: tr}
}

// TestPlayRealTimeNoStalls plays the whole clip at real-time speed in fake
// time through liars, a slow-drip edge, resets and departures: the per-shard
// timeouts replace the slow source and the buffer absorbs the rest, so the
// play never stalls, and it takes exactly startup + media duration.
func TestPlayRealTimeNoStalls(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	synctest.Test(t, func(t *testing.T) {
		const latency = 20 * time.Millisecond
		v, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), Seed: 7, HTTPClient: memClient(t, n, latency)})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		start := time.Now()
		q, err := v.Play(context.Background(), n.id, PlayOptions{Rendition: 0, Speed: 1})
		if err != nil {
			t.Fatalf("play: %v", err)
		}
		elapsed := time.Since(start)
		media := n.man.Duration(0)
		if !q.Completed || q.Stalls != 0 || q.StallTime != 0 || q.PlayTime != media {
			t.Fatalf("QoE %+v: want completed, no stalls, %v played", q, media)
		}
		// manifest, key, lookup and one round of shard requests; a liar in
		// the first round costs one more, a stall at most the hedge.
		if limit := 5*latency + startupHedge; q.Startup < 4*latency || q.Startup > limit {
			t.Errorf("startup %v, want between four round trips and %v", q.Startup, limit)
		}
		// No token: no QoE report (the coordinator counts only signed-in
		// accounts' plays), so no round trip after the media.
		if want := q.Startup + media; elapsed != want {
			t.Errorf("play took %v of fake time, want startup + media = %v", elapsed, want)
		}
		banned := slices.Clone(q.Banned)
		slices.Sort(banned)
		if !slices.Equal(banned, n.liars()) {
			t.Errorf("banned %v, want %v", banned, n.liars())
		}
		// Sources that timed out or failed are demoted behind the honest
		// ones, so they stop taking a slot of every segment: two asks
		// demote them (both startup segments now ask edges), and a demoted
		// edge is asked again only when the honest ones cannot cover k+δ
		// distinct shards, which happens at most once in this clip.
		segs := len(n.man.Renditions[0].Segments)
		for _, s := range n.servers {
			if (s.kind == kindSlowDrip || s.kind == kindReset || s.kind == kindGone) && s.asked.Load() > 3 {
				v.mu.Lock()
				r := v.record[s.node]
				v.mu.Unlock()
				t.Errorf("%s asked %d times in %d segments: not demoted after failing (record %+v)", s.node, s.asked.Load(), segs, r)
			}
		}
		// The origin serves at most the startup segments (only when edges
		// fail to answer within the hedge), nothing else.
		var limit int64
		for _, seg := range n.man.Renditions[0].Segments[:startupSegments] {
			limit += int64(n.man.Params.K * n.man.Params.ShardSize(int(seg.Size)))
		}
		if q.OriginBytes > limit || q.EdgeBytes == 0 {
			t.Errorf("origin bytes %d (want at most %d, the startup segments), edge bytes %d", q.OriginBytes, limit, q.EdgeBytes)
		}
	})
}

// TestPlayStallsWhenOnlyTheOriginIsSlow checks stall accounting: with no
// edges and an origin slower than real time, every segment after the first
// arrives late and each lateness is a stall of exactly that much.
func TestPlayStallsWhenOnlyTheOriginIsSlow(t *testing.T) {
	n := newTestNetwork(t, nil)
	synctest.Test(t, func(t *testing.T) {
		segDur := time.Duration(n.man.Renditions[0].Segments[0].Duration) * time.Microsecond
		latency := segDur / 2 // one origin round trip per segment (the lookup window covers all four)
		v, err := New(Config{Coordinator: n.coordURL, Identity: identity.New(), HTTPClient: memClient(t, n, latency)})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		q, err := v.Play(context.Background(), n.id, PlayOptions{Rendition: 0, Speed: 4, MaxSegments: 4})
		if err != nil {
			t.Fatalf("play: %v", err)
		}
		// At speed 4 a segment lasts segDur/4 but takes segDur/2 to fetch:
		// each of segments 1..3 is late by segDur/4 (the fetch of segment j
		// starts as soon as j-1 is ready).
		if q.Stalls != 3 || q.StallTime != 3*segDur/4 {
			t.Fatalf("stalls %d (%v), want 3 (%v): %+v", q.Stalls, q.StallTime, 3*segDur/4, q)
		}
		if !q.Completed || q.EdgeBytes != 0 {
			t.Fatalf("QoE %+v", q)
		}
	})
}
