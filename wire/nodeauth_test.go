package wire

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A signed request verifies; any change to method, path, body, node or
// time breaks it; stale and future timestamps are refused.
func TestNodeRequestSignature(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	s := NewNodeSigner(testSigner(7).key, func() time.Time { return now })
	body := []byte(`{"node_id":"x"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://c"+PathHeartbeat, bytes.NewReader(body))
	s.SignRequest(req, body)
	auth, err := ParseNodeRequestAuth(req.Header)
	if err != nil {
		t.Fatal(err)
	}
	if auth.Node != s.ID() || auth.UnixMS != now.UnixMilli() {
		t.Fatalf("auth = %+v", auth)
	}
	if err := auth.Verify(http.MethodPost, PathHeartbeat, body); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"method": auth.Verify(http.MethodPut, PathHeartbeat, body),
		"path":   auth.Verify(http.MethodPost, PathLeave, body),
		"body":   auth.Verify(http.MethodPost, PathHeartbeat, []byte(`{"node_id":"y"}`)),
		"node":   NodeRequestAuth{Node: testSigner(8).ID(), UnixMS: auth.UnixMS, Signature: auth.Signature}.Verify(http.MethodPost, PathHeartbeat, body),
		"time":   NodeRequestAuth{Node: auth.Node, UnixMS: auth.UnixMS + 1, Signature: auth.Signature}.Verify(http.MethodPost, PathHeartbeat, body),
	} {
		if err == nil || !strings.Contains(err.Error(), "bad node signature") {
			t.Errorf("changed %s: Verify = %v, want bad node signature", name, err)
		}
	}
	if err := auth.CheckFresh(now.Add(NodeRequestMaxSkew)); err != nil {
		t.Errorf("at the bound: %v", err)
	}
	for _, d := range []time.Duration{NodeRequestMaxSkew + time.Millisecond, -NodeRequestMaxSkew - time.Millisecond} {
		if err := auth.CheckFresh(now.Add(d)); err == nil || !strings.Contains(err.Error(), "stale") {
			t.Errorf("checked %v later: %v, want stale", d, err)
		}
	}
	// Two requests in one millisecond get distinct timestamps.
	req2, _ := http.NewRequest(http.MethodPost, "http://c"+PathHeartbeat, bytes.NewReader(body))
	s.SignRequest(req2, body)
	if req2.Header.Get(HeaderNodeTime) == req.Header.Get(HeaderNodeTime) {
		t.Fatal("same timestamp twice")
	}
}

func TestParseNodeRequestAuthRefusesMalformed(t *testing.T) {
	good := testSigner(9)
	for name, h := range map[string]http.Header{
		"none":      {},
		"bad node":  {HeaderNode: {"abc"}, HeaderNodeTime: {"1"}, HeaderNodeSignature: {strings.Repeat("A", 86)}},
		"bad time":  {HeaderNode: {string(good.ID())}, HeaderNodeTime: {"-5"}, HeaderNodeSignature: {strings.Repeat("A", 86)}},
		"short sig": {HeaderNode: {string(good.ID())}, HeaderNodeTime: {"1"}, HeaderNodeSignature: {"AAAA"}},
		"bad sig":   {HeaderNode: {string(good.ID())}, HeaderNodeTime: {"1"}, HeaderNodeSignature: {strings.Repeat("*", 86)}},
	} {
		if _, err := ParseNodeRequestAuth(h); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// The bind-edge consent names one account and verifies only for it.
func TestBindEdgeConsent(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	s := NewNodeSigner(testSigner(10).key, func() time.Time { return now })
	req := s.SignBindEdge(42)
	if err := VerifyBindEdge(&req, 42, now); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBindEdge(&req, 43, now); err == nil {
		t.Error("verified for another account")
	}
	if err := VerifyBindEdge(&req, 42, now.Add(time.Minute)); err == nil {
		t.Error("verified a stale consent")
	}
	forged := req
	forged.NodeID = testSigner(11).ID()
	if err := VerifyBindEdge(&forged, 42, now); err == nil {
		t.Error("verified another edge's consent")
	}
	unsigned := BindEdgeRequest{NodeID: s.ID(), Account: 42, UnixMS: now.UnixMilli()}
	if err := VerifyBindEdge(&unsigned, 42, now); err == nil {
		t.Error("verified an unsigned request")
	}
}

// FuzzParseNodeRequestAuth: the header parser never panics and anything it
// accepts is well-formed.
func FuzzParseNodeRequestAuth(f *testing.F) {
	f.Add(string(testSigner(1).ID()), "1800000000000", strings.Repeat("A", 86))
	f.Add("", "", "")
	f.Add("zz", "9999999999999999999999", "====")
	f.Fuzz(func(t *testing.T, node, ts, sig string) {
		a, err := ParseNodeRequestAuth(http.Header{HeaderNode: {node}, HeaderNodeTime: {ts}, HeaderNodeSignature: {sig}})
		if err != nil {
			return
		}
		if CheckNodeID(a.Node) != nil || len(a.Signature) != 64 || a.UnixMS <= 0 {
			t.Fatalf("accepted malformed %+v", a)
		}
		_ = a.Verify(http.MethodPost, PathRegister, nil)
	})
}
