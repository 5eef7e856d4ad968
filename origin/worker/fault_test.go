package worker

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
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

// faultParams give a replica 8 s and a 1 s answer window, so an honest
// worker is never late and a timing fault's late answer (half the window
// past the deadline) lands inside the window on a loaded -race machine
// (load 35 on 2 cores seen: a 320×180 transcode then takes over 4 s).
func faultParams() btr.Params {
	p := btr.DefaultParams()
	p.ReplicaDeadline, p.Reexec = 8*time.Second, 8*time.Second
	p.AnswerWindow = time.Second
	return p
}

// faultyServer is a real worker with a fault behind a real HTTP server.
func faultyServer(t *testing.T, ffmpeg, name string, f Fault) RemoteWorker {
	srv := &Server{Worker: &Worker{Key: key(name), FFmpeg: ffmpeg, Fault: f}, Allowed: func(n wire.NodeID) bool { return n == judgeID }}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return RemoteWorker{Key: btr.KeyOf(key(name)), URL: hs.URL}
}

// Every fault kind, injected into a real worker (Worker.Fault) from
// segment 1 on, is excluded by the judge for that kind, over real HTTP
// and ffmpeg: the packager gets the recipe's ladder for every segment, no
// honest worker is accused, and the spare takes the culprit's slot. The
// equivocating worker's second statement reaches the judge on its forward
// route (wire.PathBTRForward), as any party holding it would hand it in.
func TestInjectedFaultsExcluded(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	want, err := rc.Transcode(t.Context(), ffmpeg, src)
	if err != nil {
		t.Fatal(err)
	}
	honest, _ := workerServer(t, ffmpeg, "honest", judgeID)
	spare, _ := workerServer(t, ffmpeg, "spare", judgeID)
	for _, kind := range []btr.FaultKind{btr.Commission, btr.Omission, btr.Timing, btr.Equivocation} {
		t.Run(kind.String(), func(t *testing.T) {
			faulty := faultyServer(t, ffmpeg, "faulty-"+kind.String(), Fault{Kind: kind, From: 1})
			log := &memLog{}
			judgeKey := key("judge")
			r, err := NewReplicas(ReplicasConfig{Workers: []RemoteWorker{faulty, honest, spare}, F: 1, Params: faultParams(),
				Signer: wire.NewNodeSigner(judgeKey, nil), Judge: judgeKey, FFmpeg: ffmpeg, ChannelLog: log, Metrics: NewMetrics(prometheus.NewRegistry())})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Close)
			mux := http.NewServeMux()
			mux.HandleFunc("POST "+wire.PathBTRForward, r.HandleForward)
			fwd := httptest.NewServer(mux)
			t.Cleanup(fwd.Close)
			r.SetForward(fwd.URL)
			for seg := range uint64(3) {
				outs, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: seg, Recipe: rc, Source: src})
				if err != nil {
					t.Fatalf("segment %d: %v", seg, err)
				}
				if btr.LadderDigest(outs) != btr.LadderDigest(want) {
					t.Fatalf("segment %d: the packager got another ladder than the recipe's", seg)
				}
			}
			x := waitExclusion(t, log)
			if x.Culprit != faulty.Key || x.Kind != kind {
				t.Fatalf("excluded %s for %s, want the faulty worker for %s", x.Culprit, x.Kind, kind)
			}
			if err := x.Check(btr.KeyOf(judgeKey), NewReexecutor(ffmpeg, memSources{inputOf(src): src}, rc)); err != nil {
				t.Fatalf("the exclusion does not check: %v", err)
			}
			log.mu.Lock()
			for _, st := range log.got {
				if a, err := btr.DecodeAccusation(st); err == nil && a.Accused != faulty.Key {
					t.Errorf("an honest worker was accused: %s", a.Accused)
				}
				if x, err := btr.DecodeExclusion(st); err == nil && x.Culprit != faulty.Key {
					t.Errorf("an honest worker was excluded: %s", x.Culprit)
				}
			}
			log.mu.Unlock()
			if got := testutil.ToFloat64(r.cfg.Metrics.faults.WithLabelValues(kind.String())); got != 1 {
				t.Errorf("%s faults on /metrics %v, want 1", kind, got)
			}
			if a := r.chains[chain].judge.Assigned(x.SwitchAt(faultParams())); len(a) != 2 || a[0] != spare.Key {
				t.Errorf("from s* the replicas are %v, want the spare in the culprit's slot", a)
			}
		})
	}
}

// The forward route takes only statements that authenticate themselves:
// a tampered output, one signed by a worker not assigned to the task, one
// for a chain the origin does not judge and garbage are refused, and the
// judge decides nothing from them.
func TestForwardRefusesOutsiders(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	a, _ := workerServer(t, ffmpeg, "a", judgeID)
	b, _ := workerServer(t, ffmpeg, "b", judgeID)
	log := &memLog{}
	r := newReplicas(t, ffmpeg, []RemoteWorker{a, b}, 1, log, prometheus.NewRegistry())
	if _, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src}); err != nil {
		t.Fatal(err)
	}
	task := btr.Task{Chain: chain, Segment: 0, Recipe: rc.ID(), Input: inputOf(src)}
	other := btr.Output{Task: task, Digest: inputOf([]byte("another ladder"))}
	other.Sign(key("a"))
	tampered := other.Encode()
	tampered[len(tampered)-1] ^= 1
	outsider := btr.Output{Task: task, Digest: other.Digest}
	outsider.Sign(key("outsider"))
	elsewhere := other
	elsewhere.Chain[0] ^= 1
	elsewhere.Sign(key("a"))
	cases := []struct {
		name string
		body []byte
		want int
	}{
		{"tampered", tampered, http.StatusBadRequest},
		{"unassigned", outsider.Encode(), http.StatusBadRequest},
		{"another chain", elsewhere.Encode(), http.StatusNotFound},
		{"garbage", []byte("not a statement"), http.StatusBadRequest},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		r.HandleForward(rec, httptest.NewRequest(http.MethodPost, wire.PathBTRForward, bytes.NewReader(c.body)))
		if rec.Code != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, rec.Code, c.want, rec.Body)
		}
	}
	if got := testutil.ToFloat64(r.cfg.Metrics.messages.WithLabelValues("forwarded")); got != 0 {
		t.Errorf("%v forwarded statements taken, want 0", got)
	}
	// The judge's sink counts every accusation and exclusion as it decides
	// it (before the log sender posts it): none.
	if got := testutil.ToFloat64(r.cfg.Metrics.accusations); got != 0 {
		t.Errorf("%v accusations after refused forwards, want 0", got)
	}
	for _, k := range []string{"commission", "equivocation", "omission", "timing"} {
		if got := testutil.ToFloat64(r.cfg.Metrics.faults.WithLabelValues(k)); got != 0 {
			t.Errorf("%v %s exclusions after refused forwards, want 0", got, k)
		}
	}
}

func inputOf(b []byte) content.Hash { return sha256.Sum256(b) }
