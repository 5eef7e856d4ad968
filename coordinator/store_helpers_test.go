package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/pgtest"

	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// eachBackend runs fn against a fresh SQLite file and, when
// SWARMCAST_TEST_POSTGRES is set, a fresh PostgreSQL schema.
func eachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "coordinator.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, freshPostgres(t)) })
}

// freshPostgres creates an empty schema for one test (dropped at cleanup)
// and returns a DSN whose search_path points at it.
func freshPostgres(tb testing.TB) string { return pgtest.FreshSchema(tb, "tc") }

// storeHarness is a store-backed coordinator behind a loopback server.
type storeHarness struct {
	*harness
	store *coordinatordb.DB
	id    identity.Identity
	dsn   string
	admin string // admin session token
}

func openStore(tb testing.TB, dsn string, key ed25519.PublicKey) *coordinatordb.DB {
	tb.Helper()
	var keys []ed25519.PublicKey
	if key != nil {
		keys = append(keys, key)
	}
	db, err := coordinatordb.OpenConfig(context.Background(), dsn, coordinatordb.Config{
		CoordinatorKeys: keys,
		PointsPerMB:     10,
		Password:        coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1},
		Reputation:      coordinatordb.ReputationConfig{InitialAlpha: 1000},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newStoreHarness starts a coordinator on a store at dsn, with an admin
// "root", an origin at originAddr (a placeholder if empty) and the sample
// videos published (video 0 priced by the admin later; all start free).
func newStoreHarness(t testing.TB, dsn, originAddr string, tweak func(*Config)) *storeHarness {
	t.Helper()
	id := newTestNode()
	db := openStore(t, dsn, id.Key.Public().(ed25519.PublicKey))
	clock := newFakeClock()
	if _, err := accounting.BootstrapAdmin(context.Background(), db, "root", rootPassword, clock.Now()); err != nil {
		t.Fatal(err)
	}
	// Every harness request comes from 127.0.0.1 on a fake clock that
	// refills nothing, so the per-client login bucket is deep here; the
	// throttle's own tests set it back (tweak).
	cfg := Config{Seed: 1, Now: clock.Now, Log: quietLog(), Store: db, Accounting: accounting.Config{Identity: id, AuditInterval: -1, LoginThrottle: accounting.LoginThrottle{ClientBurst: 1 << 20}}}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	if originAddr == "" {
		originAddr = "http://127.0.0.1:9"
	}
	h := &harness{t: t, c: c, clock: clock, srv: srv, client: wire.NewCoordinatorClient(srv.URL, signingClient(srv.Client(), clock.Now)), origin: newTestNode(), fix: sampleStore(t)}
	ctx := context.Background()
	if err := h.c.AllowOrigin(ctx, h.origin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: h.origin.ID, Role: wire.RoleOrigin, Addr: originAddr}); err != nil {
		t.Fatal(err)
	}
	var videos []wire.PublishedVideo
	for _, vid := range h.fix.ids {
		videos = append(videos, h.fix.published(t, vid))
	}
	if err := h.client.Publish(ctx, wire.PublishRequest{OriginID: h.origin.ID, Videos: videos}); err != nil {
		t.Fatal(err)
	}
	sh := &storeHarness{harness: h, store: db, id: id, dsn: dsn}
	sh.admin = sh.login("root", rootPassword).Token
	return sh
}

// reply is an HTTP answer.
type reply struct {
	status int
	body   []byte
	header http.Header
}

// do sends method path with an optional JSON body (raw []byte is sent as
// is) and bearer token; extra headers and cookies via mod.
func (h *storeHarness) do(method, path, token string, body any, mod ...func(*http.Request)) reply {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, m := range mod {
		m(req)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b, resp.Header}
}

// want fails unless r has status and (for errors) mentions every phrase.
func (h *storeHarness) want(r reply, status int, phrases ...string) reply {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("want %d, got %d: %s", status, r.status, r.body)
	}
	for _, p := range phrases {
		if !strings.Contains(strings.ToLower(string(r.body)), strings.ToLower(p)) {
			h.t.Fatalf("answer %s does not mention %q", r.body, p)
		}
	}
	return r
}

func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

func (h *storeHarness) signup(user, pass string) wire.AccountInfo {
	h.t.Helper()
	return decode[wire.AccountInfo](h.t, h.want(h.do("POST", wire.PathSignup, "", wire.Credentials{Username: user, Password: pass}), 200))
}

func (h *storeHarness) login(user, pass string) wire.LoginResponse {
	h.t.Helper()
	return decode[wire.LoginResponse](h.t, h.want(h.do("POST", wire.PathLogin, "", wire.Credentials{Username: user, Password: pass}), 200))
}

// user signs up and logs in a new account.
// rootPassword is the harness admin's password.
const rootPassword = "operator-secret-9"

// testPassword is every h.user account's password: it passes the
// password policy (long enough, not common, not containing the username).
const testPassword = "staple-battery-horse"

func (h *storeHarness) user(name string) string {
	h.t.Helper()
	h.signup(name, testPassword)
	return h.login(name, testPassword).Token
}

// session is a fresh login session of an h.user account (edge API tokens
// may only settle, so owners read their edge's status with this).
func (h *storeHarness) session(name string) string {
	h.t.Helper()
	return h.login(name, testPassword).Token
}

func (h *storeHarness) grant(user string, points int64) {
	h.t.Helper()
	h.want(h.do("POST", wire.PathGrant, h.admin, wire.GrantRequest{Username: user, Points: points}), 200)
}

func (h *storeHarness) setPrice(video content.VideoID, price int64) {
	h.t.Helper()
	h.want(h.do("POST", videoPath(wire.PathSetPrice, video), h.admin, wire.SetPriceRequest{Price: price}), 200)
}

// videoPath fills a route's {id} with video's hex.
func videoPath(pattern string, video content.VideoID) string {
	return textVideoPath(pattern, video.String())
}

// textVideoPath fills a route's {id} with any text, for ids that are not hex.
func textVideoPath(pattern, id string) string { return strings.Replace(pattern, "{id}", id, 1) }

// boundEdge registers an edge with inventory, binds it to a new account
// and returns its identity and API token.
func (h *storeHarness) boundEdge(owner string, addr string, inventory ...wire.ShardSet) (identity.Identity, string) {
	h.t.Helper()
	e := newTestNode()
	ctx := context.Background()
	if addr == "" {
		addr = "http://127.0.0.1:1"
	}
	if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: e.ID, Role: wire.RoleEdge, Addr: addr}); err != nil {
		h.t.Fatal(err)
	}
	h.heartbeat(wire.HeartbeatRequest{NodeID: e.ID, Full: true, Added: inventory})
	tok := h.user(owner)
	resp := decode[wire.BindEdgeResponse](h.t, h.want(h.do("POST", wire.PathBindEdge, tok, h.consent(tok, e.ID)), 200))
	return e, resp.APIToken
}

// metric returns the value of one sample line of the coordinator's /metrics.
func (h *storeHarness) metric(line string) string {
	h.t.Helper()
	r := h.do("GET", wire.PathMetrics, "", nil)
	for _, l := range strings.Split(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(l, line+" "); ok {
			return rest
		}
	}
	return ""
}
