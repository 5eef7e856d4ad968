package coordinator

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/wire"
)

// newWebHarness is a store harness on SQLite for the web app's tests.
func newWebHarness(t *testing.T) *storeHarness {
	return newStoreHarness(t, "sqlite:"+filepath.Join(t.TempDir(), "coordinator.db"), "", nil)
}

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so tests see each answer of the web app as a browser would get it.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func readPage(t testing.TB, resp *http.Response) page {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

var csrfField = regexp.MustCompile(`name="` + wire.FormCSRFField + `" value="([0-9a-f]{64})"`)

// csrf is the CSRF token of the forms on a page.
func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field on the page:\n%s", p.body)
	}
	return m[1]
}

// formPost loads path's form and posts it with its CSRF token.
func (b *browser) formPost(formPath, action string, form url.Values) page {
	b.t.Helper()
	f := b.get(formPath)
	form.Set(wire.FormCSRFField, f.csrf(b.t))
	return b.post(action, form)
}

func (b *browser) signUp(user, pass string) {
	b.t.Helper()
	p := b.formPost(wire.PageSignup, wire.PageSignup, url.Values{"username": {user}, "password": {pass}, "password2": {pass}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != wire.PageDashboard {
		b.t.Fatalf("sign up %s: %d %s\n%s", user, p.status, p.header.Get("Location"), p.body)
	}
}

func TestWebSignupLoginAndDashboard(t *testing.T) {
	h := newWebHarness(t)
	b := newBrowser(t, h.srv.URL)
	if p := b.get(wire.PageDashboard); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), wire.PageLogin) {
		t.Fatalf("anonymous dashboard: %d %s, want a redirect to log in", p.status, p.header.Get("Location"))
	}
	b.signUp("alice", "correct horse battery")
	p := b.get(wire.PageDashboard)
	if p.status != 200 || !strings.Contains(p.body, "My dashboard") || !strings.Contains(p.body, "alice") {
		t.Fatalf("dashboard after sign up: %d\n%s", p.status, p.body)
	}
	// Log out (POST with CSRF), then log in again through the form.
	if p := b.post(wire.PageLogout, url.Values{wire.FormCSRFField: {p.csrf(t)}}); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d\n%s", p.status, p.body)
	}
	if p := b.get(wire.PageDashboard); p.status != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: %d, want a redirect to log in", p.status)
	}
	bad := b.formPost(wire.PageLogin, wire.PageLogin, url.Values{"username": {"alice"}, "password": {"wrong password!!"}})
	if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, "banner error") {
		t.Fatalf("bad password: %d\n%s", bad.status, bad.body)
	}
	ok := b.formPost(wire.PageLogin, wire.PageLogin, url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "next": {wire.PageCatalogue}})
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != wire.PageCatalogue {
		t.Fatalf("login: %d %q", ok.status, ok.header.Get("Location"))
	}
	// A next pointing at another site is not followed.
	ok = b.formPost(wire.PageLogin, wire.PageLogin, url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "next": {"//evil.example/"}})
	if ok.header.Get("Location") != wire.PageDashboard {
		t.Fatalf("login with an off-site next redirected to %q", ok.header.Get("Location"))
	}
	var session *http.Cookie
	u, _ := url.Parse(h.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == wire.SessionCookieName {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after login")
	}
	for _, sc := range ok.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, wire.SessionCookieName+"=") && (!strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax")) {
			t.Errorf("session cookie %q: want HttpOnly and SameSite=Lax", sc)
		}
	}
}

// TestWebFormsNeedCSRF: every POST without its token, or with another
// browser's, is refused with 403 and changes nothing.
func TestWebFormsNeedCSRF(t *testing.T) {
	h := newWebHarness(t)
	video := h.fix.ids[0]
	h.setPrice(video, 10)
	b := newBrowser(t, h.srv.URL)
	b.signUp("bob", "correct horse battery")
	h.grant("bob", 100)
	other := newBrowser(t, h.srv.URL)
	otherToken := other.get(wire.PageLogin).csrf(t)

	state := func() (int64, bool) {
		t.Helper()
		a, err := h.store.AccountByName(t.Context(), "bob")
		if err != nil {
			t.Fatal(err)
		}
		bal, err := h.store.Balance(t.Context(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		ent, err := h.store.Entitled(t.Context(), a.ID, video)
		if err != nil {
			t.Fatal(err)
		}
		return bal, ent
	}
	unlock := wire.UnlockPageURL("", video)
	for name, form := range map[string]url.Values{
		"no token":                    {},
		"empty token":                 {wire.FormCSRFField: {""}},
		"another browser's":           {wire.FormCSRFField: {otherToken}},
		"a token of the wrong length": {wire.FormCSRFField: {"abc"}},
	} {
		if p := b.post(unlock, form); p.status != http.StatusForbidden {
			t.Errorf("unlock with %s: %d, want 403", name, p.status)
		}
		if p := b.post(wire.PageLogout, form); p.status != http.StatusForbidden {
			t.Errorf("logout with %s: %d, want 403", name, p.status)
		}
		form := url.Values{"username": {"mallory"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}}
		if p := other.post(wire.PageSignup, form); p.status != http.StatusForbidden {
			t.Errorf("sign up with %s: %d, want 403", name, p.status)
		}
	}
	if bal, ent := state(); bal != 100 || ent {
		t.Fatalf("after forged posts: balance %d entitled %v, want 100 and false", bal, ent)
	}
	if _, err := h.store.AccountByName(t.Context(), "mallory"); err == nil {
		t.Fatal("a sign-up without its CSRF token created the account")
	}
	if p := b.get(wire.PageDashboard); p.status != 200 {
		t.Fatalf("a forged logout ended the session: dashboard %d", p.status)
	}
	// The real form works.
	p := b.formPost(wire.VideoPageURL("", video), unlock, url.Values{})
	if p.status != http.StatusSeeOther {
		t.Fatalf("unlock: %d\n%s", p.status, p.body)
	}
	if bal, ent := state(); bal != 90 || !ent {
		t.Fatalf("after unlock: balance %d entitled %v, want 90 and true", bal, ent)
	}
}

func TestWebUnlockShortOfPoints(t *testing.T) {
	h := newWebHarness(t)
	video := h.fix.ids[0]
	h.setPrice(video, 50)
	b := newBrowser(t, h.srv.URL)
	b.signUp("carol", "correct horse battery")
	h.grant("carol", 20)
	p := b.formPost(wire.PageCatalogue, wire.UnlockPageURL("", video), url.Values{})
	if p.status != http.StatusPaymentRequired || !strings.Contains(p.body, "Not enough points") || !strings.Contains(p.body, "have 20, need 50") {
		t.Fatalf("unlock short of points: %d\n%s", p.status, p.body)
	}
}

// fillPattern turns a route pattern into a path: {id} a catalogued video,
// {node} a node id, {$} nothing.
func fillPattern(pattern string, video string) string {
	r := strings.NewReplacer("{$}", "", "{id}", video, "{node}", strings.Repeat("ab", 32), "{file...}", "app.css")
	return r.Replace(pattern)
}

// TestWebAdminPagesRefuseOthers walks every admin route the app
// registered: anonymous visitors are sent to log in, a user gets 403, an
// admin gets in.
func TestWebAdminPagesRefuseOthers(t *testing.T) {
	h := newWebHarness(t)
	video := h.fix.ids[0].String()
	user := newBrowser(t, h.srv.URL)
	user.signUp("dave", "correct horse battery")
	admin := newBrowser(t, h.srv.URL)
	if p := admin.formPost(wire.PageLogin, wire.PageLogin, url.Values{"username": {"root"}, "password": {rootPassword}}); p.status != http.StatusSeeOther {
		t.Fatalf("admin login: %d\n%s", p.status, p.body)
	}
	anon := newBrowser(t, h.srv.URL)
	var admins int
	for _, rt := range h.c.Web().RegisteredRoutes() {
		if !rt.Admin {
			continue
		}
		admins++
		path := fillPattern(rt.Pattern, video)
		send := func(b *browser) page {
			if rt.Method == http.MethodGet {
				return b.get(path)
			}
			// A POST carries its page's valid token: refusal must come from the role, not CSRF.
			return b.post(path, url.Values{wire.FormCSRFField: {b.get(wire.PageCatalogue).csrf(t)}})
		}
		if p := send(anon); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), wire.PageLogin) {
			t.Errorf("anonymous %s %s: %d %q, want a redirect to log in", rt.Method, path, p.status, p.header.Get("Location"))
		}
		if p := send(user); p.status != http.StatusForbidden {
			t.Errorf("user %s %s: %d, want 403", rt.Method, path, p.status)
		}
		if rt.Method == http.MethodGet {
			if p := send(admin); p.status != http.StatusOK {
				t.Errorf("admin %s %s: %d, want 200", rt.Method, path, p.status)
			}
		}
	}
	if admins == 0 {
		t.Fatal("no admin route registered")
	}
}

// TestWebSecurityHeadersOnEveryPage: every GET page (and the static
// files) carries the CSP and the other headers, for every kind of visitor.
func TestWebSecurityHeadersOnEveryPage(t *testing.T) {
	h := newWebHarness(t)
	video := h.fix.ids[0].String()
	user := newBrowser(t, h.srv.URL)
	user.signUp("erin", "correct horse battery")
	paths := []string{web.StaticURL("app.css"), "/static/0000/app.css"}
	for _, rt := range h.c.Web().RegisteredRoutes() {
		if rt.Method == http.MethodGet {
			paths = append(paths, fillPattern(rt.Pattern, video))
		}
	}
	paths = append(paths, wire.VideoPageURL("", h.fix.ids[1]), "/videos/not-a-video")
	for _, b := range []*browser{newBrowser(t, h.srv.URL), user} {
		for _, path := range paths {
			p := b.get(path)
			if got := p.header.Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
				t.Errorf("%s (%d): CSP %q", path, p.status, got)
			}
			if p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") == "" {
				t.Errorf("%s: nosniff %q referrer %q", path, p.header.Get("X-Content-Type-Options"), p.header.Get("Referrer-Policy"))
			}
			if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, " onclick=") {
				t.Errorf("%s: inline script or style in the page", path)
			}
		}
	}
	if p := user.get(web.StaticURL("app.css")); p.status != 200 || !strings.Contains(p.header.Get("Cache-Control"), "immutable") {
		t.Errorf("static file: %d, Cache-Control %q", p.status, p.header.Get("Cache-Control"))
	}
}

// TestWebEscapesUserData: a title and a username carrying markup render as
// text (html/template), never as markup.
func TestWebEscapesUserData(t *testing.T) {
	h := newWebHarness(t)
	const evil = `<script>window.pwned=1</script><img src=x onerror=alert(1)>`
	st, id := samplestore.Video(t, evil)
	m, err := st.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.client.Publish(t.Context(), wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: m.Encode()}}}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.srv.URL)
	b.signUp("frank", "correct horse battery")
	for _, path := range []string{wire.PageCatalogue, wire.VideoPageURL("", id)} {
		p := b.get(path)
		if p.status != 200 || strings.Contains(p.body, evil) || !strings.Contains(p.body, "&lt;script&gt;window.pwned=1&lt;/script&gt;") {
			t.Errorf("%s (%d): the title is not escaped:\n%s", path, p.status, p.body)
		}
	}
	// A refused sign-up shows the username again, escaped.
	anon := newBrowser(t, h.srv.URL)
	p := anon.formPost(wire.PageSignup, wire.PageSignup, url.Values{"username": {evil}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if p.status != http.StatusBadRequest || strings.Contains(p.body, evil) || strings.Contains(p.body, "<script>window") {
		t.Errorf("refused sign-up (%d) echoes the username unescaped:\n%s", p.status, p.body)
	}
	if _, err := h.store.AccountByName(t.Context(), evil); err == nil || !errors.Is(err, coordinatordb.ErrNotFound) {
		t.Errorf("account named with markup: %v", err)
	}
}

// logIn logs the browser in through the login form.
func (b *browser) logIn(user, pass string) {
	b.t.Helper()
	p := b.formPost(wire.PageLogin, wire.PageLogin, url.Values{"username": {user}, "password": {pass}})
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("log in %s: %d\n%s", user, p.status, p.body)
	}
}

// TestWebDashboardShowsBannedEdge: the owner of a banned edge sees why
// on the dashboard, with the edge's caps and standing.
func TestWebDashboardShowsBannedEdge(t *testing.T) {
	h := newWebHarness(t)
	e, _ := h.boundEdge("grace", "")
	b := newBrowser(t, h.srv.URL)
	b.logIn("grace", testPassword)
	p := b.get(wire.PageDashboard)
	if p.status != 200 || !strings.Contains(p.body, string(e.ID)) || !strings.Contains(p.body, "online") || strings.Contains(p.body, "is banned") {
		t.Fatalf("dashboard of a healthy edge's owner (%d):\n%s", p.status, p.body)
	}
	const reason = "served a shard that fails its proof (receipt 7)"
	if err := (*network)(h.c).Ban(t.Context(), e.ID, reason); err != nil {
		t.Fatal(err)
	}
	p = b.get(wire.PageDashboard)
	if !strings.Contains(p.body, `class="banner error"`) || !strings.Contains(p.body, "is banned: "+reason) {
		t.Fatalf("dashboard of a banned edge's owner shows no ban banner with the reason:\n%s", p.body)
	}
	// Another account sees nothing of it.
	other := newBrowser(t, h.srv.URL)
	other.signUp("heidi", "correct horse battery")
	if p := other.get(wire.PageDashboard); strings.Contains(p.body, string(e.ID)) {
		t.Fatal("another account's dashboard shows grace's edge")
	}
}

// TestWebLedgerPages: the ledger behind the chart is paged, newest first;
// htmx asks for a page and gets the table alone.
func TestWebLedgerPages(t *testing.T) {
	h := newWebHarness(t)
	b := newBrowser(t, h.srv.URL)
	b.signUp("ivan", "correct horse battery")
	for i := 1; i <= 25; i++ {
		h.want(h.do("POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: "ivan", Points: int64(i), Memo: fmt.Sprintf("grant number %d", i)}), 200)
	}
	p := b.get(wire.PageDashboard)
	if !strings.Contains(p.body, "grant number 25") || strings.Contains(p.body, "grant number 5<") || !strings.Contains(p.body, wire.PageLedger+"?page=2") {
		t.Fatalf("dashboard ledger page 1:\n%s", p.body)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+wire.PageLedger+"?page=2", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	frag := readPage(t, resp)
	if frag.status != 200 || strings.Contains(frag.body, "<html") || !strings.HasPrefix(frag.body, `<div id="ledger">`) ||
		!strings.Contains(frag.body, "grant number 5<") || strings.Contains(frag.body, "grant number 6<") || !strings.Contains(frag.body, "page=1") {
		t.Fatalf("ledger page 2 as an htmx fragment (%d):\n%s", frag.status, frag.body)
	}
	if full := b.get(wire.PageLedger + "?page=2"); !strings.Contains(full.body, "<html") || !strings.Contains(full.body, "grant number 1<") {
		t.Fatalf("ledger page 2 without htmx is a whole page:\n%s", full.body)
	}
	for _, bad := range []string{"0", "-1", "x", "51"} {
		if p := b.get(wire.PageLedger + "?page=" + bad); p.status != http.StatusBadRequest {
			t.Errorf("ledger page %q: %d, want 400", bad, p.status)
		}
	}
}

// TestWebCookiesSecureUnderTLS: over TLS every cookie the app sets is
// Secure (and still HttpOnly, SameSite=Lax); over plain HTTP on loopback
// it cannot be.
func TestWebCookiesSecureUnderTLS(t *testing.T) {
	h := newWebHarness(t)
	srv := httptest.NewTLSServer(h.c.Handler())
	defer srv.Close()
	b := newBrowser(t, srv.URL)
	b.c.Transport = srv.Client().Transport
	form := b.get(wire.PageSignup)
	p := b.post(wire.PageSignup, url.Values{wire.FormCSRFField: {form.csrf(t)}, "username": {"judy"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign up over TLS: %d\n%s", p.status, p.body)
	}
	cookies := append(form.header.Values("Set-Cookie"), p.header.Values("Set-Cookie")...)
	var session bool
	for _, c := range cookies {
		session = session || strings.HasPrefix(c, wire.SessionCookieName+"=")
		if !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
			t.Errorf("cookie over TLS: %q, want Secure, HttpOnly, SameSite=Lax", c)
		}
	}
	if !session {
		t.Fatalf("no session cookie among %q", cookies)
	}
}
