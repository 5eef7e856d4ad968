package wire

import (
	"crypto/ed25519"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzCheckPlayerGateway: whatever a client announces, an accepted URL is
// exactly http://127.0.0.1:PORT or http://[::1]:PORT with a canonical port
// in 1..65535, so a page following it reaches this machine only.
func FuzzCheckPlayerGateway(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080", "http://[::1]:1", "http://localhost:80", "http://127.0.0.1:080", "http://[::1]:65536", "http://127.0.0.1:80/x", "http://::1:80", "http://127.0.0.1:+80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckPlayerGateway(s) != nil {
			return
		}
		var port string
		if p, ok := strings.CutPrefix(s, "http://127.0.0.1:"); ok {
			port = p
		} else if p, ok := strings.CutPrefix(s, "http://[::1]:"); ok {
			port = p
		} else {
			t.Fatalf("accepted %q: not a loopback gateway URL", s)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("accepted %q: port %q", s, port)
		}
	})
}

func TestWebOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7000":               "http://127.0.0.1:7000",
		"http://127.0.0.1:7000/":              "http://127.0.0.1:7000",
		"https://Swarmcast.Example:443/watch": "https://swarmcast.example",
		"HTTP://swarmcast.example:80":         "http://swarmcast.example",
		"http://[::1]:7000":                   "http://[::1]:7000",
		"https://swarmcast.example:8443":      "https://swarmcast.example:8443",
	} {
		if got, err := WebOrigin(in); err != nil || got != want {
			t.Errorf("WebOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*", "null", "swarmcast.example", "ftp://x.example", "https://u:p@x.example", "https://x.example/?q=1", "https://x.example/#f", "http://"} {
		if got, err := WebOrigin(in); err == nil {
			t.Errorf("WebOrigin(%q) = %q, want an error", in, got)
		}
	}
}

// A signed announcement verifies for its account and gateway only.
func TestPlayerGatewaySignature(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	req := SignPlayerGateway(key, 7, "http://127.0.0.1:9000", now)
	if err := VerifyPlayerGateway(&req, 7, now); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(r *PlayerGatewayRequest){
		"other gateway":  func(r *PlayerGatewayRequest) { r.Gateway = "http://127.0.0.1:9001" },
		"other account":  func(r *PlayerGatewayRequest) { r.Account = 8 },
		"other time":     func(r *PlayerGatewayRequest) { r.UnixMS++ },
		"other key":      func(r *PlayerGatewayRequest) { r.ViewerID = SignPlayerGateway(other, 7, "", now).ViewerID },
		"no signature":   func(r *PlayerGatewayRequest) { r.Signature = nil },
		"remote gateway": func(r *PlayerGatewayRequest) { r.Gateway = "http://10.0.0.1:9000" },
	} {
		r := req
		mutate(&r)
		acct := int64(7)
		if name == "other account" {
			acct = 8
		}
		if err := VerifyPlayerGateway(&r, acct, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if err := VerifyPlayerGateway(&req, 7, now.Add(NodeRequestMaxSkew+time.Second)); err == nil {
		t.Error("stale announcement verified")
	}
}
