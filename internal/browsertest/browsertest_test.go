package browsertest

import (
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestHarnessSeesWhatItClaims: the CSP watcher reports a blocked inline
// script, the dialog counter counts an alert, Open returns the status and
// headers, and screenshots are PNGs of the asked widths.
func TestHarnessSeesWhatItClaims(t *testing.T) {
	b := Start(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /strict", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "script-src 'self'")
		w.Header().Set("X-Test", "strict")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`<!doctype html><p>strict</p><script>window.ran = 1</script>`))
	})
	mux.HandleFunc("GET /alert", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width"><p>alert</p><script>setTimeout(() => { alert("hi"); window.after = 1 }, 10)</script>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s := b.NewSession("probe")
	s.WatchCSP()
	dialogs := s.CountDialogs()
	r := s.Open(srv.URL + "/strict")
	if r.Status != http.StatusTeapot || r.Headers["x-test"] != "strict" {
		t.Errorf("Open: status %d, headers %v", r.Status, r.Headers)
	}
	if v := s.CSPViolations(); len(v) == 0 {
		t.Error("the CSP watcher missed a blocked inline script")
	}
	if MustEval[string](s, `typeof window.ran`) != "undefined" {
		t.Error("the inline script ran despite the CSP")
	}
	s.Open(srv.URL + "/alert")
	if err := s.WaitFor(`window.after === 1`, 10*time.Second); err != nil {
		t.Fatalf("the alert was not dismissed: %v", err)
	}
	if n := dialogs(); n != 1 {
		t.Errorf("dialogs counted: %d, want 1", n)
	}
	paths := s.Screenshot("probe")
	if len(paths) != len(Widths) {
		t.Fatalf("%d screenshots, want %d", len(paths), len(Widths))
	}
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || int64(cfg.Width) != Widths[i] {
			t.Errorf("%s: %v, width %d, want %d", p, err, cfg.Width, Widths[i])
		}
	}
	if err := s.WaitFor(`false`, 300*time.Millisecond); err == nil {
		t.Error("WaitFor of a false expression returned no error")
	}
}
