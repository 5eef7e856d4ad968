package accounting

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoginThrottle is how the coordinator slows password guessing without
// letting anyone lock a correct password out for everyone:
//
//   - Per client: every login and sign-up attempt takes a token from its
//     source address's bucket (IPv4 address, IPv6 /64), ClientBurst deep,
//     refilled one per ClientRefill. An attacker guessing from one place
//     gets ClientBurst tries and then one per ClientRefill; everyone else,
//     the account's owner included, is untouched.
//   - Per username, against guessing from many addresses: once wrong
//     passwords for one username have come from NameFailures different
//     client addresses within NameWindow, the username is guarded until
//     the oldest of them leaves the window (one address alone never guards
//     a username: its bucket already limits it). A
//     guarded username refuses attempts (429) only from clients without a
//     device cookie for it, which a browser gets by logging in to that
//     account successfully (OWASP's "device cookies"): the owner's own
//     browser keeps logging in during an attack. Unknown usernames are
//     guarded exactly like real ones, so a 429 says nothing about whether
//     an account exists.
//
// Both live in memory, bounded by MaxClients and MaxUsernames (the least
// recently seen entry is forgotten first), so a restart forgets them and
// nothing an attacker does survives one. Each coordinator throttles on its
// own, so N coordinators allow N times the rates. Behind a reverse proxy
// every client has the proxy's address: give the proxy its own limits.
type LoginThrottle struct {
	ClientBurst  int           // default 10 attempts
	ClientRefill time.Duration // default 6 s (10 a minute)
	NameFailures int           // distinct failing clients that guard a username; default 10
	NameWindow   time.Duration // default 15 min
	MaxClients   int           // default 65536
	MaxUsernames int           // default 65536
	DeviceTTL    time.Duration // how long a device cookie vouches; default 180 days
}

func (p LoginThrottle) withDefaults() LoginThrottle {
	if p.ClientBurst <= 0 {
		p.ClientBurst = 10
	}
	if p.ClientRefill <= 0 {
		p.ClientRefill = 6 * time.Second
	}
	if p.NameFailures <= 0 {
		p.NameFailures = 10
	}
	if p.NameWindow <= 0 {
		p.NameWindow = 15 * time.Minute
	}
	if p.MaxClients <= 0 {
		p.MaxClients = 1 << 16
	}
	if p.MaxUsernames <= 0 {
		p.MaxUsernames = 1 << 16
	}
	if p.DeviceTTL <= 0 {
		p.DeviceTTL = 180 * 24 * time.Hour
	}
	return p
}

// DeviceCookieName is the cookie that vouches, to the login throttle, for
// a browser that has logged in to an account before.
const DeviceCookieName = "swarmcast_device"

// throttledError is a login refused before any password work; it answers
// 429 with Retry-After.
type throttledError struct {
	why        string
	retryAfter time.Duration
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("%s; try again in %s", e.why, e.retryAfter.Round(time.Second))
}

// loginGuard holds the throttle's state. Its methods take the time they
// act at and do no I/O.
type loginGuard struct {
	p         LoginThrottle
	deviceKey []byte

	mu      sync.Mutex
	clients lru[string, *tokenBucket]
	names   lru[string, *failureWindow]
}

func newLoginGuard(p LoginThrottle, deviceKey []byte) *loginGuard {
	p = p.withDefaults()
	return &loginGuard{p: p, deviceKey: deviceKey, clients: newLRU[string, *tokenBucket](p.MaxClients), names: newLRU[string, *failureWindow](p.MaxUsernames)}
}

// attempt takes a token for one attempt by client at now, or says how long
// to wait.
func (g *loginGuard) attempt(client string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.clients.get(client)
	if !ok {
		b = &tokenBucket{tokens: float64(g.p.ClientBurst), at: now}
		g.clients.put(client, b)
	}
	if wait := b.take(now, g.p.ClientBurst, g.p.ClientRefill); wait > 0 {
		return &throttledError{why: "too many login attempts from your address", retryAfter: wait}
	}
	return nil
}

// guarded reports whether username refuses clients without its device
// cookie at now, and for how long.
func (g *loginGuard) guarded(username string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.names.get(username)
	if !ok {
		return nil
	}
	if wait := w.guardedFor(now, g.p.NameFailures, g.p.NameWindow); wait > 0 {
		return &throttledError{why: "too many failed logins for this username from many addresses; log in from a browser that has logged in to it before, or wait", retryAfter: wait}
	}
	return nil
}

// failed records a wrong password for username from client at now.
func (g *loginGuard) failed(username, client string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.names.get(username)
	if !ok {
		w = &failureWindow{}
		g.names.put(username, w)
	}
	w.add(now, client, g.p.NameFailures)
}

// deviceToken is the device cookie's value for username, valid until
// expires: "<unix seconds>.<hex HMAC-SHA256(deviceKey, username, expiry)>".
func (g *loginGuard) deviceToken(username string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + g.deviceMAC(username, exp)
}

func (g *loginGuard) deviceMAC(username, exp string) string {
	m := hmac.New(sha256.New, g.deviceKey)
	m.Write([]byte("swarmcast device v1\x00" + username + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// trustedDevice reports whether token vouches for username at now.
func (g *loginGuard) trustedDevice(token, username string, now time.Time) bool {
	exp, mac, ok := strings.Cut(token, ".")
	if !ok || len(token) > 128 {
		return false
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= secs {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(g.deviceMAC(username, exp)))
}

// clientKey is the throttle's name for a request's source: the IPv4
// address, or the IPv6 /64 (one host usually holds a whole /64, so keying
// on full IPv6 addresses would hand out billions of buckets).
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// tokenBucket is one client's attempts: tokens refill one per refill up to
// burst.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

// take spends one token at now; if none is left it spends nothing and
// returns how long until one is.
func (b *tokenBucket) take(now time.Time, burst int, refill time.Duration) time.Duration {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(elapsed)/float64(refill))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(refill))
}

// failureWindow keeps, for a username, the latest failure of each of the
// last n distinct clients that failed, oldest first (at most n entries).
type failureWindow struct{ last []clientFailure }

type clientFailure struct {
	client string
	at     time.Time
}

func (w *failureWindow) add(now time.Time, client string, n int) {
	w.last = slices.DeleteFunc(w.last, func(f clientFailure) bool { return f.client == client })
	w.last = append(w.last, clientFailure{client, now})
	if len(w.last) > n {
		w.last = w.last[len(w.last)-n:]
	}
}

// guardedFor is how long the username stays guarded at now: until the
// oldest of its n distinct clients' failures is window old (0 if fewer
// than n clients failed).
func (w *failureWindow) guardedFor(now time.Time, n int, window time.Duration) time.Duration {
	if len(w.last) < n {
		return 0
	}
	return max(0, w.last[0].at.Add(window).Sub(now))
}

// lru is a map bounded to max entries that forgets the least recently
// used one first.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // of lruEntry, most recent at the front
	index map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) lru[K, V] {
	return lru[K, V]{max: max, order: list.New(), index: make(map[K]*list.Element)}
}

func (l *lru[K, V]) get(k K) (V, bool) {
	el, ok := l.index[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(el)
	return el.Value.(lruEntry[K, V]).val, true
}

func (l *lru[K, V]) put(k K, v V) {
	if el, ok := l.index[k]; ok {
		el.Value = lruEntry[K, V]{k, v}
		l.order.MoveToFront(el)
		return
	}
	l.index[k] = l.order.PushFront(lruEntry[K, V]{k, v})
	for l.order.Len() > l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.index, oldest.Value.(lruEntry[K, V]).key)
	}
}

func (l *lru[K, V]) len() int { return l.order.Len() }
