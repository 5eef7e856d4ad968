package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// The admin read side: the load overview and metering (fed by events into
// the LoadOverview core), the node, video and account tables, and the
// server-sent event stream that pushes an overview each time a bucket
// closes. Every route is admin-only (accounting's AuthorizeAdmin) and
// none reads the ledger or the flows table: the overview, nodes and
// videos are in-memory state kept from events; accounts and reputations
// are key ranges (coordinatordb/admin.go).

// maxEventSubscribers bounds the admin event streams open at once.
const maxEventSubscribers = 64

// eventWriteTimeout bounds one write to an event stream; each write
// extends the connection's deadline by it, so a stream outlives the
// server's WriteTimeout while a stuck client is still cut off.
const eventWriteTimeout = 10 * time.Second

// videoUsage sums the checked play reports of one video.
type videoUsage struct {
	plays       int64
	playedMS    float64
	edgeBytes   int64
	originBytes int64
}

// recordServed feeds a heartbeat's counted served bytes to the overview.
func (c *Coordinator) recordServed(role wire.Role, bytes int64, now time.Time) {
	if bytes <= 0 {
		return
	}
	c.overviewMu.Lock()
	c.overview.RecordServed(role, bytes, now)
	c.overviewMu.Unlock()
	c.metrics.nodeServedBytes.WithLabelValues(string(role)).Add(float64(bytes))
}

// recordSettled is accounting's OnSettled hook: proven bytes.
func (c *Coordinator) recordSettled(_ wire.NodeID, bytes int64) {
	c.overviewMu.Lock()
	c.overview.RecordSettled(bytes, c.cfg.Now())
	c.overviewMu.Unlock()
}

// sampleFallback folds what the HTTP playback fallback relayed since the
// last sample into the open bucket (caller holds overviewMu). The fallback
// keeps a cumulative counter of ciphertext it relayed from origins to
// browsers (fallbackEgress, measured by the coordinator itself); it is
// sampled whenever the overview is read or a bucket closes, so its bytes
// land at most one bucket late. The origins' heartbeats count the same
// bytes as served by them: the overview shows the fallback as its own
// series, not added to origin egress again.
func (c *Coordinator) sampleFallback(now time.Time) {
	if c.fallbackEgress == nil {
		return
	}
	total := c.fallbackEgress()
	if d := total - c.fallbackSeen; d > 0 {
		c.overview.RecordFallback(d, now)
	}
	c.fallbackSeen = max(total, c.fallbackSeen)
}

// recordPlay feeds one checked play report to the overview and the
// video's usage.
func (c *Coordinator) recordPlay(rep *wire.PlayReport, edgeBytes, originBytes int64) {
	now := c.cfg.Now()
	c.overviewMu.Lock()
	c.overview.RecordPlay(edgeBytes, originBytes, rep.PlayedMS, now)
	c.overviewMu.Unlock()
	c.playMu.Lock()
	u := c.videoUsage[rep.Video]
	if u == nil {
		u = new(videoUsage)
		c.videoUsage[rep.Video] = u
	}
	u.plays++
	u.playedMS += rep.PlayedMS
	u.edgeBytes += edgeBytes
	u.originBytes += originBytes
	c.playMu.Unlock()
	c.metrics.playedSeconds.Add(rep.PlayedMS / 1000)
}

// Overview is the admin dashboard's headline at now: closed load buckets,
// offload, metering and the network summary.
func (c *Coordinator) Overview() wire.AdminOverview {
	now := c.cfg.Now()
	c.overviewMu.Lock()
	c.sampleFallback(now)
	c.overview.Advance(now)
	points, windowOffload := c.overview.Points(nil)
	metering := c.overview.Metering(c.cfg.PricePerGB)
	width := c.overview.Width()
	c.overviewMu.Unlock()
	return wire.AdminOverview{
		At: now, BucketSeconds: width.Seconds(), Points: points, WindowOffload: windowOffload,
		Metering: metering, Stats: c.Stats(),
	}
}

// windowOffload is the offload over the overview's closed buckets.
func (c *Coordinator) windowOffload() float64 {
	c.overviewMu.Lock()
	defer c.overviewMu.Unlock()
	c.overview.Advance(c.cfg.Now())
	_, off := c.overview.Points(nil)
	return off
}

// untilBucketCloses is how long until the open load bucket closes.
func (c *Coordinator) untilBucketCloses() time.Duration {
	c.overviewMu.Lock()
	next := c.overview.NextClose()
	c.overviewMu.Unlock()
	return max(next.Sub(c.cfg.Now()), time.Millisecond)
}

// PublishOverview closes the load buckets that have ended and, if any
// closed since its last call (here or by a reader), pushes an overview to every admin event stream. Run calls it when a
// bucket ends; tests may call it.
func (c *Coordinator) PublishOverview() {
	now := c.cfg.Now()
	c.overviewMu.Lock()
	c.sampleFallback(now)
	c.overview.Advance(now)
	closed := c.overview.Closed()
	fresh := closed != c.overviewPushed // a reader's Advance may have closed it first
	c.overviewPushed = closed
	c.overviewMu.Unlock()
	if !fresh || c.events.subscribers() == 0 {
		return
	}
	b, err := json.Marshal(c.Overview())
	if err != nil {
		c.log.Error("admin overview: encode", "err", err)
		return
	}
	c.events.publish(b)
}

func (c *Coordinator) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+wire.PathAdminOverview, c.adminOnly(func(w http.ResponseWriter, _ *http.Request) {
		wire.WriteJSON(w, c.Overview())
	}))
	mux.HandleFunc("GET "+wire.PathAdminNodes, c.adminOnly(c.handleAdminNodes))
	mux.HandleFunc("GET "+wire.PathAdminVideos, c.adminOnly(func(w http.ResponseWriter, _ *http.Request) {
		wire.WriteJSON(w, c.AdminVideos())
	}))
	mux.HandleFunc("GET "+wire.PathAdminVideo, c.adminOnly(c.handleAdminVideo))
	mux.HandleFunc("GET "+wire.PathAdminAccounts, c.adminOnly(c.handleAdminAccounts))
	mux.HandleFunc("GET "+wire.PathAdminAccountKeys, c.adminOnly(c.handleAdminAccountKeys))
	mux.HandleFunc("GET "+wire.PathAdminEvents, c.adminOnly(c.handleAdminEvents))
}

// adminOnly refuses anyone but an admin's login session (401/403) before h
// runs.
func (c *Coordinator) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.acct.AuthorizeAdmin(r); err != nil {
			c.accounting.WriteError(w, err)
			return
		}
		h(w, r)
	}
}

// pageLimit parses ?limit (default wire.AdminPageDefault, 1..AdminPageMax).
func pageLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return wire.AdminPageDefault, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > wire.AdminPageMax {
		return 0, wire.BadRequest("limit %q: want a whole number 1..%d", s, wire.AdminPageMax)
	}
	return n, nil
}

func (c *Coordinator) handleAdminNodes(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	after := wire.NodeID(r.URL.Query().Get("after"))
	if after != "" {
		if err := wire.CheckNodeID(after); err != nil {
			wire.WriteErr(w, wire.BadRequest("after: %v", err))
			return
		}
	}
	page, err := c.AdminNodes(r.Context(), after, limit)
	if err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, page)
}

// AdminNodes is one page of the node table: up to limit nodes with id >
// after, by id, with their reputation from the store (one key range).
func (c *Coordinator) AdminNodes(ctx context.Context, after wire.NodeID, limit int) (wire.AdminNodesPage, error) {
	now := c.cfg.Now()
	var page wire.AdminNodesPage
	c.mu.RLock()
	page.Total = len(c.st.nodes)
	ids := make([]wire.NodeID, 0, len(c.st.nodes))
	for id := range c.st.nodes {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = ids[limit-1]
	}
	page.Nodes = make([]wire.AdminNode, len(ids))
	for i, id := range ids {
		n := c.st.nodes[id]
		page.Nodes[i] = wire.AdminNode{
			NodeInfo: wire.NodeInfo{
				NodeID: n.id, Role: n.role, Addr: n.addr, Region: n.region,
				Alive: c.st.alive(n, now), LastSeen: n.lastSeen, Shards: n.shards,
				UsedBytes: n.usedBytes, DiskCapBytes: n.diskCap, UploadCapBytes: n.uploadCap,
				Banned: n.banned,
			},
			ServedBytes: n.servedTotal, ServedRate: n.servedRate, BanReason: c.st.banned[n.id],
		}
	}
	c.mu.RUnlock()
	if len(ids) == 0 {
		return page, nil
	}
	reps, err := c.store.ReputationsBetween(ctx, ids[0], ids[len(ids)-1])
	if err != nil {
		return wire.AdminNodesPage{}, fmt.Errorf("admin nodes: reputations: %w", err)
	}
	for i := range page.Nodes {
		row := &page.Nodes[i]
		if row.Role != wire.RoleEdge {
			continue
		}
		st, ok := reps[row.NodeID]
		if !ok {
			st = c.store.DefaultEdgeStatus(row.NodeID)
		}
		row.Reputation, row.Audits, row.Disqualified = st.Audit.Score(), st.Audits, st.Disqualified
	}
	return page, nil
}

// AdminVideos is the video table (without per-segment holders), by title.
func (c *Coordinator) AdminVideos() []wire.AdminVideo {
	return c.adminVideos(nil, false)
}

// adminVideos builds the rows of every video, or of only, with holders
// per segment when withHolders.
func (c *Coordinator) adminVideos(only *content.VideoID, withHolders bool) []wire.AdminVideo {
	c.demandMu.Lock()
	demand := c.videoDemand
	c.demandMu.Unlock()
	c.mu.RLock()
	out := make([]wire.AdminVideo, 0, len(c.st.videos))
	for id, v := range c.st.videos {
		if only != nil && id != *only {
			continue
		}
		row := wire.AdminVideo{ID: id, Title: v.info.Title, Demand: demand[id], MinHolders: -1}
		if withHolders {
			row.Holders = make([][]int, len(v.segs))
		}
		total := 0
		for r, segs := range v.segs {
			if withHolders {
				row.Holders[r] = make([]int, len(segs))
			}
			for s := range segs {
				h := len(segs[s].holders)
				if withHolders {
					row.Holders[r][s] = h
				}
				total += h
				row.MaxHolders = max(row.MaxHolders, h)
				if row.MinHolders < 0 || h < row.MinHolders {
					row.MinHolders = h
				}
				if h == 0 {
					row.Uncovered++
				}
			}
			row.Segments += len(segs)
		}
		row.MinHolders = max(row.MinHolders, 0)
		if row.Segments > 0 {
			row.MeanHolders = float64(total) / float64(row.Segments)
		}
		out = append(out, row)
	}
	c.mu.RUnlock()
	c.playMu.Lock()
	for i := range out {
		if u := c.videoUsage[out[i].ID]; u != nil {
			out[i].Plays, out[i].MinutesStreamed = u.plays, u.playedMS/60000
			out[i].EdgeBytes, out[i].OriginBytes = u.edgeBytes, u.originBytes
		}
	}
	c.playMu.Unlock()
	slices.SortFunc(out, func(a, b wire.AdminVideo) int {
		if c := strings.Compare(a.Title, b.Title); c != 0 {
			return c
		}
		return content.CompareVideoIDs(a.ID, b.ID)
	})
	return out
}

func (c *Coordinator) handleAdminVideo(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	rows := c.adminVideos(&id, true)
	if len(rows) == 0 {
		wire.WriteError(w, http.StatusNotFound, "video %s is not in the catalogue", id)
		return
	}
	wire.WriteJSON(w, rows[0])
}

func (c *Coordinator) handleAdminAccounts(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			wire.WriteErr(w, wire.BadRequest("after %q: want an account id (a whole number ≥ 0)", s))
			return
		}
	}
	page, err := c.AdminAccounts(r.Context(), after, limit)
	if err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, page)
}

// AdminAccounts is one page of the account table: up to limit accounts
// with id > after, by id, with their cached balances.
func (c *Coordinator) AdminAccounts(ctx context.Context, after int64, limit int) (wire.AdminAccountsPage, error) {
	rows, err := c.store.AccountsPage(ctx, after, limit)
	if err != nil {
		return wire.AdminAccountsPage{}, err
	}
	page := wire.AdminAccountsPage{Accounts: make([]wire.AdminAccount, len(rows))}
	for i, a := range rows {
		page.Accounts[i] = wire.AdminAccount{ID: a.ID, Username: a.Username, Role: string(a.Role), CreatedAt: a.CreatedAt, Points: a.Points, Edge: a.Edge}
	}
	if len(rows) == limit {
		page.Next = rows[len(rows)-1].ID
	}
	return page, nil
}

func (c *Coordinator) handleAdminAccountKeys(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("account"), 10, 64)
	if err != nil || id <= 0 {
		wire.WriteErr(w, wire.BadRequest("account %q: want an account id (a whole number > 0)", r.PathValue("account")))
		return
	}
	keys, err := c.store.AccountViewerKeys(r.Context(), id)
	if err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	if keys == nil {
		keys = []wire.NodeID{}
	}
	wire.WriteJSON(w, keys)
}

// handleAdminEvents streams an overview event each time a load bucket
// closes (and once at once, so a dashboard has data before the first
// close), with a keep-alive comment every wire.AdminEventsKeepAlive. The
// stream ends when the client goes, the coordinator's Run ends, or a write
// fails; this handler is the subscriber's only goroutine.
func (c *Coordinator) handleAdminEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sub, err := c.events.subscribe()
	if err != nil {
		w.Header().Set("Retry-After", "10")
		wire.WriteErr(w, err)
		return
	}
	defer c.events.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	first, err := json.Marshal(c.Overview())
	if err != nil {
		wire.WriteError(w, http.StatusInternalServerError, "admin events: encode overview: %v", err)
		return
	}
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(overviewEvent(first)) {
		return
	}
	keepAlive := time.NewTicker(wire.AdminEventsKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.events.done:
			return
		case b := <-sub.ch:
			if !write(overviewEvent(b)) {
				return
			}
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// overviewEvent frames one JSON overview as an SSE event (JSON has no raw
// newlines, so one data line carries it).
func overviewEvent(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) + 32)
	buf.WriteString("event: " + wire.AdminEventOverview + "\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return buf.Bytes()
}

// errTooManySubscribers is the answer when every event slot is taken.
var errTooManySubscribers = &wire.StatusError{Status: http.StatusServiceUnavailable,
	Msg: fmt.Sprintf("admin events: %d streams are open already; close one or retry later", maxEventSubscribers)}

// eventHub fans snapshots out to a bounded set of subscribers. Each
// subscriber has a one-slot channel holding the latest snapshot it has not
// taken: a slow reader skips to the newest instead of holding the
// publisher. close ends every stream (done) and refuses new ones.
type eventHub struct {
	mu     sync.Mutex
	max    int
	subs   map[*eventSub]struct{}
	closed bool
	done   chan struct{}
}

type eventSub struct{ ch chan []byte }

func newEventHub(max int) *eventHub {
	return &eventHub{max: max, subs: make(map[*eventSub]struct{}), done: make(chan struct{})}
}

func (h *eventHub) subscribe() (*eventSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, &wire.StatusError{Status: http.StatusServiceUnavailable, Msg: "admin events: the coordinator is stopping"}
	}
	if len(h.subs) >= h.max {
		return nil, errTooManySubscribers
	}
	s := &eventSub{ch: make(chan []byte, 1)}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *eventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *eventHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// publish hands b to every subscriber, replacing a snapshot it has not
// taken yet. It never blocks.
func (h *eventHub) publish(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case <-s.ch: // drop the stale one
		default:
		}
		s.ch <- b // cannot block: the slot is free and only publish sends, under mu
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}
