package viewer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

// llFixture is a low-latency chain's gateway state built in memory: entries
// 0..2, and parts the test adds (every part 250 ms, 4 to a segment).
type llFixture struct {
	v    *Viewer
	lc   *liveChannel
	g    *content.LiveGenesis
	priv ed25519.PrivateKey
	last map[uint64]*content.LivePart
}

func newLLFixture(t *testing.T) *llFixture {
	t.Helper()
	v, err := New(Config{Coordinator: "http://127.0.0.1:9", Identity: identity.New(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	_, priv, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{5}, 64)))
	var key content.ContentKey
	key[0] = 9
	g := &content.LiveGenesis{Channel: "ch_00000000000000ll", Params: content.DefaultLiveParams(), KeyID: key.ID(), TargetDuration: 1_000_000,
		PartTarget: 250_000, Renditions: []content.LiveRendition{{Name: "240p", Bandwidth: 400_000}}, Started: 1_700_000_000_000_000}
	g.Sign(priv)
	lc := &liveChannel{id: g.ID(), ready: make(chan struct{}), changed: make(chan struct{}), watched: map[int]time.Time{},
		segs: map[segKey]*liveSegment{}, chain: content.NewLiveChain(g), key: key, ll: newLLState(g)}
	prev := content.Hash(g.ID())
	for seq := range uint64(3) {
		e := &content.LiveEntry{Chain: g.ID(), Seq: seq, Prev: prev, ProgramTime: g.Started + int64(seq)*1_000_000,
			Segments: []content.Segment{{Duration: 1_000_000, Size: 4096, Root: content.Hash{1}}}}
		e.Sign(priv)
		if err := lc.chain.Append(e); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash()
	}
	return &llFixture{v: v, lc: lc, g: g, priv: priv, last: map[uint64]*content.LivePart{}}
}

// addPart signs and verifies the next part of seq (plaintext "seq.part")
// through the gateway's own acceptance path.
func (f *llFixture) addPart(t *testing.T, seq uint64, last bool) {
	t.Helper()
	index := 0
	var prevHash content.Hash
	if p := f.last[seq]; p != nil {
		index, prevHash = int(p.Index)+1, p.Hash()
	}
	plain := []byte(strings.Repeat("x", 100) + string(rune('0'+index)))
	ct := content.EncryptSegment(f.lc.key, f.lc.key.PartIV(0, int(seq), index), plain)
	p := &content.LivePart{Chain: f.g.ID(), Seq: seq, Index: uint16(index), Independent: index == 0, Last: last, Prev: prevHash,
		ProgramTime: f.g.Started + int64(seq)*1_000_000, Duration: 250_000,
		Pieces: []content.LivePartPiece{{Size: uint32(len(ct)), Digest: sha256.Sum256(ct)}}}
	p.Sign(f.priv)
	body := wireMessage(p.Encode(), ct)
	if err := f.v.acceptPart(f.lc, f.g, body, seq, index); err != nil {
		t.Fatal(err)
	}
	f.last[seq] = p
}

func (f *llFixture) get(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://gw/live/x/"+path, nil)
	f.serve(rec, req, path)
	return rec
}

// serve is serveLL without the join (whose fetches of rebuilt segments
// would go to the network): the low-latency handlers themselves.
func (f *llFixture) serve(w http.ResponseWriter, r *http.Request, path string) {
	t, err := parseLivePath(f.g.ID().String() + "/" + path)
	if err != nil {
		panic(err)
	}
	switch t.res.Resource {
	case content.ResourceMedia:
		f.v.serveLLMedia(w, r, f.lc, t.res.Rendition)
	case content.ResourcePart:
		f.v.serveLLPart(w, r, f.lc, t.res.Rendition, uint64(t.res.Segment), t.part)
	case content.ResourceSegment:
		f.v.serveLLSegment(w, r, f.lc, t.res.Rendition, uint64(t.res.Segment))
	}
}

// TestLLBlockingReloads: RFC 8216bis 6.2.5.2 in fake time. A reload for
// the next part waits until that part verifies and then lists it; one for
// a part that never comes answers 503 after exactly three target
// durations; one too far ahead, or an _HLS_part without _HLS_msn, is an
// immediate 400; the preload-hinted part is held until it arrives; whole
// segments join their verified parts.
func TestLLBlockingReloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLLFixture(t)
		for i := range 4 {
			f.addPart(t, 3, i == 3)
		}
		f.addPart(t, 4, false)
		f.addPart(t, 4, false)
		pl := f.get("0/index.m3u8").Body.String()
		for _, want := range []string{"#EXTINF:1.000000,\n3.ts\n", "URI=\"4.1.ts\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.2.ts\"", "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750"} {
			if !strings.Contains(pl, want) {
				t.Fatalf("playlist lacks %q:\n%s", want, pl)
			}
		}

		// Blocks for 4.2, answers when it is verified.
		start := time.Now()
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- f.getQuery("0/index.m3u8", "_HLS_msn=4&_HLS_part=2") }()
		partDone := make(chan *httptest.ResponseRecorder)
		go func() { partDone <- f.get("0/4.2.ts") }()
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the blocking reload answered before part 4.2 existed")
		case <-partDone:
			t.Fatal("the hinted part answered before it existed")
		default:
		}
		f.addPart(t, 4, false)
		rec := <-done
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "URI=\"4.2.ts\"\n") || time.Since(start) != 200*time.Millisecond {
			t.Fatalf("blocking reload: %d after %v:\n%s", rec.Code, time.Since(start), rec.Body)
		}
		if rec := <-partDone; rec.Code != http.StatusOK || rec.Body.String() != strings.Repeat("x", 100)+"2" {
			t.Fatalf("hinted part: %d %q", rec.Code, rec.Body)
		}

		// Never comes: 503 after 3 target durations.
		start = time.Now()
		rec = f.getQuery("0/index.m3u8", "_HLS_msn=4&_HLS_part=3")
		if rec.Code != http.StatusServiceUnavailable || time.Since(start) != 3*time.Second {
			t.Fatalf("a part that never comes: %d after %v, want 503 after 3s", rec.Code, time.Since(start))
		}
		// Too far ahead, malformed: 400 at once.
		start = time.Now()
		for _, q := range []string{"_HLS_msn=7", "_HLS_msn=4&_HLS_part=7", "_HLS_part=1", "_HLS_msn=x"} {
			if rec := f.getQuery("0/index.m3u8", q); rec.Code != http.StatusBadRequest {
				t.Fatalf("%s: %d, want 400", q, rec.Code)
			}
		}
		if rec := f.getQuery("0/index.m3u8", "_HLS_msn=2"); rec.Code != http.StatusOK {
			t.Fatalf("a reload for a listed segment: %d", rec.Code)
		}
		if time.Since(start) != 0 {
			t.Fatalf("immediate answers took %v", time.Since(start))
		}
		// Segment 3 is its four parts joined; an old part is not held.
		want := ""
		for i := range 4 {
			want += strings.Repeat("x", 100) + string(rune('0'+i))
		}
		if rec := f.get("0/3.ts"); rec.Code != http.StatusOK || rec.Body.String() != want {
			t.Fatalf("segment from parts: %d %q", rec.Code, rec.Body)
		}
		if rec := f.get("0/1.0.ts"); rec.Code != http.StatusNotFound {
			t.Fatalf("an old part: %d, want 404", rec.Code)
		}
	})
}

// TestLLRefusesForgedAndReorderedParts: a part signed by another key, one
// with altered bytes, one out of order or at another position than asked
// is refused and nothing is kept.
func TestLLRefusesForgedAndReorderedParts(t *testing.T) {
	f := newLLFixture(t)
	f.addPart(t, 3, false)
	sign := func(key ed25519.PrivateKey, seq uint64, index int, prev content.Hash, ct []byte) []byte {
		p := &content.LivePart{Chain: f.g.ID(), Seq: seq, Index: uint16(index), Independent: index == 0, Prev: prev,
			ProgramTime: f.g.Started + int64(seq)*1_000_000, Duration: 250_000,
			Pieces: []content.LivePartPiece{{Size: uint32(len(ct)), Digest: sha256.Sum256(ct)}}}
		p.Sign(key)
		return wireMessage(p.Encode(), ct)
	}
	ct := content.EncryptSegment(f.lc.key, f.lc.key.PartIV(0, 3, 1), []byte("part one"))
	_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{6}, 64)))
	altered := bytes.Clone(ct)
	altered[0] ^= 1
	for name, c := range map[string]struct {
		body  []byte
		seq   uint64
		index int
	}{
		"another key":        {sign(other, 3, 1, f.last[3].Hash(), ct), 3, 1},
		"altered bytes":      {wireMessage(sign(f.priv, 3, 1, f.last[3].Hash(), ct)[4:][:0], altered), 3, 1},
		"skips a part":       {sign(f.priv, 3, 2, f.last[3].Hash(), ct), 3, 2},
		"names another":      {sign(f.priv, 3, 1, content.Hash{7}, ct), 3, 1},
		"not what was asked": {sign(f.priv, 3, 1, f.last[3].Hash(), ct), 3, 2},
	} {
		if name == "altered bytes" {
			good := sign(f.priv, 3, 1, f.last[3].Hash(), ct)
			c.body = bytes.Replace(good, ct, altered, 1)
		}
		if err := f.v.acceptPart(f.lc, f.g, c.body, c.seq, c.index); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	if n := len(f.lc.ll.held.Segment(3)); n != 1 || len(f.lc.ll.pieces) != 1 {
		t.Fatalf("refused parts were kept: %d held, %d pieces", n, len(f.lc.ll.pieces))
	}
}

func (f *llFixture) getQuery(path, query string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://gw/live/x/"+path+"?"+query, nil)
	f.serve(rec, req, path)
	return rec
}

func wireMessage(part, piece []byte) []byte {
	return wire.LivePartMessage{Part: part, Pieces: [][]byte{piece}}.Encode()
}
