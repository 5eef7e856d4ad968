package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// page GETs a web page with a session cookie (empty: anonymous), without
// following redirects.
func (h *storeHarness) page(path, session string) reply {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: wire.SessionCookieName, Value: session})
	}
	client := *h.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return reply{resp.StatusCode, []byte(b.String()), resp.Header}
}

// TestAdminPagesRefuseOthers walks every admin page the web app registers:
// anonymous visitors are sent to log in, other accounts get 403, and the
// admin gets the page.
func TestAdminPagesRefuseOthers(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	edge := h.edge("eu")
	alice := h.user("alice")
	n := 0
	for _, rt := range h.c.Web().RegisteredRoutes() {
		if !rt.Admin || rt.Method != "GET" {
			continue
		}
		n++
		path := strings.Replace(rt.Pattern, "{id}", h.video(0).String(), 1)
		if path == wire.PageAdminFlows {
			path += "?edge=" + string(edge)
		}
		if r := h.page(path, ""); r.status != http.StatusSeeOther && r.status != http.StatusFound {
			t.Fatalf("anonymous %s: %d, want a redirect to log in", path, r.status)
		}
		if r := h.page(path, alice); r.status != http.StatusForbidden {
			t.Fatalf("user %s: %d, want 403", path, r.status)
		}
		if r := h.page(path, h.admin); r.status != http.StatusOK {
			t.Fatalf("admin %s: %d: %s", path, r.status, r.body)
		}
	}
	if n < 5 {
		t.Fatalf("only %d admin pages registered", n)
	}
}

// TestAdminPagesRenderHostileNamesInert: a node's region and a video's
// title carrying markup appear escaped in the admin tables, never as tags.
func TestAdminPagesRenderHostileNamesInert(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	id := newTestNode().ID
	if _, err := h.client.Register(context.Background(), wire.RegisterRequest{NodeID: id, Role: wire.RoleEdge, Addr: "http://127.0.0.1:1", Region: evil}); err != nil {
		t.Fatal(err)
	}
	m := h.fix.mustManifest(t, 0)
	hostile := *m
	hostile.Title = evil
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	hostile.Sign(key)
	if err := h.client.Publish(context.Background(), wire.PublishRequest{OriginID: h.origin.ID, Videos: []wire.PublishedVideo{{Manifest: hostile.Encode()}}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{wire.PageAdmin, wire.PageAdminNodes, strings.Replace(wire.PageAdminVideo, "{id}", content.VideoID(hostile.ID()).String(), 1)} {
		body := string(h.want(h.page(path, h.admin), 200).body)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Fatalf("%s renders markup from a node or a title:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert") {
			t.Fatalf("%s does not show the escaped name at all", path)
		}
	}
}

// TestAdminDashboardCarriesOverviewAndFlowLinks: the overview page embeds
// the snapshot and the event stream's URL for admin.js, loads only
// external scripts, and links each edge and account to its flow view.
func TestAdminDashboardCarriesOverviewAndFlowLinks(t *testing.T) {
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", "", nil)
	edge, _ := h.boundEdge("edgeowner", "", set(h.video(0), 0, 0, 1))
	body := string(h.want(h.page(wire.PageAdmin, h.admin), 200).body)
	for _, want := range []string{`id="load-chart"`, `data-overview="{`, `data-events="` + wire.PathAdminEvents + `"`, "admin.js", "?edge=" + string(edge.ID), "?account="} {
		if !strings.Contains(body, want) {
			t.Fatalf("admin page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("admin page has an inline script")
	}
	flows := string(h.want(h.page(wire.PageAdminFlows+"?edge="+string(edge.ID), h.admin), 200).body)
	if !strings.Contains(flows, "No settled flows") {
		t.Fatalf("flows page for an edge with no settlement: %s", flows)
	}
	if form := string(h.want(h.page(wire.PageAdminFlows, h.admin), 200).body); !strings.Contains(form, `name="edge"`) {
		t.Fatal("the flows page without a query does not ask whose flows")
	}
	h.want(h.page(wire.PageAdminFlows+"?edge="+string(edge.ID)+"&viewer="+string(edge.ID), h.admin), 400)
	h.want(h.page(wire.PageAdminFlows+"?edge=nothex", h.admin), 400)

	// Live channels get a table once there is one (names escaped).
	if strings.Contains(body, `id="live-channels"`) {
		t.Fatal("a live channels table without channels")
	}
	root, err := h.store.AccountByName(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	created, err := h.c.Live().CreateChannel(context.Background(), root.ID, wire.CreateChannelRequest{Name: "Evening news"})
	if err != nil {
		t.Fatal(err)
	}
	body = string(h.want(h.page(wire.PageAdmin, h.admin), 200).body)
	for _, want := range []string{`id="live-channels"`, "Evening news", string(created.Channel.ID), wire.ChannelIdle} {
		if !strings.Contains(body, want) {
			t.Fatalf("admin page lacks %q", want)
		}
	}
}
