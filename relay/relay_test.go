package relay

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/fanout"
	"github.com/swarmcast/swarmcast/fanout/fanouttest"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A relay whose parent goes quiet for 3 segment durations reports it once
// and keeps serving the segments it holds; a push from the parent clears it.
func TestQuietParentIsReportedAndWindowStillServed(t *testing.T) {
	pub := fanouttest.NewPublisher(1, 21)
	mux := http.NewServeMux()
	pub.Routes(mux)
	coord := httptest.NewServer(mux)
	defer coord.Close()
	clk := &clock{t: time.Now()}
	r, err := New(Config{Coordinator: coord.URL, Identity: identity.New(), UploadCapBytes: 1 << 20, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	parent := wire.NewNodeSigner(identity.New().Key, clk.now)
	r.applyLive(&wire.LiveSet{Version: 1, Routes: []wire.LiveRoute{{Chain: pub.Chain, Substream: 0, Indices: []int{0, 1, 2, 3, 4}, Parent: parent.ID()}}})
	push := func() {
		t.Helper()
		_, seg := pub.Next()
		body := (&fanout.Push{Chain: seg.Chain, Seq: seg.Seq, Entry: seg.Entry, Shards: seg.Shards}).Encode()
		if err := fanout.PushTo(t.Context(), srv.Client(), parent, srv.URL, body); err != nil {
			t.Fatal(err)
		}
	}
	push()
	quiet := func() float64 { return testutil.ToFloat64(r.m.parentQuiet) }
	clk.add(2 * time.Second)
	r.checkQuiet()
	if quiet() != 0 {
		t.Fatal("a parent 2 segment durations quiet was reported")
	}
	clk.add(2 * time.Second)
	r.checkQuiet()
	r.checkQuiet()
	if quiet() != 1 {
		t.Fatalf("quiet reports %v, want 1 (once per quiet spell)", quiet())
	}
	// Still served.
	ref := content.SegmentRef{Video: pub.Chain, Segment: 0}.Shard(2)
	resp, err := wire.GetShard(t.Context(), srv.Client(), wire.ShardRequest{Base: srv.URL, Ref: ref, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.Window().Shard(ref)
	if !bytes.Equal(resp.Body, want.Encoded) || resp.Node != r.ID() {
		t.Fatal("the relay did not serve its held shard with its node id")
	}
	push()
	clk.add(4 * time.Second)
	r.checkQuiet()
	if quiet() != 2 {
		t.Fatalf("quiet reports %v after a new spell, want 2", quiet())
	}
	// A shard not held is a clear 404.
	_, err = wire.GetShard(t.Context(), srv.Client(), wire.ShardRequest{Base: srv.URL, Ref: content.SegmentRef{Video: pub.Chain, Segment: 9}.Shard(0), MaxBytes: 1 << 20})
	if err == nil {
		t.Fatal("a shard the relay does not hold was served")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	id := identity.New()
	for _, cfg := range []Config{
		{Identity: id, UploadCapBytes: 1},
		{Coordinator: "http://127.0.0.1:1", UploadCapBytes: 1},
		{Coordinator: "http://127.0.0.1:1", Identity: id},
		{Coordinator: "http://127.0.0.1:1", Identity: id, UploadCapBytes: 1, PricePerGB: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
