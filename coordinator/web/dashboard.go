package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// Ledger paging: the dashboard reads at most ledgerWindow newest entries
// (the chart's history and the pages behind it) and shows ledgerPageSize
// per page.
const (
	ledgerWindow   = 1000
	ledgerPageSize = 20
)

// ledgerView is one page of ledger rows.
type ledgerView struct {
	Entries  []wire.LedgerEntry
	Page     int // 1-based
	NextPage int // 0: no older page
	PrevPage int // 0: this is the newest page
	Capped   bool
}

// edgeView is the dashboard's picture of the account's edge.
type edgeView struct {
	Node       wire.NodeID
	Registered bool // the coordinator has heard from it since it started
	NodeStatus
	Status      wire.EdgeStatusInfo
	BytesServed int64 // settled bytes over all time
	DiskPct     float64
	UploadPct   float64
}

type unlockedVideo struct {
	Video wire.VideoInfo
	Gone  bool // no longer in the catalogue
}

type dashboardView struct {
	Balance int64
	// History is the balance after each of the window's entries, oldest
	// first, as JSON [[unix seconds...],[balance...]] for uPlot.
	History  string
	Ledger   ledgerView
	Edge     *edgeView
	Unlocked []unlockedVideo
}

func (a *App) dashboard(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.User == nil {
		a.toLogin(w, r)
		return
	}
	ctx := r.Context()
	u := rq.User
	entries, err := a.cfg.Accounts.Ledger(ctx, u.ID, ledgerWindow)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	dv := dashboardView{Balance: u.Balance, History: balanceHistory(u.Balance, entries, a.cfg.Now()), Ledger: ledgerPage(entries, 1)}
	if u.Edge != "" {
		ev := &edgeView{Node: u.Edge}
		if ev.Status, err = a.cfg.Accounts.EdgeStatus(ctx, u.ID, false, u.Edge); err != nil {
			a.fail(w, r, rq, err)
			return
		}
		if ev.BytesServed, err = a.cfg.Accounts.EdgeBytesServed(ctx, u.Edge, time.Unix(0, 0), a.cfg.Now().Add(time.Hour)); err != nil {
			a.fail(w, r, rq, err)
			return
		}
		ev.NodeStatus, ev.Registered = a.cfg.Catalogue.Node(u.Edge)
		if ev.DiskCapBytes > 0 {
			ev.DiskPct = float64(ev.UsedBytes) / float64(ev.DiskCapBytes)
		}
		if ev.UploadCapBytes > 0 {
			ev.UploadPct = ev.UploadBytesPerSec / float64(ev.UploadCapBytes)
		}
		dv.Edge = ev
	}
	for _, id := range u.Entitled {
		v, ok := a.cfg.Catalogue.Video(id)
		if !ok {
			v.ID, v.Title = id, id.String()
		}
		dv.Unlocked = append(dv.Unlocked, unlockedVideo{Video: v, Gone: !ok})
	}
	a.render(w, rq, http.StatusOK, "dashboard", view{
		Title: "My dashboard", Nav: "dashboard", Data: dv,
		Scripts: []string{"vendor/htmx.org-2.0.11/htmx.min.js", "vendor/uplot-1.6.32/uPlot.iife.min.js", "dashboard.js"},
		Styles:  []string{"vendor/uplot-1.6.32/uPlot.min.css"},
	})
}

// ledgerPage answers one page of ledger rows: the rows alone for htmx
// (HX-Request), else the whole dashboard's ledger as a page of its own.
func (a *App) ledgerPage(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.User == nil {
		a.toLogin(w, r)
		return
	}
	page := 1
	if s := r.URL.Query().Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > ledgerWindow/ledgerPageSize {
			a.errorPage(w, r, rq, http.StatusBadRequest, "Ledger page "+strconv.Quote(s)+": want a page number from 1 to "+strconv.Itoa(ledgerWindow/ledgerPageSize)+".")
			return
		}
		page = n
	}
	entries, err := a.cfg.Accounts.Ledger(r.Context(), rq.User.ID, ledgerWindow)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	lv := ledgerPage(entries, page)
	if r.Header.Get("HX-Request") == "true" {
		a.renderFragment(w, "ledger", "ledger_table", lv)
		return
	}
	a.render(w, rq, http.StatusOK, "ledger", view{Title: "Points ledger", Nav: "dashboard", Data: lv})
}

func ledgerPage(entries []wire.LedgerEntry, page int) ledgerView {
	lv := ledgerView{Page: page, Capped: len(entries) == ledgerWindow}
	from := (page - 1) * ledgerPageSize
	if from < len(entries) {
		lv.Entries = entries[from:min(from+ledgerPageSize, len(entries))]
	}
	if from+ledgerPageSize < len(entries) {
		lv.NextPage = page + 1
	}
	if page > 1 {
		lv.PrevPage = page - 1
	}
	return lv
}

// balanceHistory walks back from the balance through the entries (newest
// first) to the balance after each one, and renders the series oldest
// first for uPlot, ending with the balance now.
func balanceHistory(balance int64, entries []wire.LedgerEntry, now time.Time) string {
	n := len(entries)
	ts := make([]int64, n+1)
	bal := make([]int64, n+1)
	ts[n], bal[n] = now.Unix(), balance
	b := balance
	for i, e := range entries {
		ts[n-1-i], bal[n-1-i] = e.At.Unix(), b
		b -= e.Amount
	}
	out, _ := json.Marshal([2][]int64{ts, bal})
	return string(out)
}
