// Package web is the coordinator's web app: server-rendered pages for
// viewers (landing, sign up, log in, catalogue, video player, dashboard)
// and for admins, with embedded templates and vendored front-end
// libraries (static/vendor/README.md). It is a coordinator subsystem: it
// declares what it consumes (Accounts, Catalogue) and the coordinator
// wires its accounting service and control plane into them.
//
// Every page goes through one middleware (security.go): session lookup,
// security headers (CSP without inline script or style), and a CSRF check
// on every POST before any handler runs.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/wire"
)

// Accounts is what the web app asks of the accounting subsystem
// (*accounting.Service implements it). Errors map to statuses with
// accounting.ErrorStatus.
type Accounts interface {
	SignUp(ctx context.Context, cr wire.Credentials, client string) (wire.AccountInfo, error)
	LogIn(ctx context.Context, at accounting.LoginAttempt) (accounting.LoginResult, error)
	LogOut(ctx context.Context, session string) error
	SessionAccount(ctx context.Context, session string) (wire.AccountInfo, error)
	// CSRFToken binds a form token to a secret (a session token, or the
	// pre-session cookie of an anonymous browser).
	CSRFToken(secret string) string
	Ledger(ctx context.Context, accountID int64, limit int) ([]wire.LedgerEntry, error)
	VideoPrice(ctx context.Context, video content.VideoID) (int64, error)
	Entitled(ctx context.Context, accountID int64, video content.VideoID) (bool, error)
	Unlock(ctx context.Context, accountID int64, video content.VideoID) (wire.UnlockResponse, error)
	EdgeStatus(ctx context.Context, accountID int64, admin bool, node wire.NodeID) (wire.EdgeStatusInfo, error)
	EdgeBytesServed(ctx context.Context, node wire.NodeID, since, until time.Time) (int64, error)
}

var _ Accounts = (*accounting.Service)(nil)

// Catalogue is what the web app asks of the control plane: the catalogue
// and the registry (soft state, from heartbeats).
type Catalogue interface {
	// Videos lists the catalogue in the order of wire.PathVideos.
	Videos() []wire.VideoInfo
	// Video is one catalogued video.
	Video(id content.VideoID) (wire.VideoInfo, bool)
	// Node is a registered node as wire.PathNodes lists it, with the
	// upload rate its heartbeats report.
	Node(id wire.NodeID) (NodeStatus, bool)
}

// NodeStatus is a registered node's soft state.
type NodeStatus struct {
	wire.NodeInfo
	// UploadBytesPerSec is the upload rate of recent heartbeats
	// (smoothed), to compare with UploadCapBytes.
	UploadBytesPerSec float64
}

// Config configures an App.
type Config struct {
	Accounts  Accounts  // required
	Catalogue Catalogue // required
	Admin     AdminData // the admin pages' data (admin.go); nil: they answer 503
	Now       func() time.Time
	Log       *slog.Logger
}

// App is the web app. Routes mounts it on a mux; its methods are safe for
// concurrent use.
type App struct {
	cfg   Config
	log   *slog.Logger
	pages *templates

	mu     sync.Mutex
	routes []Route // every route registered by the last Routes call
}

// Route is one registered page route.
type Route struct {
	Method, Pattern string
	// Admin: only admins may use it (the server refuses everyone else).
	Admin bool
}

// New builds the web app. It panics if the embedded templates do not parse
// (a build defect, caught by every test).
func New(cfg Config) *App {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &App{cfg: cfg, log: cfg.Log.With("subsystem", "web"), pages: mustParseTemplates()}
}

// Routes registers every page and the static files on mux.
func (a *App) Routes(mux *http.ServeMux) {
	a.mu.Lock()
	a.routes = nil
	a.mu.Unlock()
	mux.Handle("GET "+wire.PageStatic+"{version}/{file...}", http.HandlerFunc(a.serveStatic))

	a.handle(mux, "GET", wire.PageHome+"{$}", a.home)
	a.handle(mux, "GET", wire.PageSignup, a.signupForm)
	a.handle(mux, "POST", wire.PageSignup, a.signup)
	a.handle(mux, "GET", wire.PageLogin, a.loginForm)
	a.handle(mux, "POST", wire.PageLogin, a.login)
	a.handle(mux, "POST", wire.PageLogout, a.logout)
	a.handle(mux, "GET", wire.PageCatalogue, a.catalogue)
	a.handle(mux, "GET", wire.PageVideo, a.video)
	a.handle(mux, "POST", wire.PageUnlock, a.unlock)
	a.handle(mux, "GET", wire.PageDashboard, a.dashboard)
	a.handle(mux, "GET", wire.PageLedger, a.ledgerPage)
	a.adminRoutes(mux)
}

// RegisteredRoutes lists the page routes of the last Routes call, so tests
// can walk every one (admin pages included) without a list of their own.
func (a *App) RegisteredRoutes() []Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Route(nil), a.routes...)
}

// handle registers a page for everyone (the handler checks login itself).
func (a *App) handle(mux *http.ServeMux, method, pattern string, h pageHandler) {
	a.register(mux, Route{Method: method, Pattern: pattern}, a.page(h))
}

// handleAdmin registers a page only admins may use: anonymous visitors
// are sent to log in, other accounts get 403, before h runs.
func (a *App) handleAdmin(mux *http.ServeMux, method, pattern string, h pageHandler) {
	a.register(mux, Route{Method: method, Pattern: pattern, Admin: true}, a.page(a.adminOnly(h)))
}

func (a *App) register(mux *http.ServeMux, rt Route, h http.Handler) {
	a.mu.Lock()
	a.routes = append(a.routes, rt)
	a.mu.Unlock()
	mux.Handle(rt.Method+" "+rt.Pattern, h)
}
