package wire

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// TestBindViewerConsent: only a fresh consent signed by the player key for
// this very account binds it; someone who knows the (public) key id cannot.
func TestBindViewerConsent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	good := SignBindViewer(key, 7, now)
	if err := VerifyBindViewer(&good, 7, now); err != nil {
		t.Fatalf("genuine consent: %v", err)
	}
	forged := SignBindViewer(other, 7, now)
	forged.ViewerID = good.ViewerID // the victim's key id, the attacker's signature
	for name, tc := range map[string]struct {
		req     BindViewerRequest
		account int64
		at      time.Time
		want    string
	}{
		"unsigned":      {BindViewerRequest{ViewerID: good.ViewerID}, 7, now, "no signature"},
		"other account": {good, 8, now, "account 7, not this account (8)"},
		"stale":         {good, 7, now.Add(NodeRequestMaxSkew + time.Second), "stale"},
		"forged":        {forged, 7, now, "does not verify"},
		"not a key":     {BindViewerRequest{ViewerID: "ABC", Signature: good.Signature}, 7, now, "64 lowercase hex"},
	} {
		err := VerifyBindViewer(&tc.req, tc.account, tc.at)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
