package coordinator

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/playback"
	"github.com/swarmcast/swarmcast/wire"
)

// watchPath is a fallback path of video under /watch/{id}/.
func watchPath(video content.VideoID, rel string) string {
	return strings.TrimSuffix(wire.WatchMasterURL("", video), content.MasterPlaylistName) + rel
}

// The fallback relays a segment from whichever alive origin answers it as
// the manifest says: an origin that has not got it, one that answers the
// wrong size and one that never answers are skipped (the last after the
// header timeout), and the browser gets the honest origin's bytes every
// time. With only bad origins it gets a 502 that says so, and nothing is
// counted as egress.
func TestFallbackSkipsBadOrigins(t *testing.T) {
	fix := sampleStore(t)
	honest, honestURL := startShardServer(t, fix, "honest")
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", honestURL, func(c *Config) {
		// Long enough for the honest origin on a loaded machine; each
		// request tries the hanging one first with probability 1/4.
		c.Playback = playback.Config{OriginHeaderTimeout: time.Second}
	})
	video := h.video(0)
	ctx := context.Background()
	var bad []*shardServer
	for _, mode := range []string{"drop", "oversize", "hang"} {
		s, u := startShardServer(t, fix, mode)
		o := newTestNode()
		if err := h.c.AllowOrigin(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Register(ctx, wire.RegisterRequest{NodeID: o.ID, Role: wire.RoleOrigin, Addr: u}); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, s)
	}
	alice := h.user("alice")
	// Six requests: the chance that the honest origin comes first in all
	// of them, trying no bad one, is 4⁻⁶.
	const asked = 6
	var want int64
	for s := range asked {
		r := h.do("GET", watchPath(video, content.SegmentPath(0, s)), alice, nil)
		ct, _ := fix.store.SegmentCiphertext(video, 0, s)
		if r.status != 200 || !bytes.Equal(r.body, ct) || r.header.Get("Content-Type") != content.SegmentContentType {
			t.Fatalf("segment %d: %d, %d bytes (want the %d of the ciphertext): %.200s", s, r.status, len(r.body), len(ct), r.body)
		}
		want += int64(len(ct))
	}
	honest.mu.Lock()
	honestAsked := honest.requests
	honest.mu.Unlock()
	tried := 0
	for _, s := range bad {
		s.mu.Lock()
		tried += s.requests
		s.mu.Unlock()
	}
	if tried == 0 || honestAsked != asked {
		t.Fatalf("bad origins asked %d times, honest %d times for %d segments: the order is not random or bad answers were relayed", tried, honestAsked, asked)
	}
	// The relay counts a write once it returns, which may be just after the
	// client has read the last bytes: wait for the count, bounded.
	got := h.c.Playback().OriginEgressBytes()
	for deadline := time.Now().Add(5 * time.Second); got < want && time.Now().Before(deadline); got = h.c.Playback().OriginEgressBytes() {
		time.Sleep(time.Millisecond)
	}
	if got != want {
		t.Fatalf("egress %d, want the %d bytes relayed", got, want)
	}
	if got := h.metric(`swarmcast_coordinator_fallback_origin_bytes_total`); got != strconv.FormatInt(want, 10) {
		t.Errorf("egress metric %q, want %d", got, want)
	}

	// Only bad origins left: the honest one leaves.
	if err := h.client.Leave(ctx, h.origin.ID); err != nil {
		t.Fatal(err)
	}
	r := h.want(h.do("GET", watchPath(video, content.SegmentPath(0, 0)), alice, nil), http.StatusBadGateway, "retry shortly")
	if !bytes.HasPrefix(r.body, []byte(`{"error"`)) {
		t.Fatalf("502 body %.100q: want only the JSON error", r.body)
	}
	if got := h.c.Playback().OriginEgressBytes(); got != want {
		t.Fatalf("egress moved to %d on a failed relay", got)
	}
}

// The fallback's playlists, key and segments answer only an entitled
// session: free videos unlock on the spot (like the key route), a priced
// one is 403 until unlocked, and an unknown video or resource is 404.
func TestFallbackEntitlement(t *testing.T) {
	fix := sampleStore(t)
	_, originURL := startShardServer(t, fix, "honest")
	h := newStoreHarness(t, "sqlite:"+t.TempDir()+"/c.db", originURL, nil)
	free, paid := h.video(0), h.video(1)
	h.setPrice(paid, 5)
	bob := h.user("bob")
	key, _ := fix.store.ContentKey(paid)
	for _, rel := range []string{content.MasterPlaylistName, content.MediaPlaylistPath(0), content.SegmentPath(0, 0), content.KeyName} {
		r := h.want(h.do("GET", watchPath(paid, rel), bob, nil), 403, "not entitled")
		if bytes.Contains(r.body, key[:]) || bytes.Contains(r.body, []byte("#EXT")) {
			t.Fatalf("refused %s carries content", rel)
		}
		h.want(h.do("GET", watchPath(paid, rel), "", nil), 401)
		h.want(h.do("GET", watchPath(free, rel), bob, nil), 200)
	}
	h.grant("bob", 5)
	h.want(h.do("POST", videoPath(wire.PathUnlock, paid), bob, struct{}{}), 200)
	r := h.want(h.do("GET", watchPath(paid, content.KeyName), bob, nil), 200)
	if !bytes.Equal(r.body, key[:]) || r.header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("key after unlock: %x, Cache-Control %q", r.body, r.header.Get("Cache-Control"))
	}
	for _, rel := range []string{"9/index.m3u8", "0/9999.ts", "0/01.ts", "keys", "0/index.m3u"} {
		h.want(h.do("GET", watchPath(paid, rel), bob, nil), 404)
	}
	h.want(h.do("GET", watchPath(content.VideoID{1}, content.MasterPlaylistName), bob, nil), 404, "not in the catalogue")
	h.want(h.do("GET", strings.Replace(wire.PathWatchMaster, "{id}", "xyz", 1), bob, nil), 400)
	if got := h.metric(`swarmcast_coordinator_fallback_requests_total{outcome="refused",resource="key"}`); got != "2" {
		t.Errorf("refused key requests metric %q, want 2", got)
	}
}
