package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/wire"
)

// maxPublishBody bounds a publish request: manifests cost 40 bytes per
// segment per rendition (base64 in JSON: 54), so one very long video may
// outgrow wire.MaxJSONBody; 32 MiB holds a manifest of ~600,000 segment
// entries. Origins batch their catalogue at wire.MaxJSONBody/2.
const maxPublishBody = 32 << 20

// maxPlayReportBody fits a play report with the most sources checkPlayReport
// accepts (4096 node ids with their byte counts, ~90 bytes each).
const maxPlayReportBody = 1 << 20

// Handler serves every coordinator route of wire/routes.go plus /healthz and
// /metrics.
func (c *Coordinator) Handler() http.Handler {
	mux := httpserve.NewMux(c.cfg.Registry)
	mux.HandleFunc("POST "+wire.PathRegister, c.handleRegister)
	mux.HandleFunc("POST "+wire.PathHeartbeat, c.handleHeartbeat)
	mux.HandleFunc("POST "+wire.PathLeave, c.handleLeave)
	mux.HandleFunc("GET "+wire.PathNodes, c.handleNodes)
	mux.HandleFunc("GET "+wire.PathBTRWorkers, c.handleBTRWorkers)
	mux.HandleFunc("POST "+wire.PathPublish, c.handlePublish)
	mux.HandleFunc("POST "+wire.PathNodeKeys, c.handleAllowNodeKey)
	mux.HandleFunc("GET "+wire.PathNodeKeys, c.handleNodeKeys)
	mux.HandleFunc("POST "+wire.PathNodeKeyRevoke, c.handleRevokeNodeKey)
	mux.HandleFunc("GET "+wire.PathVideos, c.handleVideos)
	mux.HandleFunc("GET "+wire.PathManifest, c.handleManifest)
	mux.HandleFunc("GET "+wire.PathKey, c.handleKey)
	mux.HandleFunc("POST "+wire.PathLookup, c.handleLookup)
	mux.HandleFunc("POST "+wire.PathBadShard, c.handleBadShard)
	mux.HandleFunc("POST "+wire.PathPlayReport, c.handlePlayReport)
	mux.HandleFunc("GET "+wire.PathStats, func(w http.ResponseWriter, _ *http.Request) { wire.WriteJSON(w, c.Stats()) })
	c.accounting.Routes(mux)
	c.live.Routes(mux)
	c.adminRoutes(mux)
	c.web.Routes(mux)
	c.playback.Routes(mux)
	return mux
}

func (c *Coordinator) handleRegister(w http.ResponseWriter, r *http.Request) {
	const what = "register"
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return
	}
	var req wire.RegisterRequest
	if !c.nodeBody(w, r, what, auth, wire.MaxSmallJSONBody, &req) || !signerIs(w, what, auth, "node_id", req.NodeID) {
		return
	}
	if err := checkRegister(&req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "register: %v", err)
		return
	}
	from, err := remoteIP(r)
	if err == nil {
		req.Addr, err = checkAdvertisedAddr(req.Addr, from)
	}
	if err == nil && req.RTMPAddr != "" {
		req.RTMPAddr, err = checkRTMPAddr(req.RTMPAddr, from)
	}
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "register: %v", err)
		return
	}
	if wire.CheckAllowListedRole(req.Role) == nil {
		allowed, err := c.nodeAllowed(r.Context(), req.Role, req.NodeID)
		if err == nil && !allowed {
			err = notAllowed(what, req.Role, req.NodeID)
		}
		if err != nil {
			wire.WriteErr(w, err)
			return
		}
	}
	now := c.cfg.Now()
	c.mu.Lock()
	n := c.st.register(req, now, c.rng.Uint64())
	c.mu.Unlock()
	if n.role != wire.RoleWorker { // workers transcode; they carry no live substream
		c.live.NodeUp(live.TreeNode{ID: n.id, Role: n.role, Addr: n.addr, UploadCap: n.uploadCap, PricePerGB: n.pricePerGB})
	}
	c.log.Info("node registered", "node", n.id, "role", n.role, "addr", n.addr, "region", n.region,
		"disk_cap_bytes", n.diskCap, "upload_cap_bytes_per_s", n.uploadCap, "banned", n.banned)
	wire.WriteJSON(w, wire.RegisterResponse{
		HeartbeatIntervalMS: c.cfg.HeartbeatInterval.Milliseconds(),
		CoordinatorKey:      hex.EncodeToString(c.accounting.Identity().Key.Public().(ed25519.PublicKey)),
	})
}

func (c *Coordinator) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	const what = "heartbeat"
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return
	}
	body, ok := c.nodeRawBody(w, r, what, auth, wire.MaxJSONBody)
	if !ok {
		return
	}
	// A full inventory is thousands of shard sets: the plain shape edges
	// send is parsed without reflection, anything else as any node body.
	var req wire.HeartbeatRequest
	if r.Header.Get("Content-Type") != "application/json" || !wire.ParseHeartbeatRequest(body, &req) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !wire.DecodeJSONLimit(w, r, &req, wire.MaxJSONBody) {
			return
		}
	}
	if !signerIs(w, what, auth, "node_id", req.NodeID) {
		return
	}
	if req.ServedBytes < 0 {
		wire.WriteError(w, http.StatusBadRequest, "heartbeat: served_bytes %d: want the bytes served since the previous heartbeat (0 or more)", req.ServedBytes)
		return
	}
	if err := checkLiveReport(&req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "heartbeat: %v", err)
		return
	}
	now := c.cfg.Now()
	c.mu.Lock()
	n := c.st.nodes[req.NodeID]
	if n == nil {
		c.mu.Unlock()
		wire.WriteJSON(w, wire.HeartbeatResponse{Unknown: true})
		return
	}
	err := c.st.checkShardSets("added", req.Added)
	if err == nil {
		err = c.st.checkShardSets("removed", req.Removed)
	}
	if err != nil {
		c.mu.Unlock()
		wire.WriteError(w, http.StatusBadRequest, "heartbeat: %v", err)
		return
	}
	directives, served := c.st.heartbeat(n, &req, now)
	role, banned := n.role, n.banned
	c.mu.Unlock()
	if served < req.ServedBytes {
		c.metrics.servedClamped.WithLabelValues(string(role)).Inc()
	}
	c.recordServed(role, served, now)
	resp := wire.HeartbeatResponse{Directives: directives}
	if !banned && role != wire.RoleWorker {
		resp.Live = c.live.Heartbeat(req.NodeID, req.LiveWatching, req.PeerRTTMS, now)
	}
	wire.WriteJSON(w, resp)
}

func (c *Coordinator) handleLeave(w http.ResponseWriter, r *http.Request) {
	const what = "leave"
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return
	}
	var req wire.LeaveRequest
	if !c.nodeBody(w, r, what, auth, wire.MaxSmallJSONBody, &req) || !signerIs(w, what, auth, "node_id", req.NodeID) {
		return
	}
	c.mu.Lock()
	n := c.st.nodes[req.NodeID]
	if n != nil {
		c.st.remove(n)
	}
	c.mu.Unlock()
	if n == nil {
		wire.WriteError(w, http.StatusNotFound, "leave: node %q is not registered", req.NodeID)
		return
	}
	c.live.NodeDown(n.id)
	c.log.Info("node left", "node", n.id, "role", n.role)
	wire.WriteEmpty(w)
}

func (c *Coordinator) handleNodes(w http.ResponseWriter, _ *http.Request) {
	now := c.cfg.Now()
	c.mu.RLock()
	infos := c.st.nodeInfos(now)
	c.mu.RUnlock()
	wire.WriteJSON(w, infos)
}

// handlePublish checks everything it can from the headers (a fresh
// signature by an allowed, registered origin) before it reads the body,
// reads at most maxConcurrentPublishes bodies at once, and only then
// verifies the signature over the body.
func (c *Coordinator) handlePublish(w http.ResponseWriter, r *http.Request) {
	const what = "publish"
	auth, ok := c.nodeHeaders(w, r, what)
	if !ok {
		return
	}
	allowed, err := c.originAllowed(r.Context(), auth.Node)
	if err == nil && !allowed {
		err = notAllowedOrigin(what, auth.Node)
	}
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	c.mu.RLock()
	origin := c.st.nodes[auth.Node]
	c.mu.RUnlock()
	switch {
	case origin == nil:
		wire.WriteError(w, http.StatusNotFound, "publish: origin %q is not registered; register with role %q first", auth.Node, wire.RoleOrigin)
		return
	case origin.role != wire.RoleOrigin:
		wire.WriteError(w, http.StatusForbidden, "publish: node %s is registered as %q; only origins publish", auth.Node, origin.role)
		return
	}
	select {
	case c.publishSlots <- struct{}{}:
		defer func() { <-c.publishSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		wire.WriteError(w, http.StatusServiceUnavailable, "publish: %d publishes are being read already; retry in a second", maxConcurrentPublishes)
		return
	}
	var req wire.PublishRequest
	if !c.nodeBody(w, r, what, auth, maxPublishBody, &req) || !signerIs(w, what, auth, "origin_id", req.OriginID) {
		return
	}
	// Verify everything before storing anything: a bad entry rejects the
	// whole request and leaves no partial catalogue.
	recs := make([]coordinatordb.CatalogueVideo, len(req.Videos))
	manifests := make([]*content.Manifest, len(req.Videos))
	for i, pv := range req.Videos {
		m, err := content.DecodeManifest(pv.Manifest)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "publish: videos[%d]: %v", i, err)
			return
		}
		if pv.Key != nil {
			if len(pv.Key) != len(content.ContentKey{}) {
				wire.WriteError(w, http.StatusBadRequest, "publish: videos[%d]: key is %d bytes, want 16 (AES-128)", i, len(pv.Key))
				return
			}
			if content.ContentKey(pv.Key).ID() != m.KeyID {
				wire.WriteError(w, http.StatusBadRequest, "publish: videos[%d] (%q): key does not match the manifest's key id", i, m.Title)
				return
			}
		}
		manifests[i] = m
		recs[i] = coordinatordb.CatalogueVideo{ID: m.ID(), Manifest: pv.Manifest, Key: pv.Key, Origin: req.OriginID}
	}
	// A republish without a key keeps the key already stored: anyone
	// holding the public manifest could otherwise publish it keyless and
	// wipe the key entitled viewers need. (A key that is sent must match
	// the manifest's key id, checked above, so it is the same key.)
	c.mu.RLock()
	for i := range recs {
		if v := c.st.videos[recs[i].ID]; v != nil && recs[i].Key == nil {
			recs[i].Key = v.key
		}
	}
	c.mu.RUnlock()
	for i, m := range manifests {
		if err := c.acct.VideoPublished(r.Context(), m); err != nil {
			wire.WriteError(w, http.StatusInternalServerError, "publish: store terms of video %s: %v", recs[i].ID, err)
			return
		}
	}
	for _, rec := range recs {
		if err := c.store.PutCatalogueVideo(r.Context(), rec, c.cfg.Now()); err != nil {
			wire.WriteError(w, http.StatusInternalServerError, "publish: store video %s: %v", rec.ID, err)
			return
		}
	}
	c.mu.Lock()
	for i, rec := range recs {
		c.st.addVideo(rec, manifests[i])
	}
	c.mu.Unlock()
	for i, rec := range recs {
		c.log.Info("video published", "video", rec.ID, "title", manifests[i].Title, "origin", rec.Origin, "has_key", rec.Key != nil)
	}
	wire.WriteEmpty(w)
}

func (c *Coordinator) handleVideos(w http.ResponseWriter, _ *http.Request) {
	c.mu.RLock()
	out := make([]wire.VideoInfo, 0, len(c.st.videos))
	for _, v := range c.st.videos {
		out = append(out, v.info)
	}
	c.mu.RUnlock()
	sortVideos(out)
	wire.WriteJSON(w, out)
}

// videoFor resolves the {id} path value or writes a 4xx.
func (c *Coordinator) videoFor(w http.ResponseWriter, r *http.Request) (*video, bool) {
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	c.mu.RLock()
	v := c.st.videos[id]
	c.mu.RUnlock()
	if v == nil {
		wire.WriteError(w, http.StatusNotFound, "video %s is not in the catalogue", id)
		return nil, false
	}
	return v, true
}

func (c *Coordinator) handleManifest(w http.ResponseWriter, r *http.Request) {
	v, ok := c.videoFor(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(v.manifest)
}

func (c *Coordinator) handleKey(w http.ResponseWriter, r *http.Request) {
	v, ok := c.videoFor(w, r)
	if !ok {
		return
	}
	if err := c.acct.AuthorizeKey(r, v.m.ID()); err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	c.mu.RLock()
	key := v.key
	c.mu.RUnlock()
	if key == nil {
		wire.WriteError(w, http.StatusNotFound, "video %s: its origin published no content key", v.id)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(key)
}

func (c *Coordinator) handleLookup(w http.ResponseWriter, r *http.Request) {
	var req wire.LookupRequest
	if !wire.DecodeLookupRequest(w, r, &req) {
		return
	}
	start := time.Now()
	sc := c.scratch.Get().(*lookupScratch)
	defer c.scratch.Put(sc)
	sc.prefetch = r.Header.Get(wire.HeaderLookupPurpose) == wire.LookupPurposePrefetch
	sc.binary = strings.Contains(r.Header.Get("Accept"), wire.ContentTypeLookupBinary)
	if err := c.renderLookup(r.Context(), &req, sc); err != nil {
		wire.WriteErr(w, err)
		return
	}
	h := w.Header()
	if sc.binary {
		h["Content-Type"] = contentTypeLookupBinary
	} else {
		h["Content-Type"] = contentTypeJSON
	}
	// With the length known the answer goes out in one body write, not
	// chunked.
	h["Content-Length"] = []string{strconv.Itoa(len(sc.buf))}
	_, _ = w.Write(sc.buf)
	c.metrics.lookupLatency.Observe(time.Since(start).Seconds())
}

func (c *Coordinator) handleBadShard(w http.ResponseWriter, r *http.Request) {
	var rep wire.BadShardReport
	if !wire.DecodeJSON(w, r, &rep) {
		return
	}
	verdict, detail, err := c.judgeBadShard(r.Context(), &rep)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	c.badReports.Add(1)
	c.metrics.badShards.WithLabelValues(verdict).Inc()
	c.log.Warn("bad-shard report", "verdict", verdict, "node", rep.Node, "reporter", rep.Reporter,
		"video", rep.Video, "rendition", rep.Rendition, "segment", rep.Segment, "shard", rep.Shard, "detail", detail)
	if verdict == verdictUnverifiable && rep.Receipt != nil {
		// A receipt was sent but proves nothing: the sender should know.
		wire.WriteError(w, http.StatusBadRequest, "bad-shard report: the receipt proves nothing: %s; counted as %s, nothing changed", detail, verdict)
		return
	}
	wire.WriteJSON(w, struct {
		Verdict string `json:"verdict"`
		Detail  string `json:"detail"`
	}{verdict, detail})
}

// judgeBadShard judges a report that names a real shard. Only a receipt
// the accused node signed over exactly the reported bytes, bytes that fail
// verification, bans it (judgeReceipt); a report without a receipt is
// unverifiable and changes nothing, since anyone can send any bytes and say
// a node sent them. (The viewer that got a bad shard bans its sender for
// its own session regardless: that needs no proof.) A malformed report is
// an error and not counted.
func (c *Coordinator) judgeBadShard(ctx context.Context, rep *wire.BadShardReport) (verdict, detail string, err error) {
	if err := wire.CheckNodeID(rep.Node); err != nil {
		return "", "", wire.BadRequest("bad-shard report: node: %v", err)
	}
	if len(rep.Evidence) == 0 {
		return "", "", wire.BadRequest("bad-shard report: no evidence: send the exact bytes received from the node")
	}
	c.mu.RLock()
	v := c.st.videos[rep.Video]
	c.mu.RUnlock()
	if v == nil {
		return "", "", wire.NotFound("bad-shard report: video %q is not in the catalogue", rep.Video)
	}
	if _, err := v.m.Segment(rep.Rendition, rep.Segment); err != nil {
		return "", "", wire.BadRequest("bad-shard report: %v", err)
	}
	if rep.Shard < 0 || rep.Shard >= v.m.Params.NMax {
		return "", "", wire.BadRequest("bad-shard report: shard index %d outside 0..%d", rep.Shard, v.m.Params.NMax-1)
	}
	if rep.Receipt == nil {
		return verdictUnverifiable, "no receipt: without the node's signed receipt over these bytes the report proves nothing (origins sign none)", nil
	}
	return c.judgeReceipt(ctx, rep, v)
}

// judgeReceipt checks a bad-shard report that carries the edge's signed
// receipt. A conclusive proof (wire.ProveBadShard over the evidence bytes)
// disqualifies the edge in the store at once and bans it from lookups; a
// receipt that proves nothing (forged, other bytes, other shard, other
// edge) is unverifiable and changes nothing; a genuine receipt over bytes
// that verify is a false accusation.
func (c *Coordinator) judgeReceipt(ctx context.Context, rep *wire.BadShardReport, v *video) (verdict, detail string, err error) {
	rc := rep.Receipt
	if rc.Edge != rep.Node {
		return verdictUnverifiable, fmt.Sprintf("the receipt is signed for node %s, the report accuses %s", rc.Edge, rep.Node), nil
	}
	if rc.Ref() != rep.Ref() {
		return verdictUnverifiable, fmt.Sprintf("the receipt names %s, the report names %s", rc.Ref(), rep.Ref()), nil
	}
	switch err := wire.ProveBadShard(v.m, rc, rep.Evidence); {
	case errors.Is(err, wire.ErrShardIsGood):
		return verdictFalse, "the node signed for bytes that verify against the manifest", nil
	case err != nil:
		return verdictUnverifiable, err.Error(), nil
	}
	detail = fmt.Sprintf("signed receipt for %s over bytes that fail verification", rep.Ref())
	if err := c.acct.ProvenBadShard(ctx, rep.Node, detail); err != nil {
		return "", "", err
	}
	if err := (*network)(c).Ban(ctx, rep.Node, "proven bad shard: "+detail); err != nil {
		return "", "", err
	}
	return verdictProven, detail, nil
}

// handlePlayReport adds one authenticated, bounded play report to the
// stats: the account's session must send it for a player key of its own
// (accounting's AuthorizePlayReport), and every number must fit the video
// (checkPlayReport), so stats cannot be inflated beyond one account's real
// plays.
func (c *Coordinator) handlePlayReport(w http.ResponseWriter, r *http.Request) {
	var rep wire.PlayReport
	if !wire.DecodeJSONLimit(w, r, &rep, maxPlayReportBody) {
		return
	}
	if err := c.acct.AuthorizePlayReport(r, rep.ViewerID); err != nil {
		c.accounting.WriteError(w, err)
		return
	}
	c.mu.RLock()
	v := c.st.videos[rep.Video]
	c.mu.RUnlock()
	if v == nil {
		wire.WriteError(w, http.StatusNotFound, "play report: video %q is not in the catalogue", rep.Video)
		return
	}
	if err := checkPlayReport(&rep, v.m); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "play report: %v", err)
		return
	}
	var edgeBytes, originBytes int64 // each at most the playback budget: no overflow
	c.mu.RLock()
	for id, b := range rep.BytesBySource {
		if n := c.st.nodes[id]; n != nil && n.role == wire.RoleEdge {
			edgeBytes += b
		} else {
			originBytes += b
		}
	}
	c.mu.RUnlock()
	c.playMu.Lock()
	p := &c.plays
	p.Plays++
	if rep.Completed {
		p.Completed++
	}
	p.Stalls += int64(rep.Stalls)
	p.StallMS += rep.StallMS
	p.PlayedMS += rep.PlayedMS
	p.StartupMSTotal += rep.StartupMS
	p.BadShards += int64(rep.BadShards)
	p.EdgeBytes += edgeBytes
	p.OriginBytes += originBytes
	c.playMu.Unlock()
	c.recordPlay(&rep, edgeBytes, originBytes)
	c.metrics.plays.Inc()
	c.metrics.playBytes.WithLabelValues("edge").Add(float64(edgeBytes))
	c.metrics.playBytes.WithLabelValues("origin").Add(float64(originBytes))
	wire.WriteEmpty(w)
}

func sortVideos(vs []wire.VideoInfo) {
	slices.SortFunc(vs, func(a, b wire.VideoInfo) int {
		if c := strings.Compare(a.Title, b.Title); c != 0 {
			return c
		}
		return content.CompareVideoIDs(a.ID, b.ID)
	})
}

// Header values of lookup answers, allocated once (net/http's Set would
// allocate a fresh slice per request).
var (
	contentTypeJSON         = []string{"application/json"}
	contentTypeLookupBinary = []string{wire.ContentTypeLookupBinary}
)

// renderLookup renders a lookup's answer into sc.buf (binary when
// sc.binary, else JSON), with the viewer's order limits when it is payable.
func (c *Coordinator) renderLookup(ctx context.Context, req *wire.LookupRequest, sc *lookupScratch) error {
	render := sc.renderJSON
	if sc.binary {
		render = sc.renderBinary
	}
	if err := c.lookup(req, sc, render); err != nil {
		// Not a catalogued video: a live chain's lookup answers from its trees.
		if status, _ := wire.StatusOf(err); status == http.StatusNotFound {
			if resp, ok, lerr := c.liveLookup(ctx, req); ok {
				if lerr != nil {
					return lerr
				}
				return renderLiveLookup(&resp, sc)
			}
		}
		return err
	}
	// Limits are an addition: a store error costs the viewer its
	// payability for this lookup, never the lookup itself.
	var err error
	sc.limits = sc.limits[:0]
	switch {
	case sc.binary && len(sc.edges) > 0:
		// The steady state copies the cached limits' bytes into the
		// answer without reading the limits.
		sc.buf, sc.limits, err = c.acct.AppendBinaryOrderLimits(ctx, sc.buf, req.ViewerID, req.Video, sc.edges, sc.edgeSlots, sc.edgeAt, sc.limits)
	case len(sc.edges) > 0:
		sc.limits, err = c.acct.OrderLimits(ctx, req.ViewerID, req.Video, sc.edges, sc.edgeSlots, sc.limits)
	}
	if err != nil {
		c.log.Warn("lookup: order limits", "viewer", req.ViewerID, "err", err)
	}
	switch {
	case sc.binary && len(sc.edges) == 0:
		sc.buf = accounting.AppendBinaryLimits(sc.buf, nil, nil)
	case !sc.binary:
		sc.buf = appendLimits(sc.buf, sc.limits)
	}
	clear(sc.limits)
	return nil
}
