package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/testenv"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/wire"
)

// remoteParams gives a replica 4 s for a 320×180 segment: the -race test
// machine is loaded, and an honest worker within D must never be accused.
func remoteParams() btr.Params {
	p := btr.DefaultParams()
	p.ReplicaDeadline, p.Reexec = 4*time.Second, 4*time.Second
	return p
}

// memLog is a ChannelLog that keeps what the judge posted.
type memLog struct {
	mu  sync.Mutex
	got [][]byte
}

func (l *memLog) AppendBTRStatement(_ context.Context, _ content.VideoID, st []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, st)
	return nil
}

func (l *memLog) exclusions() []*btr.Exclusion {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*btr.Exclusion
	for _, st := range l.got {
		if x, err := btr.DecodeExclusion(st); err == nil {
			out = append(out, x)
		}
	}
	return out
}

// workerServer is a real worker behind a real HTTP server on 127.0.0.1
// that allows only the judge.
func workerServer(t *testing.T, ffmpeg, name string, judge wire.NodeID) (RemoteWorker, *httptest.Server) {
	srv := &Server{Worker: &Worker{Key: key(name), FFmpeg: ffmpeg}, Allowed: func(n wire.NodeID) bool { return n == judge }}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return RemoteWorker{Key: btr.KeyOf(key(name)), URL: hs.URL}, hs
}

// cheatServer answers every task with the digest and renditions of black
// frames, signed for the real task: Livepeer's cheat.
func cheatServer(t *testing.T, ffmpeg, name string, black []byte) RemoteWorker {
	rc := ladder()
	blackOuts, err := rc.Transcode(t.Context(), ffmpeg, black)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, task, _, _, err := decodeTask(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o := &btr.Output{Task: task, Digest: btr.LadderDigest(blackOuts)}
		o.Sign(key(name))
		wire.WriteJSON(w, wire.BTRTaskResult{Output: o.Encode(), Renditions: blackOuts})
	}))
	t.Cleanup(hs.Close)
	return RemoteWorker{Key: btr.KeyOf(key(name)), URL: hs.URL}
}

// silentServer takes tasks and never answers (until the test ends).
func silentServer(t *testing.T, name string) RemoteWorker {
	stop := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hs.Close() })
	return RemoteWorker{Key: btr.KeyOf(key(name)), URL: hs.URL}
}

func newReplicas(t *testing.T, ffmpeg string, workers []RemoteWorker, f int, log ChannelLog, reg prometheus.Registerer) *Replicas {
	judgeKey := key("judge")
	r, err := NewReplicas(ReplicasConfig{Workers: workers, F: f, Params: remoteParams(), Signer: wire.NewNodeSigner(judgeKey, nil),
		Judge: judgeKey, FFmpeg: ffmpeg, ChannelLog: log, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

var judgeID = wire.NodeID(btr.KeyOf(key("judge")).String())

// f = 1 over real HTTP: two honest workers agree and the packager gets
// their bytes (the ladder the recipe gives); a black-frame cheat in the
// active set is excluded for commission with a proof an independent
// verifier accepts from the log's bytes, the segment is the judge's own
// re-execution (never the black frames), and from s* the spare replaces it.
func TestRemoteReplicas(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	want, err := rc.Transcode(t.Context(), ffmpeg, src)
	if err != nil {
		t.Fatal(err)
	}
	honestA, _ := workerServer(t, ffmpeg, "a", judgeID)
	honestB, _ := workerServer(t, ffmpeg, "b", judgeID)

	t.Run("agreed", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		r := newReplicas(t, ffmpeg, []RemoteWorker{honestA, honestB}, 1, nil, reg)
		outs, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if btr.LadderDigest(outs) != btr.LadderDigest(want) {
			t.Fatal("the packager got another ladder than the recipe's")
		}
		m := r.cfg.Metrics
		if got := testutil.ToFloat64(m.segments.WithLabelValues("agreed")); got != 1 {
			t.Errorf("agreed segments %v, want 1", got)
		}
		if got := testutil.ToFloat64(m.bound); got != remoteParams().Bound().Seconds() {
			t.Errorf("R on /metrics %v, want %v", got, remoteParams().Bound().Seconds())
		}
	})

	t.Run("commission", func(t *testing.T) {
		black := sourceSegment(t, ffmpeg, "testsrc", "lutyuv=y=16:u=128:v=128")
		cheat := cheatServer(t, ffmpeg, "cheat", black)
		log := &memLog{}
		r := newReplicas(t, ffmpeg, []RemoteWorker{honestA, cheat, honestB}, 1, log, prometheus.NewRegistry())
		outs, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if btr.LadderDigest(outs) != btr.LadderDigest(want) {
			t.Fatal("the packager got the cheat's ladder (or another)")
		}
		x := waitExclusion(t, log)
		if x.Culprit != cheat.Key || x.Kind != btr.Commission {
			t.Fatalf("excluded %s for %s, want the cheat for commission", x.Culprit, x.Kind)
		}
		third := NewReexecutor(ffmpeg, memSources{sha256.Sum256(src): src}, rc)
		if err := x.Check(btr.KeyOf(key("judge")), third); err != nil {
			t.Fatalf("an independent verifier refused the proof: %v", err)
		}
		if got := testutil.ToFloat64(r.cfg.Metrics.faults.WithLabelValues("commission")); got != 1 {
			t.Errorf("commission faults %v, want 1", got)
		}
		sw := x.SwitchAt(remoteParams())
		if a := r.chains[chain].judge.Assigned(sw); len(a) != 2 || a[1] != honestB.Key {
			t.Errorf("segment %d runs on %v, want the spare in the cheat's slot", sw, a)
		}
	})

	t.Run("omission", func(t *testing.T) {
		silent := silentServer(t, "silent")
		log := &memLog{}
		r := newReplicas(t, ffmpeg, []RemoteWorker{honestA, silent}, 1, log, prometheus.NewRegistry())
		outs, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if btr.LadderDigest(outs) != btr.LadderDigest(want) {
			t.Fatal("the packager got another ladder than the recipe's")
		}
		x := waitExclusion(t, log)
		if x.Culprit != silent.Key || x.Kind != btr.Omission {
			t.Fatalf("excluded %s for %s, want the silent worker for omission", x.Culprit, x.Kind)
		}
		if err := x.Check(btr.KeyOf(key("judge")), nil); err != nil {
			t.Fatalf("the omission exclusion does not check: %v", err)
		}
		if got := testutil.ToFloat64(r.cfg.Metrics.accusations); got != 1 {
			t.Errorf("accusations %v, want 1", got)
		}
	})
}

// waitExclusion waits (bounded) for the first exclusion the judge posts.
func waitExclusion(t *testing.T, log *memLog) *btr.Exclusion {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if xs := log.exclusions(); len(xs) > 0 {
			return xs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no exclusion reached the channel log")
	return nil
}

// A worker refuses tasks that are unsigned, signed by an origin it does not
// allow, or tampered with after signing, and transcodes nothing for them.
func TestWorkerRefusesOutsiders(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	_, hs := workerServer(t, ffmpeg, "a", judgeID)
	recipe, _ := json.Marshal(rc)
	body, _ := json.Marshal(wire.BTRTask{Chain: chain, Segment: 0, RecipeID: rc.ID(), Recipe: recipe, Source: src})
	post := func(signer *wire.NodeSigner, signed, sent []byte) int {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+wire.PathBTRTask, bytes.NewReader(sent))
		if signer != nil {
			signer.SignRequest(req, signed)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tampered := bytes.Replace(body, []byte(`"segment":0`), []byte(`"segment":7`), 1)
	cases := []struct {
		name   string
		signer *wire.NodeSigner
		signed []byte
		sent   []byte
		want   int
	}{
		{"unsigned", nil, nil, body, http.StatusUnauthorized},
		{"outsider", wire.NewNodeSigner(key("outsider"), nil), body, body, http.StatusForbidden},
		{"tampered", wire.NewNodeSigner(key("judge"), nil), body, tampered, http.StatusUnauthorized},
		{"judge", wire.NewNodeSigner(key("judge"), nil), body, body, http.StatusOK},
	}
	for _, c := range cases {
		if got := post(c.signer, c.signed, c.sent); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
}
