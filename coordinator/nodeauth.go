package coordinator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"

	"github.com/swarmcast/swarmcast/wire"
)

// Node requests (register, heartbeat, leave, publish) are signed by the
// node they name (wire.NodeSigner). The coordinator checks, in order: the
// signature headers are there and well-formed, the timestamp is within
// wire.NodeRequestMaxSkew of its clock, the signature verifies over method,
// path and body under the key the node id is, it has not accepted this
// signature before, and the node the body names is the signer. Anything
// else is a 401 (or a 403 for a signer acting for another node) and
// changes nothing. Registration is therefore proof of key possession.

// replayCacheLimit bounds the signatures remembered inside the freshness
// window: 2^18 entries of ~100 bytes, about 26 MiB at worst. Entries expire
// when their timestamp goes stale, so the bound only binds above ~4,000
// accepted node requests per second; then requests get 503 until entries
// expire, never a replay accepted.
const replayCacheLimit = 1 << 18

// maxConcurrentPublishes bounds publish bodies read at once: with
// maxPublishBody each, at most 2 × 32 MiB of request bodies are buffered,
// and only from allowed origins (checked before any body is read).
const maxConcurrentPublishes = 2

// replayCache remembers accepted node-request signatures until their
// timestamps are stale, so none is accepted twice.
type replayCache struct {
	mu   sync.Mutex
	seen map[[64]byte]int64 // signature → unix ms after which its request is stale anyway
}

// errReplayCacheFull is a 503: too many signed requests within the window.
var errReplayCacheFull = wire.Errorf(http.StatusServiceUnavailable, "too many signed node requests within %s; retry in a few seconds", wire.NodeRequestMaxSkew)

// admit records sig (signed at signedMS) at nowMS, or refuses a replay.
func (rc *replayCache) admit(sig []byte, signedMS, nowMS int64) error {
	var key [64]byte
	copy(key[:], sig)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = make(map[[64]byte]int64)
	}
	if _, dup := rc.seen[key]; dup {
		return wire.Errorf(http.StatusUnauthorized, "replayed node request: this signature was already accepted; sign every request afresh (wire.NodeSigner)")
	}
	if len(rc.seen) >= replayCacheLimit {
		for k, staleAt := range rc.seen {
			if staleAt < nowMS {
				delete(rc.seen, k)
			}
		}
		if len(rc.seen) >= replayCacheLimit {
			return errReplayCacheFull
		}
	}
	rc.seen[key] = signedMS + wire.NodeRequestMaxSkew.Milliseconds()
	return nil
}

// nodeHeaders parses a node request's signature headers and checks their
// freshness, before any body is read. On failure it has answered 401.
func (c *Coordinator) nodeHeaders(w http.ResponseWriter, r *http.Request, what string) (wire.NodeRequestAuth, bool) {
	auth, err := wire.ParseNodeRequestAuth(r.Header)
	if err == nil {
		err = auth.CheckFresh(c.cfg.Now())
	}
	if err != nil {
		c.metrics.nodeAuthFailures.WithLabelValues(what).Inc()
		wire.WriteError(w, http.StatusUnauthorized, "%s: %v", what, err)
		return auth, false
	}
	return auth, true
}

// nodeBody reads a node request's body (at most limit bytes), verifies the
// signature over it, refuses a replay and decodes the JSON into v. On
// failure it has answered (401, 413, 400 or 503).
func (c *Coordinator) nodeBody(w http.ResponseWriter, r *http.Request, what string, auth wire.NodeRequestAuth, limit int64, v any) bool {
	body, ok := c.nodeRawBody(w, r, what, auth, limit)
	if !ok {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return wire.DecodeJSONLimit(w, r, v, limit)
}

// nodeRawBody is nodeBody without the decoding: the verified body bytes.
func (c *Coordinator) nodeRawBody(w http.ResponseWriter, r *http.Request, what string, auth wire.NodeRequestAuth, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wire.WriteError(w, http.StatusRequestEntityTooLarge, "%s: request body over %d bytes", what, limit)
		} else {
			wire.WriteError(w, http.StatusBadRequest, "%s: reading the body: %v", what, err)
		}
		return nil, false
	}
	err = auth.Verify(r.Method, r.URL.Path, body)
	if err == nil {
		err = c.replays.admit(auth.Signature, auth.UnixMS, c.cfg.Now().UnixMilli())
	}
	if err != nil {
		c.metrics.nodeAuthFailures.WithLabelValues(what).Inc()
		status, msg := wire.StatusOf(err)
		if status == http.StatusInternalServerError {
			status = http.StatusUnauthorized
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		wire.WriteError(w, status, "%s: %s", what, msg)
		return nil, false
	}
	return body, true
}

// signerIs answers 403 unless the body's node is the signer.
func signerIs(w http.ResponseWriter, what string, auth wire.NodeRequestAuth, field string, named wire.NodeID) bool {
	if named != auth.Node {
		wire.WriteError(w, http.StatusForbidden, "%s: %s is %q but the request is signed by node %s; a node may only act for itself", what, field, named, auth.Node)
		return false
	}
	return true
}

// checkAdvertisedAddr accepts a bare base URL (http or https, an IP host
// and an optional port; no path, query, fragment or userinfo) whose host
// is from, the address the registration came from, and returns it in
// canonical form. The coordinator fetches registered addresses (audits)
// and hands them to players, so without this any client could point both
// at any host and path (a blind SSRF); with it a node can only name the
// address it connects from. A node behind a reverse proxy or NAT
// advertises the public IP the coordinator sees; host names are refused
// (their resolution could change after the check).
func checkAdvertisedAddr(addr string, from netip.Addr) (string, error) {
	hint := "want the node's base URL, like http://203.0.113.7:7001 (scheme, the IP the node reaches the coordinator from, port; nothing else)"
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return "", fmt.Errorf("addr %q: %v; %s", addr, err, hint)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("addr %q: scheme must be http or https; %s", addr, hint)
	case u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "":
		return "", fmt.Errorf("addr %q: has a path, query, fragment or user info; %s", addr, hint)
	}
	host, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("addr %q: host %q is not an IP address; %s", addr, u.Hostname(), hint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("addr %q: port %q is not in 1..65535", addr, p)
		}
	}
	if host.Unmap() != from.Unmap() {
		return "", fmt.Errorf("addr %q: host %s is not the address this registration came from (%s); a node may only advertise its own address", addr, host, from)
	}
	return u.Scheme + "://" + u.Host, nil
}

// checkRTMPAddr accepts an origin's RTMP listener, rtmp://IP:PORT with the
// IP the registration came from (as checkAdvertisedAddr, for the same
// reason: the coordinator hands it to broadcasters), in canonical form.
func checkRTMPAddr(addr string, from netip.Addr) (string, error) {
	hint := "want the origin's RTMP listener, like rtmp://203.0.113.7:1935 (the IP it reaches the coordinator from, a port; nothing else)"
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return "", fmt.Errorf("rtmp_addr %q: %v; %s", addr, err, hint)
	case u.Scheme != "rtmp" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("rtmp_addr %q: %s", addr, hint)
	}
	host, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("rtmp_addr %q: host %q is not an IP address; %s", addr, u.Hostname(), hint)
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("rtmp_addr %q: port %q is not in 1..65535; %s", addr, u.Port(), hint)
	}
	if host.Unmap() != from.Unmap() {
		return "", fmt.Errorf("rtmp_addr %q: host %s is not the address this registration came from (%s)", addr, host, from)
	}
	return "rtmp://" + u.Host, nil
}

// remoteIP is the IP address r came from.
func remoteIP(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cannot tell the address this request came from (%q)", r.RemoteAddr)
	}
	return ap.Addr(), nil
}
