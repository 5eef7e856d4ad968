package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// AdminData is what the admin pages ask of the coordinator: the figures
// its admin JSON API serves (wire/admin.go), plus settlement rejections
// and flows from the store. None of it scans the ledger.
type AdminData interface {
	Overview() wire.AdminOverview
	AdminNodes(ctx context.Context, after wire.NodeID, limit int) (wire.AdminNodesPage, error)
	AdminVideos() []wire.AdminVideo
	AdminVideo(id content.VideoID) (wire.AdminVideo, bool)
	AdminAccounts(ctx context.Context, after int64, limit int) (wire.AdminAccountsPage, error)
	AccountViewerKeys(ctx context.Context, accountID int64) ([]wire.NodeID, error)
	// Rejections counts rejected settlement pairs by reason.
	Rejections(ctx context.Context) (map[string]int64, error)
	// FlowsToViewer / FlowsFromEdge are settled flows in [since, until).
	FlowsToViewer(ctx context.Context, viewer wire.NodeID, since, until time.Time) ([]wire.FlowInfo, error)
	FlowsFromEdge(ctx context.Context, edge wire.NodeID, since, until time.Time) ([]wire.FlowInfo, error)
	// LiveChannels lists the live channels, by name (coordinator/live).
	LiveChannels() []wire.ChannelInfo
}

// adminTableRows is how many rows the dashboard shows per table; the
// node and account pages show adminPageRows each.
const (
	adminTableRows = 50
	adminPageRows  = 200
)

func init() {
	templateFuncs["edgeFlowsURL"] = func(id wire.NodeID) string {
		return wire.PageAdminFlows + "?edge=" + url.QueryEscape(string(id))
	}
	templateFuncs["viewerFlowsURL"] = func(id wire.NodeID) string {
		return wire.PageAdminFlows + "?viewer=" + url.QueryEscape(string(id))
	}
	templateFuncs["accountFlowsURL"] = func(id int64) string {
		return wire.PageAdminFlows + "?account=" + strconv.FormatInt(id, 10)
	}
	templateFuncs["adminVideoURL"] = func(id content.VideoID) string {
		return strings.Replace(wire.PageAdminVideo, "{id}", id.String(), 1)
	}
	templateFuncs["adminPage"] = func(name string) (string, error) {
		switch name {
		case "nodes":
			return wire.PageAdminNodes, nil
		case "accounts":
			return wire.PageAdminAccounts, nil
		case "flows":
			return wire.PageAdminFlows, nil
		}
		return "", &wire.StatusError{Status: 500, Msg: "no admin page named " + strconv.Quote(name)}
	}
	templateFuncs["offload"] = func(f float64) string {
		if f < 0 {
			return "—"
		}
		return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	}
	templateFuncs["slice1"] = func(v wire.AdminVideo) []wire.AdminVideo { return []wire.AdminVideo{v} }
	templateFuncs["usd"] = formatUSD
	templateFuncs["minutes"] = func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
	templateFuncs["short"] = func(id wire.NodeID) string {
		if len(id) <= 12 {
			return string(id)
		}
		return string(id[:12]) + "…"
	}
}

// formatUSD writes dollars with cents, or two significant digits below a
// cent (a small network saves fractions of a cent).
func formatUSD(f float64) string {
	if f > 0 && f < 0.01 {
		return "$" + strconv.FormatFloat(f, 'g', 2, 64)
	}
	return "$" + strconv.FormatFloat(f, 'f', 2, 64)
}

// adminScripts and adminStyles are what the overview page loads: uPlot and
// admin.js, which draws the load chart and follows the event stream.
var (
	adminScripts = []string{"vendor/uplot-1.6.32/uPlot.iife.min.js", "admin.js"}
	adminStyles  = []string{"vendor/uplot-1.6.32/uPlot.min.css", "admin.css"}
)

// adminRoutes registers the admin pages, each through handleAdmin so only
// admins reach it.
func (a *App) adminRoutes(mux *http.ServeMux) {
	a.handleAdmin(mux, "GET", wire.PageAdmin, a.adminHome)
	a.handleAdmin(mux, "GET", wire.PageAdminNodes, a.adminNodes)
	a.handleAdmin(mux, "GET", wire.PageAdminAccounts, a.adminAccounts)
	a.handleAdmin(mux, "GET", wire.PageAdminVideo, a.adminVideo)
	a.handleAdmin(mux, "GET", wire.PageAdminFlows, a.adminFlows)
}

// adminHomeView is the overview page: the headline chart (its first data
// in OverviewJSON, then live from EventsURL), metering, rejections and the
// first rows of every table.
type adminHomeView struct {
	Overview     wire.AdminOverview
	OverviewJSON string
	EventsURL    string
	Rejections   []reasonCount
	Nodes        wire.AdminNodesPage
	Videos       []wire.AdminVideo
	MoreVideos   int
	Accounts     wire.AdminAccountsPage
	Channels     []wire.ChannelInfo
	MoreChannels int
}

type reasonCount struct {
	Reason string
	Count  int64
}

func (a *App) adminData(w http.ResponseWriter, r *http.Request, rq *request) (AdminData, bool) {
	if a.cfg.Admin == nil {
		a.errorPage(w, r, rq, http.StatusServiceUnavailable, "The admin dashboard is not wired to this coordinator.")
		return nil, false
	}
	return a.cfg.Admin, true
}

func (a *App) adminHome(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := a.adminData(w, r, rq)
	if !ok {
		return
	}
	ctx := r.Context()
	ov := d.Overview()
	ovJSON, err := json.Marshal(ov)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	v := adminHomeView{Overview: ov, OverviewJSON: string(ovJSON), EventsURL: wire.PathAdminEvents}
	rej, err := d.Rejections(ctx)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	for reason, n := range rej {
		v.Rejections = append(v.Rejections, reasonCount{reason, n})
	}
	slices.SortFunc(v.Rejections, func(x, y reasonCount) int { return strings.Compare(x.Reason, y.Reason) })
	if v.Nodes, err = d.AdminNodes(ctx, "", adminTableRows); err != nil {
		a.fail(w, r, rq, err)
		return
	}
	v.Videos = d.AdminVideos()
	if len(v.Videos) > adminTableRows {
		v.MoreVideos = len(v.Videos) - adminTableRows
		v.Videos = v.Videos[:adminTableRows]
	}
	if v.Accounts, err = d.AdminAccounts(ctx, 0, adminTableRows); err != nil {
		a.fail(w, r, rq, err)
		return
	}
	v.Channels = d.LiveChannels()
	if len(v.Channels) > adminTableRows {
		v.MoreChannels = len(v.Channels) - adminTableRows
		v.Channels = v.Channels[:adminTableRows]
	}
	a.render(w, rq, http.StatusOK, "admin", view{Title: "Admin", Nav: "admin", Data: v, Scripts: adminScripts, Styles: adminStyles})
}

func (a *App) adminNodes(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := a.adminData(w, r, rq)
	if !ok {
		return
	}
	after := wire.NodeID(r.URL.Query().Get("after"))
	if after != "" {
		if err := wire.CheckNodeID(after); err != nil {
			a.errorPage(w, r, rq, http.StatusBadRequest, "after: "+err.Error())
			return
		}
	}
	page, err := d.AdminNodes(r.Context(), after, adminPageRows)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	a.render(w, rq, http.StatusOK, "admin_nodes", view{Title: "Nodes", Nav: "admin", Data: page, Styles: adminStyles})
}

func (a *App) adminAccounts(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := a.adminData(w, r, rq)
	if !ok {
		return
	}
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			a.errorPage(w, r, rq, http.StatusBadRequest, "after "+strconv.Quote(s)+": want an account id (a whole number ≥ 0).")
			return
		}
		after = n
	}
	page, err := d.AdminAccounts(r.Context(), after, adminPageRows)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	a.render(w, rq, http.StatusOK, "admin_accounts", view{Title: "Accounts", Nav: "admin", Data: page, Styles: adminStyles})
}

func (a *App) adminVideo(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := a.adminData(w, r, rq)
	if !ok {
		return
	}
	id, err := wire.ParseVideoParam(r)
	if err != nil {
		a.errorPage(w, r, rq, http.StatusBadRequest, err.Error())
		return
	}
	v, found := d.AdminVideo(id)
	if !found {
		a.errorPage(w, r, rq, http.StatusNotFound, "Video "+id.String()+" is not in the catalogue.")
		return
	}
	a.render(w, rq, http.StatusOK, "admin_video", view{Title: v.Title, Nav: "admin", Data: v, Styles: adminStyles})
}

// adminFlowsView is one flow view: who (an edge, a player key or an
// account's keys) and the settled flows, summed per counterpart.
type adminFlowsView struct {
	Direction string // "edge": viewers an edge served; "viewer": edges that fed a key; "": ask whom
	Edge      wire.NodeID
	Viewers   []wire.NodeID // the player keys asked about
	Account   int64
	Since     time.Time
	Peers     []flowPeer
	Flows     []wire.FlowInfo
	Total     int64
}

// flowPeer is one counterpart of a flow view with the bytes exchanged.
type flowPeer struct {
	Node  wire.NodeID
	Bytes int64
}

// maxFlowRows bounds the flow rows one view lists (sums cover them all).
const maxFlowRows = 500

func (a *App) adminFlows(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := a.adminData(w, r, rq)
	if !ok {
		return
	}
	q := r.URL.Query()
	until := a.cfg.Now()
	v := adminFlowsView{Since: until.Add(-wire.AdminFlowsWindow)}
	ctx := r.Context()
	var flows []wire.FlowInfo
	switch edge, viewer, account := q.Get("edge"), q.Get("viewer"), q.Get("account"); {
	case edge != "" && viewer == "" && account == "":
		v.Direction, v.Edge = "edge", wire.NodeID(edge)
		if err := wire.CheckNodeID(v.Edge); err != nil {
			a.errorPage(w, r, rq, http.StatusBadRequest, "edge: "+err.Error())
			return
		}
		fs, err := d.FlowsFromEdge(ctx, v.Edge, v.Since, until)
		if err != nil {
			a.fail(w, r, rq, err)
			return
		}
		flows = fs
	case viewer != "" && edge == "" && account == "":
		v.Direction, v.Viewers = "viewer", []wire.NodeID{wire.NodeID(viewer)}
		if err := wire.CheckNodeID(v.Viewers[0]); err != nil {
			a.errorPage(w, r, rq, http.StatusBadRequest, "viewer: "+err.Error())
			return
		}
	case account != "" && edge == "" && viewer == "":
		id, err := strconv.ParseInt(account, 10, 64)
		if err != nil || id <= 0 {
			a.errorPage(w, r, rq, http.StatusBadRequest, "account "+strconv.Quote(account)+": want an account id (a whole number > 0).")
			return
		}
		v.Direction, v.Account = "viewer", id
		if v.Viewers, err = d.AccountViewerKeys(ctx, id); err != nil {
			a.fail(w, r, rq, err)
			return
		}
	case edge == "" && viewer == "" && account == "":
		// No one named: the page is the form to name someone.
		a.render(w, rq, http.StatusOK, "admin_flows", view{Title: "Flows", Nav: "admin", Data: v, Styles: adminStyles})
		return
	default:
		a.errorPage(w, r, rq, http.StatusBadRequest, "Give exactly one of ?edge=NODE, ?viewer=KEY or ?account=ID.")
		return
	}
	for _, key := range v.Viewers {
		fs, err := d.FlowsToViewer(ctx, key, v.Since, until)
		if err != nil {
			a.fail(w, r, rq, err)
			return
		}
		flows = append(flows, fs...)
	}
	peers := map[wire.NodeID]int64{}
	for _, f := range flows {
		peer := f.Viewer
		if v.Direction == "viewer" {
			peer = f.Edge
		}
		peers[peer] += f.Bytes
		v.Total += f.Bytes
	}
	for n, b := range peers {
		v.Peers = append(v.Peers, flowPeer{n, b})
	}
	slices.SortFunc(v.Peers, func(x, y flowPeer) int {
		if x.Bytes != y.Bytes {
			return int(min(max(y.Bytes-x.Bytes, -1), 1))
		}
		return strings.Compare(string(x.Node), string(y.Node))
	})
	slices.SortFunc(flows, func(x, y wire.FlowInfo) int { return y.Bucket.Compare(x.Bucket) })
	v.Flows = flows[:min(len(flows), maxFlowRows)]
	a.render(w, rq, http.StatusOK, "admin_flows", view{Title: "Flows", Nav: "admin", Data: v, Styles: adminStyles})
}
