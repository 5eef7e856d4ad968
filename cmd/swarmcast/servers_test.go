package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/testnet"
	"github.com/swarmcast/swarmcast/wire"
)

// TestCommandServersServeHealthAndMetrics runs `swarmcast edge` (with its
// built-in player) and `swarmcast play` against a loopback network and
// checks that every server they start — the edge, its player's gateway and
// the standalone player's gateway — serves /healthz and /metrics, and that
// the built-in player's swarmcast_viewer_* series are on the edge's
// registry. (testnet's TestEveryServerServesHealthAndMetrics covers the
// coordinator, origin and the demo's gateway.)
func TestCommandServersServeHealthAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Videos: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	video := n.Videos[0]
	// Keys go to signed-in accounts only: one for the edge's player, one
	// for the standalone player.
	for _, user := range []string{"alice", "bob"} {
		if _, err := wire.NewCoordinatorClient(n.CoordinatorURL, nil).Signup(ctx, wire.Credentials{Username: user, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
	}

	edgeOut := runCommand(t, "edge", "--dir", t.TempDir(), "--coordinator", n.CoordinatorURL,
		"--listen", "127.0.0.1:0", "--player-listen", "127.0.0.1:0", "--user", "alice", "--password", testPassword)
	edgeURL := edgeOut.await(t, regexp.MustCompile(`serving at (http://\S+)`))
	hostedURL := edgeOut.await(t, regexp.MustCompile(`catalogue: (http://\S+)/ `))
	// The play: line is a master playlist any HLS player opens as is.
	playURL := edgeOut.await(t, regexp.MustCompile(`play: (http://\S+)`))
	if want := fmt.Sprintf("%s/videos/%s/master.m3u8", hostedURL, video); playURL != want {
		t.Fatalf("edge printed play: %s, want %s", playURL, want)
	}
	if code, body := get(t, playURL); code != http.StatusOK || !bytes.HasPrefix(body, []byte("#EXTM3U")) {
		t.Fatalf("GET %s: %d %.200s, want an HLS master playlist", playURL, code, body)
	}
	playOut := runCommand(t, "play", video.String(), "--coordinator", n.CoordinatorURL, "--listen", "127.0.0.1:0",
		"--user", "bob", "--password", testPassword)
	playerURL := playOut.await(t, regexp.MustCompile(`catalogue: (http://\S+)/`))

	// Both players told the coordinator where their gateways listen, for
	// the video page of their accounts.
	for user, gateway := range map[string]string{"alice": hostedURL, "bob": playerURL} {
		c := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
		login, err := c.Login(ctx, wire.Credentials{Username: user, Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		c.Token = login.Token
		var players wire.PlayersResponse
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if players, err = c.Players(ctx); err == nil && len(players.Players) > 0 {
				break
			}
		}
		if len(players.Players) != 1 || players.Players[0].Gateway != gateway {
			t.Errorf("%s's players: %+v (%v), want the gateway at %s", user, players, err, gateway)
		}
	}

	// One segment through the built-in player: the edge's own /metrics
	// must count it (and maybe the readahead's next few, hence "at least
	// one").
	segment := fmt.Sprintf("%s/videos/%s/0/0.ts", hostedURL, video)
	if code, body := get(t, segment); code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", segment, code, body)
	}

	for _, s := range []struct {
		name, url string
		// want and dontWant are patterns over the scrape's lines.
		want, dontWant []string
	}{
		{"edge", edgeURL, []string{`^swarmcast_edge_served_bytes_total `, `^swarmcast_viewer_segments_total [1-9]`}, nil},
		{"edge's player gateway", hostedURL, []string{`^swarmcast_edge_served_bytes_total `, `^swarmcast_viewer_segments_total [1-9]`}, nil},
		{"play's gateway", playerURL, []string{`^swarmcast_viewer_segments_total 0$`}, []string{`^swarmcast_edge_`}},
	} {
		t.Run(s.name, func(t *testing.T) {
			if code, body := get(t, s.url+wire.PathHealth); code != http.StatusOK || string(body) != "ok\n" {
				t.Errorf("GET %s: %d %q, want 200 \"ok\\n\"", wire.PathHealth, code, body)
			}
			code, scrape := get(t, s.url+wire.PathMetrics)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", wire.PathMetrics, code, scrape)
			}
			for _, w := range append([]string{`^go_goroutines `, `^process_start_time_seconds `}, s.want...) {
				if !regexp.MustCompile("(?m)" + w).Match(scrape) {
					t.Errorf("no line of the scrape matches %s", w)
				}
			}
			for _, w := range s.dontWant {
				if regexp.MustCompile("(?m)" + w).Match(scrape) {
					t.Errorf("a line of the scrape matches %s, which belongs to another node", w)
				}
			}
		})
	}
}

// testPassword passes the account password rules: long, not a common
// password, unrelated to the usernames.
const testPassword = "violet-harbour-lamp-7"

// commandOutput is a command's stdout, written by the command's goroutine
// and read by the test.
type commandOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // gets a token after each write, so await wakes on change
	exited  chan struct{} // closed when the command has returned err
	err     error
}

func (o *commandOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case o.written <- struct{}{}:
	default:
	}
	return o.buf.Write(p)
}

func (o *commandOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// await returns the first submatch of re once the output has a match.
func (o *commandOutput) await(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			return m[1]
		}
		select {
		case <-o.written:
		case <-o.exited:
			t.Fatalf("command ended (%v) before printing %s:\n%s", o.err, re, o)
		case <-timeout:
			t.Fatalf("no %s in the output after 30s:\n%s", re, o)
		}
	}
}

// runCommand runs swarmcast with args until the test ends (its logs are
// dropped; failures show its stdout).
func runCommand(t *testing.T, args ...string) *commandOutput {
	t.Helper()
	return runCommandWithStderr(t, io.Discard, args...)
}

// runCommandWithStderr is runCommand with the command's stderr (its logs
// and warnings) going to stderr.
func runCommandWithStderr(t *testing.T, stderr io.Writer, args ...string) *commandOutput {
	t.Helper()
	out := &commandOutput{written: make(chan struct{}, 1), exited: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(stderr)
	go func() { // owned by the test: the cleanup below waits for it
		defer close(out.exited)
		out.err = root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-out.exited
		if out.err != nil {
			t.Errorf("swarmcast %s: %v", strings.Join(args, " "), out.err)
		}
	})
	return out
}

func get(t *testing.T, url string) (int, []byte) {
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

// TestEdgeWithoutAccountWarnsOnce: an edge run without --user or --token
// serves but cannot settle, so it says so once, with what to run instead,
// and prints no play: URL its player could not unlock.
func TestEdgeWithoutAccountWarnsOnce(t *testing.T) {
	t.Setenv("SWARMCAST_EDGE_TOKEN", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Edges: 0, Videos: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	var stderr commandOutput
	stderr.written = make(chan struct{}, 1)
	out := runCommandWithStderr(t, &stderr, "edge", "--dir", t.TempDir(), "--coordinator", n.CoordinatorURL)
	out.await(t, regexp.MustCompile(`(serving at) http://`))
	warn := stderr.String()
	if c := strings.Count(warn, "warning:"); c != 1 {
		t.Fatalf("want exactly one warning, got %d:\n%s", c, warn)
	}
	for _, w := range []string{"earn no points", "--user NAME --password PASS", "swarmcast account signup --coordinator " + n.CoordinatorURL} {
		if !strings.Contains(warn, w) {
			t.Errorf("warning does not say %q:\n%s", w, warn)
		}
	}
	if m := regexp.MustCompile(`play: http`).FindString(out.String()); m != "" {
		t.Errorf("an edge without an account printed a play URL:\n%s", out)
	}
}

// TestPlayChecksTheVideoBeforePrintingAURL: a video the coordinator does
// not list is an error naming what it does list, and no URL is printed.
func TestPlayChecksTheVideoBeforePrintingAURL(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir(), Edges: 0, Videos: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	if _, err := wire.NewCoordinatorClient(n.CoordinatorURL, nil).Signup(ctx, wire.Credentials{Username: "bob", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "play", aVideoID, "--coordinator", n.CoordinatorURL, "--user", "bob", "--password", testPassword)
	if err == nil {
		t.Fatalf("play of an unknown video succeeded:\n%s", out)
	}
	for _, w := range []string{"is not in the catalogue", n.Videos[0].String(), "start an origin"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(out, "http://") {
		t.Errorf("play printed a URL for a video that cannot play:\n%s", out)
	}
	// A refused login says how a new user gets an account.
	out, err = run(t, "play", n.Videos[0].String(), "--coordinator", n.CoordinatorURL, "--user", "carol", "--password", testPassword)
	if err == nil || !strings.Contains(err.Error(), "swarmcast account signup --coordinator "+n.CoordinatorURL+" --user carol") {
		t.Errorf("play as an unknown user: %v, want a hint to sign up", err)
	}
	if strings.Contains(out, "http://") {
		t.Errorf("play printed a URL after a refused login:\n%s", out)
	}
}
