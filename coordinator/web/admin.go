package web

import (
	"net/http"

	"github.com/swarmcast/swarmcast/wire"
)

// adminRoutes registers the admin pages, each through handleAdmin so only
// admins reach it. (A placeholder dashboard until the admin side lands.)
func (a *App) adminRoutes(mux *http.ServeMux) {
	a.handleAdmin(mux, "GET", wire.PageAdmin, a.adminHome)
}

func (a *App) adminHome(w http.ResponseWriter, r *http.Request, rq *request) {
	a.render(w, rq, http.StatusOK, "admin", view{Title: "Admin", Nav: "admin"})
}
