// Package browsertest drives a real headless chromium (Debian's
// /usr/bin/chromium) through chromedp for end-to-end tests of web pages:
// one browser per test, a fresh profile per visitor (Session), bounded
// waits, and screenshots at desktop and phone widths kept as test
// artifacts. Without chromium a test skips, except in CI
// (internal/testenv), where it fails.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/swarmcast/swarmcast/internal/testenv"
)

// ArtifactsEnv names the directory screenshots go to (one sub-directory
// per test); unset, they go to the test's temporary directory.
const ArtifactsEnv = "SWARMCAST_ARTIFACTS"

// DefaultTimeout bounds one Run (navigation, clicks, waits) unless the
// caller's context is shorter.
const DefaultTimeout = 30 * time.Second

// Widths are the viewport widths every Screenshot is taken at: a laptop
// and a small phone.
var Widths = []int64{1280, 390}

// Browser is one headless chromium process.
type Browser struct {
	t         testing.TB
	alloc     context.Context
	browser   context.Context
	artifacts string
}

// Start launches chromium for the test and stops it at cleanup.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		path = testenv.RequireTool(t, "chromium", "chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	// Start the process now, without a deadline (a timeout on the first
	// run would bound the browser's whole life), so a broken chromium
	// fails here.
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("browsertest: start chromium %s: %v", path, err)
	}
	b := &Browser{t: t, alloc: alloc, browser: browser, artifacts: artifactDir(t)}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return b
}

func artifactDir(t testing.TB) string {
	root := os.Getenv(ArtifactsEnv)
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: artifacts: %v", err)
	}
	return dir
}

// Session is one visitor: its own browser context (cookies, storage),
// like a separate profile, with one tab.
type Session struct {
	b      *Browser
	ctx    context.Context
	cancel context.CancelFunc
	name   string
}

// NewSession opens a fresh visitor. name labels its screenshots.
func (b *Browser) NewSession(name string) *Session {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.browser, chromedp.WithNewBrowserContext())
	s := &Session{b: b, ctx: ctx, cancel: cancel, name: name}
	// The first action opens the tab; as with the browser, unbounded.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		b.t.Fatalf("browsertest: open session %s: %v", name, err)
	}
	b.t.Cleanup(cancel)
	return s
}

// Context is the session's chromedp context (unbounded: derive a
// deadline from it).
func (s *Session) Context() context.Context { return s.ctx }

// Do runs actions in the session's tab within DefaultTimeout.
func (s *Session) Do(steps ...chromedp.Action[chromedp.Void]) error {
	return s.DoTimeout(DefaultTimeout, steps...)
}

// DoTimeout runs actions within d.
func (s *Session) DoTimeout(d time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(s.ctx, d)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// MustDo is Do that fails the test on error, naming what was being done.
func (s *Session) MustDo(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.b.t.Helper()
	if err := s.Do(steps...); err != nil {
		s.b.t.Fatalf("browser (%s): %s: %v", s.name, what, err)
	}
}

// Eval evaluates a JavaScript expression in the session's page within
// DefaultTimeout (a promise is awaited).
func Eval[T any](s *Session, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(s.ctx, DefaultTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// MustEval is Eval that fails the test on error.
func MustEval[T any](s *Session, expr string) T {
	s.b.t.Helper()
	v, err := Eval[T](s, expr)
	if err != nil {
		s.b.t.Fatalf("browser (%s): evaluate %s: %v", s.name, expr, err)
	}
	return v
}

// WaitFor evaluates a JavaScript expression every 100 ms until it is
// true, at most d. Evaluation errors (a navigation replacing the page
// mid-call) count as false.
func (s *Session) WaitFor(expr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		ctx, cancel := context.WithTimeout(s.ctx, min(5*time.Second, max(time.Until(deadline), time.Millisecond)))
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still false after %s (last error: %v)", expr, d, last)
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Screenshot saves full-page PNGs of the current page at every width in
// Widths as <artifacts>/<session>-<name>-<width>.png, logs their paths
// and returns them, then restores the desktop viewport.
func (s *Session) Screenshot(name string) []string {
	s.b.t.Helper()
	var paths []string
	for _, w := range Widths {
		var opts []chromedp.EmulateViewportOption
		if w < 600 {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		if err := s.Do(chromedp.EmulateViewport(w, 900, opts...), chromedp.Sleep(300*time.Millisecond)); err != nil {
			s.b.t.Fatalf("browser (%s): viewport %d px: %v", s.name, w, err)
		}
		ctx, cancel := context.WithTimeout(s.ctx, DefaultTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			s.b.t.Fatalf("browser (%s): screenshot %s at %d px: %v", s.name, name, w, err)
		}
		p := filepath.Join(s.b.artifacts, fmt.Sprintf("%s-%s-%d.png", s.name, name, w))
		if err := os.WriteFile(p, png, 0o644); err != nil {
			s.b.t.Fatal(err)
		}
		s.b.t.Logf("screenshot: %s", p)
		paths = append(paths, p)
	}
	if err := s.Do(chromedp.ResetViewport()); err != nil {
		s.b.t.Fatalf("browser (%s): restore viewport: %v", s.name, err)
	}
	return paths
}

// CountDialogs makes the session dismiss every JavaScript dialog (alert,
// confirm, prompt) and count them; the returned function reads the
// count. An XSS test asserts it stays 0.
func (s *Session) CountDialogs() func() int64 {
	s.b.t.Helper()
	var n atomic.Int64
	opened := make(chan struct{}, 16)
	err := chromedp.Listen(s.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			n.Add(1)
			select {
			case opened <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		s.b.t.Fatalf("browser (%s): listen for dialogs: %v", s.name, err)
	}
	// Dismiss dialogs off the listener's goroutine (it must not run
	// commands); the goroutine ends with the session.
	go func() {
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-opened:
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
				cancel()
			}
		}
	}()
	return n.Load
}

// Response is what Open saw of a page's HTML document.
type Response struct {
	Status  int64
	Headers map[string]string // names in lower case
}

// Open navigates to url, waits for the page to load, and returns the
// document's HTTP status and headers.
func (s *Session) Open(url string) Response {
	s.b.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, DefaultTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		s.b.t.Fatalf("browser (%s): open %s: %v", s.name, url, err)
	}
	out := Response{Status: resp.Status, Headers: make(map[string]string, len(resp.Headers))}
	for k, v := range resp.Headers {
		out.Headers[strings.ToLower(k)] = fmt.Sprint(v)
	}
	return out
}

// cspWatcher records Content-Security-Policy violations of every page
// the session opens from now on into window.__cspViolations (scripts the
// DevTools protocol injects run whatever the page's policy).
const cspWatcher = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`

// WatchCSP makes every page opened afterwards record its CSP violations;
// CSPViolations reads those of the current page.
func (s *Session) WatchCSP() {
	s.b.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, DefaultTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatcher}); err != nil {
		s.b.t.Fatalf("browser (%s): install the CSP watcher: %v", s.name, err)
	}
}

// CSPViolations lists the current page's CSP violations (WatchCSP).
func (s *Session) CSPViolations() []string {
	s.b.t.Helper()
	return MustEval[[]string](s, `window.__cspViolations || []`)
}

// Name is the session's label.
func (s *Session) Name() string { return s.name }
