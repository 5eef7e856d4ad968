package wire

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmcast/swarmcast/content"
)

// Values and bytes below were produced by the code before video ids were
// typed (string fields holding the hex id): typing them must not change a
// byte on the wire or under a signature.

const compatVideoHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func compatVideo(t *testing.T) content.VideoID {
	t.Helper()
	id, err := content.ParseVideoID(compatVideoHex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Limits and receipts signed before the change still verify, and new ones
// sign the very same bytes: ed25519 is deterministic, so the signatures are
// pinned too.
func TestSigningBytesArePinned(t *testing.T) {
	coord, _ := key(1)
	_, viewerID := key(2)
	edgeKey, edgeID := key(3)
	video := compatVideo(t)

	l := OrderLimit{Serial: Serial{1, 2, 3}, Edge: edgeID, Viewer: viewerID, Video: video, MaxBytes: 1 << 20, ExpiresUnixMs: 1_700_000_000_000}
	SignOrderLimit(coord, &l)
	const limitBytes = "737761726d63617374206f72646572206c696d6974207631000102030000000000000000000000000000000040646164626431383461326435323666316562646435633036666461643933353962323238373539623464376637396436363638396661323534616164383534360000004036623739633537653661303935323339323832633034383138653936313132663366303361343030316261393761353634633233383532613366316561356663000000403030313132323333343435353636373738383939616162626363646465656666303031313232333334343535363637373838393961616262636364646565666600000000001000000000018bcfe56800"
	const limitSig = "a41d3096e26f43e188c3f7767840050d4e5cfe021258d9e8c93c5005feaad0fc828d8482a112dc0c5f8087aa8020937aef6c1df30873f9508ac7c719fc06c70d"
	if got := hex.EncodeToString(l.SigningBytes()); got != limitBytes {
		t.Errorf("OrderLimit.SigningBytes =\n%s\nwant\n%s", got, limitBytes)
	}
	if got := hex.EncodeToString(l.Signature); got != limitSig {
		t.Errorf("order limit signature = %s, want %s", got, limitSig)
	}

	// Receipt domain v2 (the hash covers the whole served message): a
	// deliberate change from v1, so no v1 receipt verifies as v2.
	r := SignShardReceipt(edgeKey, content.SegmentRef{Video: video, Rendition: 2, Segment: 17}.Shard(31), []byte("shard bytes"))
	const receiptBytes = "737761726d63617374207365727665642073686172642072656365697074207632000000004064616462643138346132643532366631656264643563303666646164393335396232323837353962346437663739643636363839666132353461616438353436000000403030313132323333343435353636373738383939616162626363646465656666303031313232333334343535363637373838393961616262636364646565666600000002000000110000001f9fbe170c219562f67790e38093509807575ab70635cfdb88f5070b91053a84fa"
	const receiptSig = "fe81d525f429fa5f196f2fb9fb44bdfeba8ca97299e534ad5af2f079f7f05a6205f2bac0e72ec4927f7a4118e89ce4ab6bd1c16077418d9b8286f0b99e069405"
	if got := hex.EncodeToString(r.SigningBytes()); got != receiptBytes {
		t.Errorf("ServedShardReceipt.SigningBytes =\n%s\nwant\n%s", got, receiptBytes)
	}
	if got := hex.EncodeToString(r.Signature); got != receiptSig {
		t.Errorf("receipt signature = %s, want %s", got, receiptSig)
	}
	if err := VerifyOrderLimit(coord.Public().(ed25519.PublicKey), &l); err != nil {
		t.Error(err)
	}
	if err := VerifyShardReceipt(&r, []byte("shard bytes")); err != nil {
		t.Error(err)
	}
}

// Bodies with typed ids marshal to exactly the JSON the string fields did,
// and decode back to the same values.
func TestTypedVideoIDsKeepTheJSON(t *testing.T) {
	coord, _ := key(1)
	_, viewerID := key(2)
	edgeKey, edgeID := key(3)
	video := compatVideo(t)
	l := OrderLimit{Serial: Serial{1, 2, 3}, Edge: edgeID, Viewer: viewerID, Video: video, MaxBytes: 1 << 20, ExpiresUnixMs: 1_700_000_000_000}
	SignOrderLimit(coord, &l)
	r := SignShardReceipt(edgeKey, content.SegmentRef{Video: video, Rendition: 2, Segment: 17}.Shard(31), []byte("shard bytes"))

	for _, c := range []struct {
		name string
		v    any
		back any // a pointer to a zero value of v's type
		want string
	}{
		{"LookupRequest", LookupRequest{Video: video, Rendition: 1, From: 2, Count: 3, ViewerID: viewerID, Exclude: []NodeID{edgeID}}, new(LookupRequest),
			`{"video":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","rendition":1,"from":2,"count":3,"viewer_id":"6b79c57e6a095239282c04818e96112f3f03a4001ba97a564c23852a3f1ea5fc","exclude":["dadbd184a2d526f1ebdd5c06fdad9359b228759b4d7f79d66689fa254aad8546"]}`},
		{"OrderLimit", l, new(OrderLimit),
			`{"serial":"01020300000000000000000000000000","edge":"dadbd184a2d526f1ebdd5c06fdad9359b228759b4d7f79d66689fa254aad8546","viewer":"6b79c57e6a095239282c04818e96112f3f03a4001ba97a564c23852a3f1ea5fc","video":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","max_bytes":1048576,"expires_unix_ms":1700000000000,"signature":"pB0wluJvQ+GIw/d2eEAFDU5c/gISWNnoyTxQBf6q0PyCjYSCoRLcDF+Ah6qAIJN672wd8whz+VCKx8cZ/AbHDQ=="}`},
		{"ServedShardReceipt", r, new(ServedShardReceipt),
			`{"edge":"dadbd184a2d526f1ebdd5c06fdad9359b228759b4d7f79d66689fa254aad8546","video":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","rendition":2,"segment":17,"shard":31,"shard_sha256":"9fbe170c219562f67790e38093509807575ab70635cfdb88f5070b91053a84fa","signature":"/oHVJfQp+l8Zby+5+0S9/rqMqXKZ5TStWvLweffwWmIF8rrA5y7Ekn96QRjonOSra9HBYHdBjZuChvC5ngaUBQ=="}`},
		{"HeartbeatRequest", HeartbeatRequest{NodeID: edgeID, Added: []ShardSet{{Video: video, Segment: 4, Shards: []int{1, 5}}}}, new(HeartbeatRequest),
			`{"node_id":"dadbd184a2d526f1ebdd5c06fdad9359b228759b4d7f79d66689fa254aad8546","added":[{"video":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","rendition":0,"segment":4,"shards":[1,5]}],"used_bytes":0,"served_bytes":0}`},
		{"AccountInfo", AccountInfo{ID: 7, Username: "u", Role: "user", Entitled: []content.VideoID{video}}, new(AccountInfo),
			`{"id":7,"username":"u","role":"user","balance":0,"entitled":["00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]}`},
	} {
		got, err := json.Marshal(c.v)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: json %s (err %v)\nwant %s", c.name, got, err, c.want)
			continue
		}
		if err := json.Unmarshal([]byte(c.want), c.back); err != nil {
			t.Errorf("%s: decoding the old JSON: %v", c.name, err)
			continue
		}
		if again, _ := json.Marshal(c.back); string(again) != c.want {
			t.Errorf("%s: round trip gave %s", c.name, again)
		}
	}
}

// A malformed id in a body is refused at decoding with a 400 that names
// the id and says what is wrong with it.
func TestMalformedVideoIDInBody(t *testing.T) {
	for body, want := range map[string]string{
		`{"video":"abc","rendition":0,"from":0,"count":1}`:                  `malformed JSON body: video id "abc": want 64 hex characters, got 3`,
		`{"video":"` + strings.Repeat("zz", 32) + `","count":1}`:            `malformed JSON body: video id "` + strings.Repeat("zz", 32) + `": not hex`,
		`{"video":"","count":1}`:                                            `malformed JSON body: video id "": want 64 hex characters, got 0`,
		`{"video":12,"count":1}`:                                            `malformed JSON body: json: cannot unmarshal number into Go struct field LookupRequest.video of type content.VideoID`,
		`{"video":"` + compatVideoHex + `","count":1,"exclude":[` + `"x"]}`: ``,
	} {
		rec := httptest.NewRecorder()
		var req LookupRequest
		hreq := httptest.NewRequest("POST", PathLookup, strings.NewReader(body))
		hreq.Header.Set("Content-Type", "application/json")
		ok := DecodeJSON(rec, hreq, &req)
		if want == "" {
			if !ok {
				t.Errorf("%s: refused: %s", body, rec.Body)
			}
			continue
		}
		var eb ErrorBody
		if ok || rec.Code != 400 || json.Unmarshal(rec.Body.Bytes(), &eb) != nil || !strings.HasPrefix(eb.Error, want) {
			t.Errorf("%s: decoded %v, answer %d %s; want 400 %q", body, ok, rec.Code, rec.Body, want)
		}
	}
}
