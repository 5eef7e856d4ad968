package web

import (
	"net/http"
	"slices"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// catalogueEntry is one video as the catalogue and the video page show it.
type catalogueEntry struct {
	Video    wire.VideoInfo
	Price    int64
	Free     bool
	Unlocked bool // the viewer's account may play it (unlocked, or free)
}

func (a *App) entry(r *http.Request, rq *request, v wire.VideoInfo) (catalogueEntry, error) {
	price, err := a.cfg.Accounts.VideoPrice(r.Context(), v.ID)
	if err != nil {
		return catalogueEntry{}, err
	}
	e := catalogueEntry{Video: v, Price: price, Free: price == 0}
	if rq.User != nil {
		e.Unlocked = e.Free || slices.Contains(rq.User.Entitled, v.ID)
	}
	return e, nil
}

func (a *App) catalogue(w http.ResponseWriter, r *http.Request, rq *request) {
	videos := a.cfg.Catalogue.Videos()
	entries := make([]catalogueEntry, 0, len(videos))
	for _, v := range videos {
		e, err := a.entry(r, rq, v)
		if err != nil {
			a.fail(w, r, rq, err)
			return
		}
		entries = append(entries, e)
	}
	a.render(w, rq, http.StatusOK, "catalogue", view{Title: "Catalogue", Nav: "catalogue", Data: entries})
}

// videoView is the video page: the player when the account may play it,
// else the unlock form.
type videoView struct {
	catalogueEntry
	// Fallback is the platform's own playlist URL (wire.PathWatchMaster).
	Fallback string
	// Players is where the page asks for this account's gateways
	// (wire.PathPlayers).
	Players string
	// Balance is the account's points, to say whether an unlock is affordable.
	Balance int64
}

func (a *App) videoFor(w http.ResponseWriter, r *http.Request, rq *request) (wire.VideoInfo, bool) {
	id, err := content.ParseVideoID(r.PathValue("id"))
	if err != nil {
		a.errorPage(w, r, rq, http.StatusNotFound, "No such video: the address should end in a 64-digit hex video id. Pick a video in the catalogue.")
		return wire.VideoInfo{}, false
	}
	v, ok := a.cfg.Catalogue.Video(id)
	if !ok {
		a.errorPage(w, r, rq, http.StatusNotFound, "Video "+id.String()+" is not in the catalogue (any more). Pick a video in the catalogue.")
		return wire.VideoInfo{}, false
	}
	return v, true
}

func (a *App) video(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.User == nil {
		a.toLogin(w, r)
		return
	}
	v, ok := a.videoFor(w, r, rq)
	if !ok {
		return
	}
	e, err := a.entry(r, rq, v)
	if err != nil {
		a.fail(w, r, rq, err)
		return
	}
	vv := videoView{catalogueEntry: e, Fallback: wire.WatchMasterURL("", v.ID), Players: wire.PathPlayers, Balance: rq.User.Balance}
	page := view{Title: v.Title, Nav: "catalogue", Data: vv}
	if e.Unlocked {
		page.Scripts = []string{"vendor/hls.js-1.7.4/hls.min.js", "player.js"}
	}
	a.render(w, rq, http.StatusOK, "video", page)
}

func (a *App) unlock(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.User == nil {
		a.toLogin(w, r)
		return
	}
	v, ok := a.videoFor(w, r, rq)
	if !ok {
		return
	}
	if _, err := a.cfg.Accounts.Unlock(r.Context(), rq.User.ID, v.ID); err != nil {
		status, msg := accounting.ErrorStatus(err)
		if status >= 500 {
			a.fail(w, r, rq, err)
			return
		}
		e, eerr := a.entry(r, rq, v)
		if eerr != nil {
			a.fail(w, r, rq, eerr)
			return
		}
		if status == http.StatusPaymentRequired {
			msg = "Not enough points to unlock this video: " + msg + ". Earn points by running an edge, or ask an admin for a grant."
		}
		a.render(w, rq, status, "video", view{Title: v.Title, Nav: "catalogue", Error: msg,
			Data: videoView{catalogueEntry: e, Balance: rq.User.Balance}})
		return
	}
	http.Redirect(w, r, wire.VideoPageURL("", v.ID), http.StatusSeeOther)
}
