package web

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// ContentSecurityPolicy is sent with every page: nothing inline (no
// script, no style attribute or element), no plugins, no framing. Players
// fetch HLS from the viewer's own gateway on loopback (any port), so
// connect-src allows http://127.0.0.1:* and http://[::1]:*; hls.js hands
// media to the <video> as a blob: URL and may run its transmuxer in a
// blob: worker.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self' http://127.0.0.1:* http://[::1]:*"

// presessionCookie keys the CSRF token of an anonymous browser's forms
// (sign up, log in), so a cross-site page cannot log a victim into the
// attacker's account either.
const presessionCookie = "swarmcast_presession"

// maxFormBody bounds a posted form (the largest is a sign-up: a username
// and two passwords).
const maxFormBody = 16 << 10

// request is what the middleware learnt about a page request.
type request struct {
	// User is the logged-in account; nil for an anonymous visitor.
	User    *wire.AccountInfo
	session string
	// CSRF is the token every form on the page must send back in
	// wire.FormCSRFField: bound to the session, or to the pre-session
	// cookie of an anonymous browser.
	CSRF string
}

func (rq *request) admin() bool { return rq.User != nil && rq.User.Role == "admin" }

type pageHandler func(w http.ResponseWriter, r *http.Request, rq *request)

// setSecurityHeaders sets the headers every response of the app carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// page is the middleware of every page: security headers, the session,
// the CSRF token, and for a POST the form (bounded) and its token,
// checked before h runs so a forged form changes nothing.
func (a *App) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		// Pages show one account's data: never cache them anywhere.
		w.Header().Set("Cache-Control", "no-store")
		rq := &request{}
		if ck, err := r.Cookie(wire.SessionCookieName); err == nil && ck.Value != "" {
			u, err := a.cfg.Accounts.SessionAccount(r.Context(), ck.Value)
			switch {
			case err == nil:
				rq.User, rq.session = &u, ck.Value
			case statusOf(err) == http.StatusUnauthorized:
				// Expired or logged out elsewhere: browse anonymously.
				clearCookie(w, r, wire.SessionCookieName)
			default:
				a.fail(w, r, rq, err)
				return
			}
		}
		rq.CSRF = a.csrfToken(w, r, rq)
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
			if err := r.ParseForm(); err != nil {
				a.errorPage(w, r, rq, http.StatusBadRequest, "The form could not be read ("+err.Error()+"). Reload the page and send it again.")
				return
			}
			got := r.PostForm.Get(wire.FormCSRFField)
			if got == "" || !hmac.Equal([]byte(got), []byte(rq.CSRF)) {
				a.errorPage(w, r, rq, http.StatusForbidden, "This form was not sent from a page of this site, or it has expired. Reload the page and send it again.")
				return
			}
		}
		h(w, r, rq)
	})
}

// csrfToken is the request's form token: bound to its session, or for an
// anonymous browser to a random pre-session cookie (set here if absent;
// a POST without one then fails the check, as it should).
func (a *App) csrfToken(w http.ResponseWriter, r *http.Request, rq *request) string {
	if rq.session != "" {
		return a.cfg.Accounts.CSRFToken(rq.session)
	}
	ck, err := r.Cookie(presessionCookie)
	var secret string
	if err == nil && len(ck.Value) == 64 {
		secret = ck.Value
	} else {
		var b [32]byte
		_, _ = rand.Read(b[:])
		secret = hex.EncodeToString(b[:])
		setCookie(w, r, &http.Cookie{Name: presessionCookie, Value: secret})
	}
	// Domain-separated from session tokens, which are bound as they are.
	return a.cfg.Accounts.CSRFToken("presession\x00" + secret)
}

// setCookie sets a cookie the way every cookie of the app is set:
// path /, HttpOnly, SameSite=Lax (a link from elsewhere still arrives
// logged in; cross-site POSTs carry no cookie), Secure under TLS.
func setCookie(w http.ResponseWriter, r *http.Request, c *http.Cookie) {
	c.Path, c.HttpOnly, c.SameSite, c.Secure = "/", true, http.SameSiteLaxMode, r.TLS != nil
	http.SetCookie(w, c)
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	setCookie(w, r, &http.Cookie{Name: name, Value: "", MaxAge: -1})
}

// adminOnly refuses anyone but an admin before h runs: an anonymous
// visitor is sent to log in (and back), an account that is not an admin
// gets a 403 page.
func (a *App) adminOnly(h pageHandler) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) {
		if rq.User == nil {
			a.toLogin(w, r)
			return
		}
		if !rq.admin() {
			a.errorPage(w, r, rq, http.StatusForbidden, "This page is for admins; your account "+rq.User.Username+" is not one.")
			return
		}
		h(w, r, rq)
	}
}

// toLogin redirects to the login page, which sends the visitor back to
// this page after logging in.
func (a *App) toLogin(w http.ResponseWriter, r *http.Request) {
	target := wire.PageLogin
	if r.Method == http.MethodGet {
		target += "?" + url.Values{"next": {r.URL.RequestURI()}}.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath is next if it names a page of this site, else the dashboard:
// a login link must not forward anyone to another site.
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash, so "/\t/evil" would become "//evil": any control character,
// space or backslash is refused outright.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") {
		return wire.PageDashboard
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return wire.PageDashboard
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return wire.PageDashboard
	}
	return next
}

// fail answers an error from the accounting service or the store as a
// page with its status and message.
func (a *App) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	status, msg := accounting.ErrorStatus(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, msg = http.StatusRequestEntityTooLarge, "the form is too large"
	}
	if status >= 500 {
		a.log.Error("page failed", "path", r.URL.Path, "err", err)
		msg = "Something went wrong on the server; try again in a moment."
	}
	a.errorPage(w, r, rq, status, msg)
}

func statusOf(err error) int {
	status, _ := accounting.ErrorStatus(err)
	return status
}
