package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// staticVersion names the content of every embedded static file (the
// first 12 hex digits of a hash over names and bytes). Static URLs carry
// it (/static/<version>/app.css), so a file can be cached for a year and
// a new build is fetched at once.
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// StaticURL is the versioned URL path of an embedded static file (name
// relative to static/, e.g. "app.css").
func StaticURL(name string) string { return wire.PageStatic + staticVersion + "/" + name }

func (a *App) serveStatic(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	name := r.PathValue("file")
	if r.PathValue("version") != staticVersion || !fs.ValidPath(name) {
		// An old or made-up version: the file may differ, so do not let
		// it be cached as if it were this one.
		http.NotFound(w, r)
		return
	}
	b, err := staticFiles.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// templates holds one template set per page: the layout and partials
// (layout.html, partial_*.html) plus the page's own file, which defines
// "content" (and may define "title").
type templates struct {
	pages map[string]*template.Template
}

var templateFuncs = template.FuncMap{
	"asset":     StaticURL,
	"points":    formatPoints,
	"bytes":     formatBytes,
	"duration":  formatDuration,
	"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"pct":       func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"videoURL":  func(id content.VideoID) string { return wire.VideoPageURL("", id) },
	"unlockURL": func(id content.VideoID) string { return wire.UnlockPageURL("", id) },
	"csrfField": func() string { return wire.FormCSRFField },
	"page":      pagePath,
	"rate":      formatRate,
}

// pagePath names the page routes for templates ({{page "login"}}).
func pagePath(name string) (string, error) {
	p, ok := map[string]string{
		"home": wire.PageHome, "signup": wire.PageSignup, "login": wire.PageLogin, "logout": wire.PageLogout,
		"catalogue": wire.PageCatalogue, "dashboard": wire.PageDashboard, "ledger": wire.PageLedger,
		"admin": wire.PageAdmin,
	}[name]
	if !ok {
		return "", fmt.Errorf("no page named %q", name)
	}
	return p, nil
}

func mustParseTemplates() *templates {
	t, err := parseTemplates()
	if err != nil {
		panic("web: " + err.Error())
	}
	return t
}

func parseTemplates() (*templates, error) {
	base, err := template.New("").Funcs(templateFuncs).ParseFS(templateFiles, "templates/layout.html", "templates/partial_*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := &templates{pages: make(map[string]*template.Template)}
	for _, n := range names {
		file := path.Base(n)
		if file == "layout.html" || strings.HasPrefix(file, "partial_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, err
		}
		out.pages[strings.TrimSuffix(file, ".html")] = t
	}
	return out, nil
}

// view is what every page template sees.
type view struct {
	Title string
	// Nav names the active navigation entry.
	Nav   string
	User  *wire.AccountInfo
	Admin bool
	CSRF  string
	// Error is shown in a banner above the content (a refused form).
	Error string
	// Scripts are static files (names under static/) the page loads.
	Scripts []string
	// Styles are extra stylesheets (names under static/).
	Styles []string
	// Status is the HTTP status of the page.
	Status int
	Data   any
}

// render writes page name with its layout. Rendering goes to a buffer
// first, so a template error becomes a clean 500, not half a page.
func (a *App) render(w http.ResponseWriter, rq *request, status int, name string, v view) {
	t := a.pages.pages[name]
	if t == nil {
		a.log.Error("no such page template", "page", name)
		http.Error(w, "page template missing", http.StatusInternalServerError)
		return
	}
	v.User, v.Admin, v.CSRF, v.Status = rq.User, rq.admin(), rq.CSRF, status
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		a.log.Error("render page", "page", name, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	a.writeHTML(w, status, buf.Bytes())
}

// renderFragment writes one named template of a page's set alone (an
// htmx partial).
func (a *App) renderFragment(w http.ResponseWriter, page, name string, data any) {
	t := a.pages.pages[page]
	var buf bytes.Buffer
	if t == nil {
		http.Error(w, "page template missing", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		a.log.Error("render fragment", "page", page, "fragment", name, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	a.writeHTML(w, http.StatusOK, buf.Bytes())
}

func (a *App) writeHTML(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorPage answers with status and a message that says what to do.
func (a *App) errorPage(w http.ResponseWriter, r *http.Request, rq *request, status int, msg string) {
	a.render(w, rq, status, "error", view{Title: http.StatusText(status), Data: msg})
}

// formatPoints writes n with thin separators every three digits.
func formatPoints(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "−" + b.String()
	}
	return b.String()
}

// formatBytes writes n bytes in binary units (KiB, MiB, ...).
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// formatDuration writes milliseconds as m:ss (or h:mm:ss).
func formatDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// formatRate writes a rate in bytes per second (a float64 measurement or
// an int64 cap) in binary units.
func formatRate(v any) string {
	switch n := v.(type) {
	case float64:
		return formatBytes(int64(n)) + "/s"
	case int64:
		return formatBytes(n) + "/s"
	}
	return fmt.Sprint(v)
}
