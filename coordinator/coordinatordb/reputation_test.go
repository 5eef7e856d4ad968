package coordinatordb

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

func TestBetaReputation(t *testing.T) {
	cfg := ReputationConfig{}
	s := NewEdgeStatus("e", cfg)
	if s.Audit.Alpha != 1 || s.Audit.Beta != 0 || s.Audit.Score() != 1 {
		t.Fatalf("initial %+v", s.Audit)
	}
	for range 200 {
		s = ApplyAudit(s, true, cfg, t0)
	}
	// α after n successes from α0=1: λ^n + (1-λ^n)/(1-λ).
	n := 200.0
	want := math.Pow(0.999, n) + (1-math.Pow(0.999, n))/(1-0.999)
	if math.Abs(s.Audit.Alpha-want) > 1e-9 || s.Disqualified {
		t.Fatalf("alpha %v, want %v; dq %v", s.Audit.Alpha, want, s.Disqualified)
	}
	// About 4% failures over ~200 evidence disqualifies; count how many.
	fails := 0
	for !s.Disqualified {
		s = ApplyAudit(s, false, cfg, t0.Add(time.Hour))
		fails++
	}
	if fails < 5 || fails > 12 || s.Audit.Score() >= 0.96 || s.DisqualifyReason == "" || !s.DisqualifiedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("disqualified after %d failures, score %v, %+v", fails, s.Audit.Score(), s)
	}
	// Disqualification is sticky and keeps its first reason.
	s2 := ApplyBadShard(s, "late", t0.Add(2*time.Hour))
	if s2.DisqualifyReason != s.DisqualifyReason || !s2.DisqualifiedAt.Equal(s.DisqualifiedAt) {
		t.Fatal("a second disqualification overwrote the first reason")
	}
	// Uptime never disqualifies.
	u := NewEdgeStatus("u", cfg)
	for range 50 {
		u = ApplyUptime(u, false, cfg, t0)
	}
	if u.Disqualified || u.Uptime.Score() > 0.1 {
		t.Fatalf("uptime %+v", u)
	}
	// A fresh edge with one failure (α0=1) falls below 0.96 at once.
	if f := ApplyAudit(NewEdgeStatus("f", cfg), false, cfg, t0); !f.Disqualified {
		t.Fatal("one failure from α=1, β=0 did not disqualify")
	}
	if f := ApplyAudit(NewEdgeStatus("f", ReputationConfig{InitialAlpha: 1000}), false, ReputationConfig{InitialAlpha: 1000}, t0); f.Disqualified {
		t.Fatal("one failure from α=1000 disqualified")
	}
}

func TestReputationStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := openDB(t, be.dsn, testConfig())
		e := newParty(1).id
		if s, err := db.EdgeReputation(ctx, e); err != nil || s.Audit.Alpha != 1 || s.Disqualified {
			t.Fatalf("unseen edge: %+v %v", s, err)
		}
		for range 3 {
			db.RecordAudit(ctx, e, true, t0)
		}
		db.RecordUptime(ctx, e, false, t0)
		s, err := db.EdgeReputation(ctx, e)
		if err != nil || s.Audits != 3 || s.Audit.Beta != 0 || s.Uptime.Beta != 1 {
			t.Fatalf("after 3 passes and 1 downtime: %+v %v", s, err)
		}
		if _, err := db.RecordBadShard(ctx, e, "proof #1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		dq, err := db.DisqualifiedEdges(ctx)
		if err != nil || len(dq) != 1 || dq[0].Node != e || dq[0].DisqualifyReason != "served a bad shard: proof #1" || !dq[0].DisqualifiedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("disqualified: %+v %v", dq, err)
		}
	})
}

func TestAuditContainment(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		cfg := testConfig()
		cfg.Reputation.InitialAlpha = 1000 // one failure must not disqualify here
		db := openDB(t, be.dsn, cfg)
		e := newParty(1).id
		c := Challenge{Edge: e, Ref: content.SegmentRef{Video: videoID(1), Rendition: 1, Segment: 4}.Shard(7), Offset: 128, Length: 256}
		a, err := db.CreateAudit(ctx, c, t0)
		if err != nil || a.State != AuditPending || a.Challenge != c {
			t.Fatalf("create: %+v %v", a, err)
		}
		// Two timeouts: contained, and the same challenge comes back.
		for i := 1; i <= 2; i++ {
			got, _, err := db.RecordAuditOutcome(ctx, a.ID, OutcomeTimeout, t0.Add(time.Duration(i)*time.Minute))
			if err != nil || got.State != AuditContained || got.Attempts != i {
				t.Fatalf("timeout %d: %+v %v", i, got, err)
			}
			again, err := db.CreateAudit(ctx, Challenge{Edge: e, Ref: content.SegmentRef{Video: videoID(5)}.Shard(0), Length: 1}, t0)
			if err != nil || again.ID != a.ID || again.Challenge != c {
				t.Fatalf("contained edge got a new challenge: %+v %v", again, err)
			}
		}
		open, _ := db.OpenAudits(ctx, e, 10)
		if len(open) != 1 || open[0].ID != a.ID {
			t.Fatalf("open audits %+v", open)
		}
		// The third timeout is a failure.
		got, st, err := db.RecordAuditOutcome(ctx, a.ID, OutcomeTimeout, t0.Add(time.Hour))
		if err != nil || got.State != AuditFailed || st.Audits != 1 || st.Audit.Beta != 1 {
			t.Fatalf("third timeout: %+v %+v %v", got, st, err)
		}
		if _, _, err := db.RecordAuditOutcome(ctx, a.ID, OutcomePassed, t0); !errors.Is(err, ErrAuditClosed) {
			t.Fatalf("answer after the verdict: %v", err)
		}
		b, _ := db.CreateAudit(ctx, c, t0)
		if b.ID == a.ID {
			t.Fatal("new audit reused a closed one")
		}
		got, st, err = db.RecordAuditOutcome(ctx, b.ID, OutcomePassed, t0)
		if err != nil || got.State != AuditPassed || st.Audits != 2 {
			t.Fatalf("pass: %+v %+v %v", got, st, err)
		}
		if _, _, err := db.RecordAuditOutcome(ctx, 9999, OutcomePassed, t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown audit: %v", err)
		}
		for _, bad := range []Challenge{
			{Edge: e, Ref: c.Ref, Length: 0},
			{Edge: e, Ref: c.Ref, Length: 1, Offset: -1},
			// A malformed video id is not a content.VideoID: it cannot
			// reach the store at all. Negative indices can.
			{Edge: e, Ref: content.SegmentRef{Video: c.Ref.Video, Segment: -1}.Shard(0), Length: 1},
			{Edge: e, Ref: c.Ref.SegmentRef.Shard(-1), Length: 1},
			{Edge: "\x00", Ref: c.Ref, Length: 1},
		} {
			if _, err := db.CreateAudit(ctx, bad, t0); err == nil {
				t.Errorf("challenge %+v accepted", bad)
			}
		}
		for _, h := range hostile {
			if _, err := db.RecordAudit(ctx, wire.NodeID(h), true, t0); err == nil {
				t.Errorf("reputation for node %q recorded", h)
			}
			if _, err := db.EdgeReputation(ctx, wire.NodeID(h)); err == nil {
				t.Errorf("reputation for node %q read", h)
			}
		}
		if open, _ := db.OpenAudits(ctx, "", 10); len(open) != 0 {
			t.Fatalf("open audits after verdicts: %+v", open)
		}
	})
}
