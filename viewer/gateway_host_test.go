package viewer

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatewayRefusesRebindingHosts is the DNS-rebinding attack: a page on
// attacker.example re-points its name at 127.0.0.1 and asks the gateway
// for the content key. The request reaches the gateway, but with the
// attacker's name as Host; it must get no key, while the same request
// naming the loopback still does.
func TestGatewayRefusesRebindingHosts(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	_, base := startGateway(t, n)
	want, _ := n.store.ContentKey(n.id)
	keyURL := base + "/videos/" + n.id.String() + "/key"
	port := base[strings.LastIndex(base, ":")+1:]

	fetch := func(host string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, keyURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.attacker.example:" + port, "localhost.attacker.example", "192.168.1.20:" + port, "127.0.0.2:" + port} {
		code, body := fetch(host)
		if code != http.StatusMisdirectedRequest || bytes.Contains(body, want[:]) {
			t.Errorf("Host %q: status %d (%d bytes); want 421 and no key", host, code, len(body))
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "127.0.0.1"} {
		code, body := fetch(host)
		if code != http.StatusOK || !bytes.Equal(body, want[:]) {
			t.Errorf("Host %q: status %d; want 200 and the key", host, code)
		}
	}
}

func TestGatewayHostAllowed(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:1": true, "localhost.:1": true, "localhost": true,
		"": false, "evil.com": false, "127.0.0.1.evil.com": false, "[::2]:1": false, "0.0.0.0:80": false, "LocalHost:9": true,
	} {
		if got := gatewayHostAllowed(host); got != want {
			t.Errorf("gatewayHostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestGatewayRefusesRemotePeers: a gateway bound beyond loopback still
// serves the content key only to programs on this machine, whatever Host a
// remote client writes.
func TestGatewayRefusesRemotePeers(t *testing.T) {
	n := newTestNetwork(t, mixedEdges)
	v := newTestViewer(t, n, nil, nil)
	want, _ := n.store.ContentKey(n.id)
	for peer, allowed := range map[string]bool{
		"203.0.113.5:40000": false, "192.168.1.20:5000": false, "[2001:db8::1]:443": false,
		"127.0.0.1:40000": true, "[::1]:40000": true,
	} {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/videos/"+n.id.String()+"/key", nil)
		req.RemoteAddr = peer
		rec := httptest.NewRecorder()
		v.Gateway().ServeHTTP(rec, req)
		gotKey := bytes.Equal(rec.Body.Bytes(), want[:])
		if allowed != (rec.Code == http.StatusOK && gotKey) || (!allowed && (rec.Code != http.StatusForbidden || bytes.Contains(rec.Body.Bytes(), want[:]))) {
			t.Errorf("peer %s: status %d, key served %v; want allowed=%v", peer, rec.Code, gotKey, allowed)
		}
	}
}
