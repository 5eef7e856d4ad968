package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// stdDecodeHeartbeat is what DecodeJSONLimit does with a heartbeat body.
func stdDecodeHeartbeat(b []byte) (HeartbeatRequest, bool) {
	var req HeartbeatRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil {
		return req, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, false
	}
	return req, true
}

var heartbeatBodies = []string{
	`{"node_id":"ab12","full":true,"added":[{"video":"` + compatVideoHex + `","rendition":0,"segment":7,"shards":[3]},{"video":"` + compatVideoHex + `","rendition":2,"segment":0,"shards":[0,1,2,250]}],"used_bytes":131072,"served_bytes":0}`,
	` { "node_id" : "x" , "removed" : [ { "segment" : 1 , "shards" : [ ] , "video" : "` + strings.ToUpper(compatVideoHex) + `" } ] , "added" : [ ] , "full" : false , "disk_cap_bytes" : 1073741824 , "used_bytes" : -0 , "served_bytes" : -5 } ` + "\n",
	`{"node_id":"n","added":[{}],"removed":[{"rendition":-1,"segment":1048575}]}`,
	`{}`,
}

// The fast path takes the bodies edges send and decodes them exactly as
// encoding/json does; unusual ones it leaves to encoding/json.
func TestParseHeartbeatRequestMatchesEncodingJSON(t *testing.T) {
	for _, body := range heartbeatBodies {
		var got HeartbeatRequest
		if !ParseHeartbeatRequest([]byte(body), &got) {
			t.Errorf("%s: not taken by the fast path", body)
			continue
		}
		if want, ok := stdDecodeHeartbeat([]byte(body)); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast path %+v, encoding/json %+v (ok %v)", body, got, want, ok)
		}
	}
	for _, body := range []string{
		`{"Node_ID":"x"}`,                       // encoding/json matches keys case-insensitively
		`{"full":true,"full":false}`,            // repeated key
		`{"added":[{"segment":1,"Segment":2}]}`, // repeated in a set, case-insensitively
		`{"node_id":"caf\u00e9"}`,               // an escape
		`{"used_bytes":1.0}`, `{"used_bytes":01}`, `{"used_bytes":1e3}`, `{"used_bytes":1234567890123456789}`,
		`{"added":[{"segment":4294967296}]}`, `{"added":null}`, `{"added":[null]}`, `{"added":[{"shards":null}]}`,
		`{"full":1}`, `{"full":tru}`, `{"full":truex}`, `{"live_watching":[]}`, `{"peer_rtt_ms":{}}`,
		`{"used_bytes":1}x`, `{"used_bytes":1,}`, `{"added":[{}],}`, `{"added":[{},]}`, `{"used_bytes":1`,
		"{\"node_id\":\"\xff\"}", `{"added":[{"video":"abc"}]}`, ``,
	} {
		var got HeartbeatRequest
		if ParseHeartbeatRequest([]byte(body), &got) {
			t.Errorf("%s: taken by the fast path as %+v", body, got)
		}
		if !reflect.DeepEqual(got, HeartbeatRequest{}) {
			t.Errorf("%s: refused but left %+v behind", body, got)
		}
	}
}

// FuzzParseHeartbeatRequest: whatever the fast path accepts, encoding/json
// decodes to the same request.
func FuzzParseHeartbeatRequest(f *testing.F) {
	for _, b := range heartbeatBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got HeartbeatRequest
		if !ParseHeartbeatRequest(b, &got) {
			return
		}
		want, ok := stdDecodeHeartbeat(b)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v (ok %v)", b, got, want, ok)
		}
	})
}
