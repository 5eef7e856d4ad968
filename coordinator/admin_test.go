package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// adminGETs are every admin read route, filled in for h.
func adminGETs(h *storeHarness) []string {
	return []string{
		wire.PathAdminOverview,
		wire.PathAdminNodes,
		wire.PathAdminVideos,
		videoPath(wire.PathAdminVideo, h.video(0)),
		wire.PathAdminAccounts,
		strings.Replace(wire.PathAdminAccountKeys, "{account}", "1", 1),
		wire.PathAdminEvents,
	}
}

// TestAdminRoutesRefuseOutsiders: anonymous callers get 401, a user's
// session and an edge's API token 403, on every admin read route, and
// nothing changes: no event stream is left subscribed, metering and the
// node table are as they were.
func TestAdminRoutesRefuseOutsiders(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	_, edgeAPI := h.boundEdge("edgeowner", "", set(h.video(0), 0, 0, 1))
	alice := h.user("alice")
	before := decode[wire.AdminOverview](t, h.want(h.do("GET", wire.PathAdminOverview, h.admin, nil), 200))
	nodesBefore := h.want(h.do("GET", wire.PathAdminNodes, h.admin, nil), 200).body
	for _, path := range adminGETs(h) {
		h.want(h.do("GET", path, "", nil), http.StatusUnauthorized)
		h.want(h.do("GET", path, "not-a-session", nil), http.StatusUnauthorized)
		h.want(h.do("GET", path, alice, nil), http.StatusForbidden, "admins")
		h.want(h.do("GET", path, edgeAPI, nil), http.StatusForbidden)
	}
	if n := h.c.events.subscribers(); n != 0 {
		t.Fatalf("%d event streams left subscribed by refused requests", n)
	}
	after := decode[wire.AdminOverview](t, h.want(h.do("GET", wire.PathAdminOverview, h.admin, nil), 200))
	if after.Metering != before.Metering || after.Stats != before.Stats {
		t.Fatalf("refused requests changed the overview:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := h.want(h.do("GET", wire.PathAdminNodes, h.admin, nil), 200).body; !bytes.Equal(got, nodesBefore) {
		t.Fatalf("refused requests changed the node table")
	}
}

// TestAdminOverviewCountsHeartbeatsAndPlays: served-bytes deltas of edges
// and origins land in the bucket of their heartbeat, play reports in
// metering and the video table; an inflated delta counts as the node's
// bound; a negative one is refused and changes nothing.
func TestAdminOverviewCountsHeartbeatsAndPlays(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	v := h.video(0)
	edge := h.edge("eu", set(v, 0, 0, 1))
	h.clock.Advance(2 * time.Second)
	h.heartbeat(wire.HeartbeatRequest{NodeID: edge, ServedBytes: 300_000})
	h.heartbeat(wire.HeartbeatRequest{NodeID: h.origin.ID, ServedBytes: 100_000})

	// A negative delta is refused before anything is counted.
	if _, err := h.client.Heartbeat(context.Background(), wire.HeartbeatRequest{NodeID: edge, ServedBytes: -1}); err == nil {
		t.Fatal("a negative served_bytes was accepted")
	} else {
		requireAPIError(t, err, http.StatusBadRequest, "served_bytes")
	}
	// Inflation is bounded by the edge's upload cap over the elapsed time.
	h.clock.Advance(2 * time.Second)
	h.heartbeat(wire.HeartbeatRequest{NodeID: edge, ServedBytes: 1 << 50})
	bound := int64(servedCapFactor*wire.DefaultUploadCapBytes*2) + servedBurstBytes

	alice := h.user("alice")
	viewer := h.bindViewer(alice)
	h.want(h.do("POST", wire.PathPlayReport, alice, wire.PlayReport{
		ViewerID: viewer.ID, Video: v, PlayedMS: 6000,
		BytesBySource: map[wire.NodeID]int64{edge: 50_000, h.origin.ID: 10_000},
	}), 200)

	h.clock.Advance(defaultOverviewBucket)
	ov := decode[wire.AdminOverview](t, h.want(h.do("GET", wire.PathAdminOverview, h.admin, nil), 200))
	var edgeBytes, originBytes int64
	for _, p := range ov.Points {
		edgeBytes += p.EdgeBytes
		originBytes += p.OriginBytes
		if p.Offload != -1 && (p.Offload < 0 || p.Offload > 1) {
			t.Fatalf("offload %v outside [0,1]", p.Offload)
		}
	}
	if want := 300_000 + bound; edgeBytes != want || originBytes != 100_000 {
		t.Fatalf("points carry edge %d (want %d), origin %d (want 100000): %+v", edgeBytes, want, originBytes, ov.Points)
	}
	m := ov.Metering
	if m.EdgeBytes != edgeBytes || m.OriginBytes != 100_000 || m.Plays != 1 || m.MinutesStreamed != 0.1 || m.PricePerGB != DefaultPricePerGB {
		t.Fatalf("metering %+v", m)
	}
	if m.MoneySaved != float64(m.SavedBytes)/1e9*DefaultPricePerGB || !(ov.WindowOffload > 0 && ov.WindowOffload < 1) {
		t.Fatalf("money saved %v for %d bytes, window offload %v", m.MoneySaved, m.SavedBytes, ov.WindowOffload)
	}
	if got := h.metric(`swarmcast_coordinator_node_served_clamped_total{role="edge"}`); got != "1" {
		t.Fatalf("clamped heartbeats metric %q, want 1", got)
	}

	videos := decode[[]wire.AdminVideo](t, h.want(h.do("GET", wire.PathAdminVideos, h.admin, nil), 200))
	var row *wire.AdminVideo
	for i := range videos {
		if videos[i].ID == v {
			row = &videos[i]
		}
		if videos[i].Holders != nil {
			t.Fatal("the video list carries per-segment holders; only the single-video answer should")
		}
	}
	if row == nil || row.Plays != 1 || row.EdgeBytes != 50_000 || row.OriginBytes != 10_000 || row.MaxHolders != 1 || row.Uncovered != row.Segments-1 {
		t.Fatalf("video row %+v", row)
	}
	one := decode[wire.AdminVideo](t, h.want(h.do("GET", videoPath(wire.PathAdminVideo, v), h.admin, nil), 200))
	if len(one.Holders) == 0 || one.Holders[0][0] != 1 || one.Holders[0][1] != 0 {
		t.Fatalf("holders per segment %v: want segment 0 held by the edge", one.Holders)
	}

	nodes := decode[wire.AdminNodesPage](t, h.want(h.do("GET", wire.PathAdminNodes, h.admin, nil), 200))
	for _, n := range nodes.Nodes {
		if n.NodeID == edge && (n.ServedBytes != 300_000+bound || n.Reputation <= 0 || n.Role != wire.RoleEdge) {
			t.Fatalf("edge row %+v", n)
		}
	}
}

func TestAdminTablesPaginate(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	for range 5 {
		h.edge("eu")
	}
	var seen []wire.NodeID
	after := ""
	for range 10 {
		page := decode[wire.AdminNodesPage](t, h.want(h.do("GET", wire.PathAdminNodes+"?limit=2&after="+after, h.admin, nil), 200))
		if page.Total != 6 {
			t.Fatalf("total %d, want 6 (5 edges and the origin)", page.Total)
		}
		for _, n := range page.Nodes {
			if len(seen) > 0 && n.NodeID <= seen[len(seen)-1] {
				t.Fatalf("node %s out of order after %s", n.NodeID, seen[len(seen)-1])
			}
			seen = append(seen, n.NodeID)
		}
		if page.Next == "" {
			break
		}
		after = string(page.Next)
	}
	if len(seen) != 6 {
		t.Fatalf("paged through %d nodes, want 6", len(seen))
	}
	for _, q := range []string{"?limit=0", "?limit=100001", "?limit=x", "?after=zz"} {
		h.want(h.do("GET", wire.PathAdminNodes+q, h.admin, nil), 400)
	}

	h.user("alice")
	h.user("bob")
	first := decode[wire.AdminAccountsPage](t, h.want(h.do("GET", wire.PathAdminAccounts+"?limit=2", h.admin, nil), 200))
	if len(first.Accounts) != 2 || first.Next == 0 {
		t.Fatalf("first page %+v", first)
	}
	rest := decode[wire.AdminAccountsPage](t, h.want(h.do("GET", wire.PathAdminAccounts+"?after="+strconv.FormatInt(first.Next, 10), h.admin, nil), 200))
	names := map[string]bool{}
	for _, a := range append(first.Accounts, rest.Accounts...) {
		names[a.Username] = true
	}
	for _, want := range []string{"root", "alice", "bob"} {
		if !names[want] {
			t.Fatalf("account %q missing from the pages: %v", want, names)
		}
	}
	h.want(h.do("GET", wire.PathAdminAccounts+"?after=-1", h.admin, nil), 400)
}

// eventRecorder is an http.ResponseWriter whose flushed writes arrive on a
// channel, so an event stream can be read inside a synctest bubble.
type eventRecorder struct {
	header http.Header
	buf    bytes.Buffer
	out    chan string
}

func (e *eventRecorder) Header() http.Header         { return e.header }
func (e *eventRecorder) WriteHeader(int)             {}
func (e *eventRecorder) Write(b []byte) (int, error) { return e.buf.Write(b) }
func (e *eventRecorder) Flush() {
	e.out <- e.buf.String()
	e.buf.Reset()
}

// TestAdminEventsPushOneSnapshotPerBucket, in fake time: a subscriber gets
// a snapshot at once and another within one bucket of traffic, carrying
// the bytes heartbeated in that bucket; the stream ends when Run does.
func TestAdminEventsPushOneSnapshotPerBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := testStore(t)
		if _, err := accounting.BootstrapAdmin(t.Context(), store, "root", rootPassword, time.Now()); err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Seed: 1, Log: quietLog(), Store: store, Accounting: accounting.Config{AuditInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		login, _ := json.Marshal(wire.Credentials{Username: "root", Password: rootPassword})
		req := httptest.NewRequest("POST", wire.PathLogin, bytes.NewReader(login))
		req.Header.Set("Content-Type", "application/json")
		c.Handler().ServeHTTP(rec, req)
		var sess wire.LoginResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil || sess.Token == "" {
			t.Fatalf("login: %d %s", rec.Code, rec.Body)
		}

		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		ran := make(chan error, 1)
		go func() { ran <- c.Run(ctx) }()

		ev := &eventRecorder{header: http.Header{}, out: make(chan string, 16)}
		sreq := httptest.NewRequest("GET", wire.PathAdminEvents, nil).WithContext(t.Context())
		sreq.Header.Set("Authorization", "Bearer "+sess.Token)
		served := make(chan struct{})
		go func() { c.Handler().ServeHTTP(ev, sreq); close(served) }()

		first := readOverview(t, <-ev.out)
		if ev.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("content type %q", ev.header.Get("Content-Type"))
		}
		synctest.Wait()
		if n := c.events.subscribers(); n != 1 {
			t.Fatalf("%d subscribers, want 1", n)
		}
		// Traffic in the open bucket: an origin's heartbeat.
		origin := newTestNode().ID
		if err := c.AllowOrigin(t.Context(), origin); err != nil {
			t.Fatal(err)
		}
		if _, ok := call(c, wire.PathRegister, wire.RegisterRequest{NodeID: origin, Role: wire.RoleOrigin, Addr: "http://127.0.0.1:9"}); !ok {
			t.Fatal("register failed")
		}
		if _, ok := call(c, wire.PathHeartbeat, wire.HeartbeatRequest{NodeID: origin, ServedBytes: 4242}); !ok {
			t.Fatal("heartbeat failed")
		}
		start := time.Now()
		var next wire.AdminOverview
		select {
		case s := <-ev.out:
			next = readOverview(t, s)
		case <-time.After(defaultOverviewBucket + time.Second): // fake time
			t.Fatal("no snapshot within one bucket")
		}
		if waited := time.Since(start); waited > defaultOverviewBucket {
			t.Fatalf("snapshot after %s, more than a bucket", waited)
		}
		if len(next.Points) != len(first.Points)+1 || next.Points[len(next.Points)-1].OriginBytes != 4242 {
			t.Fatalf("snapshot points %+v: want one more, carrying the 4242 bytes", next.Points)
		}
		stop()
		if err := <-ran; err != nil {
			t.Fatal(err)
		}
		<-served // the stream ended with Run
		if n := c.events.subscribers(); n != 0 {
			t.Fatalf("%d subscribers after Run ended", n)
		}
	})
}

// readOverview parses one "event: overview" frame.
func readOverview(t *testing.T, frame string) wire.AdminOverview {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(frame))
	sc.Buffer(nil, 1<<24)
	var event, data string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = v
		}
	}
	if event != wire.AdminEventOverview {
		t.Fatalf("frame %q: want an %q event", frame, wire.AdminEventOverview)
	}
	var ov wire.AdminOverview
	if err := json.Unmarshal([]byte(data), &ov); err != nil {
		t.Fatalf("frame data %q: %v", data, err)
	}
	return ov
}

// TestPublishOverviewAfterAReaderClosedTheBucket: a dashboard or a metrics
// scrape that reads the overview just after a bucket ends closes it; the
// push at that close must still happen, once.
func TestPublishOverviewAfterAReaderClosedTheBucket(t *testing.T) {
	h := newHarness(t)
	sub, err := h.c.events.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer h.c.events.unsubscribe(sub)
	h.c.PublishOverview() // nothing closed since start: no push
	if len(sub.ch) != 0 {
		t.Fatal("a push before any bucket closed")
	}
	h.clock.Advance(defaultOverviewBucket)
	h.c.Overview() // the reader closes the bucket first
	h.c.PublishOverview()
	if len(sub.ch) != 1 {
		t.Fatal("the bucket a reader closed was never pushed")
	}
	<-sub.ch
	h.c.PublishOverview()
	if len(sub.ch) != 0 {
		t.Fatal("the same bucket was pushed twice")
	}
}

// TestAdminEventsOutliveServerTimeouts: an event stream on a real server
// with 300 ms read and write timeouts still delivers a snapshot after
// those have passed (the handler moves the write deadline on with each
// event). Real time: the deadlines are the kernel's.
func TestAdminEventsOutliveServerTimeouts(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	short := 300 * time.Millisecond
	srv, err := httpserve.ListenTimeouts(t.Context(), "127.0.0.1:0", "", h.c.Handler(), quietLog(), httpserve.Timeouts{ReadHeader: short, Read: short, Write: short, Idle: short})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+srv.Addr()+wire.PathAdminEvents, nil)
	req.Header.Set("Authorization", "Bearer "+h.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				events <- sc.Text()
			}
		}
		close(events)
	}()
	<-events                // the snapshot on subscribing
	<-time.After(4 * short) // past both server timeouts (real time, bounded)
	h.clock.Advance(defaultOverviewBucket)
	h.c.PublishOverview()
	select {
	case _, ok := <-events:
		if !ok {
			t.Fatal("the stream ended at the server's timeouts")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10 s after the server's timeouts passed")
	}
}

// TestOverviewSamplesTheFallbackCounter: the fallback's cumulative relayed
// bytes land in the overview as their own series and in metering, counted
// once however often the overview is read.
func TestOverviewSamplesTheFallbackCounter(t *testing.T) {
	h := newHarness(t)
	var relayed int64
	h.c.overviewMu.Lock()
	h.c.fallbackEgress = func() int64 { return relayed }
	h.c.overviewMu.Unlock()
	relayed = 1000
	h.c.Overview()
	h.c.Overview()
	relayed = 1500
	h.clock.Advance(defaultOverviewBucket)
	ov := h.c.Overview()
	if m := ov.Metering; m.FallbackBytes != 1500 || m.OriginBytes != 0 || m.Offload != 0 {
		t.Fatalf("metering %+v: want 1500 fallback bytes, counted once, offload 0", m)
	}
	var inPoints int64
	for _, p := range ov.Points {
		inPoints += p.FallbackBytes
	}
	if inPoints != 1000 { // the last 500 arrived in the open bucket
		t.Fatalf("closed buckets carry %d fallback bytes, want 1000", inPoints)
	}
}

// TestAdminEventStreamsAreBounded: with every slot taken, one more stream
// is refused with 503 and Retry-After, and a freed slot is usable again.
func TestAdminEventStreamsAreBounded(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	var subs []*eventSub
	for range maxEventSubscribers {
		s, err := h.c.events.subscribe()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	r := h.want(h.do("GET", wire.PathAdminEvents, h.admin, nil), http.StatusServiceUnavailable, "streams are open already")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("a refused stream without Retry-After")
	}
	h.c.events.unsubscribe(subs[0])
	if _, err := h.c.events.subscribe(); err != nil {
		t.Fatalf("a freed slot is not reusable: %v", err)
	}
}
