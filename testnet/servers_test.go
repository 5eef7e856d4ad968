package testnet

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

// server is one kind of HTTP server a role or the demo starts, and what
// its /metrics must show.
type server struct {
	name string
	url  string
	// prefixes are the swarmcast_* name prefixes its registry may hold.
	prefixes []string
	// want are families that must be in a scrape (every role's unlabelled
	// ones appear from the start).
	want []string
}

// TestEveryServerServesHealthAndMetrics starts each kind of server on
// 127.0.0.1 — coordinator, origin, edge, the edge's built-in player's
// gateway (as cmd_edge and the demo start it) and a standalone player's
// gateway (as cmd_play starts it) — and checks /healthz, /metrics, the
// Go and process collectors every node registry has, and that the hosted
// player's series reach its edge's registry.
func TestEveryServerServesHealthAndMetrics(t *testing.T) {
	n := startNet(t, Config{Edges: 1, Videos: 1, Seed: 5})
	host := n.Edges()[0]
	hosted := listen(t, n, host.Viewer.Handler())

	standalone, err := viewer.New(viewer.Config{
		Coordinator: n.CoordinatorURL, Identity: identity.New(), Registry: httpserve.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer standalone.Close()
	player := listen(t, n, standalone.Handler())

	// One segment through the hosted gateway: the edge's own /metrics must
	// count it, since its player registers on the edge's registry.
	segment := fmt.Sprintf("%s/videos/%s/0/0.ts", hosted.Advertise, n.Videos[0])
	if code, body := fetch(t, segment); code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", segment, code, body)
	}

	edgeAndPlayer := []string{"swarmcast_edge_", "swarmcast_viewer_"}
	edgeAndPlayerWant := []string{"swarmcast_edge_served_bytes_total", "swarmcast_edge_stored_shards", "swarmcast_viewer_segments_total", "swarmcast_viewer_startup_seconds"}
	servers := []server{
		{"coordinator", n.CoordinatorURL, []string{"swarmcast_coordinator_"}, []string{"swarmcast_coordinator_lookups_total", "swarmcast_coordinator_alive_edges"}},
		{"origin", n.Origins[0].Server.Advertise, []string{"swarmcast_origin_"}, []string{"swarmcast_origin_shards_served_total", "swarmcast_origin_parity_cache_bytes"}},
		{"edge", host.Server.Advertise, edgeAndPlayer, edgeAndPlayerWant},
		{"edge's player gateway", hosted.Advertise, edgeAndPlayer, edgeAndPlayerWant},
		{"standalone player gateway", player.Advertise, []string{"swarmcast_viewer_"}, []string{"swarmcast_viewer_segments_total", "swarmcast_viewer_startup_seconds"}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			if code, body := fetch(t, s.url+wire.PathHealth); code != http.StatusOK || string(body) != "ok\n" {
				t.Errorf("GET %s: %d %q, want 200 \"ok\\n\"", wire.PathHealth, code, body)
			}
			code, scrape := fetch(t, s.url+wire.PathMetrics)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", wire.PathMetrics, code, scrape)
			}
			families := scrapedFamilies(scrape)
			for _, name := range append([]string{"go_goroutines", "process_start_time_seconds"}, s.want...) {
				if _, ok := families[name]; !ok {
					t.Errorf("%s missing from the scrape", name)
				}
			}
			for name := range families {
				if strings.HasPrefix(name, "swarmcast_") && !hasAnyPrefix(name, s.prefixes) {
					t.Errorf("%s on this server's registry: only %v belong here", name, s.prefixes)
				}
			}
		})
	}

	for _, s := range []server{servers[2], servers[3]} {
		if got := sampleValue(t, fetchMetrics(t, s.url), "swarmcast_viewer_segments_total"); got < 1 {
			t.Errorf("%s: swarmcast_viewer_segments_total = %v after the hosted player rebuilt a segment, want ≥ 1", s.name, got)
		}
	}
	if got := sampleValue(t, fetchMetrics(t, player.Advertise), "swarmcast_viewer_segments_total"); got != 0 {
		t.Errorf("standalone player: swarmcast_viewer_segments_total = %v, want 0 (it played nothing; the hosted player's count must not leak into its registry)", got)
	}

	t.Run("promtool", func(t *testing.T) {
		promtool := testenv.RequireTool(t, "promtool", "prometheus")
		for _, s := range servers {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(fetchMetrics(t, s.url))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: promtool check metrics: %v\n%s", s.name, err, out)
			}
		}
	})
}

func listen(t *testing.T, n *Network, h http.Handler) *httpserve.Server {
	t.Helper()
	srv, err := httpserve.Listen(t.Context(), "127.0.0.1:0", "", h, n.cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); _ = srv.Wait() })
	return srv
}

func fetch(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func fetchMetrics(t *testing.T, base string) []byte {
	t.Helper()
	code, body := fetch(t, base+wire.PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("GET %s%s: %d %s", base, wire.PathMetrics, code, body)
	}
	return body
}

// scrapedFamilies is the set of family names a text exposition declares
// with "# TYPE name type".
func scrapedFamilies(scrape []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(scrape), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

// sampleValue is the value of the unlabelled sample name in a scrape.
func sampleValue(t *testing.T, scrape []byte, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(scrape), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in the scrape", name)
	return 0
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
