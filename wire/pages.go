package wire

import "github.com/swarmcast/swarmcast/content"

// Web pages the coordinator serves to browsers (coordinator/web): HTML,
// forms posted as application/x-www-form-urlencoded with a CSRF field.
// The JSON API stays under /api/v1 (routes.go, accounts.go).
const (
	PageHome      = "/"
	PageSignup    = "/signup"             // GET form, POST create account
	PageLogin     = "/login"              // GET form, POST log in
	PageLogout    = "/logout"             // POST
	PageCatalogue = "/videos"             // GET every video with price and unlock state
	PageVideo     = "/videos/{id}"        // GET the player (or the unlock form)
	PageUnlock    = "/videos/{id}/unlock" // POST spend points on a video
	PageDashboard = "/me"                 // GET the user's dashboard
	PageLedger    = "/me/ledger"          // GET ?page=N, a page of ledger rows (htmx fragment)
	PageAdmin     = "/admin"              // GET the admin dashboard (admins)
	// PageStatic serves the web app's embedded files under a path that
	// names their content version, so they can be cached for good.
	PageStatic = "/static/"
	// FormCSRFField is the hidden form field carrying the CSRF token.
	FormCSRFField = "csrf_token"
)

// VideoPageURL is a video's page at base (may be "" for a relative URL).
func VideoPageURL(base string, id content.VideoID) string {
	return base + expandPath(PageVideo, id.String())
}

// UnlockPageURL is the form action that unlocks a video.
func UnlockPageURL(base string, id content.VideoID) string {
	return base + expandPath(PageUnlock, id.String())
}
