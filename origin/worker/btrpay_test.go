package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
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

// memPayments keeps the agreements the judge posted; memRebuttals the
// rebuttals a worker posted (the coordinator's side is tested in
// coordinator's TestBTRWorkersRegisterAndPay and TestBTRRebuttal).
type memPayments struct {
	mu  sync.Mutex
	got [][]byte
}

func (p *memPayments) PostBTRAgreement(_ context.Context, _ content.VideoID, g []byte) (wire.BTRCreditResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, g)
	return wire.BTRCreditResult{}, nil
}

func (p *memPayments) all() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.got...)
}

type memRebuttals struct{ memPayments }

func (p *memRebuttals) PostBTRRebuttal(ctx context.Context, chain content.VideoID, r []byte) error {
	_, err := p.PostBTRAgreement(ctx, chain, r)
	return err
}

// waitFor polls cond (bounded) and fails with what if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(what)
}

// f = 1 over real HTTP and ffmpeg: an agreed segment yields one agreement,
// signed by the judge, over both workers' own signed outputs of the
// recipe's digest (what the coordinator pays on); a segment the judge's
// re-execution decided (a black-frame cheat in the set) yields none.
func TestReplicasPostAgreements(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	want, err := rc.Transcode(t.Context(), ffmpeg, src)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := workerServer(t, ffmpeg, "a", judgeID)
	b, _ := workerServer(t, ffmpeg, "b", judgeID)
	pay := &memPayments{}
	judgeKey := key("judge")
	// D generous for the loaded -race machine: a worker slower than D makes
	// the judge's re-execution decide, which (rightly) pays nobody.
	p := remoteParams()
	p.ReplicaDeadline, p.Reexec = 12*time.Second, 12*time.Second
	r, err := NewReplicas(ReplicasConfig{Workers: []RemoteWorker{a, b}, F: 1, Params: p, Signer: wire.NewNodeSigner(judgeKey, nil),
		Judge: judgeKey, FFmpeg: ffmpeg, Payments: pay, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no agreement posted", func() bool { return len(pay.all()) == 1 })
	g, err := btr.DecodeAgreement(pay.all()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(btr.KeyOf(judgeKey)); err != nil {
		t.Fatal(err)
	}
	if g.Digest != btr.LadderDigest(want) || g.Segment != 0 || g.Chain != chain || len(g.Outputs) != 2 {
		t.Fatalf("agreement for segment %d digest %x with %d outputs", g.Segment, g.Digest[:6], len(g.Outputs))
	}
	waitFor(t, "agreements metric", func() bool { return testutil.ToFloat64(r.cfg.Metrics.agreements) == 1 })

	black := sourceSegment(t, ffmpeg, "testsrc", "lutyuv=y=16:u=128:v=128")
	pay2 := &memPayments{}
	r2, err := NewReplicas(ReplicasConfig{Workers: []RemoteWorker{a, cheatServer(t, ffmpeg, "cheat", black)}, F: 1, Params: remoteParams(),
		Signer: wire.NewNodeSigner(judgeKey, nil), Judge: judgeKey, FFmpeg: ffmpeg, Payments: pay2, ChannelLog: &memLog{}, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src}); err != nil {
		t.Fatal(err)
	}
	r2.Close() // drains the sender: anything queued has been posted
	if got := pay2.all(); len(got) != 0 {
		t.Fatalf("a disputed segment paid: %d agreements", len(got))
	}
}

// lossyWorker is a real worker whose answers to tasks are lost on the way
// back (it transcodes, signs and keeps the output, then the judge sees a
// 503): the judge accuses it, it rebuts with its signed output, posts the
// rebuttal to the coordinator first, and is cleared, not excluded.
func TestAccusedWorkerRebuts(t *testing.T) {
	ffmpeg := testenv.RequireTool(t, "ffmpeg", "ffmpeg")
	rc := ladder()
	src := sourceSegment(t, ffmpeg, "testsrc", "")
	a, _ := workerServer(t, ffmpeg, "a", judgeID)
	coord := &memRebuttals{}
	lossy := &Server{Worker: &Worker{Key: key("lossy"), FFmpeg: ffmpeg}, Allowed: func(n wire.NodeID) bool { return n == judgeID }, Rebuttals: []RebuttalPoster{coord}}
	h := lossy.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.PathBTRTask {
			h.ServeHTTP(httptest.NewRecorder(), r) // the work is done; the answer is lost
			http.Error(w, "lost", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer hs.Close()
	lossyW := RemoteWorker{Key: btr.KeyOf(key("lossy")), URL: hs.URL}
	log := &memLog{}
	pay := &memPayments{}
	judgeKey := key("judge")
	p := remoteParams()
	// The -race machine is loaded: the lossy worker must finish its
	// transcode before the detection deadline (else it holds no output and
	// is rightly excluded), and the answer is one local round trip.
	p.ReplicaDeadline, p.Reexec = 12*time.Second, 12*time.Second
	p.AnswerWindow = 2 * time.Second
	r, err := NewReplicas(ReplicasConfig{Workers: []RemoteWorker{a, lossyW}, F: 1, Params: p, Signer: wire.NewNodeSigner(judgeKey, nil),
		Judge: judgeKey, FFmpeg: ffmpeg, ChannelLog: log, Payments: pay, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Replicate(t.Context(), live.ReplicaTask{Chain: chain, Segment: 0, Recipe: rc, Source: src}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the judge never took a rebuttal", func() bool { return testutil.ToFloat64(r.cfg.Metrics.rebuttals) == 1 })
	rebs := coord.all()
	if len(rebs) != 1 {
		t.Fatalf("the worker posted %d rebuttals to the coordinator, want 1", len(rebs))
	}
	reb, err := btr.DecodeRebuttal(rebs[0])
	if err != nil || reb.Output.Replica != lossyW.Key || reb.Accusation.Accuser != btr.KeyOf(judgeKey) {
		t.Fatalf("rebuttal %v", err)
	}
	r.Close()
	if xs := log.exclusions(); len(xs) != 0 {
		t.Fatalf("a rebutted worker was excluded (%s)", xs[0].Kind)
	}
	// Its rebutted output counts: the segment's agreement pays it too.
	if got := pay.all(); len(got) != 1 {
		t.Fatalf("%d agreements, want 1", len(got))
	} else if g, err := btr.DecodeAgreement(got[0]); err != nil || !slices.Contains(g.Replicas(), lossyW.Key) {
		t.Fatalf("the agreement does not name the rebutted worker (%v)", err)
	}
	accused := false
	log.mu.Lock()
	for _, st := range log.got {
		if a, err := btr.DecodeAccusation(st); err == nil && a.Accused == lossyW.Key {
			accused = true
		}
	}
	log.mu.Unlock()
	if !accused {
		t.Fatal("the channel log has no accusation of the lossy worker")
	}
}

// The accused route refuses what is not the judge's accusation of this
// worker, sent by that judge: nothing is posted to the coordinator and no
// rebuttal is answered.
func TestAccusedRefusesOutsiders(t *testing.T) {
	coord := &memRebuttals{}
	srv := &Server{Worker: &Worker{Key: key("w")}, Allowed: func(n wire.NodeID) bool { return n == judgeID }, Rebuttals: []RebuttalPoster{coord}}
	// The worker holds its signed output for the task, so a valid
	// accusation would be answered.
	task := btr.Task{Chain: chain, Segment: 3, Recipe: "ladder-test", Input: content.Hash{3}}
	o := &btr.Output{Task: task, Digest: content.Hash{7}}
	o.Sign(key("w"))
	srv.remember(o)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	accusation := func(signer string, accused string) []byte {
		a := &btr.Accusation{Task: task, Accused: btr.KeyOf(key(accused)), Kind: btr.Omission, AnswerBy: time.Now().Add(time.Minute).UnixMicro()}
		a.Sign(key(signer))
		b, _ := json.Marshal(wire.BTRAccusedRequest{Accusation: a.Encode()})
		return b
	}
	post := func(signer string, body []byte) (int, wire.BTRAccusedAnswer) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+wire.PathBTRAccused, bytes.NewReader(body))
		if signer != "" {
			wire.NewNodeSigner(key(signer), nil).SignRequest(req, body)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans wire.BTRAccusedAnswer
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans
	}
	cases := []struct {
		name, sender string
		body         []byte
		want         int
	}{
		{"unsigned", "", accusation("judge", "w"), http.StatusUnauthorized},
		{"an outsider origin", "outsider", accusation("outsider", "w"), http.StatusForbidden},
		{"another key's accusation, sent by the judge", "judge", accusation("outsider", "w"), http.StatusForbidden},
		{"another worker's accusation", "judge", accusation("judge", "other"), http.StatusBadRequest},
		{"not an accusation", "judge", []byte(`{"accusation":"AAAA"}`), http.StatusBadRequest},
	}
	for _, c := range cases {
		if got, ans := post(c.sender, c.body); got != c.want || len(ans.Rebuttal) != 0 {
			t.Errorf("%s: status %d (rebuttal %d bytes), want %d and none", c.name, got, len(ans.Rebuttal), c.want)
		}
	}
	if n := len(coord.all()); n != 0 {
		t.Fatalf("refused accusations posted %d rebuttals", n)
	}
	got, ans := post("judge", accusation("judge", "w"))
	if got != http.StatusOK || len(ans.Rebuttal) == 0 || len(coord.all()) != 1 {
		t.Fatalf("the judge's accusation: status %d, rebuttal %d bytes, %d posted", got, len(ans.Rebuttal), len(coord.all()))
	}
	if r, err := btr.DecodeRebuttal(ans.Rebuttal); err != nil || r.Output.Digest != o.Digest {
		t.Fatalf("rebuttal %v", err)
	}
}
