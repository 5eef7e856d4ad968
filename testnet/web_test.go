package testnet

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/internal/browsertest"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/sample"
	"github.com/swarmcast/swarmcast/wire"
)

// evilTitle would set window.pwned (and open a dialog) if a page rendered
// it as markup.
const evilTitle = `<script>window.pwned=1;alert(1)</script><img src=x onerror="window.pwned=1;alert(2)">`

// webNet is a network for the browser tests: one edge (its account
// "edge-0" runs a player), and two videos, the second titled evilTitle.
func webNet(t *testing.T) *Network {
	return startNet(t, Config{Edges: 1, Videos: 2, Titles: []string{sample.Title, evilTitle}})
}

// fillPattern turns a page route into a path to try.
func fillPattern(pattern string, video content.VideoID, node wire.NodeID) string {
	return strings.NewReplacer("{$}", "", "{id}", video.String(), "{node}", string(node)).Replace(pattern)
}

// signUpInBrowser fills and sends the sign-up form like a person would.
func signUpInBrowser(t *testing.T, s *browsertest.Session, base, user, pass string) {
	t.Helper()
	s.Open(base + wire.PageSignup)
	s.MustDo("fill the sign-up form",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), pass),
		chromedp.SendKeys(chromedp.CSS(`input[name="password2"]`), pass),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
	)
}

func logInInBrowser(t *testing.T, s *browsertest.Session, base string, cr wire.Credentials) {
	t.Helper()
	s.Open(base + wire.PageLogin)
	s.MustDo("log in as "+cr.Username,
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), cr.Username),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), cr.Password),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
	)
	waitPath(t, s, wire.PageDashboard)
}

func waitPath(t testing.TB, s *browsertest.Session, path string) {
	t.Helper()
	if err := s.WaitFor(fmt.Sprintf(`location.pathname === %q && document.readyState === "complete"`, path), 15*time.Second); err != nil {
		t.Fatalf("browser (%s): never reached %s (at %s): %v", s.Name(), path, browsertest.MustEval[string](s, `location.href`), err)
	}
}

// playInBrowser waits for the video page's player to choose want as its
// path and to play at least 10 s of media without an hls.js error.
func playInBrowser(t *testing.T, s *browsertest.Session, want string) {
	t.Helper()
	if err := s.WaitFor(`window.swarmcastPlayer && window.swarmcastPlayer.source !== ""`, 15*time.Second); err != nil {
		t.Fatalf("the player chose no source: %v", err)
	}
	if got := browsertest.MustEval[string](s, `window.swarmcastPlayer.source`); got != want {
		t.Fatalf("the player plays through %q (%s), want %q", got, browsertest.MustEval[string](s, `window.swarmcastPlayer.url`), want)
	}
	// 10 s of media is the play (the sample is 30 s); a slow start on a
	// loaded machine may take longer, bounded at a minute.
	err := s.WaitFor(`document.getElementById("video").currentTime >= 10`, 60*time.Second)
	pos := browsertest.MustEval[float64](s, `document.getElementById("video").currentTime`)
	errs := browsertest.MustEval[[]map[string]any](s, `window.swarmcastPlayer.errors`)
	if err != nil {
		t.Fatalf("played %.1f s of media through %s within a minute, want 10 s; hls.js errors %v", pos, want, errs)
	}
	if len(errs) > 0 {
		t.Errorf("hls.js error events while playing through %s: %v", want, errs)
	}
	status := browsertest.MustEval[string](s, `document.getElementById("play-status").textContent`)
	t.Logf("played %.1f s through %s: %q", pos, want, status)
}

// waitListed waits (at most 15 s) until the account behind token lists
// gateway among its running players (wire.PathPlayers).
func waitListed(t *testing.T, base, token, gateway string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, base+wire.PathPlayers, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if strings.Contains(string(body), `"`+gateway+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator never listed the gateway %s: %d %s", gateway, resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebInBrowser is the web app end to end in Debian's chromium over a
// real network on loopback: sign up, points from the admin, unlock, play
// (fallback and the viewer's own gateway), escaping, CSRF, admin pages,
// CSP on every page. Screenshots land in $SWARMCAST_ARTIFACTS.
func TestWebInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	n := webNet(t)
	ctx := t.Context()
	base := n.CoordinatorURL
	plain, evil := n.Videos[0], n.Videos[1]
	for _, v := range []content.VideoID{plain, evil} {
		if err := n.Admin.SetPrice(ctx, v, 40); err != nil {
			t.Fatal(err)
		}
	}
	edgeNode := n.Edges()[0]

	viewer := b.NewSession("viewer")
	viewer.WatchCSP()
	dialogs := viewer.CountDialogs()

	// Landing, then sign up through the form: it lands on the dashboard.
	if r := viewer.Open(base + wire.PageHome); r.Status != 200 {
		t.Fatalf("landing: %d", r.Status)
	}
	viewer.Screenshot("landing")
	signUpInBrowser(t, viewer, base, "viewer1", "correct horse battery")
	waitPath(t, viewer, wire.PageDashboard)
	viewer.Screenshot("dashboard-new")

	// Points come from the admin (its JSON API); the catalogue offers the unlock.
	if err := n.Admin.Grant(ctx, wire.GrantRequest{Username: "viewer1", Points: 100, Memo: "welcome"}); err != nil {
		t.Fatal(err)
	}
	balance := func() int64 {
		t.Helper()
		a, err := n.Store.AccountByName(ctx, "viewer1")
		if err != nil {
			t.Fatal(err)
		}
		bal, err := n.Store.Balance(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return bal
	}
	viewer.Open(base + wire.PageCatalogue)
	if got := browsertest.MustEval[bool](viewer, `document.body.textContent.includes(`+jsString(evilTitle)+`)`); !got {
		t.Error("the catalogue does not show the markup-carrying title as text")
	}
	viewer.Screenshot("catalogue")

	// A form POST without its CSRF token (a script on the page posting
	// on its own) is refused and changes nothing.
	status := browsertest.MustEval[int](viewer, `fetch(`+jsString(wire.UnlockPageURL("", evil))+`, {method: "POST", credentials: "same-origin", body: new URLSearchParams({})}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Errorf("unlock POST without a CSRF token: %d, want 403", status)
	}
	if bal := balance(); bal != 100 {
		t.Errorf("balance after the refused POST: %d, want 100", bal)
	}

	// Unlock with points through the form, from the catalogue.
	viewer.MustDo("unlock the video", chromedp.Click(chromedp.CSS(`form[action="`+wire.UnlockPageURL("", plain)+`"] button`)))
	waitPath(t, viewer, wire.VideoPageURL("", plain))
	if bal := balance(); bal != 60 {
		t.Errorf("balance after unlocking for 40: %d, want 60", bal)
	}

	viewer.Open(base + wire.PageDashboard)
	if err := viewer.WaitFor(`document.querySelector("#balance-chart canvas") !== null`, 10*time.Second); err != nil {
		t.Errorf("the dashboard draws no balance chart after two ledger entries: %v", err)
	}
	viewer.Screenshot("dashboard-after-unlock")

	t.Run("fallback", func(t *testing.T) {
		viewer.Open(base + wire.VideoPageURL("", plain))
		playInBrowser(t, viewer, "fallback")
		viewer.Screenshot("video-fallback")
	})

	t.Run("gateway", func(t *testing.T) {
		// The edge's own player serves a gateway, as swarmcast edge and
		// the demo start it; its account watches through it.
		gw, err := httpserve.Listen(ctx, "127.0.0.1:0", "", edgeNode.Viewer.Handler(), n.cfg.Log)
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		// The player announces its gateway, as swarmcast edge does.
		if err := edgeNode.Viewer.AnnounceGateway(gw.Advertise); err != nil {
			t.Fatal(err)
		}
		waitListed(t, base, edgeNode.Account.Token, gw.Advertise)
		if err := n.Admin.Grant(ctx, wire.GrantRequest{Username: n.EdgeCredentials(edgeNode).Username, Points: 40}); err != nil {
			t.Fatal(err)
		}
		if _, err := edgeNode.Account.UnlockVideo(ctx, plain); err != nil {
			t.Fatal(err)
		}
		owner := b.NewSession("edge-owner")
		logInInBrowser(t, owner, base, n.EdgeCredentials(edgeNode))
		owner.Open(base + wire.VideoPageURL("", plain))
		playInBrowser(t, owner, "gateway")
		owner.Screenshot("video-gateway")
	})

	// Escaping: the title renders as text wherever it appears, and a
	// refused sign-up shows the markup-carrying username back as text.
	viewer.Open(base + wire.VideoPageURL("", evil))
	viewer.Screenshot("video-locked-evil-title")
	anon := b.NewSession("anonymous")
	anonDialogs := anon.CountDialogs()
	signUpInBrowser(t, anon, base, `<img src=x onerror="window.pwned=1;alert(3)">`, "correct horse battery")
	if err := anon.WaitFor(`document.querySelector(".banner.error") !== null`, 15*time.Second); err != nil {
		t.Fatalf("the sign-up with a markup username shows no refusal: %v", err)
	}
	anon.Screenshot("signup-refused")
	for _, s := range []*browsertest.Session{viewer, anon} {
		if got := browsertest.MustEval[string](s, `typeof window.pwned`); got != "undefined" {
			t.Errorf("%s: window.pwned is %s: markup from user data ran", s.Name(), got)
		}
	}
	if d := dialogs() + anonDialogs(); d != 0 {
		t.Errorf("%d JavaScript dialogs opened: markup from user data ran", d)
	}

	// The ledger pages in place (htmx, under the CSP): 22 entries make two pages.
	for i := range 20 {
		if err := n.Admin.Grant(ctx, wire.GrantRequest{Username: "viewer1", Points: 1, Memo: fmt.Sprintf("bonus %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	viewer.Open(base + wire.PageDashboard)
	viewer.MustDo("open the older ledger page", chromedp.Click(chromedp.CSS(`#ledger a[hx-get$="page=2"]`)))
	if err := viewer.WaitFor(`document.querySelector("#ledger .pager").textContent.includes("page 2") && location.pathname === "/me"`, 10*time.Second); err != nil {
		t.Errorf("the ledger's older page did not swap in place: %v", err)
	}
	if v := viewer.CSPViolations(); len(v) > 0 {
		t.Errorf("ledger paging: CSP violations %v", v)
	}

	// The dashboard of the edge's owner shows the edge.
	owner := b.NewSession("edge-account")
	logInInBrowser(t, owner, base, n.EdgeCredentials(edgeNode))
	if got := browsertest.MustEval[string](owner, `document.body.textContent`); !strings.Contains(got, string(edgeNode.Identity.ID)) {
		t.Errorf("the edge owner's dashboard does not name the edge %s", edgeNode.Identity.ID)
	}
	owner.Screenshot("dashboard-edge")

	// Every admin page refuses a non-admin with 403, every page carries
	// the CSP, and no page breaks it.
	var adminPages int
	for _, rt := range n.Coordinator.Web().RegisteredRoutes() {
		path := fillPattern(rt.Pattern, plain, edgeNode.Identity.ID)
		if rt.Method != http.MethodGet {
			if rt.Admin {
				token := browsertest.MustEval[string](viewer, `document.querySelector('input[name="`+wire.FormCSRFField+`"]').value`)
				status := browsertest.MustEval[int](viewer, `fetch(`+jsString(path)+`, {method: "POST", credentials: "same-origin", body: new URLSearchParams({`+wire.FormCSRFField+`: `+jsString(token)+`})}).then(r => r.status)`)
				if status != http.StatusForbidden {
					t.Errorf("non-admin POST %s: %d, want 403", path, status)
				}
			}
			continue
		}
		r := viewer.Open(base + path)
		if got := r.Headers["content-security-policy"]; got != web.ContentSecurityPolicy {
			t.Errorf("GET %s (%d): CSP %q", path, r.Status, got)
		}
		if v := viewer.CSPViolations(); len(v) > 0 {
			t.Errorf("GET %s: CSP violations %v", path, v)
		}
		if rt.Admin {
			adminPages++
			if r.Status != http.StatusForbidden {
				t.Errorf("non-admin GET %s: %d, want 403", path, r.Status)
			}
			if adminPages == 1 {
				viewer.Screenshot("admin-refused")
			}
		}
	}
	if adminPages == 0 {
		t.Error("no admin page registered")
	}
	admin := b.NewSession("admin")
	logInInBrowser(t, admin, base, n.AdminCredentials())
	if r := admin.Open(base + wire.PageAdmin); r.Status != 200 {
		t.Errorf("admin GET %s: %d", wire.PageAdmin, r.Status)
	}
	admin.Screenshot("admin")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return fmt.Sprintf("%q", s) // Go's quoting is valid JS for these ASCII strings
}
