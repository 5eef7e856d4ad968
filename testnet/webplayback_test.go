package testnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/samplestore"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/wire"
)

// webPassword passes the coordinator's password policy.
const webPassword = "staple-battery-horse"

// signedIn signs up and logs in a new account.
func signedIn(t *testing.T, n *Network, user string) string {
	t.Helper()
	c := wire.NewCoordinatorClient(n.CoordinatorURL, nil)
	ctx := context.Background()
	cred := wire.Credentials{Username: user, Password: webPassword}
	if _, err := c.Signup(ctx, cred); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Token
}

// fetchAs GETs url with the session cookie (if any) and extra headers.
func fetchAs(t *testing.T, url, session string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: wire.SessionCookieName, Value: session})
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func ffprobeDuration(t *testing.T, input ...string) float64 {
	t.Helper()
	args := append([]string{"-v", "error"}, input...)
	args = append(args, "-show_entries", "format=duration", "-of", "csv=p=0")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q", out)
	}
	return d
}

// TestWebPlayback is the video page's two paths with real clients. A
// running player announces its gateway and its account lists it; ffprobe
// reads the gateway's master playlist. The coordinator's fallback plays in
// ffmpeg with the session cookie (frames equal to the packaged rendition)
// and counts the relayed bytes as origin egress; its segments honour
// ranges; it serves nothing, and counts nothing, to an anonymous browser or
// to an account not entitled to the video.
func TestWebPlayback(t *testing.T) {
	testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	testenv.RequireTool(t, "ffprobe", "ffmpeg")
	n := startNet(t, Config{Edges: 2, Videos: 1, Seed: 10, GrantPoints: 100, AuditInterval: -1})
	video := n.Videos[0]
	ctx := context.Background()
	m, err := n.Origins[0].Store.Manifest(video)
	if err != nil {
		t.Fatal(err)
	}
	top := len(m.Renditions) - 1

	// The player's gateway, announced and listed.
	node := n.AliveEdges()[0]
	gw, err := httpserve.Listen(ctx, "127.0.0.1:0", "", node.Viewer.Handler(), n.cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if err := node.Viewer.AnnounceGateway(gw.Advertise); err != nil {
		t.Fatal(err)
	}
	var players wire.PlayersResponse
	if !waitUntil(10*time.Second, func() bool {
		players, err = node.Account.Players(ctx)
		return err == nil && len(players.Players) == 1
	}) || players.Players[0].Gateway != gw.Advertise || players.Players[0].ViewerID != node.Identity.ID {
		t.Fatalf("the account's players: %+v (%v), want its player at %s", players, err, gw.Advertise)
	}
	other := n.AliveEdges()[1]
	if theirs, err := other.Account.Players(ctx); err != nil || len(theirs.Players) != 0 {
		t.Fatalf("another account sees players %+v (%v)", theirs, err)
	}
	if d := ffprobeDuration(t, gw.Advertise+"/videos/"+video.String()+"/"+content.MasterPlaylistName); d < 28 || d > 32 {
		t.Fatalf("ffprobe through the gateway: %.2f s, want the 30 s sample", d)
	}

	// The fallback, refused to outsiders, with nothing relayed.
	watch := wire.WatchMasterURL(n.CoordinatorURL, video)
	base := strings.TrimSuffix(watch, content.MasterPlaylistName)
	egress := n.Coordinator.Playback().OriginEgressBytes
	if err := n.Admin.SetPrice(ctx, video, 500); err != nil {
		t.Fatal(err)
	}
	poor := signedIn(t, n, "poor-viewer")
	key, _ := n.Origins[0].Store.ContentKey(video)
	for _, path := range []string{content.MasterPlaylistName, content.MediaPlaylistPath(top), content.SegmentPath(top, 0), content.KeyName} {
		for _, c := range []struct {
			who     string
			session string
			status  int
			phrase  string
		}{{"anonymous", "", 401, "authentication required"}, {"not entitled", poor, 403, "not entitled"}, {"bad cookie", "forged-session", 401, ""}} {
			resp, body := fetchAs(t, base+path, c.session)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.phrase) || bytes.Contains(body, key[:]) || bytes.Contains(body, []byte("#EXT")) {
				t.Errorf("%s GET %s: %d %q, want %d mentioning %q and no content", c.who, path, resp.StatusCode, body, c.status, c.phrase)
			}
		}
	}
	if got := egress(); got != 0 {
		t.Fatalf("refused requests relayed %d bytes from origins", got)
	}

	// An entitled account plays it in ffmpeg with its session cookie.
	if err := n.Admin.SetPrice(ctx, video, 0); err != nil {
		t.Fatal(err)
	}
	viewer := signedIn(t, n, "web-viewer")
	cookie := fmt.Sprintf("Cookie: %s=%s\r\n", wire.SessionCookieName, viewer)
	if d := ffprobeDuration(t, "-headers", cookie, watch); d < 28 || d > 32 {
		t.Fatalf("ffprobe through the fallback: %.2f s, want the 30 s sample", d)
	}
	got := framemd5(t, "-headers", cookie, "-i", base+content.MediaPlaylistPath(top))
	want := framemd5(t, "-i", filepath.Join(samplestore.HLSDir(t), m.Renditions[top].Name, "index.m3u8"))
	if got != want {
		t.Fatalf("framemd5 through the fallback differs from the packaged rendition (%d vs %d bytes)", len(got), len(want))
	}
	var rendition int64
	for _, s := range m.Renditions[top].Segments {
		rendition += int64(s.Size)
	}
	// The relay counts a write once it returns, maybe just after ffmpeg
	// read it: wait for the count, bounded.
	if !waitUntil(5*time.Second, func() bool { return egress() >= rendition }) {
		e := egress()
		t.Fatalf("fallback origin egress %d bytes after ffmpeg read a %d-byte rendition", e, rendition)
	}

	// Its segments are the origin's ciphertext and honour byte ranges.
	seg := base + content.SegmentPath(top, 1)
	start := egress()
	resp, full := fetchAs(t, seg, viewer)
	// The handler counts a write after the browser may have read it.
	if !waitUntil(5*time.Second, func() bool { return egress()-start == int64(len(full)) }) {
		t.Fatalf("a %d-byte segment counted %d bytes of egress", len(full), egress()-start)
	}
	ct, _ := n.Origins[0].Store.SegmentCiphertext(video, top, 1)
	if resp.StatusCode != 200 || !bytes.Equal(full, ct) {
		t.Fatalf("fallback segment: %d, %d bytes, equal to the origin's ciphertext %v", resp.StatusCode, len(full), bytes.Equal(full, ct))
	}
	before := egress()
	resp, part := fetchAs(t, seg, viewer, "Range", "bytes=376-1503")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, full[376:1504]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 376-1503/%d", len(full)) {
		t.Errorf("range: %d, Content-Range %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(part))
	}
	if !waitUntil(5*time.Second, func() bool { return egress()-before == 1128 }) {
		d := egress() - before
		t.Errorf("a 1128-byte range counted %d bytes of egress", d)
	}
	resp, multi := fetchAs(t, seg, viewer, "Range", "bytes=0-9,100-109")
	if resp.StatusCode != 200 || !bytes.Equal(multi, full) {
		t.Errorf("multi-range: %d, %d bytes; want the whole segment", resp.StatusCode, len(multi))
	}
	resp, _ = fetchAs(t, seg, viewer, "Range", fmt.Sprintf("bytes=%d-", len(full)))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d, want 416", resp.StatusCode)
	}
	resp, body := fetchAs(t, base+content.KeyName, viewer)
	if resp.StatusCode != 200 || !bytes.Equal(body, key[:]) {
		t.Errorf("key to the entitled session: %d %x", resp.StatusCode, body)
	}
	resp, body = fetchAs(t, base+content.MasterPlaylistName, viewer)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "/") || strings.Contains(l, `URI="/`) {
			t.Errorf("fallback master playlist carries a root-relative URI: %q", l)
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), "AVERAGE-BANDWIDTH=") {
		t.Errorf("fallback master: %d %s", resp.StatusCode, body)
	}
}
