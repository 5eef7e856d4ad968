package edge

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// A shard the disk spoilt is never vouched for: the edge verifies it before
// signing a receipt, answers "not held" instead, drops it (the next
// heartbeat reports it gone), counts it, and queues it to be fetched again.
func TestCorruptStoredShardIsDroppedNotSigned(t *testing.T) {
	f := sampleFixture(t)
	e := newTestEdge(t, t.TempDir(), nil)
	k, good := f.key(0, 3, 5), f.key(0, 3, 6)
	mustStore(t, e, f, k, false)
	mustStore(t, e, f, good, false)
	e.mu.Lock()
	for c := range e.inv.pending {
		e.inv.takeDelta(c, false) // the coordinator has heard of both
	}
	e.mu.Unlock()
	// Bit rot on disk, under the edge's feet.
	name := e.path(shardFile(k, true))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, wire.ShardURL(srv.URL, k), nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(wire.HeaderReceipt) != "" {
		t.Fatalf("corrupt shard served with %d, receipt %q; want 404 and no receipt", resp.StatusCode, resp.Header.Get(wire.HeaderReceipt))
	}
	e.mu.Lock()
	_, stillHeld := e.inv.held[k]
	d := e.inv.takeDelta(0, false)
	e.mu.Unlock()
	if stillHeld {
		t.Error("the corrupt shard is still in the inventory")
	}
	if _, ok := d.removed[k]; !ok || len(d.removed) != 1 {
		t.Errorf("next heartbeat removes %v, want just the corrupt shard", d.removed)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("corrupt file left on disk: %v", err)
	}
	if got := counter(t, e, "swarmcast_edge_verify_failures_total", "where", "serve"); got != 1 {
		t.Errorf("verify_failures{where=serve} = %v, want 1", got)
	}
	if j, ok := e.work.pop(); !ok || j.kind != jobFetch || j.seg != k.SegmentRef || len(j.shards) != 1 || j.shards[0] != k.Shard {
		t.Errorf("queued %+v (%v), want a refetch of the corrupt shard", j, ok)
	}
	// The good neighbour is served with a receipt, as before.
	body, _, err := fetchShard(context.Background(), srv.Client(), srv.URL, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyMessage(f.m, good, body); err != nil {
		t.Fatal(err)
	}
}

// A full disk shrinks the advertised cap: at registration, and in the next
// heartbeat when the filesystem fills up later (the cache shrinks to fit);
// when space comes back, so does the configured cap.
func TestFullDiskAdvertisesWhatFits(t *testing.T) {
	f := sampleFixture(t)
	fc := &fakeCoordinator{f: f, calls: make(chan call, 100000), giveUp: time.Now().Add(time.Minute)}
	url := serve(t, fc)
	const configured = 1 << 30
	var free atomic.Int64
	free.Store(diskReserveBytes + 5<<20) // 5 MiB left beyond the reserve
	e := newTestEdge(t, t.TempDir(), func(c *Config) {
		c.Coordinator, c.Advertise, c.DiskCapBytes = url, "http://edge.example", configured
		c.FreeSpace = func() (int64, error) { return free.Load(), nil }
	})
	k := f.key(0, 0, 1)
	mustStore(t, e, f, k, false)
	size := int64(len(f.shards[k]))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	reg := fc.next(t, wire.PathRegister).reg
	if reg.DiskCapBytes > 5<<20 || reg.DiskCapBytes <= 0 {
		t.Errorf("registered with a disk cap of %d bytes, want at most the 5 MiB free", reg.DiskCapBytes)
	}
	// The filesystem fills up: nothing beyond the reserve is left.
	free.Store(diskReserveBytes / 2)
	for {
		hb := fc.next(t, wire.PathHeartbeat).hb
		if hb.DiskCapBytes > 0 && hb.DiskCapBytes < size {
			break
		}
	}
	if n, used := e.Stored(); n != 0 || used != 0 {
		t.Errorf("after the disk filled up the cache holds %d shards (%d bytes), want it shrunk to the space left", n, used)
	}
	free.Store(100 << 30)
	for hb := fc.next(t, wire.PathHeartbeat).hb; hb.DiskCapBytes != configured; hb = fc.next(t, wire.PathHeartbeat).hb {
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An edge started without --coordinator-key (the README's setup) learns the
// key when it registers. Before that it keeps no order at all, and after it
// only genuine ones: an outsider's flood of made-up limits takes neither
// memory nor disk, and a real viewer is still paid afterwards.
func TestUnverifiableOrdersAreRefusedBeforeTheyAreKept(t *testing.T) {
	f := sampleFixture(t)
	p := newOrderParties()
	fc := &fakeCoordinator{f: f, calls: make(chan call, 100000), giveUp: time.Now().Add(time.Minute), key: hexKey(p.coordPub)}
	url := serve(t, fc)
	dir := t.TempDir()
	e := newTestEdge(t, dir, func(c *Config) { c.Coordinator, c.Advertise = url, "http://edge.example" })
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	genuine := p.limit(1, e.ID(), 1<<20, time.Now().Add(time.Hour))
	post := func(l wire.OrderLimit, o *wire.Order) int {
		t.Helper()
		err := wire.SendFinalOrder(context.Background(), srv.Client(), srv.URL, wire.SettlementPair{Limit: l, Order: *o})
		if err == nil {
			return http.StatusOK
		}
		if apiErr, ok := err.(*wire.APIError); ok {
			return apiErr.Status
		}
		t.Fatal(err)
		return 0
	}
	if got := post(genuine, p.order(1, 100)); got != http.StatusBadRequest {
		t.Errorf("a limit before any coordinator key is known: %d, want 400", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	fc.next(t, wire.PathRegister)
	fc.next(t, wire.PathHeartbeat) // the registration answer has been handled

	// The outsider: a coordinator key of its own, any viewer key.
	outsider := newOrderParties()
	for i := range 2000 {
		l := outsider.limit(byte(i), e.ID(), 1<<40, time.Now().Add(time.Hour))
		l.Serial[1], l.Serial[2] = byte(i>>8), 0xbd
		wire.SignOrderLimit(outsider.coord, &l)
		o := wire.Order{Serial: l.Serial, Amount: 1 << 30}
		wire.SignOrder(outsider.viewer.Key, &o)
		if got := post(l, &o); got != http.StatusBadRequest {
			t.Fatalf("forged limit %d: %d, want 400", i, got)
		}
	}
	if n, _ := e.unsettled(); n != 0 {
		t.Fatalf("the edge holds %d pairs after the flood, want 0", n)
	}
	if got := counter(t, e, "swarmcast_edge_orders_total", "result", "bad_limit"); got != 2000 {
		t.Errorf("orders{result=bad_limit} = %v, want 2000", got)
	}
	if got := post(genuine, p.order(1, 100)); got != http.StatusOK {
		t.Errorf("a genuine order after registration: %d, want 200", got)
	}
	if n, bytes := e.unsettled(); n != 1 || bytes != 100 {
		t.Errorf("unsettled %d pairs / %d bytes, want the genuine one", n, bytes)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(e.path(ordersFile)); err == nil && len(b) > 4096 {
		t.Errorf("orders.json is %d bytes after the flood", len(b))
	}
}

func hexKey(k []byte) string { return hex.EncodeToString(k) }
