package web

import (
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

func (a *App) home(w http.ResponseWriter, r *http.Request, rq *request) {
	a.render(w, rq, http.StatusOK, "home", view{Title: "Swarmcast", Nav: "home", Data: len(a.cfg.Catalogue.Videos())})
}

// accountForm is what the sign-up and login forms show again after a
// refusal (never the password).
type accountForm struct {
	Username string
	Next     string
}

func (a *App) signupForm(w http.ResponseWriter, r *http.Request, rq *request) {
	a.render(w, rq, http.StatusOK, "signup", view{Title: "Sign up", Nav: "signup", Data: accountForm{}})
}

func (a *App) signup(w http.ResponseWriter, r *http.Request, rq *request) {
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	form := accountForm{Username: user}
	refuse := func(status int, msg string) {
		a.render(w, rq, status, "signup", view{Title: "Sign up", Nav: "signup", Error: msg, Data: form})
	}
	if pass != r.PostForm.Get("password2") {
		refuse(http.StatusBadRequest, "The two passwords differ; type the same password twice.")
		return
	}
	if _, err := a.cfg.Accounts.SignUp(r.Context(), wire.Credentials{Username: user, Password: pass}, accounting.ClientKey(r)); err != nil {
		status, msg := accounting.ErrorStatus(err)
		if status >= 500 {
			a.fail(w, r, rq, err)
			return
		}
		refuse(status, msg)
		return
	}
	// Signed up: log in at once, with the same throttle as a login.
	a.logIn(w, r, rq, user, pass, wire.PageDashboard, func(status int, msg string) {
		a.render(w, rq, status, "login", view{Title: "Log in", Nav: "login", Error: msg, Data: form})
	})
}

func (a *App) loginForm(w http.ResponseWriter, r *http.Request, rq *request) {
	a.render(w, rq, http.StatusOK, "login", view{Title: "Log in", Nav: "login", Data: accountForm{Next: r.URL.Query().Get("next")}})
}

func (a *App) login(w http.ResponseWriter, r *http.Request, rq *request) {
	user, pass, next := r.PostForm.Get("username"), r.PostForm.Get("password"), r.PostForm.Get("next")
	a.logIn(w, r, rq, user, pass, localPath(next), func(status int, msg string) {
		a.render(w, rq, status, "login", view{Title: "Log in", Nav: "login", Error: msg, Data: accountForm{Username: user, Next: next}})
	})
}

// logIn checks the password and on success sets the session and device
// cookies and redirects to next; on failure refuse shows the form again.
func (a *App) logIn(w http.ResponseWriter, r *http.Request, rq *request, user, pass, next string, refuse func(status int, msg string)) {
	at := accounting.LoginAttempt{Username: user, Password: pass, Client: accounting.ClientKey(r)}
	if ck, err := r.Cookie(accounting.DeviceCookieName); err == nil {
		at.DeviceToken = ck.Value
	}
	res, err := a.cfg.Accounts.LogIn(r.Context(), at)
	if err != nil {
		status, msg := accounting.ErrorStatus(err)
		if status >= 500 {
			a.fail(w, r, rq, err)
			return
		}
		refuse(status, msg)
		return
	}
	if rq.session != "" {
		// Logging in as someone else ends the old session.
		_ = a.cfg.Accounts.LogOut(r.Context(), rq.session)
	}
	// Lifetimes go as Max-Age (seconds from now, by our clock), so a
	// browser whose clock is off still keeps the cookies as long.
	now := a.cfg.Now()
	setCookie(w, r, &http.Cookie{Name: accounting.DeviceCookieName, Value: res.DeviceToken, MaxAge: maxAge(res.DeviceExpires, now)})
	setCookie(w, r, &http.Cookie{Name: wire.SessionCookieName, Value: res.Session.Token, MaxAge: maxAge(res.Session.ExpiresAt, now)})
	clearCookie(w, r, presessionCookie)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.session != "" {
		if err := a.cfg.Accounts.LogOut(r.Context(), rq.session); err != nil {
			a.fail(w, r, rq, err)
			return
		}
	}
	clearCookie(w, r, wire.SessionCookieName)
	http.Redirect(w, r, wire.PageHome, http.StatusSeeOther)
}

// maxAge is a cookie's Max-Age for an expiry: at least one second (0
// would mean a browser-session cookie, negative delete it).
func maxAge(expires, now time.Time) int { return max(1, int(expires.Sub(now).Seconds())) }
